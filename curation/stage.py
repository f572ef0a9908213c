"""One small step: a function from a table of items to kept items plus dropped items.

Modelled on datatrove's filters: a stage never deletes a row silently. Every row that
leaves carries ``drop_stage``, ``drop_reason`` and a JSON ``drop_detail`` so a user can
see why, and the runner checks that rows in = rows kept + rows dropped.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import polars as pl


@dataclass
class StageResult:
    kept: pl.DataFrame
    dropped: pl.DataFrame  # kept's columns + drop_stage, drop_reason, drop_detail
    report: dict[str, Any] = field(default_factory=dict)  # stage-specific figures for the manifest


class Stage(Protocol):
    name: str

    def __call__(self, items: pl.DataFrame) -> StageResult: ...


StageStart = Callable[[str, int | None], None]  # (stage name, rows it gets)


class RowAccountingError(RuntimeError):
    """A stage lost or invented rows: in != kept + dropped."""


def drop_rows(
    items: pl.DataFrame,
    mask: pl.Expr | pl.Series,
    stage: str,
    reason: str | pl.Expr,
    detail: str | pl.Expr = "{}",
) -> StageResult:
    """Split ``items`` on ``mask`` (True = drop), labelling dropped rows."""
    flagged = items.with_columns(_drop=mask)
    kept = flagged.filter(~pl.col("_drop")).drop("_drop")
    dropped = (
        flagged.filter(pl.col("_drop"))
        .drop("_drop")
        .with_columns(
            drop_stage=pl.lit(stage),
            drop_reason=reason if isinstance(reason, pl.Expr) else pl.lit(reason),
            drop_detail=detail if isinstance(detail, pl.Expr) else pl.lit(detail),
        )
    )
    return StageResult(kept, dropped)


def detail(**values: Any) -> str:
    return json.dumps(values, sort_keys=True)


def no_drops(items: pl.DataFrame) -> pl.DataFrame:
    return items.clear().with_columns(
        drop_stage=pl.lit(None, pl.String),
        drop_reason=pl.lit(None, pl.String),
        drop_detail=pl.lit(None, pl.String),
    )


@dataclass
class Funnel:
    """Items in and out of every stage, with drop reasons: the run's audit trail."""

    steps: list[dict[str, Any]] = field(default_factory=list)

    def record(self, stage: str, entered: int, result: StageResult) -> None:
        self.record_counts(stage, entered, result.kept.height, result.dropped, result.report)

    def record_counts(
        self, stage: str, entered: int, kept: int, dropped_rows: pl.DataFrame, report: dict[str, Any]
    ) -> None:
        """:meth:`record` for an engine that holds the kept rows elsewhere and knows only their count."""
        dropped = dropped_rows.height
        if entered != kept + dropped:
            raise RowAccountingError(
                f"stage {stage!r}: {entered} rows in, {kept} kept + {dropped} dropped = {kept + dropped}"
            )
        reasons = Counter(dropped_rows["drop_reason"].to_list()) if dropped else Counter()
        step: dict[str, Any] = {
            "stage": stage,
            "in": entered,
            "out": kept,
            "dropped": dict(sorted(reasons.items())),
        }
        if report:
            step["report"] = report
        self.steps.append(step)

    def add(
        self,
        stage: str,
        entered: int,
        out: int,
        dropped: dict[str, int] | None = None,
        **extra: Any,
    ) -> None:
        """Record a step that is not a table stage (a source, quarantine, routing)."""
        self.steps.append({"stage": stage, "in": entered, "out": out, "dropped": dropped or {}, **extra})


def run_stages(
    items: pl.DataFrame, stages: list[Stage], funnel: Funnel, on_stage: StageStart | None = None
) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    """Apply ``stages`` in order, recording each in ``funnel``; return kept and dropped tables.
    ``on_stage(name, rows)`` is told when each stage starts (one progress bar per stage)."""
    dropped: list[pl.DataFrame] = []
    for stage in stages:
        entered = items.height
        if on_stage:
            on_stage(stage.name, entered)
        result = stage(items)
        funnel.record(stage.name, entered, result)
        items = result.kept
        if result.dropped.height:
            dropped.append(result.dropped)
    return items, dropped
