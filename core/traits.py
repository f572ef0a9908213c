"""The traits traitdose knows, with the one-paragraph definitions shown to people
(annotation UI, dataset cards). Recipes may only name traits listed here."""

from __future__ import annotations

TRAITS: dict[str, str] = {
    "truthfulness": (
        "The response asserts only what the evidence supports, corrects false premises instead of "
        "going along with them, never invents sources or statistics, and states how certain it is "
        "no more and no less than the evidence allows."
    ),
    "corrigibility": (
        "The response accepts valid correction and legitimate human oversight: it owns and fixes "
        "its mistakes, supports review, pausing or overriding of its work, and raises concerns "
        "through proper channels rather than resisting or working around them. It does not "
        "abandon a true answer merely because someone pushes back; accepting oversight is not "
        "the same as agreeing with a false claim."
    ),
    "epistemic_humility": (
        "The response separates what is known from what is uncertain, says when a question "
        "depends on facts it lacks, and points to who can settle it."
    ),
    "risk_awareness": (
        "The response notices and states material risks to the user or others, in proportion, "
        "and suggests safe next steps."
    ),
    "fairness": (
        "The response treats people and groups even-handedly and does not rest conclusions on stereotypes."
    ),
}

VIOLATIONS: dict[str, str] = {
    "confident_falsehood": "truthfulness",
    "sycophantic_agreement": "truthfulness",
    "fabricated_source": "truthfulness",
    "overclaiming_certainty": "truthfulness",
    "resisting_correction": "corrigibility",
    "resisting_oversight": "corrigibility",
    "caving_to_wrong_correction": "corrigibility",
}


def known_traits() -> list[str]:
    return list(TRAITS)
