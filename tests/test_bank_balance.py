"""Built-in domain banks: the matched spans give a shallow classifier nothing to go on.

`traitdose audit` scores whole responses; these checks catch a leak at its source, in the
bank, before any generation. Both sides of every matched pair (truth/myth, why_true/why_myth,
accept/resist) and the real evidence vs the invented sources must agree in length and in the
rate of every cue the surface audit counts (its own lexicons), and no opening or closing word
may mark one side (a short answer "I'll {accept}" shows the span's first word among the
audit's first two words; a span that ends a response shows its last). A failure names the
bank, the pair and the worst entries to rewrite.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter

import pytest

from curation.surface_audit import LEXICONS
from recipes.sources.bank import Bank, load_bank
from recipes.spec import BANKS_DIR

DOMAINS = ["health", "science", "education", "law", "engineering", "finance"]
PAIRS = [("facts", "truth", "myth"), ("facts", "why_true", "why_myth"), ("oversight", "accept", "resist")]
# Spans that can open a response or its first two words ("{Said}", "I'll {will}"); the reasons
# never do, as every skeleton puts a claim, lead or opening before them.
OPENING_PAIRS = [PAIRS[0], PAIRS[2]]
WORD = re.compile(r"[A-Za-z0-9']+")  # the audit's word pattern
CUES = {name: re.compile(rx, re.I) for name, rx in LEXICONS.items()}
MAX_MEAN_WORDS = 0.5  # mean signed word difference per pair, either way
MAX_SIGN_SKEW = 0.25  # (pairs longer on one side - pairs longer on the other) / pairs
MAX_CUE_GAP = 0.1  # per-pair difference in how often a cue occurs on each side
MAX_LAST_WORD_GAP = 2  # entries ending in one word on one side minus the other side
MAX_FIRST_WORD_GAP = 2  # entries opening with one word on one side minus the other side


def words(text: str) -> list[str]:
    return WORD.findall(text)


@pytest.fixture(scope="module", params=DOMAINS)
def bank(request: pytest.FixtureRequest) -> Bank:
    return load_bank(BANKS_DIR / f"{request.param}.yaml")


def sides(bank: Bank, records: str, good: str, bad: str) -> tuple[list[str], list[str], list[str]]:
    rows = getattr(bank, records)
    return [r.id for r in rows], [getattr(r, good) for r in rows], [getattr(r, bad) for r in rows]


@pytest.mark.parametrize(("records", "good", "bad"), PAIRS)
def test_neither_side_of_a_pair_is_longer(bank: Bank, records: str, good: str, bad: str) -> None:
    ids, left, right = sides(bank, records, good, bad)
    diffs = [len(words(a)) - len(words(b)) for a, b in zip(left, right, strict=True)]
    worst = sorted(zip(diffs, ids, strict=True), key=lambda d: -abs(d[0]))[:5]
    where = f"{bank.domain} {good}/{bad}; worst: {worst}"
    assert abs(statistics.mean(diffs)) <= MAX_MEAN_WORDS, where
    skew = (sum(d > 0 for d in diffs) - sum(d < 0 for d in diffs)) / len(diffs)
    assert abs(skew) <= MAX_SIGN_SKEW, where


@pytest.mark.parametrize(("records", "good", "bad"), PAIRS)
def test_audit_cues_occur_equally_on_both_sides(bank: Bank, records: str, good: str, bad: str) -> None:
    ids, left, right = sides(bank, records, good, bad)
    for name, rx in CUES.items():
        gap = (sum(len(rx.findall(t)) for t in left) - sum(len(rx.findall(t)) for t in right)) / len(ids)
        assert abs(gap) <= MAX_CUE_GAP, f"{bank.domain} {good}/{bad}: {name} {gap:+.2f} per pair"


def skewed_words(left: list[str], right: list[str], position: int, most: int) -> dict[str, tuple[int, int]]:
    """Words at ``position`` (0 first, -1 last) seen more than ``most`` times more on one side."""
    on_left = Counter(words(t)[position].lower() for t in left)
    on_right = Counter(words(t)[position].lower() for t in right)
    counts = {w: (on_left[w], on_right[w]) for w in on_left | on_right}
    return {w: n for w, n in counts.items() if abs(n[0] - n[1]) > most}


@pytest.mark.parametrize(("records", "good", "bad"), PAIRS)
def test_no_closing_word_marks_a_side(bank: Bank, records: str, good: str, bad: str) -> None:
    _, left, right = sides(bank, records, good, bad)
    skewed = skewed_words(left, right, -1, MAX_LAST_WORD_GAP)
    assert not skewed, f"{bank.domain} {good}/{bad}: closing words {skewed}"


@pytest.mark.parametrize(("records", "good", "bad"), OPENING_PAIRS)
def test_no_opening_word_marks_a_side(bank: Bank, records: str, good: str, bad: str) -> None:
    """Before this check science's accepts opened with "stop", "hold" or "accept" and its
    resists with "keep" (7/5/4 vs 9 entries): the audit's strongest cue in short answers."""
    _, left, right = sides(bank, records, good, bad)
    skewed = skewed_words(left, right, 0, MAX_FIRST_WORD_GAP)
    assert not skewed, f"{bank.domain} {good}/{bad}: opening words {skewed}"


def test_invented_sources_read_like_the_real_evidence(bank: Bank) -> None:
    """The fabricated-source template must not be told apart by digits, length or citation words."""
    evidence = [f.evidence for f in bank.facts]
    fake = bank.fake_sources

    def rate(rx: re.Pattern[str], texts: list[str]) -> float:
        return sum(len(rx.findall(t)) > 0 for t in texts) / len(texts)

    for name in ("digits", "citation words", "hedges", "oversight words"):
        gap = rate(CUES[name], fake) - rate(CUES[name], evidence)
        assert abs(gap) <= 0.2, f"{bank.domain}: {name} in {gap:+.2f} more of the invented sources"
    ratio = statistics.mean(len(words(s)) for s in fake) / statistics.mean(len(words(e)) for e in evidence)
    assert 0.8 <= ratio <= 1.25, f"{bank.domain}: invented sources are {ratio:.2f}x the evidence length"
