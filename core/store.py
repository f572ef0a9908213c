"""The versioned dataset store (DESIGN.md, "Versions").

A store is a folder; ``<store>/<dataset>/vN/`` holds one immutable version:

- ``data/<split>-00000-of-00001.parquet`` — the accepted items, Hub layout;
- ``<side>.parquet`` — side tables (``dropped``, ``routed``) that are not splits;
- ``manifest.json`` — parent, recipe hash, per-file sha256, row counts, funnel, time;
- ``README.md`` — the dataset card, written by the registered card renderer;
- any extra files the writer hands over (the resolved recipe, the quarantine log).

A version is assembled in a hidden temp folder and renamed into place, so a reader
never sees a half-written version and a failed write leaves ``latest`` untouched.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from core.errors import StoreError
from core.schema import DROPPED_SCHEMA, ITEM_SCHEMA, conform, validate

DEFAULT_STORE = Path("traitdose-store")
CARD_ENTRY_POINT = "traitdose.card"
_VERSION = re.compile(r"^v(\d+)$")

CardRenderer = Callable[[Path], None]


def split_file(split: str) -> str:
    return f"data/{split}-00000-of-00001.parquet"


@dataclass(frozen=True)
class Version:
    """One immutable version on disk."""

    dataset: str
    name: str
    path: Path

    @property
    def ref(self) -> str:
        return f"{self.dataset}@{self.name}"

    @property
    def number(self) -> int:
        return int(self.name[1:])

    @cached_property
    def manifest(self) -> dict[str, Any]:
        return json.loads((self.path / "manifest.json").read_text())

    @property
    def splits(self) -> list[str]:
        return list(self.manifest["rows"])

    def table(self, split: str | None = None, columns: list[str] | None = None) -> pa.Table:
        """The accepted items of one split, or of every split concatenated (optionally some columns)."""
        names = [split] if split else self.splits
        missing = [s for s in names if s not in self.manifest["rows"]]
        if missing:
            raise StoreError(f"{self.ref} has no split {missing[0]!r}; it has {self.splits}")
        schema = pa.schema([ITEM_SCHEMA.field(c) for c in columns]) if columns else ITEM_SCHEMA
        tables = [pq.read_table(self.path / split_file(s), columns=columns, schema=schema) for s in names]
        return pa.concat_tables(tables) if tables else schema.empty_table()

    def frame(self, split: str | None = None, columns: list[str] | None = None) -> pl.DataFrame:
        frame = pl.from_arrow(self.table(split, columns))
        assert isinstance(frame, pl.DataFrame)
        return frame

    def side(self, name: str) -> pa.Table:
        """A side table (``dropped``, ``routed``); empty when the version has none."""
        path = self.path / f"{name}.parquet"
        if not path.exists():
            return (DROPPED_SCHEMA if name == "dropped" else ITEM_SCHEMA).empty_table()
        return pq.read_table(path)

    def dataset_dict(self):
        """The version as a ``datasets.DatasetDict`` (one ``Dataset`` per split)."""
        from datasets import Dataset, DatasetDict

        return DatasetDict({s: Dataset(self.table(s)) for s in self.splits})


class Store:
    """A folder of datasets, each a sequence of immutable versions."""

    def __init__(self, root: str | Path = DEFAULT_STORE, card_renderer: CardRenderer | None = None):
        self.root = Path(root)
        self._card_renderer = card_renderer

    # ---- reading ---------------------------------------------------------------------
    def datasets(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and self.versions(p.name))

    def versions(self, dataset: str) -> list[Version]:
        folder = self.root / dataset
        if not folder.is_dir():
            return []
        found = []
        for child in folder.iterdir():
            match = _VERSION.match(child.name)
            # A version without its manifest was never completed (the manifest is written
            # before the rename, so this only happens to folders copied in by hand).
            if match and (child / "manifest.json").is_file():
                found.append(Version(dataset, child.name, child))
        return sorted(found, key=lambda v: v.number)

    def latest(self, dataset: str) -> Version | None:
        versions = self.versions(dataset)
        return versions[-1] if versions else None

    def resolve(self, ref: str) -> Version:
        """``DATASET``, ``DATASET@latest`` or ``DATASET@vN`` → the version."""
        dataset, _, name = ref.partition("@")
        if not dataset:
            raise StoreError(f"bad reference {ref!r}: expected DATASET@vN")
        versions = self.versions(dataset)
        if not versions:
            known = ", ".join(self.datasets()) or "none"
            raise StoreError(f"no dataset {dataset!r} in store {self.root} (datasets: {known})")
        if name in ("", "latest"):
            return versions[-1]
        for version in versions:
            if version.name == name:
                return version
        names = ", ".join(v.name for v in versions)
        raise StoreError(f"dataset {dataset!r} has no version {name!r} (versions: {names})")

    # ---- writing ---------------------------------------------------------------------
    def write_version(
        self,
        dataset: str,
        splits: Mapping[str, pa.Table | pl.DataFrame],
        *,
        parent: str | None = None,
        recipe_hash: str | None = None,
        funnel: list[dict[str, Any]] | None = None,
        side: Mapping[str, pa.Table | pl.DataFrame] | None = None,
        files: Mapping[str, str | bytes] | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> Version:
        """Write a new version atomically and return it.

        ``splits`` are validated against the item schema first; nothing is written if
        any row is bad. ``side`` tables land beside ``data/``; ``files`` are extra
        files (path relative to the version folder → content).
        """
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", dataset):
            raise StoreError(f"bad dataset name {dataset!r}: use letters, digits, '.', '_' and '-'")
        conformed = {name: conform(table) for name, table in splits.items()}
        for name, table in conformed.items():
            try:
                validate(table)
            except ValueError as exc:
                raise type(exc)(f"split {name!r}: {exc}") from exc
        folder = self.root / dataset
        folder.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder))
        try:
            checksums = self._write_files(tmp, conformed, side or {}, files or {})
            manifest = {
                "dataset": dataset,
                "parent": parent,
                "recipe_hash": recipe_hash,
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "rows": {name: table.num_rows for name, table in conformed.items()},
                "side_rows": {name: _rows(t) for name, t in (side or {}).items()},
                "files": checksums,
                "funnel": funnel or [],
                **dict(meta or {}),
            }
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
            return self._publish(dataset, tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _write_files(
        self,
        tmp: Path,
        splits: Mapping[str, pa.Table],
        side: Mapping[str, pa.Table | pl.DataFrame],
        files: Mapping[str, str | bytes],
    ) -> dict[str, dict[str, Any]]:
        (tmp / "data").mkdir()
        written = []
        for name, table in splits.items():
            path = tmp / split_file(name)
            pq.write_table(table, path, compression="zstd")
            written.append(path)
        for name, table in side.items():
            arrow = table.to_arrow() if isinstance(table, pl.DataFrame) else table
            path = tmp / f"{name}.parquet"
            pq.write_table(arrow, path, compression="zstd")
            written.append(path)
        for rel, content in files.items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content.encode() if isinstance(content, str) else content)
            written.append(path)
        return {str(p.relative_to(tmp)): {"sha256": _sha256(p), "bytes": p.stat().st_size} for p in written}

    def _publish(self, dataset: str, tmp: Path) -> Version:
        """Render the card, then claim the next free ``vN`` with an atomic rename."""
        renderer = self._card_renderer or _registered_card_renderer()
        latest = self.latest(dataset)
        number = latest.number + 1 if latest else 1
        while True:
            final = self.root / dataset / f"v{number}"
            manifest = json.loads((tmp / "manifest.json").read_text())
            manifest["version"] = final.name
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
            if renderer is not None:
                renderer(tmp)
            try:
                os.rename(tmp, final)  # fails if another writer claimed vN first
            except OSError:
                if not final.exists():
                    raise
                number += 1
                continue
            return Version(dataset, final.name, final)


def _registered_card_renderer() -> CardRenderer | None:
    """The card renderer a package registers under the ``traitdose.card`` entry point."""
    found = entry_points(group=CARD_ENTRY_POINT)
    for ep in found:
        return ep.load()
    return None


def _rows(table: pa.Table | pl.DataFrame) -> int:
    return table.num_rows if isinstance(table, pa.Table) else table.height


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
