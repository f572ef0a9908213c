"""A join as one shuffle: both sides hashed on their key into the same parts, joined in each part.

Ray Data's own ``Dataset.join`` starts hash-shuffle actors for every call (~15 s on a busy
2-core machine, per join); a sort-based shuffle on a part number, cut at the part boundaries
(``by_part``, also the bucket and exact-dedupe shuffles), costs a fraction of that and scales the
same way. Both sides travel as one dataset: the union of their columns,
the other side's columns null, and ``_side`` saying which side a row came from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import polars as pl
import pyarrow as pa
import ray.data

from curation.ray_engine.frames import arrow, map_blocks, polars

PART, SIDE = "_part", "_side"
PartJoin = Callable[[pl.DataFrame, pl.DataFrame], pl.DataFrame]


def cogroup(
    left: ray.data.Dataset,
    right: ray.data.Dataset,
    keys: tuple[str, str],
    parts: int,
    fn: PartJoin,
) -> ray.data.Dataset:
    """``fn(left_rows, right_rows)`` on every part; rows meet when ``left[keys[0]] == right[keys[1]]``.

    Keys are integers. Column names other than the keys must differ between the two sides.
    """
    left_schema, right_schema = left.schema().base_schema, right.schema().base_schema
    columns = [*left_schema, *(f for f in right_schema if f.name not in left_schema.names)]
    schema = pa.schema([pa.field(PART, pa.int64()), pa.field(SIDE, pa.int8()), *columns])
    tagged = map_blocks(left, _tag, key=keys[0], side=0, parts=parts, schema=schema).union(
        map_blocks(right, _tag, key=keys[1], side=1, parts=parts, schema=schema)
    )

    def run(table: pa.Table) -> pa.Table:
        frame = polars(table)
        sides = [frame.filter(pl.col(SIDE) == s).drop(PART, SIDE) for s in (0, 1)]
        return arrow(fn(sides[0].select(left_schema.names), sides[1].select(right_schema.names)))

    return by_part(tagged, parts, run)


def by_part(tagged: ray.data.Dataset, parts: int, fn: Callable[[pa.Table], pa.Table]) -> ray.data.Dataset:
    """``fn`` on blocks of whole parts of ``tagged`` (an integer ``_part`` column in ``[0, parts)``).

    What ``groupby(PART).map_groups(fn)`` gives when each part is a group, in one sort whose cuts
    are the part boundaries: no sampling pass to choose them (which, on few distinct values, left
    some parts doubled and others empty), and each part in a block of its own.
    """

    def whole_parts(table: pa.Table) -> Iterator[pa.Table]:
        if table.num_rows:  # an empty part is no group: ``fn`` is not called, as map_groups does
            yield fn(table)

    return map_blocks(tagged.sort(PART, boundaries=list(range(1, parts))), whole_parts)


def _tag(table: pa.Table, key: str, side: int, parts: int, schema: pa.Schema) -> pa.Table:
    part = (table[key].to_numpy(zero_copy_only=False).astype(np.int64) % parts).astype(np.int64)
    columns = {
        PART: pa.array(part),
        SIDE: pa.array(np.full(len(table), side, np.int8)),
    }
    for field in schema:
        if field.name in (PART, SIDE):
            continue
        if field.name in table.column_names:
            columns[field.name] = table[field.name].cast(field.type)
        else:
            columns[field.name] = pa.nulls(len(table), field.type)
    return pa.table(columns, schema=schema)
