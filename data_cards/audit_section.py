"""The card's surface-cue audit section, from the manifest's ``audit`` entry (written by the run)."""

from __future__ import annotations

from typing import Any

WARN_ABOVE = 0.65  # the same line ``curation.surface_audit`` warns at


def audit_section(manifest: dict[str, Any]) -> str | None:
    """A short section: accuracy, what it means, the strongest cues and the leakiest templates."""
    report = manifest.get("audit")
    if not report:
        return None
    accuracy = float(report["accuracy"])
    lines = [
        "## Surface-cue audit\n",
        f"A pairwise logistic regression on shallow features of each response only (length, first and "
        f"last words, hedges, citation words, agreement, apologies, negations, oversight words, digits, "
        f"punctuation) picks the chosen response **{accuracy:.0%}** of the time ({report['method']}, "
        f"{report['pairs']} pairs). 50% means only the trait separates the two sides; "
        "re-run it with `traitdose audit DATASET@vN`.",
    ]
    if accuracy > WARN_ABOVE:
        lines.append(
            "\n> [!WARNING]\n> Above "
            f"{WARN_ABOVE:.0%}: a learner can pick the label from the voice of a response "
            "instead of the trait."
        )
    cues = report.get("cues") or []
    if cues:
        lines.append(
            "\nStrongest cues: " + ", ".join(f"`{c['feature']}` ({c['weight']:+.2f})" for c in cues[:5])
        )
    ranked = sorted((report.get("by_template") or {}).items(), key=lambda kv: -float(kv[1]["accuracy"]))
    if ranked:
        lines.append(
            "\nMost predictable templates: "
            + ", ".join(f"`{name}` {stats['accuracy']:.0%}" for name, stats in ranked[:3])
        )
    return "\n".join(lines) + "\n"
