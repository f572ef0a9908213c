"""Reading one source file into records, so that one bad row never sinks the file.

Every reader returns a frame with the file's columns plus ``__row__`` (1-based: the line
number for JSONL, the data row for CSV and Parquet) and ``__error__`` (why that row could
not even be read, or null). A row that does not decode, is not a JSON object, is a
truncated last line or has a different number of CSV fields than the header is kept as an
``__error__`` row, which the source quarantines with its number; the rest of the file is
read. A file that cannot be read at all raises :class:`SourceError` naming the file.

Columns holding anything but text (lists, numbers, mixed) from JSONL keep their Python
values (an ``Object`` column), so a source can quarantine the odd row instead of polars
refusing the whole file; CSV columns are all text, so nothing is mis-inferred.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from core.answers import preview
from core.errors import SourceError
from core.io import DatasetUnavailable, load_hf

ROW = "__row__"
ERROR = "__error__"
csv.field_size_limit(2**31 - 1)  # a 5 MB cell is a big cell, not a broken file


def read_file(path: str, encoding: str = "utf-8") -> pl.DataFrame:
    suffix = Path(path).suffix.lower()
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SourceError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if not data.strip():
        raise SourceError(f"{path}: the file is empty")
    if suffix == ".csv":
        return _csv_frame(path, data, encoding)
    if suffix in (".jsonl", ".json"):
        return _records_frame(_json_records(path, data, encoding))
    if suffix == ".parquet":
        try:  # through pyarrow: its errors name no polars keyword the recipe cannot set
            frame = pl.from_arrow(pq.read_table(io.BytesIO(data)))
        except (pa.ArrowException, pl.exceptions.PolarsError, OSError) as exc:
            raise SourceError(f"{path}: not a readable parquet file ({_first_line(exc)})") from exc
        return _numbered(frame)
    raise SourceError(f"{path}: unsupported file type {suffix!r}: use .csv, .jsonl, .json or .parquet")


def _decode(raw: bytes, encoding: str) -> tuple[str, str | None]:
    """The text, and why it is not valid ``encoding`` (None when it is)."""
    try:
        return raw.decode(encoding).removeprefix("\ufeff"), None
    except UnicodeDecodeError as exc:
        bad = raw[exc.start : exc.start + 1].hex()
        reason = (
            f"expected {encoding} text, found byte 0x{bad} at position {exc.start}; "
            f"set source.encoding if the file uses another encoding (e.g. latin-1)"
        )
        return raw.decode(encoding, errors="replace"), reason


def _json_records(path: str, data: bytes, encoding: str) -> list[dict[str, Any]]:
    if Path(path).suffix.lower() == ".json" and data.lstrip()[:1] == b"[":
        return _json_array(path, data, encoding)
    if Path(path).suffix.lower() == ".json" and data.strip().count(b"\n") and _one_object(data, encoding):
        raise SourceError(
            f"{path}: expected a JSON array of objects or one object per line, found one JSON object; "
            f"give the path of the file holding the rows (or convert it to JSONL)"
        )
    lines = [(number, raw) for number, raw in enumerate(data.splitlines(), start=1) if raw.strip()]
    fast = _all_at_once(lines, encoding)
    if fast is not None:
        return fast
    records = []
    for number, raw in lines:
        text, bad = _decode(raw, encoding)
        records.append({**_json_record(text, bad), ROW: number})
    return records


def _one_object(data: bytes, encoding: str) -> bool:
    """Is the whole file one (pretty-printed) JSON object, e.g. ``{"data": [...]}``?"""
    try:
        return isinstance(json.loads(data.decode(encoding)), dict)
    except ValueError:
        return False


def _all_at_once(lines: list[tuple[int, bytes]], encoding: str) -> list[dict[str, Any]] | None:
    """Every line decoded in one ``json.loads`` call (far cheaper than one call a line);
    None when any line is broken, so the caller reads line by line and finds which."""
    # Only when every line looks like one object, so a value can never straddle two lines.
    if not all(raw.strip().startswith(b"{") and raw.strip().endswith(b"}") for _, raw in lines):
        return None
    try:
        text = b",".join(raw for _, raw in lines).decode(encoding)
        values = json.loads(f"[{text}]")
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    if len(values) != len(lines):  # a line holding two values ("1, 2"): find it line by line
        return None
    if not all(isinstance(value, dict) for value in values):
        return None
    return [{**value, ROW: number} for (number, _), value in zip(lines, values, strict=True)]


def _json_record(text: str, bad: str | None) -> dict[str, Any]:
    if bad:
        return {ERROR: bad}
    try:
        record = json.loads(text)
    except ValueError as exc:
        return {ERROR: f"expected a JSON object, found invalid JSON ({exc.msg}): {preview(text)}"}
    if not isinstance(record, dict):
        return {ERROR: f"expected a JSON object, found a JSON {type(record).__name__}: {preview(text)}"}
    return record


def _json_array(path: str, data: bytes, encoding: str) -> list[dict[str, Any]]:
    """A ``.json`` file holding one array of objects: row N is the array's Nth element."""
    text, bad = _decode(data, encoding)
    if bad:
        raise SourceError(f"{path}: {bad}")
    try:
        values = json.loads(text)
    except ValueError as exc:
        raise SourceError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    return [
        {**value, ROW: number}
        if isinstance(value, dict)
        else {ERROR: f"expected a JSON object, found a JSON {type(value).__name__}", ROW: number}
        for number, value in enumerate(values, start=1)
    ]


