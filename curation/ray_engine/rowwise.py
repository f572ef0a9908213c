"""Row-wise stages (filter, decontamination, routing) and exact dedupe on Ray Data.

A row-wise stage decides each row on that row alone, so the stage object itself runs on every
block (``map_batches``) and only its per-block reports are merged. Exact dedupe needs every row of
an id in one place: rows are shuffled on a hash of the id, and each part keeps, per id, the row
that came first in the input, which is what the local stage keeps.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import polars as pl
import pyarrow as pa
import ray
import ray.data

from curation.decontam import Decontaminate
from curation.exact import ExactDedupe
from curation.ray_engine.cogroup import by_part
from curation.ray_engine.frames import (
    DROP,
    REPORT,
    ROW,
    Marks,
    arrow,
    collect,
    map_blocks,
    marked,
    polars,
    shared,
)
from curation.shingles import TOKEN_SEED
from curation.stage import StageResult

StageCall = Callable[[pl.DataFrame], StageResult]
PART = "_part"


def rowwise(ds: ray.data.Dataset, call: StageCall) -> ray.data.Dataset:
    """``call`` on every block; marked blocks out."""

    def apply(table: pa.Table) -> pa.Table:
        return marked(call(polars(table)))

    return map_blocks(ds, apply)


def decontaminate(stage: Decontaminate, ds: ray.data.Dataset) -> ray.data.Dataset:
    """The benchmark indexes are built once on the driver and put in the object store once."""
    ref = ray.put(stage.build_indexes())
    shipped = dataclasses.replace(stage, progress=None, benchmarks={}, indexes=[])

    def call(frame: pl.DataFrame) -> StageResult:
        result = dataclasses.replace(shipped, indexes=shared(ref))(frame)
        for bench in result.report["benchmarks"]:
            bench["examples"] = [_placed(example, frame) for example in bench["examples"]]
        return result

    return rowwise(ds, call)


def _placed(example: dict[str, Any], frame: pl.DataFrame) -> dict[str, Any]:
    """An example with its input row, to merge blocks' examples in input order.

    Without an id column the stage names a row by its number, here its number in the block.
    """
    if "id" in frame.columns:
        row = int(frame.filter(pl.col("id").cast(pl.String) == example["id"])[ROW][0])
        return example | {ROW: row}
    row = int(frame[ROW][int(example["id"])])
    return example | {"id": str(row), ROW: row}


def exact_dedupe(
    stage: ExactDedupe, ds: ray.data.Dataset, partitions: int, bound: int
) -> tuple[Marks, dict[str, Any]]:
    """The stage itself on ``(_row, id)`` of every row in input order, and the drops it decides
    marked in the blocks where their rows live. Up to ``bound`` rows those two columns are
    gathered on the driver (no shuffle); beyond it they are shuffled on the id, and the stage
    runs on each part."""
    ids = ds.select_columns([ROW, "id"])
    if ds.count() <= bound:
        decided = marked(stage(collect(ids)))
        decided = polars(decided).filter(pl.col("drop_stage").is_not_null() | pl.col(REPORT).is_not_null())
    else:
        decided = _decided_in_parts(stage, ids, partitions)
    report = merge_reports(stage, [json.loads(n) for n in decided[REPORT].drop_nulls().to_list()])
    return Marks(decided.filter(pl.col("drop_stage").is_not_null()).select(ROW, *DROP)), report


def _decided_in_parts(stage: ExactDedupe, ids: ray.data.Dataset, partitions: int) -> pl.DataFrame:
    """The dropped and reporting rows of the stage run on every part of a shuffle on the id."""

    def tag(table: pa.Table) -> pa.Table:
        frame = polars(table)
        return arrow(frame.with_columns((pl.col("id").hash(TOKEN_SEED) % partitions).alias(PART)))

    def part(table: pa.Table) -> pa.Table:
        out = polars(marked(stage(polars(table).drop(PART).sort(ROW))))
        return arrow(out.filter(pl.col("drop_stage").is_not_null() | pl.col(REPORT).is_not_null()))

    parts = by_part(map_blocks(ids, tag), partitions, part)
    empty = pl.DataFrame(schema={ROW: pl.Int64, "id": pl.String, **dict.fromkeys([*DROP, REPORT], pl.String)})
    return collect(parts, schema_of=empty)


def merge_reports(stage: Any, reports: list[dict[str, Any]]) -> dict[str, Any]:
    """One report from the per-block reports of a row-wise stage, as the local stage gives it."""
    if not reports:
        return {}
    if isinstance(stage, Decontaminate):
        limit = stage.config.examples
        return {
            "benchmarks": [
                _merge_benchmark(parts, limit)
                for parts in zip(*(r["benchmarks"] for r in reports), strict=True)
            ]
        }
    if stage.name == "route":
        reasons: Counter[str] = Counter()
        for report in reports:
            reasons.update(report["reasons"])
        return reports[0] | {
            "routed": sum(r["routed"] for r in reports),
            "reasons": dict(sorted(reasons.items())),
        }
    return reports[0]


def _merge_benchmark(parts: tuple[dict[str, Any], ...], limit: int) -> dict[str, Any]:
    # Reports are merged in input order, so the first examples of the blocks are the first examples.
    return parts[0] | {
        "checked": sum(p["checked"] for p in parts),
        "removed": sum(p["removed"] for p in parts),
        "examples": [
            {k: v for k, v in e.items() if k != ROW}
            for e in sorted((e for p in parts for e in p["examples"]), key=lambda e: e[ROW])[:limit]
        ],
    }
