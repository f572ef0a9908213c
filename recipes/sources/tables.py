"""Reading a source table: CSV, JSONL, Parquet, or ``hf:<name>`` through ``datasets``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from core.errors import SourceError
from recipes.sources.items import SourceOutput

ROW = "__row__"  # 1-based row number in the source (the line number for JSONL)
ERROR = "__error__"  # why a row could not even be read (a broken JSONL line)


def read_source_table(path: str, hf_split: str = "train") -> pl.DataFrame:
    """Every column as read, plus ``__row__``; CSV columns stay strings so nothing is mis-inferred."""
    frame = _read(path, hf_split)
    if ROW not in frame.columns:
        frame = frame.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))
    if ERROR not in frame.columns:
        frame = frame.with_columns(pl.lit(None, pl.String).alias(ERROR))
    return frame


def _read(path: str, hf_split: str) -> pl.DataFrame:
    if path.startswith("hf:"):
        from datasets import load_dataset

        dataset = load_dataset(path[3:], split=hf_split)
        return pl.from_arrow(dataset.data.table)  # type: ignore[return-value]
    suffix = Path(path).suffix.lower()
    try:
        if suffix == ".csv":
            return pl.read_csv(path, infer_schema=False)
        if suffix in (".jsonl", ".json"):
            return _read_jsonl(path)
        if suffix == ".parquet":
            return pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise SourceError(f"{path}: cannot read: {exc}") from exc
    raise SourceError(f"{path}: unsupported file type {suffix!r}")


def _read_jsonl(path: str) -> pl.DataFrame:
    """JSONL read line by line so a broken line becomes a null row the source quarantines."""
    import json

    records = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                record = {ERROR: f"invalid JSON: {exc}"}
            records.append({**record, ROW: number})
    return pl.from_dicts(records, infer_schema_length=None) if records else pl.DataFrame()


def require_columns(frame: pl.DataFrame, path: str, mapping: dict[str, str | None]) -> None:
    """Each recipe field that maps a column must name a column the file has."""
    columns = [c for c in frame.columns if c not in (ROW, ERROR)]
    for field, column in mapping.items():
        if column is not None and column not in columns:
            raise SourceError(f"{path}: source.{field}: no column {column!r}; columns: {', '.join(columns)}")


def apply_where(frame: pl.DataFrame, where: dict[str, list[str] | str], path: str) -> pl.DataFrame:
    require_columns(frame, path, {f"where.{k}": k for k in where})
    for column, allowed in where.items():
        values = [allowed] if isinstance(allowed, str) else allowed
        frame = frame.filter(pl.col(column).cast(pl.String).is_in(values))
    return frame


def source_name(path: str) -> str:
    """How provenance names a source: the file name, or the ``hf:`` name as given."""
    return path if path.startswith("hf:") else Path(path).name


def iter_records(
    frame: pl.DataFrame, out: SourceOutput, limit: int | None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each readable record with its row number until ``out`` holds ``limit`` items.

    A line that could not even be read (broken JSON) is quarantined here, so sources only
    see records and quarantine what they cannot parse.
    """
    for record in frame.iter_rows(named=True):
        if limit is not None and len(out.rows) >= limit:
            return
        if record.get(ERROR):
            out.reject(record[ROW], record[ERROR])
            continue
        yield record[ROW], record
