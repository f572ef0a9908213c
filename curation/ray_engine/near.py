"""Near dedupe on Ray Data: the local stage's steps, each where its data is.

1. signatures on the workers, one block at a time (``_keyed`` + ``MinHashScheme.signatures``);
2. LSH: every (band, bucket key) of every row, shuffled on the bucket key, so each bucket is whole
   in one part; the part pairs members with their bucket leader (``_band_pairs``, ``_priority``);
3. candidate pairs verified on the workers: under the edge bound, the signed rows of their ends
   are gathered once (the driver resolves from them in step 5) and broadcast to the pair blocks;
   beyond it, the pairs are joined with both rows' signatures by two shuffles;
4. clusters: connected components of verified pairs (``clusters``) on the driver while the pairs
   are under the engine's edge bound, else by min-label propagation on the cluster (``components``);
5. keepers, drop details and label conflicts: ``NearDedupe.resolve`` on the members of
   non-trivial clusters only (on the driver under the bound, else per group of whole clusters on
   the workers), and their rows replaced in the blocks where they live.

Only pairs, the signed rows of their ends, labels and cluster members reach the driver, and only
under the bound.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import ray
import ray.data

from curation.minhash import EMPTY, LSHIndex, _band_keys, _band_pairs, clusters, jaccard_estimate
from curation.near_dedupe import NearDedupe, _keyed, _priority
from curation.ray_engine.cogroup import by_part, cogroup
from curation.ray_engine.components import propagate_labels, resolve_on_workers
from curation.ray_engine.frames import (
    REPORT,
    ROW,
    Marks,
    arrow,
    collect,
    map_blocks,
    marked,
    polars,
    shared,
    sig_column,
    sig_matrix,
    to_dataset,
)
from curation.text import field_columns, texts

KEYED = ("_key", "_ref", "_confidence", "_label_rank")
PAIR_SCHEMA = pa.schema([("a", pa.int64()), ("b", pa.int64())])


def near_dedupe(
    stage: NearDedupe, ds: ray.data.Dataset, n: int, partitions: int, edge_bound: int
) -> tuple[ray.data.Dataset | Marks, dict[str, Any]]:
    """The stage's drops and conflict flags (marked blocks beyond the edge bound, else
    :class:`Marks`) and the stage's report.

    ``n``: every ``_row`` of ``ds`` is below it (reference rows are numbered from it).
    """
    shipped = dataclasses.replace(stage, reference=None, progress=None)
    scheme, config = stage.scheme, stage.config
    index = LSHIndex(scheme, config.threshold)  # for its (bands, rows) only
    reference = stage.reference
    n_ref = 0 if reference is None else reference.height
    signed = map_blocks(ds, _sign, stage=shipped, reference=False)
    if n_ref:
        assert reference is not None
        ref_rows = reference.with_columns(pl.int_range(n, n + n_ref, dtype=pl.Int64).alias(ROW))
        signed = signed.union(
            map_blocks(to_dataset(ref_rows, partitions), _sign, stage=shipped, reference=True)
        )
    signed = signed.materialize()

    narrow = n + n_ref < 2**31
    ranks = _ranks(signed, n + n_ref, narrow) if n + n_ref <= edge_bound else None
    entries = map_blocks(
        signed,
        _entries,
        bands=index.bands,
        rows=index.rows,
        parts=partitions,
        ranks=ranks,
        narrow=narrow,
    )
    candidates = by_part(entries, partitions, _bucket_pairs)  # whole parts, hence whole buckets
    candidates = candidates.materialize()
    no_clusters = shipped.report(index, {"clusters": 0, "label_conflicts": 0}, n_ref)
    unchanged = Marks.none(), no_clusters
    if candidates.count() == 0:
        return unchanged
    members = None  # the signed rows the driver resolves, when it has them already
    if candidates.count() <= edge_bound:
        members = _gathered(signed, candidates)
        sigs = ray.put(members.select(ROW, "_sig"))
        edges = collect(
            map_blocks(candidates, _similar, sigs=sigs, threshold=config.threshold, num_perm=scheme.num_perm)
        )
    else:
        signatures = signed.select_columns([ROW, "_sig"])
        verified = _verify(
            candidates, signatures, partitions, config.threshold, scheme.num_perm
        ).materialize()
        if verified.count() > edge_bound:
            labels = propagate_labels(verified, partitions)
            out, resolved = resolve_on_workers(shipped, ds, signed, labels, partitions, scheme.num_perm)
            return out, shipped.report(index, resolved, n_ref)
        edges = collect(verified)
    if edges.height == 0:
        return unchanged
    labels = _driver_labels(edges)
    if members is None:
        members = collect(map_blocks(signed, _members, labels=ray.put(labels.select(ROW))))
    result = _resolve(shipped, ds, members, labels, scheme.num_perm)
    marks = polars(marked(result).drop([REPORT]))
    return Marks(marks, whole_rows=True), shipped.report(index, result.report, n_ref)


def _sign(table: pa.Table, stage: NearDedupe, reference: bool) -> pa.Table:
    frame = polars(table)
    keyed = _keyed(frame, reference, field_columns(stage.config.field))
    if "id" not in frame.columns:  # no id: a row is named by its number in the input, as locally
        keyed = keyed.with_columns(_key=frame[ROW].cast(pl.String))
    sigs = stage.scheme.signatures(texts(keyed, stage.config.field))
    out = arrow(keyed.select(*KEYED).with_columns(frame[ROW]))
    return out.append_column("_sig", sig_column(sigs))


def _ranks(signed: ray.data.Dataset, rows: int, narrow: bool) -> ray.ObjectRef:
    """Every row's rank under the keep policy (``_priority``), indexed by ``_row`` (``rows`` of
    them), in the object store: the bucket shuffle then moves integers, not the ids and scores the
    policy reads, and a block looks its rows' ranks up by position, with no join."""
    keyed = collect(signed.select_columns([ROW, *KEYED]))
    rank = np.zeros(rows, np.int32 if narrow else np.int64)
    rank[keyed[ROW].to_numpy()] = _priority(keyed)
    return ray.put(rank)


