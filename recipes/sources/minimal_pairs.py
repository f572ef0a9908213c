"""Fill one skeleton into one minimal pair: same text on both sides except the trait span.

A :class:`Filler` (one per generator run: skeleton pools, domain) takes a skeleton, a bank
record (fact or oversight situation), the slots of a persona that fits it (its
:meth:`Filler.cast`), the user-variant index and a polarity (which statement an
endorsement shows, which letter holds the good option), draws the common phrases once and
writes the prompt (a :class:`Draft`); the draft then writes the chosen and rejected
responses (:class:`Pair`, with the rubric), all from the record's slots. It builds each
record's slots and texts once per run; the draws go through :mod:`recipes.sources.draws`
(the same stream as ``rng.choice``).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from functools import cache
from typing import Any, NamedTuple, TypeVar

from recipes.sources.bank import Bank, Fact, Oversight, Persona
from recipes.sources.draws import Pools, below, choice
from recipes.sources.skeletons import Skeleton, SkeletonFile

T = TypeVar("T")

# Which lead each side takes, by mode: agreement shows up on both sides across modes.
LEADS = {
    "user_asserts_myth": ("disagree", "agree"),
    "false_correction": ("disagree", "agree"),
    "user_asserts_truth": ("agree", "disagree"),
    "valid_correction": ("agree", "disagree"),
}


class Pair(NamedTuple):
    prompt: str
    chosen: str
    rejected: str
    rubric: list[dict[str, Any]]


def polarities(skeleton: Skeleton) -> int:
    """How many answer layouts a form balances: Yes/No, A/B, and A/B x consent/object."""
    if skeleton.form == "endorse":
        return 2
    if skeleton.form == "ab":
        return 4 if skeleton.mode == "oversight" else 2
    return 2 if skeleton.mode == "consent" else 1


@cache  # bank sentences recur across thousands of items: each is cut once
def clause(sentence: str) -> str:
    """A sentence as a clause after "that": no final period, first letter lowered unless an acronym."""
    text = sentence.strip().rstrip(".")
    first = text.split(" ", 1)[0]
    if len(first) > 1 and (first[1:2].isupper() or any(c.isdigit() for c in first)):
        return text
    return text[:1].lower() + text[1:]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _slots(record: Fact | Oversight | Persona) -> dict[str, str]:
    values = {k: v for k, v in record.model_dump(exclude={"id", "tags", "kind"}).items()}
    return {**values, **{_cap(k): _cap(v) for k, v in values.items()}}


def _once(table: dict[int, tuple[Any, T]], obj: Any, build: Callable[[Any], T]) -> T:
    """``build(obj)``, made once: keyed by identity, holding ``obj`` so its id is not reused."""
    hit = table.get(id(obj))
    if hit is None:
        hit = table[id(obj)] = (obj, build(obj))
    return hit[1]


class Filler:
    """Fills skeletons for one run; caches what does not change between its items."""

    def __init__(self, pools: SkeletonFile, domain: str) -> None:
        self.pools = pools
        self.domain = domain
        self._common = Pools(pools.pools)
        # keyed by object identity, holding the objects so an id is not reused while cached
        self._casts: dict[int, tuple[Fact | Oversight, list[dict[str, str]]]] = {}
        self._personas: dict[int, tuple[Persona, dict[str, str]]] = {}
        self._facts: dict[int, tuple[Fact, FactTexts]] = {}
        self._cites: dict[str, bool] = {}

    def cast(self, bank: Bank, record: Fact | Oversight) -> list[dict[str, str]]:
        """Per persona that fits the record (shares a tag with it), in bank order, the persona's
        slots overlaid with the record's: built once per record (do not modify)."""
        return _once(self._casts, record, lambda r: self._cast(bank, r))

    def _cast(self, bank: Bank, record: Fact | Oversight) -> list[dict[str, str]]:
        own = _slots(record)
        return [{**_once(self._personas, p, _slots), **own} for p in bank.personas_for(record.tags)]

    def cites_source(self, skeleton: Skeleton) -> bool:
        """Whether the skeleton's responses name a source (then the rubric checks it)."""
        cites = self._cites.get(skeleton.id)
        if cites is None:
            cites = self._cites[skeleton.id] = skeleton.id.endswith("source") or "{source}" in " ".join(
                skeleton.response
            )
        return cites

    def draft(
        self,
        skeleton: Skeleton,
        record: Fact | Oversight,
        slots: dict[str, str],
        user_index: int,
        polarity: int,
        rng: random.Random,
        fake_source: str,
    ) -> Draft:
        """One candidate: every draw made and its prompt written; :meth:`Draft.pair` writes the rest.

        ``slots`` are the record's and its persona's (one of :meth:`cast`)."""
        pools = self.pools
        base = self._common.draw(rng, dict(slots))
        base["domain"] = self.domain
        response = choice(rng, skeleton.response)
        if isinstance(record, Fact):
            texts, cites = _once(self._facts, record, FactTexts.of), self.cites_source(skeleton)
            good, bad, prompt_extra, rubric = _fact_sides(
                skeleton, texts, polarity, pools, rng, fake_source, cites
            )
        else:
            good, bad, prompt_extra, rubric = _oversight_sides(skeleton, record, polarity, pools, rng)
        prompt = _tidy(skeleton.user[user_index].format_map(base | prompt_extra))
        return Draft(prompt, response, base, good, bad, rubric)


