"""Near-duplicate removal: MinHash + LSH candidates, verified, clustered, one item kept per cluster.

Clusters are connected components of verified pairs (estimated Jaccard >= threshold), and bucket
leaders, keepers and cluster names all come from item content, so shuffling the rows changes
nothing. The keeper is the item with the highest judge confidence, then the best label source
(human, gold, judge, contrastive), then the smallest id. Every dropped row says which cluster it
was in, which item was kept and how similar the two are.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from curation.config import DedupeConfig
from curation.minhash import LSHIndex, MinHashScheme, clusters, jaccard_estimate
from curation.stage import StageResult, drop_rows
from curation.text import check_field, field_columns, texts

LABEL_RANK = {"human": 0, "gold": 1, "judge": 2, "contrastive": 3}
CONFLICT = "near_duplicate_label_conflict"


@dataclass
class NearDedupe:
    config: DedupeConfig = field(default_factory=DedupeConfig)
    reference: pl.DataFrame | None = None  # items of earlier versions: never dropped, never re-added
    reference_name: str = "reference"
    progress: Callable[[int], None] | None = None
    name: str = "near_dedupe"

    @property
    def scheme(self) -> MinHashScheme:
        c = self.config
        return MinHashScheme(num_perm=c.num_perm, seed=c.seed, shingle=c.shingle, ngram=c.ngram)

    def __call__(self, items: pl.DataFrame) -> StageResult:
        reference = self.reference if self.reference is not None else items.clear()
        columns = field_columns(self.config.field)
        keyed = _keyed(items, False, columns)
        # Without a reference, skip the concat: it would copy every text once more.
        both = (
            pl.concat([_keyed(reference, True, columns), keyed], how="vertical_relaxed")
            if reference.height
            else keyed
        )
        sigs = self.scheme.signatures(texts(both, self.config.field), progress=self.progress)
        index = LSHIndex(self.scheme, self.config.threshold)
        index.add(sigs)
        pairs, _ = index.pairs(rank=_priority(both))
        result = self.resolve(items, both, sigs, clusters(len(both), pairs), reference.height)
        result.report = self.report(index, result.report, reference.height)
        return result

    def report(self, index: LSHIndex, resolved: dict[str, int], n_ref: int) -> dict[str, object]:
        return {
            "field": self.config.field,
            "threshold": self.config.threshold,
            "bands": index.bands,
            "rows_per_band": index.rows,
            **resolved,
            "reference_items": n_ref,
            "scheme": self.scheme.meta(),
        }

    def resolve(
        self, items: pl.DataFrame, both: pl.DataFrame, sigs: np.ndarray, labels: np.ndarray, n_ref: int
    ) -> StageResult:
        """Keepers, drops and label conflicts of clustered rows; the one place this is decided.

        ``both``: the ``_keyed`` reference rows (``n_ref`` of them) then one row per row of
        ``items``, ``sigs`` their signatures and ``labels`` a component label per row. Whole
        components in, the same answer out: the Ray engine calls this with the members of
        non-trivial clusters only. The report holds ``clusters`` and ``label_conflicts``.
        """
        members = both.select("_key", "_ref").with_columns(
            _label=pl.Series(labels),
            _priority=pl.Series(_priority(both)),
            _row=pl.int_range(pl.len()),
        )
        members = _assign_keepers(members)
        own = members.slice(n_ref)
        drop = (own["_keeper"] != own["_row"]).to_numpy()
        keeper_rows = own["_keeper"].to_numpy()
        details = self._details(own, drop, sigs, keeper_rows)
        reasons = np.where(own["_kept_ref"].to_numpy(), "near_duplicate_of_reference", "near_duplicate")
        marked = items.with_columns(
            _drop=pl.Series(drop), _reason=pl.Series(reasons, dtype=pl.String), _detail=pl.Series(details)
        )
        marked, conflicts = self._mark_conflicts(marked, own, drop)
        result = drop_rows(marked, pl.col("_drop"), self.name, pl.col("_reason"), pl.col("_detail"))
        helpers = ["_drop", "_reason", "_detail"]
        result.kept = result.kept.drop([c for c in helpers if c in result.kept.columns])
        result.dropped = result.dropped.drop([c for c in helpers if c in result.dropped.columns])
        result.report = {
            "clusters": int(own.filter(pl.col("_size") > 1)["_label"].n_unique()),
            "label_conflicts": conflicts,
        }
        return result

    def _details(
        self, own: pl.DataFrame, drop: np.ndarray, sigs: np.ndarray, keeper_rows: np.ndarray
    ) -> list[str]:
        """``drop_detail`` per row: cluster, kept id and similarity for dropped rows, ``{}`` for the rest."""
        details = ["{}"] * len(drop)
        rows = np.flatnonzero(drop)
        picked = own[rows]
        similarity = jaccard_estimate(sigs[picked["_row"].to_numpy()], sigs[keeper_rows[rows]])
        for i, cluster, kept, s, from_ref in zip(
            rows.tolist(),
            picked["_cluster"].to_list(),
            picked["_kept"].to_list(),
            similarity.tolist(),
            picked["_kept_ref"].to_list(),
            strict=True,
        ):
            details[i] = json.dumps(
                {"cluster": cluster, "kept_id": kept, "similarity": round(float(s), 3)}
                | ({"kept_from": self.reference_name} if from_ref else {})
            )
        return details

    def _mark_conflicts(
        self, marked: pl.DataFrame, own: pl.DataFrame, drop: np.ndarray
    ) -> tuple[pl.DataFrame, int]:
        """A dropped near-duplicate that prefers the kept item's rejected answer is a label conflict.

        The kept item gets the reason, so the ambiguity stage can route it to a person.
        """
        needed = {"chosen", "rejected", "ambiguity_reasons"}
        if not needed <= set(marked.columns) or not drop.any():
            return marked, 0
        # Each dropped row whose keeper is one of these items (not a reference item): where that keeper
        # sits in ``own`` (the last row holding its key).
        last = own.select("_key", _at=pl.int_range(pl.len())).group_by("_key").agg(pl.col("_at").last())
        pairs = (
            own.select("_kept", "_kept_ref", _row=pl.int_range(pl.len()))
            .filter(pl.Series(drop) & ~pl.col("_kept_ref"))
            .join(last, left_on="_kept", right_on="_key", how="inner")
        )
        if pairs.height == 0:
            return marked, 0
        dropped_rows, kept_rows = pairs["_row"].to_numpy(), pairs["_at"].to_numpy()
        # Sign only the rows in a pair: a handful, where signing every row cost as much as dedupe.
        rows, where = np.unique(np.concatenate([kept_rows, dropped_rows]), return_inverse=True)
        kept_at, dropped_at = where[: len(kept_rows)], where[len(kept_rows) :]
        subset = marked.select("chosen", "rejected")[rows]
        chosen = self.scheme.signatures(texts(subset, "chosen"))
        rejected = self.scheme.signatures(texts(subset, "rejected"))
        same = jaccard_estimate(chosen[kept_at], chosen[dropped_at])
        swapped = jaccard_estimate(chosen[kept_at], rejected[dropped_at])
        conflicted = np.unique(kept_rows[swapped > same])
        if len(conflicted) == 0:
            return marked, 0
        flag = np.zeros(marked.height, bool)
        flag[conflicted] = True
        reasons = (
            pl.col("ambiguity_reasons").cast(pl.List(pl.String)).fill_null(pl.lit([], pl.List(pl.String)))
        )
        marked = marked.with_columns(
            ambiguity_reasons=pl.when(pl.Series(flag) & ~reasons.list.contains(CONFLICT))
            .then(reasons.list.concat(pl.lit([CONFLICT])))
            .otherwise(reasons)
        )
        return marked, len(conflicted)


def _keyed(frame: pl.DataFrame, reference: bool, columns: list[str]) -> pl.DataFrame:
    """The columns dedupe reads, with ``_key``: the id, or the row number where there is none."""
    key = pl.col("id").cast(pl.String) if "id" in frame.columns else pl.int_range(pl.len()).cast(pl.String)
    confidence = (
        pl.col("judge").struct.field("confidence").cast(pl.Float64)
        if "judge" in frame.columns and isinstance(frame.schema["judge"], pl.Struct)
        else pl.lit(None, pl.Float64)
    )
    label = (
        pl.col("label_source").replace_strict(LABEL_RANK, default=len(LABEL_RANK), return_dtype=pl.Int32)
        if "label_source" in frame.columns
        else pl.lit(len(LABEL_RANK), pl.Int32)
    )
    check_field(frame, "+".join(columns))
    return frame.select(*columns, _key=key, _ref=pl.lit(reference), _confidence=confidence, _label_rank=label)


def _priority(both: pl.DataFrame) -> np.ndarray:
    """Rank of every row under the keep policy (0 = keep first); ties broken by id, not position."""
    order = both.select(
        pl.arg_sort_by(
            [~pl.col("_ref"), pl.col("_confidence").fill_null(-1.0), pl.col("_label_rank"), pl.col("_key")],
            descending=[False, True, False, False],
        )
    ).to_series()
    rank = np.empty(len(both), np.int64)
    rank[order.to_numpy()] = np.arange(len(both))
    return rank


def _assign_keepers(members: pl.DataFrame) -> pl.DataFrame:
    keepers = members.group_by("_label").agg(
        _keeper=pl.col("_row").sort_by("_priority").first(),
        _kept=pl.col("_key").sort_by("_priority").first(),
        _kept_ref=pl.col("_ref").sort_by("_priority").first(),
        _cluster=pl.col("_key").min(),
        _size=pl.len(),
    )
    return members.join(keepers, on="_label", how="left").sort("_row")
