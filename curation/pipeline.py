"""The curation stages a :class:`CurationConfig` asks for, in the order DESIGN.md gives:
filter → exact dedupe → near dedupe → decontaminate → route."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from curation.ambiguity import RouteAmbiguous
from curation.config import CurationConfig
from curation.decontam import Decontaminate
from curation.exact import ExactDedupe
from curation.near_dedupe import NearDedupe
from curation.quality import QualityFilter
from curation.stage import Stage

Tick = Callable[[str, int], None]  # (stage, items just processed)


def curation_stages(
    config: CurationConfig,
    *,
    reference: pl.DataFrame | None = None,
    reference_name: str = "reference",
    tick: Tick | None = None,
) -> list[Stage]:
    """``reference``: items of earlier versions that near-dedupe must not re-add."""
    progress = tick or (lambda stage, n: None)
    stages: list[Stage] = []
    if config.filter.enabled:
        stages.append(QualityFilter(config.filter))
    stages.append(ExactDedupe())
    if config.dedupe.enabled:
        stages.append(
            NearDedupe(
                config.dedupe,
                reference=reference,
                reference_name=reference_name,
                progress=lambda n: progress("near-dedupe", n),
            )
        )
    if config.decontam.benchmarks:
        stages.append(Decontaminate(config.decontam, progress=lambda n: progress("decontaminating", n)))
    if config.route.enabled:
        stages.append(RouteAmbiguous(config.route))
    return stages