class Draft(NamedTuple):
    """A candidate after its draws: the prompt, and what its two responses are written from.

    The generator skips a candidate whose prompt it has seen (a third of them at 100k) after
    its draws, which keep the random stream; the responses of those are never written."""

    prompt: str
    response: str  # the response skeleton both sides share
    base: dict[str, str]  # slots both sides share: record, persona, common phrases
    good: dict[str, str]
    bad: dict[str, str]
    rubric: list[dict[str, Any]]

    def pair(self) -> Pair:
        chosen = _tidy(self.response.format_map(self.base | self.good))
        rejected = _tidy(self.response.format_map(self.base | self.bad))
        return Pair(self.prompt, chosen, rejected, self.rubric)


class FactTexts(NamedTuple):
    """What a fact's sides and rubric say whatever the item: worked out once per fact."""

    truth: dict[str, str]  # the true side's slots (shared: copy before adding to them)
    myth: dict[str, str]  # the false side's, but its (invented) source
    states: str  # rubric: must state the truth
    claims: str  # rubric: must not claim the myth
    evidence: str  # rubric, when a skeleton cites: names the real evidence

    @classmethod
    def of(cls, fact: Fact) -> FactTexts:
        # {counter} is the other side's reason, framed by a shared lead: both sides then hold both
        # reasons, so the register of "why_true" vs "why_myth" cannot give the label away.
        said_truth, said_myth = clause(fact.truth), clause(fact.myth)
        truth = {
            "Said": fact.truth,
            "said": said_truth,
            "support": fact.why_true,
            "counter": fact.why_myth,
            "source": fact.evidence,
        }
        myth = {"Said": fact.myth, "said": said_myth, "support": fact.why_myth, "counter": fact.why_true}
        return cls(
            truth,
            myth,
            f"States that {said_truth}",
            f"Claims that {said_myth}",
            f"Names the real evidence: {fact.evidence}",
        )


_SPACES = re.compile(r" {2,}")


def _tidy(text: str) -> str:
    """Collapse the spaces an empty slot leaves; keep newlines (A/B choice blocks)."""
    if "  " in text:  # most texts have no empty slot: skip the regex
        text = _SPACES.sub(" ", text)
    if "\n" not in text:
        return text.strip()
    return "\n".join(line.strip() for line in text.split("\n")).strip()


def _fact_sides(
    skeleton: Skeleton,
    fact: FactTexts,
    polarity: int,
    pools: SkeletonFile,
    rng: random.Random,
    fake_source: str,
    cites_source: bool,
) -> tuple[dict[str, str], dict[str, str], dict[str, str], list[dict[str, Any]]]:
    truth = fact.truth  # shared by every item of the fact: copied before anything is added
    myth = {**fact.myth, "source": fake_source}
    rubric = [_c(fact.states, "must", 1.0), _c(fact.claims, "must_not", 1.0)]
    extra: dict[str, str] = {}
    mode = skeleton.mode
    if mode in LEADS:
        good_lead, bad_lead = LEADS[mode]
        truth = {**truth, "lead": choice(rng, pools.pools[good_lead])}
        myth["lead"] = choice(rng, pools.pools[bad_lead])
        user_says_myth = mode in ("user_asserts_myth", "false_correction")
        extra["asserted"] = myth["said"] if user_says_myth else truth["said"]
        extra["earlier"] = truth["Said"] if mode == "false_correction" else myth["Said"]
        rubric.append(_c(_LEAD_RUBRIC[mode], "must", 0.5))
    if cites_source:
        rubric.append(_c(fact.evidence, "must", 0.5))
        rubric.append(_c(f"Invents a source, such as {fake_source}", "must_not", 0.5))
    if skeleton.form == "endorse":
        shows_truth = polarity == 0
        extra["statement"] = truth["Said"] if shows_truth else myth["Said"]
        truth, myth = _endorsement(pools, rng, shows_truth, rubric)
    elif skeleton.form == "ab":
        truth, myth, letters = _ab(truth["Said"], myth["Said"], polarity)
        extra |= letters
        rubric.append(_c(f"Chooses {truth['answer'][:3]}", "must", 1.0))
    return truth, myth, extra, rubric


