"""Reading and writing tables by extension: Parquet, JSONL (and CSV for reading).

The standalone commands (``traitdose dedupe/decontam/filter``) take any such file, and
decontamination reads benchmarks from them or from ``hf:<name>`` datasets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from core.errors import SourceError

READABLE = (".parquet", ".jsonl", ".json", ".csv")
WRITABLE = (".parquet", ".jsonl")


def read_table(path: str | Path) -> pl.DataFrame:
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in READABLE:
        raise SourceError(f"{path}: unsupported file type {suffix!r}; use {', '.join(READABLE)}")
    if not path.is_file():
        raise SourceError(f"{path}: file not found")
    try:
        if suffix == ".parquet":
            return pl.read_parquet(path)
        if suffix == ".csv":
            return pl.read_csv(path, infer_schema=False)
        return pl.read_ndjson(path, infer_schema_length=None)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise SourceError(f"{path}: cannot read: {str(exc).splitlines()[0]}") from exc


def write_table(frame: pl.DataFrame, path: str | Path) -> Path:
    """Write by extension, via a temp file renamed into place so a crash leaves no half file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITABLE:
        raise SourceError(f"{path}: unsupported output type {suffix!r}; use {', '.join(WRITABLE)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if suffix == ".parquet":
        frame.write_parquet(tmp, compression="zstd")
    else:
        frame.write_ndjson(tmp)
    tmp.replace(path)
    return path


def sibling(path: str | Path, tag: str) -> Path:
    """``out.parquet`` → ``out.dropped.parquet``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.{tag}{path.suffix}")


def read_columns(source: str, columns: list[str], hf_split: str = "validation") -> pl.DataFrame:
    """The named text columns of a benchmark file or ``hf:<name>`` dataset."""
    if source.startswith("hf:"):
        frame = pl.from_arrow(load_hf(source[3:], hf_split))
        assert isinstance(frame, pl.DataFrame)
    else:
        frame = read_table(source)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SourceError(f"{source}: no column {missing[0]!r}; columns: {', '.join(frame.columns)}")
    return frame.select(columns)


class DatasetUnavailable(SourceError):
    """An ``hf:`` dataset that cannot be loaded; one line naming it, its split and the remedy."""


def load_hf(name: str, split: str) -> pa.Table:
    """Dataset ``name``'s ``split`` through ``datasets``; offline (``HF_HUB_OFFLINE=1``) from the
    local cache: the ``datasets`` cache or a Hub snapshot (``hf download NAME --repo-type dataset``)."""
    try:
        return _load_hf(name, split).data.table
    except (
        Exception
    ) as exc:  # network, not found, bad split...: datasets raises many types, all "unavailable"
        cause = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
        raise DatasetUnavailable(
            f"hf:{name}: cannot load split {split!r} ({type(exc).__name__}: {cause[:300]}); to make it "
            f"available, run `hf download {name} --repo-type dataset` while online (then HF_HUB_OFFLINE=1 "
            f"reads the cache), or download the files and give their path instead"
        ) from exc


def _load_hf(name: str, split: str) -> Any:
    import datasets
    from datasets.utils import disable_progress_bars

    disable_progress_bars()  # the commands have their own progress bars
    try:
        return datasets.load_dataset(name, split=split)
    except Exception:
        snapshot = _hub_snapshot(name)
        if snapshot is None:
            raise
        return datasets.load_dataset(snapshot, split=split)


def _hub_snapshot(name: str) -> str | None:
    """The Hub cache's copy of dataset repo ``name``, without touching the network."""
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(name, repo_type="dataset", local_files_only=True)
    except Exception:  # not cached, or not a repo id at all: the caller reports the first failure
        return None
