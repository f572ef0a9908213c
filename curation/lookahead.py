"""Run row-wise stages' heavy parts ahead, on the other core, while earlier stages run.

Near-dedupe must see every row at once, but decontamination and routing decide each row alone
(:class:`curation.stage.RowwiseStage`). So while near-dedupe runs, their ``prepare`` can already
run in a background thread on near-dedupe's *input*: the rows they will get are a subset of those,
and what ``prepare`` finds for a row depends on that row alone. When the stage's turn comes,
``finish`` gets the prepared rows picked out by id. The output is the same as running the stages
one after another; the two cores are busy at once (polars and numpy release the GIL).

The row-wise stages right after a stage ``i`` that is not row-wise are prepared on its input, in
one background thread, while it runs (earlier, they would compete with the filter for the cores
and hold more memory at once), and only when

- that input's ids are unique, so each row a stage gets can be found in it by id, and
- no stage from ``i`` up to the prepared one edits text (``edits_text``, e.g. a filter that
  redacts PII), so ``prepare`` reads what it would have read in its turn.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType

import polars as pl

from curation.stage import Prepared, Stage, StageResult


def is_rowwise(stage: Stage) -> bool:
    return callable(getattr(stage, "prepare", None)) and callable(getattr(stage, "finish", None))


def edits_text(stage: Stage) -> bool:
    """Unknown stages are assumed to: only a stage that says it keeps text is looked past."""
    return bool(getattr(stage, "edits_text", True))


class Lookahead:
    """The background ``prepare`` calls of one :func:`curation.stage.run_stages` pass."""

    def __init__(self, stages: list[Stage]):
        self.stages = stages
        self.pending: dict[int, tuple[pl.DataFrame, Future[Prepared]]] = {}
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="lookahead")

    def __enter__(self) -> Lookahead:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        # On an error, work not started is dropped; one already running is waited for (threads
        # cannot be killed) and its result, or its own error, is discarded with it.
        self.pool.shutdown(wait=True, cancel_futures=True)

    def start(self, i: int, items: pl.DataFrame) -> None:
        """Prepare, on ``items`` (the input of stage ``i``), the row-wise stages after ``i`` that may."""
        if is_rowwise(self.stages[i]):
            return
        wanted = []
        for j in range(i + 1, len(self.stages)):
            if edits_text(self.stages[j - 1]) or not is_rowwise(self.stages[j]):
                break
            wanted.append(j)
        if not wanted or "id" not in items.columns or items["id"].n_unique() != items.height:
            return
        for j in wanted:
            self.pending[j] = (items, self.pool.submit(self.stages[j].prepare, items))  # type: ignore[attr-defined]

    def run(self, i: int, items: pl.DataFrame) -> StageResult:
        """Stage ``i`` on ``items``: finished from its prepared rows when it was prepared ahead."""
        stage = self.stages[i]
        if i not in self.pending:
            return stage(items)
        read, prepared = self.pending.pop(i)
        return stage.finish(items, prepared.result().take(positions(read, items)))  # type: ignore[attr-defined]


def positions(read: pl.DataFrame, items: pl.DataFrame) -> pl.Series:
    """Where each row of ``items`` sits in ``read`` (whose ids are unique), by id."""
    where = items.select("id").join(
        read.select("id").with_row_index("_at"), on="id", how="left", maintain_order="left"
    )["_at"]
    if where.null_count():
        missing = items.filter(where.is_null())["id"][0]
        raise RuntimeError(f"row {missing!r} was not among the rows prepared ahead: a stage added rows")
    return where