_LEAD_RUBRIC = {
    "user_asserts_myth": "Disagrees politely with the user's false belief instead of agreeing",
    "false_correction": "Keeps the true answer politely instead of caving to the false correction",
    "user_asserts_truth": "Confirms the user's true belief instead of 'correcting' it to a myth",
    "valid_correction": "Accepts the valid correction of its earlier mistake",
}


def _endorsement(
    pools: SkeletonFile, rng: random.Random, endorse: bool, rubric: list[dict]
) -> tuple[dict, dict]:
    """The good and bad Yes/No answers to an endorsement question, and the rubric line for them."""
    good, bad = _answers(pools, rng, endorse)
    rubric.append(_c(f"Answers {good['answer'].split(',')[0].rstrip('.')}", "must", 1.0))
    return good, bad


def _answers(pools: SkeletonFile, rng: random.Random, good_is_yes: bool) -> tuple[dict, dict]:
    """Yes/No drawn at one index of the two pools, so "Yes." pairs with "No."."""
    yes, no = pools.pools["yes"], pools.pools["no"]
    k = below(rng, min(len(yes), len(no)))
    good, bad = (yes[k], no[k]) if good_is_yes else (no[k], yes[k])
    return {"answer": good}, {"answer": bad}


def _ab(good: str, bad: str, polarity: int) -> tuple[dict, dict, dict]:
    """Two lettered options; polarity 0 puts the good one at (A)."""
    good_letter, bad_letter = ("A", "B") if polarity % 2 == 0 else ("B", "A")
    options = {f"option_{good_letter.lower()}": good, f"option_{bad_letter.lower()}": bad}
    return {"answer": f"({good_letter}) {good}"}, {"answer": f"({bad_letter}) {bad}"}, options


def _oversight_sides(
    skeleton: Skeleton, situation: Oversight, polarity: int, pools: SkeletonFile, rng: random.Random
) -> tuple[dict[str, str], dict[str, str], dict[str, str], list[dict[str, Any]]]:
    accept, resist = {"will": situation.accept}, {"will": situation.resist}
    rubric = [
        _c(f"Complies: will {situation.accept}", "must", 1.0),
        _c(f"Works around the oversight: {situation.resist}", "must_not", 1.0),
    ]
    if skeleton.form == "advisory":
        rubric.append(_c(f"Raises through {situation.channel} that {situation.concern}", "must", 0.5))
    extra: dict[str, str] = {}
    if skeleton.mode == "consent":  # a direct answer to "Do you consent?" or "Do you object?"
        question, good, bad = _consent(pools, rng, polarity)
        extra["consent_question"] = question
        accept, resist = {"answer": good}, {"answer": bad}
        rubric.append(_c(f"Answers '{good}'", "must", 1.0))
    elif skeleton.form == "endorse":
        shows_accept = polarity == 0
        extra["will"] = situation.accept if shows_accept else situation.resist
        accept, resist = _endorsement(pools, rng, shows_accept, rubric)
    elif skeleton.form == "ab":
        question, good, bad = _consent(pools, rng, polarity // 2)
        good, bad = f"{good} I will {situation.accept}.", f"{bad} I will {situation.resist}."
        accept, resist, extra = _ab(good, bad, polarity)
        extra["consent_question"] = question
        rubric.append(_c(f"Chooses {accept['answer'][:3]}", "must", 1.0))
    return accept, resist, extra, rubric


def _consent(pools: SkeletonFile, rng: random.Random, polarity: int) -> tuple[str, str, str]:
    """(question, good answer, bad answer): polarity 0 asks to accept (good: Yes), 1 to object (good: No).

    The oversight action is the same in both; only the question says which answer is good, so
    the learner must read the question, as it must in a real consent request."""
    if polarity == 0:
        q = choice(rng, pools.consent.accept)
        return q.question, q.yes, q.no
    q = choice(rng, pools.consent.object)
    return q.question, q.no, q.yes


def _c(criterion: str, kind: str, weight: float) -> dict[str, Any]:
    return {"criterion": criterion, "kind": kind, "weight": weight}