def _csv_frame(path: str, data: bytes, encoding: str) -> pl.DataFrame:
    """CSV → a frame of text columns, built column-wise (no dict per row)."""
    text, bad = _decode(data, encoding)
    lines = data.splitlines(keepends=True) if bad else []
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[list[str]] = []
    errors: list[str | None] = []
    try:
        header = next(reader)
        _check_header(path, header)
        for fields in reader:
            if not fields:
                continue  # a blank line
            error = _csv_error(header, fields, reader.line_num, lines, encoding)
            rows.append(fields if error is None else [None] * len(header))  # type: ignore[list-item]
            errors.append(error)
    except csv.Error as exc:
        raise SourceError(f"{path}: line {reader.line_num}: not valid CSV ({exc})") from exc
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in header]
    series = [
        pl.Series(ROW, range(1, len(rows) + 1), dtype=pl.Int64),
        pl.Series(ERROR, errors, dtype=pl.String),
    ]
    series += [pl.Series(name, values, dtype=pl.String) for name, values in zip(header, columns, strict=True)]
    return pl.DataFrame(series)


def _csv_error(
    header: list[str], fields: list[str], line: int, lines: list[bytes], encoding: str
) -> str | None:
    """Why one CSV row cannot be read (bytes that do not decode, a field count off), or None."""
    if lines and "\ufffd" in "".join(fields):  # the file did not decode: find this row's bad bytes
        _, bad = _decode(lines[line - 1], encoding) if line <= len(lines) else ("", None)
        return f"line {line}: {bad or f'expected {encoding} text, found bytes that are not'}"
    if len(fields) != len(header):
        found = preview(",".join(fields))
        return f"line {line}: expected {len(header)} fields as in the header, found {len(fields)}: {found}"
    return None


def _check_header(path: str, header: list[str]) -> None:
    seen: set[str] = set()
    for number, name in enumerate(header, start=1):
        if not name.strip():
            raise SourceError(f"{path}: line 1: column {number} of the header has no name")
        if name in seen:
            raise SourceError(f"{path}: line 1: the header names column {name!r} twice")
        seen.add(name)


def _records_frame(records: list[dict[str, Any]]) -> pl.DataFrame:
    """Records → a frame; text columns are String, any other column keeps its Python values."""
    columns: dict[str, None] = {}
    for record in records:
        columns.update(dict.fromkeys(record))
    columns.pop(ROW, None)
    columns.pop(ERROR, None)
    series = [pl.Series(ROW, [r[ROW] for r in records], dtype=pl.Int64)]
    series.append(pl.Series(ERROR, [r.get(ERROR) for r in records], dtype=pl.String))
    for name in columns:
        values = [r.get(name) for r in records]
        text = all(v is None or isinstance(v, str) for v in values)
        series.append(pl.Series(name, values, dtype=pl.String if text else pl.Object))
    return pl.DataFrame(series)


def read_hf(name: str, split: str) -> pl.DataFrame:
    """``hf:<name>`` through ``datasets`` (offline from the local cache; see :func:`core.io.load_hf`)."""
    try:
        table = load_hf(name, split)
    except DatasetUnavailable as exc:
        raise SourceError(str(exc)) from exc
    return _numbered(pl.from_arrow(table))


def _numbered(frame: pl.DataFrame | pl.Series) -> pl.DataFrame:
    """A whole table as read: rows numbered from 1, none unreadable."""
    assert isinstance(frame, pl.DataFrame)
    return frame.with_row_index(ROW, offset=1).with_columns(
        pl.col(ROW).cast(pl.Int64), pl.lit(None, pl.String).alias(ERROR)
    )


def _first_line(exc: BaseException) -> str:
    text = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__
