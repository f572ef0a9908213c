"""Exact deduplication on the stable item id (normalized prompt + domain + trait)."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from curation.stage import StageResult, drop_rows


@dataclass
class ExactDedupe:
    """Keep the first row of each id (input order is deterministic), drop the rest."""

    name: str = "exact_dedupe"

    def __call__(self, items: pl.DataFrame) -> StageResult:
        first = pl.int_range(pl.len()).over("id") == 0
        return drop_rows(
            items,
            ~first,
            self.name,
            "exact_duplicate",
            pl.format('{{"kept_id": "{}"}}', pl.col("id")),
        )
