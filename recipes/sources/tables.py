"""A source table: CSV, JSONL, Parquet, or ``hf:<name>`` through ``datasets``; filtering and cells.

:mod:`recipes.sources.readers` reads a file into a frame of the file's columns plus
``__row__`` and ``__error__``; here the recipe's column mapping is checked, ``where``
filters rows, and :func:`cell_text` reads one text cell or says why it cannot.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from core.answers import AnswerError, preview
from recipes.sources.items import SourceOutput
from recipes.sources.readers import ERROR, ROW, SourceError, read_file, read_hf

__all__ = ["ERROR", "ROW", "SourceError", "read_source_table"]


def read_source_table(path: str, hf_split: str = "train", encoding: str = "utf-8") -> pl.DataFrame:
    """Every column as read, plus ``__row__`` and ``__error__`` (see :mod:`readers`)."""
    if path.startswith("hf:"):
        return read_hf(path[3:], hf_split)
    return read_file(path, encoding)


def require_columns(frame: pl.DataFrame, path: str, mapping: dict[str, str | None]) -> None:
    """Each recipe field that maps a column must name a column the file has."""
    columns = [c for c in frame.columns if c not in (ROW, ERROR)]
    for field, column in mapping.items():
        if column is not None and column not in columns:
            raise SourceError(f"{path}: source.{field}: no column {column!r}; columns: {', '.join(columns)}")


def apply_where(frame: pl.DataFrame, where: dict[str, list[str] | str], path: str) -> pl.DataFrame:
    """Rows whose ``where`` columns hold one of the allowed values (compared as text).

    Unreadable rows stay, so they are quarantined rather than silently filtered away.
    """
    require_columns(frame, path, {f"where.{k}": k for k in where})
    if not where:
        return frame
    matches = [True] * frame.height
    for column, allowed in where.items():
        values = {allowed} if isinstance(allowed, str) else set(allowed)
        cells = frame[column].to_list()
        matches = [m and c is not None and str(c) in values for m, c in zip(matches, cells, strict=True)]
    unreadable = [error is not None for error in frame[ERROR].to_list()]
    return frame.filter(
        pl.Series([m or u for m, u in zip(matches, unreadable, strict=True)], dtype=pl.Boolean)
    )


def source_name(path: str) -> str:
    """How provenance names a source: the file name, or the ``hf:`` name as given."""
    return path if path.startswith("hf:") else Path(path).name


def iter_records(
    frame: pl.DataFrame, out: SourceOutput, limit: int | None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each readable record with its row number until ``out`` holds ``limit`` items.

    A row that could not even be read (broken JSON, bad bytes, a ragged CSV line) is
    quarantined here, so sources only see records and quarantine what they cannot parse.
    """
    for record in frame.iter_rows(named=True):
        if limit is not None and len(out.rows) >= limit:
            return
        if record.get(ERROR):
            out.reject(record[ROW], record[ERROR])
            continue
        yield record[ROW], {k: v for k, v in record.items() if k not in (ROW, ERROR)}


def cell_text(record: dict[str, Any], column: str) -> str:
    """The stripped text of one cell; a one-element list counts as its element.

    Raises :class:`AnswerError` (expected vs found) for an empty cell, a number, a
    list of several values or anything else that is not text.
    """
    value = record.get(column)
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, str) and value.strip():
        return value.strip()
    if value is None or isinstance(value, str):
        raise AnswerError(f"expected text in column {column!r}, found it empty")
    kind = f"a list of {len(value)}" if isinstance(value, list) else f"a {type(value).__name__}"
    raise AnswerError(f"expected text in column {column!r}, found {kind}: {preview(value)}")


def cell_texts(record: dict[str, Any], column: str) -> list[str]:
    """A cell holding one text or a list of texts → the non-empty texts (may be empty)."""
    value = record.get(column)
    values = value if isinstance(value, list) else [value]
    texts = []
    for item in values:
        if item is None or (isinstance(item, str) and not item.strip()):
            continue
        if not isinstance(item, str):
            found = f"a {type(item).__name__}: {preview(item)}"
            raise AnswerError(f"expected text or a list of texts in column {column!r}, found {found}")
        texts.append(item.strip())
    return texts
