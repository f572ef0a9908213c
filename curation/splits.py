"""Deterministic, grouped train/test splits.

Items of one group (a source question, a template's fact) never straddle splits, so a
test item cannot be a reworded train item. Groups are ordered by a seeded hash and the
first ones fill the test split up to ``test_fraction`` of the rows.
"""

from __future__ import annotations

import polars as pl
import xxhash


def assign_splits(
    items: pl.DataFrame, test_fraction: float, seed: int, group: pl.Expr | None = None
) -> pl.DataFrame:
    """Return ``items`` with ``split`` set to ``train`` or ``test``."""
    if not 0 <= test_fraction < 1:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    if items.height == 0:
        return items.with_columns(split=pl.lit(None, pl.String))
    key = group if group is not None else pl.col("provenance").struct.field("group").fill_null(pl.col("id"))
    sizes = (
        items.select(_group=key)
        .group_by("_group")
        .len()
        .with_columns(
            _order=pl.col("_group").map_elements(
                lambda g: xxhash.xxh64_intdigest(f"{seed}:{g}".encode()), pl.UInt64
            )
        )
        .sort("_order", "_group")
        .with_columns(_before=pl.col("len").cum_sum() - pl.col("len"))
    )
    budget = test_fraction * items.height
    # A group joins test while test is under budget, but never the group that would leave train empty.
    fills = (pl.col("_before") < budget) & (pl.col("_before") + pl.col("len") < items.height)
    test_groups = sizes.filter(fills)["_group"] if budget > 0 else pl.Series([], dtype=pl.String)
    return items.with_columns(
        split=pl.when(key.is_in(test_groups.implode())).then(pl.lit("test")).otherwise(pl.lit("train"))
    )
