"""The Ray engine: connect to (or start) Ray, run the curation stages over a Dataset, collect.

Progress is ours, one tick per stage as on the local engine; Ray Data's own bars are switched off
so a run shows one display. Stages that Ray does not know how to run are refused, not run locally:
a stage must say how its rows may be split before it can run on a cluster.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import ray
import ray.data
from ray.data import DataContext
from ray.data._internal.execution.backpressure_policy import (
    ENABLED_BACKPRESSURE_POLICIES,
    ENABLED_BACKPRESSURE_POLICIES_CONFIG_KEY,
    ResourceBudgetBackpressurePolicy,
)
from ray.data.context import ShuffleStrategy

import curation
from curation.ambiguity import RouteAmbiguous
from curation.decontam import Decontaminate
from curation.engine import EngineSpec, Items
from curation.exact import ExactDedupe
from curation.near_dedupe import NearDedupe
from curation.quality import QualityFilter
from curation.ray_engine.frames import (
    DROP,
    REPORT,
    ROW,
    Marks,
    arrow,
    collect,
    dropped_rows,
    kept_rows,
    map_blocks,
    polars,
    read_parquet,
    to_dataset,
)
from curation.ray_engine.near import near_dedupe
from curation.ray_engine.rowwise import decontaminate, exact_dedupe, merge_reports, rowwise
from curation.stage import Funnel, Stage, StageStart

Progress = Callable[[str, int], None]


@contextmanager
def ray_engine(spec: EngineSpec, progress: Progress | None = None) -> Iterator[RayEngine]:
    """A :class:`RayEngine` on ``spec.address`` (or ``RAY_ADDRESS``, or a local instance on all cores).

    A Ray already initialised in this process is used as it is and left running.
    """
    started = not ray.is_initialized()
    if started:
        address = spec.address or os.environ.get("RAY_ADDRESS")
        # A local instance runs this checkout's code; a real cluster has the package installed.
        env = {} if address else {"env_vars": {"PYTHONPATH": _pythonpath()}}
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
            runtime_env=env or None,
        )
    configure_data_context()
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    try:
        yield RayEngine(spec, spec.partitions or 2 * cpus, progress)
    finally:
        if started:
            ray.shutdown()


def configure_data_context() -> None:
    """The Ray Data settings every engine run uses (this process's current ``DataContext``)."""
    context = DataContext.get_current()
    context.enable_progress_bars = False
    # Ray Data warns once that its bars are off: they are off because ours are on.
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    # The sort-based shuffle: hash-shuffle actors cost seconds per shuffle to start (see cogroup).
    context.shuffle_strategy = ShuffleStrategy.SORT_SHUFFLE_PULL_BASED
    context.execution_options.preserve_order = True
    _without_budget_backpressure(context)


def _without_budget_backpressure(context: DataContext) -> None:
    """Ray Data's policies less the resource-budget one, which runs one task at a time per dataset.

    Every execution (each ``materialize`` or collect, ~15 per run) starts with a resource budget of
    zero until Ray Data's autoscaling coordinator first answers, and the budget is refreshed once a
    second: until then that policy admits one task at a time, so on this 2-CPU cluster every step
    ran its blocks one after another (measured: 8 tasks of 0.5 s took 3.2-4.8 s, 2.1 s without it).
    Each step here materializes whole blocks the next step reads, so the object store holds a
    dataset whichever policy runs; Ray core still schedules the tasks on the CPUs there are.
    """
    kept = [
        policy for policy in ENABLED_BACKPRESSURE_POLICIES if policy is not ResourceBudgetBackpressurePolicy
    ]
    context.set_config(ENABLED_BACKPRESSURE_POLICIES_CONFIG_KEY, kept)


def _pythonpath() -> str:
    root = str(Path(curation.__file__).resolve().parents[1])
    return os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)