def _entries(
    table: pa.Table, bands: int, rows: int, parts: int, ranks: ray.ObjectRef | None, narrow: bool
) -> pa.Table:
    """One row per (row, band) of every row with a signature: its bucket key and its part, with the
    row's rank (``ranks``) or else the columns that rank it.

    The bucket shuffle moves ``bands`` rows per input row, so every column is as narrow as its
    values allow (``narrow``: every ``_row``, hence every rank, fits in 32 bits), and the block is
    built from numpy arrays in one go (a frame per band, concatenated, cost twice the keys)."""
    sigs = sig_matrix(table["_sig"], table["_sig"].type.byte_width // 4)
    keep = np.flatnonzero(~(sigs == EMPTY).all(axis=1))
    sigs = sigs[keep]
    keys = np.concatenate([_band_keys(sigs, band, rows) for band in range(bands)] or [np.empty(0, np.uint64)])
    row = table[ROW].to_numpy()[keep]
    columns: dict[str, Any] = {}
    if ranks is None:
        at = np.tile(np.arange(len(keep)), bands)
        base = polars(table.drop(["_sig"]).take(pa.array(keep))).select(ROW, *KEYED)[at]
        columns = {c: base[c].to_arrow() for c in base.columns}
    else:
        width = np.int32 if narrow else np.int64
        columns = {ROW: np.tile(row.astype(width), bands), "_rank": np.tile(shared(ranks)[row], bands)}
    columns |= {
        "_band": np.repeat(np.arange(bands, dtype=np.int16), len(keep)),
        "_bucket": keys,
        "_part": (keys % np.uint64(parts)).astype(np.int32),
    }
    return pa.table(columns)


def _bucket_pairs(table: pa.Table) -> pa.Table:
    """(leader, member) of every bucket in this block of whole parts: the local leader rule."""
    if table.num_rows == 0:
        return PAIR_SCHEMA.empty_table()
    if "_rank" in table.column_names:
        rank = table["_rank"].to_numpy()
    else:
        rank = _priority(polars(table.select(list(KEYED))))
    rows, band, keys = (table[c].to_numpy() for c in (ROW, "_band", "_bucket"))
    found = []
    for b in np.unique(band):
        at = np.flatnonzero(band == b)
        found.append(rows[at][_band_pairs(keys[at], rank[at], np.ones(len(at), bool))])
    pairs = np.unique(np.concatenate(found), axis=0)
    return pa.table(
        {"a": pairs[:, 0].astype(np.int64), "b": pairs[:, 1].astype(np.int64)}, schema=PAIR_SCHEMA
    )


def _gathered(signed: ray.data.Dataset, candidates: ray.data.Dataset) -> pl.DataFrame:
    """The signed rows (ranking columns and signature) of every row in a candidate pair, on the
    driver: under the edge bound they are few, and both the verification and ``resolve`` read them,
    so one pass over the signatures replaces the two shuffles of a join on each end of a pair."""
    ends = collect(candidates)
    rows = pl.concat([ends["a"], ends["b"]]).unique().alias(ROW).to_frame()
    return collect(map_blocks(signed, _members, labels=ray.put(rows)))


def _similar(table: pa.Table, sigs: ray.ObjectRef, threshold: float, num_perm: int) -> pa.Table:
    """The candidate pairs of a block at or above ``threshold``, each end's signature read from the
    broadcast ``sigs`` (``_row``, ``_sig``): the pairs are verified on the workers, with no shuffle."""
    found = shared(sigs)
    rows, matrix = found[ROW].to_numpy(), sig_matrix(found["_sig"].to_arrow(), num_perm)
    order = np.argsort(rows)
    a, b = (order[np.searchsorted(rows, table[end].to_numpy(), sorter=order)] for end in ("a", "b"))
    keep = jaccard_estimate(matrix[a], matrix[b]) >= threshold
    return table.filter(pa.array(keep))


def _verify(
    candidates: ray.data.Dataset, signed: ray.data.Dataset, partitions: int, threshold: float, num_perm: int
) -> ray.data.Dataset:
    """Candidate pairs meet the signature of ``a``, then of ``b``; those at or above ``threshold`` stay."""
    sigs = signed.materialize()

    def with_a(pairs: pl.DataFrame, rows: pl.DataFrame) -> pl.DataFrame:
        return pairs.join(rows.rename({ROW: "a", "_sig": "_sig_a"}), on="a")

    def similar(pairs: pl.DataFrame, rows: pl.DataFrame) -> pl.DataFrame:
        pairs = pairs.join(rows.rename({ROW: "b"}), on="b")
        a = sig_matrix(pairs["_sig_a"].to_arrow(), num_perm)
        b = sig_matrix(pairs["_sig"].to_arrow(), num_perm)
        return pairs.select("a", "b").filter(pl.Series(jaccard_estimate(a, b) >= threshold))

    half = cogroup(candidates.materialize(), sigs, ("a", ROW), partitions, with_a).materialize()
    return cogroup(half, sigs, ("b", ROW), partitions, similar)


def _driver_labels(edges: pl.DataFrame) -> pl.DataFrame:
    """(_row, _label) of every row in a verified pair: connected components, by ``clusters``."""
    pairs = edges.select("a", "b").to_numpy()
    nodes, inverse = np.unique(pairs, return_inverse=True)
    labels = clusters(len(nodes), inverse.reshape(-1, 2))
    return pl.DataFrame({ROW: nodes.astype(np.int64), "_label": nodes[labels].astype(np.int64)})


def _resolve(
    stage: NearDedupe, ds: ray.data.Dataset, signed: pl.DataFrame, labels: pl.DataFrame, num_perm: int
) -> Any:
    """``NearDedupe.resolve`` on the members of non-trivial clusters, on the driver; ``signed``:
    the signed rows of (at least) those members."""
    wanted = ray.put(labels)
    keyed = signed.join(labels, on=ROW, how="inner")
    keyed = keyed.sort(pl.col("_ref").not_(), ROW)  # reference rows first, as locally
    own = collect(map_blocks(ds, _members, labels=wanted)).drop("_label")
    sigs = sig_matrix(keyed["_sig"].to_arrow(), num_perm)
    n_ref = int(keyed["_ref"].sum())
    return stage.resolve(own, keyed.drop("_sig"), sigs, keyed["_label"].to_numpy(), n_ref)


def _members(table: pa.Table, labels: ray.ObjectRef) -> pa.Table:
    frame = polars(table)
    return arrow(frame.join(shared(labels), on=ROW, how="inner", maintain_order="left"))
