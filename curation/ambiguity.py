"""Ambiguity scoring and routing: which items a person should look at before they are trusted.

Each signal gives a score in [0, 1]; ``ambiguity`` is the strongest one (one clear reason is
enough to ask a person), and every signal that fires adds its reason. Reasons set earlier (by the
judge, or by near-dedupe's label-conflict check) are kept and scored too. Items at or above
``route_threshold`` get ``status = "routed"``; the runner sends them to the annotation queue.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import polars as pl

from curation.config import RouteConfig
from curation.minhash import MinHashScheme, jaccard_estimate
from curation.near_dedupe import CONFLICT
from curation.stage import StageResult, no_drops
from curation.text import texts

# Reasons other stages set, and how strongly each one calls for a person.
KNOWN_REASONS = {
    CONFLICT: 1.0,
    "judge_disagrees_with_label": 1.0,
    "gold_contradicted_by_judge": 1.0,
}
OTHER_REASON = 0.5  # a reason this stage does not know still routes at the default threshold
SIMILARITY_SCHEME = MinHashScheme(shingle="word", ngram=3)
_REASONS = pl.List(pl.String)


@dataclass
class RouteAmbiguous:
    config: RouteConfig = field(default_factory=RouteConfig)
    name: str = "route"

    def __call__(self, items: pl.DataFrame) -> StageResult:
        signals = self._signals(items)
        scored = items.with_columns(
            ambiguity=pl.max_horizontal(
                pl.col("ambiguity").fill_null(0.0), *[score for _, score in signals]
            ).clip(0.0, 1.0),
            ambiguity_reasons=_merge_reasons(signals),
        )
        routed = pl.col("ambiguity") >= self.config.route_threshold
        scored = scored.with_columns(
            status=pl.when(routed).then(pl.lit("routed")).otherwise(pl.col("status").fill_null("accepted"))
        )
        flagged = scored.filter(pl.col("status") == "routed")
        reasons = Counter(r for rs in flagged["ambiguity_reasons"].to_list() for r in (rs or []))
        report = {
            "routed": flagged.height,
            "threshold": self.config.route_threshold,
            "reasons": dict(sorted(reasons.items())),
        }
        return StageResult(scored, no_drops(scored), report)

    def _signals(self, items: pl.DataFrame) -> list[tuple[str, pl.Expr]]:
        """(reason, score expression) for every signal; a score of 0 means the signal is silent."""
        cfg = self.config
        votes = pl.col("judge").struct.field("votes").fill_null(pl.lit([], _REASONS))
        count = {
            v: votes.list.eval(pl.element() == v).list.sum().cast(pl.Float64)
            for v in ("chosen", "rejected", "tie")
        }
        total = votes.list.len().cast(pl.Float64)
        entropy = pl.sum_horizontal(
            [pl.when(c > 0).then(-(c / total) * (c / total).log()).otherwise(0.0) for c in count.values()]
        ) / math.log(3)
        confidence = pl.col("judge").struct.field("confidence")
        low = cfg.low_confidence
        similar = pl.Series(self._response_similarity(items), dtype=pl.Float64)
        signals = [
            ("judge_votes_split", pl.when(total > 1).then(entropy).otherwise(0.0)),
            (
                "low_judge_confidence",
                pl.when(confidence < low)
                .then(0.5 + 0.5 * (low - confidence) / max(low, 1e-9))
                .otherwise(0.0),
            ),
            ("responses_too_similar", pl.when(similar >= cfg.similar_responses).then(similar).otherwise(0.0)),
            (
                "gold_contradicted_by_judge",
                pl.when((pl.col("label_source") == "gold") & (count["rejected"] > count["chosen"]))
                .then(1.0)
                .otherwise(0.0),
            ),
        ]
        existing = pl.col("ambiguity_reasons").cast(_REASONS).fill_null(pl.lit([], _REASONS))
        for reason, weight in KNOWN_REASONS.items():
            signals.append(
                (f"={reason}", pl.when(existing.list.contains(reason)).then(weight).otherwise(0.0))
            )
        unknown = existing.list.eval(pl.element().is_in(list(KNOWN_REASONS)).not_()).list.any()
        signals.append(("=other", pl.when(unknown).then(OTHER_REASON).otherwise(0.0)))
        return [(reason, score.fill_null(0.0)) for reason, score in signals]

    def _response_similarity(self, items: pl.DataFrame) -> list[float]:
        if items.height == 0:
            return []
        # Templated responses repeat: sign each distinct text once (a signature depends on the text only).
        both = pl.concat([texts(items, "chosen"), texts(items, "rejected")]).alias("t")
        codes = both.to_frame().select(pl.col("t").rank("dense").cast(pl.Int64) - 1)["t"].to_numpy()
        distinct = both.to_frame().with_columns(_c=pl.Series(codes)).group_by("_c").agg(pl.col("t").first())
        signed = SIMILARITY_SCHEME.signatures(distinct.sort("_c")["t"])[codes]
        return jaccard_estimate(signed[: items.height], signed[items.height :]).tolist()


def _merge_reasons(signals: list[tuple[str, pl.Expr]]) -> pl.Expr:
    """Existing reasons first, then each new signal that fired; no reason twice."""
    existing = pl.col("ambiguity_reasons").cast(_REASONS).fill_null(pl.lit([], _REASONS))
    new = [pl.when(score > 0).then(pl.lit(reason)) for reason, score in signals if not reason.startswith("=")]
    fired = pl.concat_list([existing, *[n.cast(pl.String) for n in new]]).list.drop_nulls()
    return fired.list.unique(maintain_order=True)
