"""``traitdose versions check``: does every version in a store hold what its manifest says?

For each version: every file listed in the manifest exists with its sha256 and size;
each split's parquet file holds the manifest's row count (a 0-row split has no file);
each side table holds its ``side_rows``; the card's ``configs`` name exactly the non-empty
splits; and ``datasets`` loads the version's splits. Problems are reported per version,
one line each; nothing is changed.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq
import yaml

from core.store import Store, Version, split_file


@dataclass
class VersionCheck:
    ref: str
    path: Path
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_store(store: Store, dataset: str | None = None, load: bool = True) -> list[VersionCheck]:
    """A check of every version (of one dataset, or of every dataset) in ``store``."""
    names = [dataset] if dataset else _dataset_folders(store)
    reports = []
    for name in names:
        reports += [check_version(v, load=load) for v in store.versions(name)]
        # Folders the store skips (a missing or corrupt manifest) are failed versions too.
        reports += [
            VersionCheck(f"{name}@{path.name}", path, [f"{path / 'manifest.json'}: unreadable ({why})"])
            for path, why in store.problems(name)
        ]
    return reports


def _dataset_folders(store: Store) -> list[str]:
    """Every dataset folder, including one whose only version is unreadable."""
    if not store.root.is_dir():
        return []
    return sorted(p.name for p in store.root.iterdir() if p.is_dir() and not p.name.startswith("."))


def check_version(version: Version, load: bool = True) -> VersionCheck:
    report = VersionCheck(version.ref, version.path)
    try:
        manifest = version.manifest
    except (OSError, ValueError) as exc:
        report.problems.append(f"{version.path / 'manifest.json'}: unreadable ({exc})")
        return report
    report.problems += _files(version.path, manifest.get("files", {}))
    report.problems += _rows(version.path, manifest)
    report.problems += _card(version.path, manifest)
    if load and not report.problems:
        report.problems += _loads(version.path, manifest)
    return report


def _files(folder: Path, files: dict[str, dict]) -> list[str]:
    problems = []
    for rel, expected in files.items():
        path = folder / rel
        if not path.is_file():
            problems.append(f"{rel}: missing (the manifest lists it)")
        elif path.stat().st_size != expected.get("bytes", path.stat().st_size):
            problems.append(f"{rel}: {path.stat().st_size} bytes, the manifest says {expected['bytes']}")
        elif _sha256(path) != expected.get("sha256"):
            problems.append(f"{rel}: sha256 differs from the manifest (changed after it was written)")
    return problems


def _rows(folder: Path, manifest: dict) -> list[str]:
    problems = []
    tables = {s: (split_file(s), n) for s, n in manifest.get("rows", {}).items()}
    tables |= {s: (f"{s}.parquet", n) for s, n in manifest.get("side_rows", {}).items()}
    for rel, expected in tables.values():
        path = folder / rel
        if not path.is_file():
            if expected:
                problems.append(f"{rel}: missing, the manifest records {expected} rows")
            continue
        try:
            found = pq.ParquetFile(path).metadata.num_rows
        except (OSError, ValueError) as exc:
            problems.append(f"{rel}: not readable parquet ({exc})")
            continue
        if found != expected:
            problems.append(f"{rel}: {found} rows, the manifest records {expected}")
    return problems


def _card(folder: Path, manifest: dict) -> list[str]:
    readme = folder / "README.md"
    if not readme.is_file():
        return []
    text = readme.read_text()
    if not text.startswith("---\n"):
        return []
    meta = yaml.safe_load(text.split("---\n", 2)[1]) or {}
    declared = {e["split"] for c in meta.get("configs") or [] for e in c.get("data_files") or []}
    wanted = {s for s, n in manifest.get("rows", {}).items() if n}
    if declared != wanted:
        return [f"README.md: configs name splits {sorted(declared)}; the non-empty ones are {sorted(wanted)}"]
    return []


def _loads(folder: Path, manifest: dict) -> list[str]:
    """Load the version with ``datasets`` (into a throwaway cache): its non-empty splits, rows as recorded."""
    from datasets import load_dataset
    from datasets.utils import disable_progress_bars, enable_progress_bars, is_progress_bar_enabled

    files = {s: str(folder / split_file(s)) for s, n in manifest.get("rows", {}).items() if n}
    if not files:
        return []  # nothing accepted (every item routed to annotation): nothing to load
    bars = is_progress_bar_enabled()
    disable_progress_bars()
    with tempfile.TemporaryDirectory(prefix="traitdose-check-") as cache:
        try:  # as users load it: through the card's configs when the version has a card
            if (folder / "README.md").is_file():
                loaded = load_dataset(str(folder), cache_dir=cache)
            else:
                loaded = load_dataset("parquet", data_files=files, cache_dir=cache)
        except Exception as exc:  # any failure to load is the finding itself
            first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
            return [f"datasets cannot load it: {first}"]
        finally:
            if bars:
                enable_progress_bars()
    counts = {s: loaded[s].num_rows for s in loaded}
    expected = {s: manifest["rows"][s] for s in files}
    return [] if counts == expected else [f"datasets loads {counts} rows, the manifest records {expected}"]


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
