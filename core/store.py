"""The versioned dataset store (DESIGN.md, "Versions").

A store is a folder; ``<store>/<dataset>/vN/`` holds one immutable version:

- ``data/<split>-00000-of-00001.parquet`` — the accepted items, Hub layout (a split with
  no rows has no file: the manifest records it as 0 and the card leaves it out);
- ``<side>.parquet`` — side tables (``dropped``, ``routed``) that are not splits;
- ``manifest.json`` — parent, recipe hash, per-file sha256, row counts, funnel, time;
- ``README.md`` — the dataset card, written by the card renderer the caller passes in;
- any extra files the writer hands over (the resolved recipe, the quarantine log).

A version is assembled in a hidden staging folder (``core.staging``) and renamed into
place, so a reader never sees a half-written version and a failed write leaves
``latest`` untouched. A version whose manifest cannot be read is skipped (and listed by
:meth:`Store.problems`); its number is never reused.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from core.errors import StoreError
from core.manifest import MANIFEST_FILE, Manifest
from core.schema import DROPPED_SCHEMA, ITEM_SCHEMA, conform, validate
from core.staging import make_staging, open_permissions, remove_stale

DEFAULT_STORE = Path("traitdose-store")
_VERSION = re.compile(r"^v(\d+)$")
LATEST = "latest"  # write_version(parent=LATEST): the version before the one this write claims
# Files that say how a version was written rather than what it holds: two versions whose
# other files all match are identical.
_DESCRIPTIVE = {MANIFEST_FILE, "README.md", "card.png"}

CardRenderer = Callable[[Path], None]
# Extra manifest keys, or a callable that returns them: called once the data files are written,
# so a slow entry (the runner's surface-cue audit) is computed while pyarrow writes them.
Meta = Mapping[str, Any] | Callable[[], Mapping[str, Any]]


def split_file(split: str) -> str:
    return f"data/{split}-00000-of-00001.parquet"


@dataclass(frozen=True)
class Version:
    """One immutable version on disk."""

    dataset: str
    name: str
    path: Path
    # True when a write found this existing version identical and wrote nothing.
    reused: bool = field(default=False, compare=False)

    @property
    def ref(self) -> str:
        return f"{self.dataset}@{self.name}"

    @property
    def number(self) -> int:
        return int(self.name[1:])

    @cached_property
    def manifest(self) -> Manifest:
        return Manifest.read(self.path)

    @property
    def splits(self) -> list[str]:
        return list(self.manifest.rows)

    def table(self, split: str | None = None, columns: list[str] | None = None) -> pa.Table:
        """The accepted items of one split, or of every split concatenated (optionally some columns)."""
        names = [split] if split else self.splits
        missing = [s for s in names if s not in self.manifest.rows]
        if missing:
            raise StoreError(f"{self.ref} has no split {missing[0]!r}; it has {self.splits}")
        schema = pa.schema([ITEM_SCHEMA.field(c) for c in columns]) if columns else ITEM_SCHEMA
        # An empty split has no file (``datasets`` cannot load a 0-row parquet file).
        tables = [
            pq.read_table(self.path / split_file(s), columns=columns, schema=schema)
            for s in names
            if self.manifest["rows"][s]
        ]
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
        """The readable versions of ``dataset``, oldest first (see :meth:`problems` for the rest)."""
        return [v for v in self._scan(dataset) if isinstance(v, Version)]

    def problems(self, dataset: str) -> list[tuple[Path, str]]:
        """Version folders that are skipped, each with why (a missing or corrupt manifest)."""
        return [v for v in self._scan(dataset) if not isinstance(v, Version)]

    def _scan(self, dataset: str) -> list[Version | tuple[Path, str]]:
        folder = self.root / dataset
        if not folder.is_dir():
            return []
        found: list[tuple[int, Version | tuple[Path, str]]] = []
        for child in folder.iterdir():
            match = _VERSION.match(child.name)
            if not match or not child.is_dir():
                continue
            version = Version(dataset, child.name, child)
            try:
                version.manifest  # noqa: B018  (read once: cached, and raises if corrupt)
            except StoreError as exc:
                # A folder without its manifest was never completed (the manifest is written
                # before the rename), or was copied in or damaged by hand.
                found.append((version.number, (child, str(exc))))
                continue
            found.append((version.number, version))
        return [v for _, v in sorted(found, key=lambda pair: pair[0])]

    def _next_number(self, dataset: str) -> int:
        """One past the highest ``vN`` folder, readable or not: a damaged version's number is never reused."""
        folder = self.root / dataset
        numbers = (
            [int(m[1]) for c in folder.iterdir() if (m := _VERSION.match(c.name))] if folder.is_dir() else []
        )
        return max(numbers, default=0) + 1

    def clean_stale(self, dataset: str) -> list[Path]:
        """Remove staging folders killed runs left in ``dataset``'s folder; returns them."""
        return remove_stale(self.root / dataset)

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
        meta: Meta | None = None,
        skip_identical: bool = False,
    ) -> Version:
        """Write a new version atomically and return it.

        ``splits`` are validated against the item schema first; nothing is written if
        any row is bad. ``side`` tables land beside ``data/``; ``files`` are extra
        files (path relative to the version folder → content). ``parent=LATEST`` records
        the version before the one this write claims, read when the number is taken, so
        concurrent writers each name the right parent. With ``skip_identical``, a version
        whose files all match the parent's is not written: the parent comes back with
        ``reused=True``. ``meta`` adds manifest keys; when it is a callable it is called after
        the data files are written (it may wait on work done meanwhile), and if it raises,
        nothing is written and the error propagates.
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
        self.clean_stale(dataset)
        tmp = make_staging(folder)
        try:
            checksums = self._write_files(tmp, conformed, side or {}, files or {})
            extra = meta() if callable(meta) else meta
            manifest = Manifest.model_validate(
                {
                    "dataset": dataset,
                    "parent": parent,
                    "recipe_hash": recipe_hash,
                    "created": datetime.now(UTC).isoformat(timespec="seconds"),
                    "rows": {name: table.num_rows for name, table in conformed.items()},
                    "side_rows": {name: _rows(t) for name, t in (side or {}).items()},
                    "files": checksums,
                    "funnel": funnel or [],
                    **dict(extra or {}),
                }
            )
            if skip_identical:
                same = self._identical_parent(dataset, parent, manifest)
                if same is not None:
                    shutil.rmtree(tmp, ignore_errors=True)
                    return same
            open_permissions(tmp)
            return self._publish(dataset, tmp, manifest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _identical_parent(self, dataset: str, parent: str | None, manifest: Manifest) -> Version | None:
        """The parent version, when every file but the descriptive ones matches ``manifest``'s."""
        base = self.latest(dataset) if parent == LATEST else self.resolve(parent) if parent else None
        if base is None:
            return None

        def content(m: Manifest) -> dict[str, str]:
            return {path: f.sha256 for path, f in m.files.items() if path not in _DESCRIPTIVE}

        if content(base.manifest) != content(manifest) or base.manifest.trial != manifest.trial:
            return None
        return Version(base.dataset, base.name, base.path, reused=True)

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
            if not table.num_rows:
                continue  # recorded as 0 in the manifest; no file, so every version loads
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

    def _publish(self, dataset: str, tmp: Path, manifest: Manifest) -> Version:
        """Render the card, then claim the next free ``vN`` with an atomic rename."""
        auto_parent = manifest.parent == LATEST
        number = self._next_number(dataset)
        while True:
            final = self.root / dataset / f"v{number}"
            manifest.version = final.name
            if auto_parent:
                before = [v for v in self.versions(dataset) if v.number < number]
                manifest.parent = before[-1].ref if before else None
            manifest.write(tmp)
            if self._card_renderer is not None:
                self._card_renderer(tmp)
            try:
                os.rename(tmp, final)  # fails if another writer claimed vN first
            except OSError:
                if not final.exists():
                    raise
                number = max(number + 1, self._next_number(dataset))
                continue
            return Version(dataset, final.name, final)


def _rows(table: pa.Table | pl.DataFrame) -> int:
    return table.num_rows if isinstance(table, pa.Table) else table.height


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
