"""Blocks in and out: polars frames to Ray datasets and back, marked rows, signature columns.

Column contract of a *marked* block: the stage's input columns (``_row`` included) plus
``drop_stage``, ``drop_reason``, ``drop_detail`` (null on kept rows) and ``_report``: the stage's
report for that block as JSON on the block's first row, null elsewhere.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import ray
import ray.data

from curation.stage import StageResult

ROW = "_row"
REPORT = "_report"
DROP = ("drop_stage", "drop_reason", "drop_detail")

_CACHE: dict[str, Any] = {}  # per worker process: objects fetched once from the object store


def polars(table: pa.Table) -> pl.DataFrame:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def arrow(frame: pl.DataFrame) -> pa.Table:
    """Arrow without view types (large_string): what every Ray Data operator reads."""
    return frame.to_arrow(compat_level=pl.CompatLevel.oldest())


def to_dataset(frame: pl.DataFrame, partitions: int) -> ray.data.Dataset:
    """``frame`` in ``partitions`` blocks of consecutive rows."""
    size = max(1, math.ceil(frame.height / max(1, partitions)))
    tables = [arrow(frame.slice(start, size)) for start in range(0, frame.height, size)]
    return ray.data.from_arrow(tables or [arrow(frame)])


def read_parquet(path: Path, partitions: int) -> tuple[ray.data.Dataset, pl.DataFrame]:
    """The rows of a Parquet file in ``partitions`` blocks of consecutive rows, read on the workers
    (the file must be where every node sees it), numbered by ``_row``; and its empty frame.

    Each block is read by polars (``scan_parquet`` and a slice), so its types are what a local
    ``pl.read_parquet`` gives; the driver reads only the file's footer.
    """
    rows = pl.scan_parquet(path).select(pl.len()).collect().item()
    size = max(1, math.ceil(rows / max(1, partitions)))
    spans = [{"start": start, "length": size} for start in range(0, rows, size)] or [
        {"start": 0, "length": 0}
    ]
    spec = ray.data.from_items(spans, override_num_blocks=len(spans))
    empty = pl.read_parquet(path, n_rows=0)
    return map_blocks(spec, _read_span, path=str(path)), empty


def _read_span(table: pa.Table, path: str) -> pa.Table:
    frames = [
        pl.scan_parquet(path).slice(start, length).collect().with_row_index(ROW, offset=start)
        for start, length in zip(table["start"].to_pylist(), table["length"].to_pylist(), strict=True)
    ]
    frame = pl.concat(frames) if len(frames) > 1 else frames[0]
    return arrow(frame.with_columns(pl.col(ROW).cast(pl.Int64)))


def collect(ds: ray.data.Dataset, schema_of: pl.DataFrame | None = None) -> pl.DataFrame:
    """Every row of ``ds`` on the driver, in ``_row`` order."""
    frames = [polars(t) for t in ray.get(ds.to_arrow_refs())]
    full = [f for f in frames if f.height]
    if not full:
        return (schema_of if schema_of is not None else frames[0] if frames else pl.DataFrame()).clear()
    out = pl.concat(full, how="diagonal_relaxed") if len(full) > 1 else full[0]
    return out.sort(ROW) if ROW in out.columns else out


def shared(ref: ray.ObjectRef) -> Any:
    """The object behind ``ref``, fetched once per worker process (an index, a row set)."""
    key = ref.hex()
    if key not in _CACHE:
        _CACHE.clear()  # one broadcast object at a time is all a stage needs
        _CACHE[key] = ray.get(ref)
    return _CACHE[key]


def marked(result: StageResult) -> pa.Table:
    """A stage's result on one block as one marked block (see the module doc)."""
    kept = result.kept.with_columns([pl.lit(None, pl.String).alias(c) for c in DROP])
    out = pl.concat([kept, result.dropped], how="diagonal_relaxed") if result.dropped.height else kept
    note = json.dumps(result.report)
    first = pl.int_range(pl.len()) == 0
    return arrow(out.with_columns(pl.when(first).then(pl.lit(note)).otherwise(None).alias(REPORT)))


@dataclass
class Marks:
    """A stage's decisions as a driver table keyed by ``_row``, for the rows it changes only:
    ``_row`` and the drop columns, or (``whole_rows``) whole replacement rows with them, dropped
    and kept (a kept row may change, as a near-duplicate keeper flagged with a label conflict).
    Every row it does not name is kept as it is. Cheaper than marked blocks: the engine builds the
    kept blocks in one pass and never copies the unchanged rows twice."""

    table: pl.DataFrame
    whole_rows: bool = False

    @classmethod
    def none(cls) -> Marks:
        return cls(pl.DataFrame(schema={ROW: pl.Int64, **dict.fromkeys(DROP, pl.String)}))


def dropped_rows(table: pa.Table, marks: ray.ObjectRef) -> pa.Table:
    """The block's rows that ``marks`` (a :class:`Marks` table of drops) drops, with the drop columns."""
    drops = shared(marks).filter(pl.col("drop_stage").is_not_null())
    return arrow(polars(table).join(drops, on=ROW, how="inner", maintain_order="left"))


def kept_rows(table: pa.Table, marks: ray.ObjectRef, whole_rows: bool) -> pa.Table:
    """The block's rows that ``marks`` keeps (replaced when it has whole rows for them), in order."""
    frame, named = polars(table), shared(marks)
    rest = frame.join(named.select(ROW), on=ROW, how="anti", maintain_order="left")
    if not whole_rows:
        return arrow(rest)
    mine = named.filter(pl.col("drop_stage").is_null()).join(frame.select(ROW), on=ROW, how="semi")
    return arrow(pl.concat([rest, mine.select(rest.columns)], how="vertical_relaxed").sort(ROW))


def sig_column(sigs: np.ndarray) -> pa.Array:
    """(n, num_perm) uint32 signatures as one fixed-size binary value per row."""
    data = np.ascontiguousarray(sigs, dtype=np.uint32)
    width = data.shape[1] * 4
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), len(data), [None, pa.py_buffer(data)])


def sig_matrix(column: pa.ChunkedArray | pa.Array, num_perm: int) -> np.ndarray:
    """The inverse of :func:`sig_column` (a binary column from polars is accepted too)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not pa.types.is_fixed_size_binary(array.type):
        array = pc.cast(array, pa.binary(num_perm * 4))
    if len(array) == 0:
        return np.empty((0, num_perm), np.uint32)
    raw = np.frombuffer(array.buffers()[1], dtype=np.uint32)
    return raw[array.offset * num_perm : (array.offset + len(array)) * num_perm].reshape(-1, num_perm)


def map_blocks(ds: ray.data.Dataset, fn: Any, **kwargs: Any) -> ray.data.Dataset:
    """``fn`` on every whole block as a pyarrow table."""
    return ds.map_batches(fn, batch_format="pyarrow", batch_size=None, fn_kwargs=kwargs or None)


def reports(ds: ray.data.Dataset) -> list[dict[str, Any]]:
    """The per-block reports of a marked dataset."""
    notes = collect(map_blocks(ds, _report_rows))
    return [json.loads(n) for n in notes[REPORT].to_list()] if notes.height else []


def _report_rows(table: pa.Table) -> pa.Table:
    if REPORT not in table.column_names:
        return pa.table({ROW: pa.array([], pa.int64()), REPORT: pa.array([], pa.large_string())})
    return table.select([ROW, REPORT]).filter(pc.is_valid(table[REPORT]))
