"""Clusters too large for the driver: components by iterated min-label propagation, then each
group of whole clusters resolved on a worker by ``NearDedupe.resolve``.

Every row in a pair starts as its own label; each round, every row takes the smallest label among
itself and its neighbours (a join of the edges with the labels, then a group-by on the row), until
no label changes. A component ends labelled by its smallest row, as :func:`curation.minhash.clusters`
labels it; rounds grow with the longest chain of a component, not with the data.
"""

from __future__ import annotations

import polars as pl
import pyarrow as pa
import ray.data

from curation.near_dedupe import NearDedupe
from curation.ray_engine.cogroup import cogroup
from curation.ray_engine.frames import (
    DROP,
    REPORT,
    ROW,
    arrow,
    map_blocks,
    marked,
    polars,
    reports,
    sig_matrix,
)

LABEL = "_label"


def propagate_labels(edges: ray.data.Dataset, partitions: int, max_rounds: int = 10_000) -> ray.data.Dataset:
    """(``_row``, ``_label``) of every row in ``edges`` (columns ``a``, ``b``)."""
    both_ways = map_blocks(edges, _both_ways).materialize()
    labels = _min_by_row(map_blocks(both_ways, _self_labels)).materialize()
    for _ in range(max_rounds):
        offers = cogroup(both_ways, labels, ("u", ROW), partitions, _offer)
        updated = _min_by_row(offers.union(labels)).materialize()
        changed = cogroup(
            updated, labels.rename_columns({ROW: "_was", LABEL: "_old"}), (ROW, "_was"), partitions, _changed
        )
        if changed.count() == 0:
            return updated
        labels = updated
    raise RuntimeError(f"min-label propagation did not settle in {max_rounds} rounds")


def _offer(edges: pl.DataFrame, labels: pl.DataFrame) -> pl.DataFrame:
    """Each row's label, offered to its neighbours."""
    return edges.join(labels, left_on="u", right_on=ROW).select(pl.col("v").alias(ROW), LABEL)


def _changed(new: pl.DataFrame, old: pl.DataFrame) -> pl.DataFrame:
    joined = new.join(old, left_on=ROW, right_on="_was")
    return joined.filter(pl.col(LABEL) != pl.col("_old")).select(ROW)


def _both_ways(table: pa.Table) -> pa.Table:
    frame = polars(table)
    forward = frame.select(u=pl.col("a"), v=pl.col("b"))
    return arrow(pl.concat([forward, frame.select(u=pl.col("b"), v=pl.col("a"))]))


def _self_labels(table: pa.Table) -> pa.Table:
    return arrow(polars(table).select(pl.col("u").alias(ROW), pl.col("u").alias(LABEL)))


def _min_by_row(ds: ray.data.Dataset) -> ray.data.Dataset:
    return ds.groupby(ROW).min(LABEL).rename_columns({f"min({LABEL})": LABEL})


def resolve_on_workers(
    stage: NearDedupe,
    ds: ray.data.Dataset,
    signed: ray.data.Dataset,
    labels: ray.data.Dataset,
    partitions: int,
    num_perm: int,
) -> tuple[ray.data.Dataset, dict[str, int]]:
    """Marked blocks of ``ds`` and the summed ``resolve`` report; every shuffle keyed on row or label."""
    labels = labels.materialize()
    own = cogroup(ds.materialize(), labels, (ROW, ROW), partitions, _members).materialize()
    keyed = cogroup(signed, labels, (ROW, ROW), partitions, _members).materialize()

    def resolve(own: pl.DataFrame, keyed: pl.DataFrame) -> pl.DataFrame:
        keyed = keyed.sort(pl.col("_ref").not_(), ROW)  # reference rows first, as locally
        sigs = sig_matrix(keyed["_sig"].to_arrow(), num_perm)
        result = stage.resolve(
            own.sort(ROW).drop(LABEL),
            keyed.drop("_sig"),
            sigs,
            keyed[LABEL].to_numpy(),
            int(keyed["_ref"].sum()),
        )
        return polars(marked(result))

    marks = cogroup(own, keyed, (LABEL, LABEL), partitions, resolve).materialize()
    found = reports(marks)
    resolved = {key: sum(r[key] for r in found) for key in ("clusters", "label_conflicts")}
    return cogroup(ds, marks.drop_columns([REPORT]), (ROW, ROW), partitions, _replace), resolved


def _members(rows: pl.DataFrame, labels: pl.DataFrame) -> pl.DataFrame:
    return rows.join(labels, on=ROW)


def _replace(rows: pl.DataFrame, marks: pl.DataFrame) -> pl.DataFrame:
    """Rows of a part, member rows replaced by their resolved rows, in input order."""
    rest = rows.join(marks.select(ROW), on=ROW, how="anti").with_columns(
        [pl.lit(None, pl.String).alias(c) for c in DROP]
    )
    return pl.concat([rest, marks.select(rest.columns)], how="vertical_relaxed").sort(ROW)
