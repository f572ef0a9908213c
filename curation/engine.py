"""Where the curation stages run: in this process (``local``) or on a Ray cluster (``ray``).

An engine runs the same stage objects (one implementation of each stage's logic); it only
decides where the rows are. The choice comes from, in order: the command line (``--engine``),
``TRAITDOSE_ENGINE``, the recipe's ``curation: {engine: ...}``, else ``local``. Both engines
give the same kept rows in the same order, the same dropped rows with the same drop details and
the same funnel figures; the Ray engine adds ``engine`` (name, partitions) to each funnel step.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, get_args

import polars as pl

from curation.stage import Funnel, Stage, StageStart, run_stages

EngineName = Literal["local", "ray"]
ENGINE_ENV = "TRAITDOSE_ENGINE"
ENGINES: tuple[str, ...] = get_args(EngineName)
# What the Ray driver may hold: verified near-duplicate pairs to find clusters, rows' (row, id)
# for exact dedupe and (row, rank) for near dedupe's bucket leaders. Beyond it, all of that is
# done on the cluster (clusters by iterated min-label propagation, shuffles on id).
EDGE_BOUND = 2_000_000
# The rows a run curates: a table, or a Parquet file that the engine reads where it runs (on Ray,
# on the workers, so the driver never holds the input).
Items = pl.DataFrame | Path


@dataclass(frozen=True)
class EngineSpec:
    name: EngineName = "local"
    address: str | None = None  # a Ray cluster; None: RAY_ADDRESS, else a local instance on all cores
    partitions: int | None = None  # blocks per dataset; None: two per CPU of the cluster
    edge_bound: int = EDGE_BOUND

    def meta(self, partitions: int | None = None) -> dict[str, Any]:
        """What the manifest records: the engine, and on Ray the partitions it used."""
        return {"name": self.name} | ({"partitions": partitions} if partitions else {})


def choose_engine(cli: str | None = None, recipe: str | None = None) -> EngineName:
    """``--engine``, else ``TRAITDOSE_ENGINE``, else the recipe's ``curation.engine``, else local."""
    for origin, value in (("--engine", cli), (ENGINE_ENV, os.environ.get(ENGINE_ENV)), ("engine:", recipe)):
        if value:
            if value not in ENGINES:
                raise ValueError(f"{origin} {value!r}: the engine is one of {', '.join(ENGINES)}")
            return value  # type: ignore[return-value]
    return "local"


class Engine(Protocol):
    spec: EngineSpec

    @property
    def partitions(self) -> int | None: ...

    def run(
        self,
        items: Items,
        stages: list[Stage],
        funnel: Funnel,
        on_stage: StageStart | None = None,
        columns: Sequence[str] | None = None,
    ) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
        """Kept rows (input order; only ``columns`` of them when given) and the dropped rows of each
        stage that dropped any; ``on_stage(name, rows)`` when each stage starts."""
        ...


@dataclass
class LocalEngine:
    spec: EngineSpec = EngineSpec()

    @property
    def partitions(self) -> int | None:
        return None

    def run(
        self,
        items: Items,
        stages: list[Stage],
        funnel: Funnel,
        on_stage: StageStart | None = None,
        columns: Sequence[str] | None = None,
    ) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
        table = items if isinstance(items, pl.DataFrame) else pl.read_parquet(items)
        kept, dropped = run_stages(table, stages, funnel, on_stage)
        return (kept if columns is None else kept.select(columns)), dropped


@contextmanager
def open_engine(spec: EngineSpec, progress: Callable[[str, int], None] | None = None) -> Iterator[Engine]:
    """The engine ``spec`` names; a Ray instance this starts is shut down on exit.

    ``progress(stage, n)``: the Ray engine ticks once per stage (the local stages tick themselves).
    """
    if spec.name == "local":
        yield LocalEngine(spec)
        return
    try:
        from curation.ray_engine.session import ray_engine  # Ray is an extra: import it only here
    except ModuleNotFoundError as exc:
        if exc.name != "ray":
            raise
        raise ModuleNotFoundError("--engine ray needs Ray: pip install 'traitdose[ray]'", name="ray") from exc
    with ray_engine(spec, progress) as engine:
        yield engine
