"""The card's sections on what a learner could pick up besides the trait (surface statistics)
and on how the items can be graded (rubric coverage)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from data_cards.markdown import n as _n
from data_cards.markdown import table as _table
from data_cards.stats import MAX_HEDGE_GAP, MAX_LENGTH_RATIO, MAX_SHARE_GAP, MIN_PAIRS

if TYPE_CHECKING:
    from data_cards.facts import CardFacts


def rubrics(f: CardFacts) -> str | None:
    """Rubric coverage: how many items an LLM judge can grade against criteria (GRPO's rubric reward)."""
    table = f.rubrics
    if table is None or table.height == 0:
        return None
    total, covered = int(table["items"].sum()), int(table["with_rubric"].sum())
    head = (
        f"## Rubrics\n\n{_n(covered)} of {_n(total)} items ({covered / max(total, 1):.0%}) carry a grading "
        "rubric (criteria a good response must or must not meet, with weights); the `rubric` reward of "
        "`traitdose train --method grpo` grades only those.\n\n"
    )
    rows = [
        [r["trait"], _n(r["items"]), _n(r["with_rubric"]), f"{r['with_rubric'] / max(r['items'], 1):.0%}",
         "-" if r["criteria"] is None else f"{r['criteria']:.1f}"]
        for r in table.iter_rows(named=True)
    ]  # fmt: skip
    return head + _table(["trait", "items", "with rubric", "coverage", "criteria per rubric"], rows)


def surface(f: CardFacts) -> str:
    def pct(x: float | None) -> str:
        return "-" if x is None else f"{x:.0%}"

    rows = [
        [
            r["trait"],
            r["domain"],
            _n(r["pairs"]),
            f"{pct(r['chosen_negation'])} / {pct(r['rejected_negation'])}",
            f"{pct(r['chosen_affirmation'])} / {pct(r['rejected_affirmation'])}",
            "-" if r["length_ratio"] is None else f"{r['length_ratio']:.2f}",
            "-" if r["chosen_hedges"] is None else f"{r['chosen_hedges']:.1f} / {r['rejected_hedges']:.1f}",
        ]
        for r in f.stats.iter_rows(named=True)
    ]
    text = (
        "## Surface statistics\n\nA preference set can teach an artefact instead of the trait: if chosen "
        "answers open with “No” more often than rejected ones, a model learns to say no, not to be truthful. "
        "Chosen / rejected, per trait and domain:\n\n"
        + _table(
            [
                "trait",
                "domain",
                "pairs",
                "opens with negation",
                "opens with affirmation",
                "length ratio (chosen/rejected)",
                "hedge words per 100",
            ],
            rows,
        )
    )
    if f.warnings:
        lines = [f"- **{w.trait} / {w.domain}** ({w.feature}): {w.message}" for w in f.warnings]
        text += (
            "\n> [!WARNING]\n> Chosen and rejected responses differ systematically on a surface feature, "
            "which a model can learn in place of the trait:\n"
            + "\n".join(f"> {line}" for line in lines)
            + "\n"
        )
    else:
        text += (
            f"\nNo systematic surface difference found (thresholds: {MAX_SHARE_GAP:.0%} on opening shares, "
            f"length ratio within {1 / MAX_LENGTH_RATIO:.2f}–{MAX_LENGTH_RATIO:.2f}, "
            f"{MAX_HEDGE_GAP:.0f} hedge word per 100 words; groups of at least {MIN_PAIRS} pairs).\n"
        )
    return text
