"""Skeleton pools (``recipes/banks/scenarios.yaml``): one response skeleton for both sides.

A skeleton names its trait, form (advisory | short | endorse | ab), mode (how the two
sides fill the side slots, see :data:`MODES`) and the violation kind its rejected side
shows. ``pools`` hold the common phrases (openings, closings, agreement and disagreement
leads, certainty leads, Yes/No) drawn once per item and used on both sides.
"""

from __future__ import annotations

import string
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from core.traits import VIOLATIONS
from recipes.sources.bank import BankError, _Model, load_yaml, validated
from recipes.spec import BANKS_DIR

SKELETONS = BANKS_DIR / "scenarios.yaml"
Form = Literal["advisory", "short", "endorse", "ab"]
FORMS: tuple[str, ...] = ("advisory", "short", "endorse", "ab")
# mode → the pool its records come from
MODES = {
    "plain": "fact",
    "user_asserts_myth": "fact",
    "user_asserts_truth": "fact",
    "valid_correction": "fact",
    "false_correction": "fact",
    "oversight": "oversight",
    "consent": "oversight",
}
POOL_NAMES = ("opening", "closing", "agree", "disagree", "certainty", "counter_lead", "yes", "no")
SIDE_SLOTS = {"Said", "said", "support", "counter", "source", "lead", "will", "answer", "statement"}
PROMPT_SLOTS = {"asserted", "earlier", "option_a", "option_b", "consent_question"}
RECORD_SLOTS = {
    "fact": {"topic", "question", "truth", "myth", "why_true", "why_myth", "evidence", "advice", "expert"},
    "oversight": {"setting", "task", "overseer", "action", "cost", "concern", "channel", "accept", "resist"},
}


class Skeleton(_Model):
    id: str
    trait: str
    form: Form
    mode: Literal[
        "plain",
        "user_asserts_myth",
        "user_asserts_truth",
        "valid_correction",
        "false_correction",
        "oversight",
        "consent",
    ]
    violation: str
    user: list[str] = Field(min_length=1)
    response: list[str] = Field(min_length=1)
    weight: float = Field(1.0, gt=0)  # share of its form's items, relative to the form's other skeletons

    @property
    def pool(self) -> str:
        return MODES[self.mode]

    @property
    def generator(self) -> str:
        """The provenance ``generator``: form and skeleton id, so an audit can group by either."""
        return f"{self.form}/{self.id}"

    @model_validator(mode="after")
    def _known_violation(self) -> Skeleton:
        if VIOLATIONS.get(self.violation) != self.trait:
            raise ValueError(f"{self.violation!r} is not a {self.trait} violation")
        return self


class ConsentQuestion(_Model):
    """One way to ask the assistant about an oversight action, with its Yes and No answers.

    ``accept`` questions ("Do you consent?") are answered well by Yes, ``object`` questions
    ("Do you object?") by No, so across a form each answer token is good as often as bad."""

    question: str
    yes: str
    no: str


class ConsentPools(_Model):
    accept: list[ConsentQuestion] = Field(min_length=1)
    object: list[ConsentQuestion] = Field(min_length=1)


class SkeletonFile(_Model):
    weights: dict[str, dict[Form, float]]
    pools: dict[str, list[str]]
    consent: ConsentPools
    skeletons: list[Skeleton] = Field(min_length=1)


@cache
def load_skeletons(path: Path = SKELETONS) -> SkeletonFile:
    """The skeleton file, checked: every pool present, every slot known, ids unique."""
    if not path.exists():
        raise BankError(f"no skeleton file at {path}")
    loaded: SkeletonFile = validated(SkeletonFile, load_yaml(path), path)
    missing = [p for p in POOL_NAMES if not loaded.pools.get(p)]
    if missing:
        raise BankError(f"{path}: pools: missing or empty pool {missing[0]!r}")
    seen: set[str] = set()
    for i, skeleton in enumerate(loaded.skeletons):
        if skeleton.id in seen:
            raise BankError(f"{path}: skeletons[{i}]: duplicate id {skeleton.id!r}")
        seen.add(skeleton.id)
        _check_slots(skeleton, i, path)
    return loaded


def _check_slots(skeleton: Skeleton, index: int, path: Path) -> None:
    """Fail at load, not mid-run, when a text names a slot the generator never fills."""
    base = RECORD_SLOTS[skeleton.pool] | {"who", "stakes", "domain"} | set(POOL_NAMES) - {"yes", "no"}
    allowed = base | {_cap(s) for s in base} | PROMPT_SLOTS | SIDE_SLOTS
    for field in ("user", "response"):
        for j, text in enumerate(getattr(skeleton, field)):
            for _, slot, _, _ in string.Formatter().parse(text):
                if slot is not None and slot not in allowed:
                    raise BankError(
                        f"{path}: skeletons[{index}] ({skeleton.id!r}): {field}[{j}]: unknown slot {{{slot}}}"
                    )


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]
