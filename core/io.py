"""Reading and writing tables by extension: Parquet, JSONL (and CSV for reading).

The standalone commands (``traitdose dedupe/decontam/filter``) take any such file, and
decontamination reads benchmarks from them or from ``hf:<name>`` datasets.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

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
        from datasets import load_dataset

        frame = pl.from_arrow(load_dataset(source[3:], split=hf_split).data.table)
        assert isinstance(frame, pl.DataFrame)
    else:
        frame = read_table(source)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SourceError(f"{source}: no column {missing[0]!r}; columns: {', '.join(frame.columns)}")
    return frame.select(columns)
