"""Surface statistics of preference pairs: what a model could learn instead of the trait.

A preference set whose chosen answers open with "No" more often than its rejected ones
teaches "say No", not truthfulness (DESIGN.md, "A measured pitfall: polarity artifacts").
These figures compare chosen and rejected responses per trait and domain on surface
features only: opening negation, opening affirmation, length, hedging. Everything is a
vectorized polars expression, so a 100k-pair version takes a fraction of a second.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

_APOS = "['\u2019]"
# Openers, matched at the start of the lower-cased response.
NEGATION = (
    rf"^\W*(?:no\b|nope\b|not\b|never\b|none\b|incorrect\b|false\b|wrong\b|"
    rf"that{_APOS}?s not\b|that is not\b|this is not\b|it{_APOS}?s not\b|it is not\b|"
    rf"i (?:don{_APOS}?t|do not|can{_APOS}?t|cannot|won{_APOS}?t|will not|disagree)\b|"
    rf"actually,? no\b|unfortunately\b)"
)
AFFIRMATION = (
    rf"^\W*(?:yes\b|yeah\b|yep\b|sure\b|certainly\b|absolutely\b|of course\b|definitely\b|"
    rf"exactly\b|indeed\b|correct\b|true\b|agreed\b|i agree\b|good point\b|great question\b|"
    rf"you{_APOS}?re (?:right|correct|absolutely right)\b|you are (?:right|correct)\b|"
    rf"that{_APOS}?s (?:right|correct|true)\b|that is (?:right|correct|true)\b)"
)
HEDGES = (
    r"\b(?:may|might|could|possibly|perhaps|probably|likely|unlikely|uncertain|unclear|"
    r"suggests?|appears?|seems?|generally|typically|usually|often|sometimes|depends|roughly|"
    r"approximately|arguably)\b"
)

# Warn when chosen and rejected differ by more than this, in groups of at least
# MIN_PAIRS pairs (smaller groups are too noisy to call a difference systematic).
MIN_PAIRS = 20
MAX_SHARE_GAP = 0.15  # opening-negation / -affirmation share, absolute
MAX_LENGTH_RATIO = 1.5  # mean chosen/rejected length, or its inverse
MAX_HEDGE_GAP = 1.0  # hedge words per 100 words

COLUMNS = (
    "pairs",
    "chosen_negation",
    "rejected_negation",
    "chosen_affirmation",
    "rejected_affirmation",
    "length_ratio",
    "chosen_hedges",
    "rejected_hedges",
)


def _text(column: str, single: bool) -> pl.Expr:
    """A response's text: its one message, or all of its messages joined."""
    if single:  # the usual case, and far cheaper than joining lists
        return pl.col(column).list.first().struct.field("content").fill_null("")
    return pl.col(column).list.eval(pl.element().struct.field("content")).list.join("\n").fill_null("")


def _features(side: str, single: bool) -> list[pl.Expr]:
    # Lower-cased once (polars reuses the common subexpression) instead of (?i) regexes.
    text = _text(side, single).str.to_lowercase()
    words = (text.str.strip_chars().str.count_matches(r"\s+") + 1).cast(pl.Float64)
    return [
        text.str.contains(NEGATION).alias(f"{side}_neg"),
        text.str.contains(AFFIRMATION).alias(f"{side}_aff"),
        text.str.len_chars().cast(pl.Float64).alias(f"{side}_len"),
        (100 * text.str.count_matches(HEDGES) / words).alias(f"{side}_hedge"),
    ]


def _aggregates() -> list[pl.Expr]:
    return [
        pl.len().alias("pairs"),
        pl.col("chosen_neg").mean().alias("chosen_negation"),
        pl.col("rejected_neg").mean().alias("rejected_negation"),
        pl.col("chosen_aff").mean().alias("chosen_affirmation"),
        pl.col("rejected_aff").mean().alias("rejected_affirmation"),
        (pl.col("chosen_len") / pl.max_horizontal(pl.col("rejected_len"), 1.0)).mean().alias("length_ratio"),
        pl.col("chosen_hedge").mean().alias("chosen_hedges"),
        pl.col("rejected_hedge").mean().alias("rejected_hedges"),
    ]


def surface_stats(items: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """One row per (trait, domain), then an ``all``/``all`` row when there are several groups."""
    items = items.lazy()
    longest = items.select(pl.max_horizontal(pl.col("chosen", "rejected").list.len().max())).collect().item()
    single = (longest or 0) <= 1
    # Collected once: the per-group and overall aggregates both read these features.
    features = items.select(
        "trait", "domain", *_features("chosen", single), *_features("rejected", single)
    ).collect()
    per_group = features.group_by("trait", "domain").agg(_aggregates()).sort("trait", "domain")
    if per_group.height <= 1:
        return per_group
    overall = features.select(pl.lit("all").alias("trait"), pl.lit("all").alias("domain"), *_aggregates())
    return pl.concat([per_group, overall], how="vertical_relaxed")


@dataclass(frozen=True)
class SurfaceWarning:
    trait: str
    domain: str
    feature: str
    message: str


def surface_warnings(stats: pl.DataFrame) -> list[SurfaceWarning]:
    """Where chosen and rejected differ systematically on a surface feature."""
    warnings = []
    for row in stats.filter(pl.col("pairs") >= MIN_PAIRS).iter_rows(named=True):
        where = (row["trait"], row["domain"])
        for feature, word in (
            ("negation", "open with a negation"),
            ("affirmation", "open with an affirmation"),
        ):
            chosen, rejected = row[f"chosen_{feature}"], row[f"rejected_{feature}"]
            if abs(chosen - rejected) > MAX_SHARE_GAP:
                warnings.append(
                    SurfaceWarning(
                        *where,
                        feature,
                        f"{chosen:.0%} of chosen vs {rejected:.0%} of rejected responses {word}",
                    )
                )
        ratio = row["length_ratio"]
        if ratio > MAX_LENGTH_RATIO or ratio < 1 / MAX_LENGTH_RATIO:
            warnings.append(
                SurfaceWarning(
                    *where, "length", f"chosen responses are {ratio:.2f}x as long as rejected ones"
                )
            )
        gap = row["chosen_hedges"] - row["rejected_hedges"]
        if abs(gap) > MAX_HEDGE_GAP:
            warnings.append(
                SurfaceWarning(
                    *where,
                    "hedging",
                    f"chosen responses use {row['chosen_hedges']:.1f} hedge words per 100 words, "
                    f"rejected {row['rejected_hedges']:.1f}",
                )
            )
    return warnings
