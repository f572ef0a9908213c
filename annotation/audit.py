"""Pick accepted items of a version for a human audit: a random sample or a filter."""

from __future__ import annotations

import polars as pl
import pyarrow as pa

from core.errors import OptionError
from core.schema import conform
from core.store import Version


def select_for_audit(
    version: Version, *, sample: int | None = None, where: str | None = None, seed: int = 0
) -> pa.Table:
    """Accepted items of ``version`` matching the SQL ``where`` clause (polars SQL over the
    item columns, e.g. ``domain = 'health' AND label_source = 'judge'``), then a seeded
    random ``sample`` of them."""
    if sample is None and where is None:
        raise OptionError("give --sample N or --where EXPR (or both)")
    if sample is not None and sample < 1:
        raise OptionError(f"--sample must be at least 1, got {sample}")
    items = version.frame()
    if where:
        try:
            items = items.sql(f"SELECT * FROM self WHERE {where}")
        except (pl.exceptions.PolarsError, ValueError) as exc:
            raise OptionError(f"--where {where!r}: {str(exc).splitlines()[0]}") from exc
    if sample is not None and items.height > sample:
        items = items.sample(n=sample, seed=seed, shuffle=True)
    return conform(items)