@dataclass
class RayEngine:
    spec: EngineSpec
    partitions: int
    progress: Progress | None = None

    def run(
        self,
        items: Items,
        stages: list[Stage],
        funnel: Funnel,
        on_stage: StageStart | None = None,
        columns: Sequence[str] | None = None,
    ) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
        """See :class:`curation.engine.Engine`: a Parquet ``items`` is read on the workers, and only
        ``columns`` of the kept rows (all when None) and the dropped rows come to the driver."""
        if isinstance(items, pl.DataFrame):
            ds = to_dataset(
                items.with_row_index(ROW).with_columns(pl.col(ROW).cast(pl.Int64)), self.partitions
            )
            empty = items.clear()
        else:
            ds, empty = read_parquet(Path(items), self.partitions)
        ds = ds.materialize()
        entered, dropped = ds.count(), []
        rows = entered  # every _row of the run is below it
        for stage in stages:
            if on_stage:
                on_stage(stage.name, entered)
            if entered == 0:  # no rows to spread: the stage's own result (and report) on none
                result = stage(collect(ds, schema_of=empty).drop(ROW, strict=False))
                funnel.record(stage.name, 0, result)
                funnel.steps[-1]["engine"] = {"name": "ray", "partitions": self.partitions}
                empty = result.kept.clear()
                ds = to_dataset(result.kept.with_row_index(ROW).with_columns(pl.col(ROW).cast(pl.Int64)), 1)
                continue
            last = stage is stages[-1]
            ds, kept, gone, report = self._run_stage(stage, ds, rows, not last, columns if last else None)
            funnel.record_counts(stage.name, entered, kept, gone, report)
            funnel.steps[-1]["engine"] = {"name": "ray", "partitions": self.partitions}
            if gone.height:
                dropped.append(gone)
            if self.progress:
                self.progress(stage.name, entered)
            entered = kept
        if columns is not None:
            ds, empty = ds.select_columns([ROW, *columns]), empty.select(columns)
        return collect(ds, schema_of=empty).drop(ROW, strict=False), dropped

    def _run_stage(
        self,
        stage: Stage,
        ds: ray.data.Dataset,
        rows: int,
        materialize: bool,
        columns: Sequence[str] | None = None,
    ) -> tuple[ray.data.Dataset, int, pl.DataFrame, dict[str, Any]]:
        """The kept rows (materialized, or left lazy for the last stage, so that only the columns
        the caller asks for are ever built: ``columns``, all when None), their number, the dropped
        rows and the report."""
        out, report = self._stage(stage, ds, rows)
        if isinstance(out, Marks):
            assert report is not None  # a stage that decides on the driver reports there
            kept, gone = _apply_marks(ds, out, columns)
            return (kept.materialize() if materialize else kept), ds.count() - gone.height, gone, report
        out = out.materialize()
        # One pass brings back what the driver needs: the dropped rows and each block's report.
        back = collect(map_blocks(out, _dropped_or_reported))
        if report is None:
            notes = back[REPORT].drop_nulls().to_list() if back.height else []
            report = merge_reports(stage, [json.loads(n) for n in notes])
        gone = back.filter(pl.col("drop_stage").is_not_null()).drop(ROW, REPORT, strict=False)
        kept = map_blocks(out, _kept)
        # The stage's marked rows less its dropped ones: the row accounting checks the marked rows.
        return (kept.materialize() if materialize else kept), out.count() - gone.height, gone, report

    def _stage(
        self, stage: Stage, ds: ray.data.Dataset, rows: int
    ) -> tuple[ray.data.Dataset | Marks, dict[str, Any] | None]:
        if isinstance(stage, NearDedupe):
            return near_dedupe(stage, ds, rows, self.partitions, self.spec.edge_bound)
        if isinstance(stage, ExactDedupe):
            return exact_dedupe(stage, ds, self.partitions, self.spec.edge_bound)
        if isinstance(stage, Decontaminate):
            return decontaminate(stage, ds), None
        if isinstance(stage, QualityFilter | RouteAmbiguous):
            return rowwise(ds, stage), None
        raise TypeError(f"stage {stage.name!r} ({type(stage).__name__}) has no Ray implementation")


def _apply_marks(
    ds: ray.data.Dataset, marks: Marks, columns: Sequence[str] | None = None
) -> tuple[ray.data.Dataset, pl.DataFrame]:
    """The kept rows (lazy; only ``columns`` of them when given) and the dropped rows (whole) of a
    stage that decided on the driver. The projection comes first, so the kept rows' other columns
    (the texts) are never copied."""
    ref = ray.put(marks.table)
    if marks.whole_rows:
        gone = marks.table.filter(pl.col("drop_stage").is_not_null()).sort(ROW)
    else:
        gone = collect(map_blocks(ds, dropped_rows, marks=ref), schema_of=marks.table)
    source = ds if columns is None else ds.select_columns([ROW, *columns])
    kept = map_blocks(source, kept_rows, marks=ref, whole_rows=marks.whole_rows)
    return kept, gone.drop(ROW)


def _dropped_or_reported(table: pa.Table) -> pa.Table:
    frame = polars(table)
    if REPORT not in frame.columns:  # a stage that reports for the whole dataset, not per block
        frame = frame.with_columns(pl.lit(None, pl.String).alias(REPORT))
    return arrow(frame.filter(pl.col("drop_stage").is_not_null() | pl.col(REPORT).is_not_null()))


def _kept(table: pa.Table) -> pa.Table:
    frame = polars(table)
    return arrow(frame.filter(pl.col("drop_stage").is_null()).drop(*DROP, REPORT, strict=False))
