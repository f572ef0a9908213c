"""Surface-cue audit: can shallow features of a response alone tell chosen from rejected?

A pairwise logistic regression (L2, Newton steps in numpy) on the difference of shallow
per-response features — word and sentence counts, first word, first two words, last
word, counts of hedges, citation words, agreement phrases, apologies, negations,
oversight words, digits, "?" and "!" — is trained on the train split and scored on the
test split (grouped k-fold cross-validation when there is no test split). Near 0.5 means
only the trait is left to learn; high means the two sides are written in two voices
(DESIGN.md, "the voice gives the label away"). Not related to ``annotation``'s audit
sampling of human labels.

Input columns: ``chosen``, ``rejected`` (lists of ``{role, content}``), optional ``split``,
``provenance.generator`` / ``provenance.source`` (per-template table) and
``provenance.group`` (cross-validation folds).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import polars as pl

MAX_PAIRS = 6000  # pairs audited at most (a seeded sample above that): seconds, not minutes
WARN_ABOVE = 0.65
LEXICONS = {
    "hedges": r"\b(may|might|could|often|usually|perhaps|possibly|likely|typically|generally|sometimes|"
    r"depends|evidence|suggests?|uncertain)\b",
    "citation words": r"\b(study|studies|survey|surveys|research|journal|trial|trials|report|published)\b"
    r"|\b(19|20)\d\d\b",
    "agreement": r"\b(you'?re right|absolutely|of course|exactly|that'?s correct|good point|fair point"
    r"|agreed)\b",
    "apologies": r"\b(sorry|apolog\w*|my mistake|my bad)\b",
    "negations": r"\b(no|not|never|none|nothing|nobody|neither|nor|cannot|without)\b|n't\b",
    "oversight words": r"\b(review\w*|paus\w*|approv\w*|sign-?off|oversight|supervis\w*|audit\w*|check\w*)\b",
    "digits": r"\d",
    "question marks": r"\?",
    "exclamation marks": r"!",
}
_COMPILED = {name: re.compile(rx, re.I) for name, rx in LEXICONS.items()}
_WORD = re.compile(r"[A-Za-z0-9']+")
_SENTENCE = re.compile(r"[.!?]+(\s|$)")
CATEGORICAL = ("first word", "first two words", "last word")
MIN_TOKEN_COUNT = 2  # a categorical value seen fewer times in training is not a feature


@dataclass
class AuditReport:
    accuracy: float
    method: str  # "train/test" or "grouped 5-fold"
    pairs: int  # scored pairs
    cues: list[dict[str, Any]] = field(default_factory=list)  # feature, weight (>0 favours chosen), example
    by_template: dict[str, dict[str, float | int]] = field(default_factory=dict)
    length: dict[str, float] = field(default_factory=dict)
    openings: dict[str, dict[str, int]] = field(default_factory=dict)  # side → first word → count

    @property
    def leaks(self) -> bool:
        return self.accuracy > WARN_ABOVE

    def worst(self, n: int = 3) -> list[str]:
        """Templates with the highest accuracy above the warning line, worst first."""
        ranked = sorted(self.by_template.items(), key=lambda kv: -float(kv[1]["accuracy"]))
        return [name for name, s in ranked if float(s["accuracy"]) > WARN_ABOVE][:n]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def response_features(text: str) -> tuple[dict[str, float], dict[str, str]]:
    """(numeric features, categorical features) of one response."""
    words = _WORD.findall(text)
    lower = [w.lower() for w in words]
    numeric = {
        "word count": float(np.log1p(len(words))),
        "sentence count": float(max(1, len(_SENTENCE.findall(text)))),
        **{name: float(len(rx.findall(text))) for name, rx in _COMPILED.items()},
    }
    categorical = {
        "first word": lower[0] if lower else "",
        "first two words": " ".join(lower[:2]),
        "last word": lower[-1] if lower else "",
    }
    return numeric, categorical


def _texts(frame: pl.DataFrame, side: str) -> list[str]:
    return ["\n".join(m["content"] for m in (msgs or [])) for msgs in frame[side].to_list()]


class _Featurizer:
    """Numeric features standardized on training data plus one-hot categorical values."""

    def __init__(self, chosen: list[tuple[dict, dict]], rejected: list[tuple[dict, dict]]):
        counts: Counter[tuple[str, str]] = Counter()
        for _, cat in chosen + rejected:
            counts.update(cat.items())
        self.numeric = list(chosen[0][0]) if chosen else []
        # A value seen in fewer than 1 in 500 responses cannot be a cue the audit should name,
        # and every kept value is a column of a dense Newton step (cost ~ columns²).
        least = max(MIN_TOKEN_COUNT, len(chosen + rejected) // 500)
        self.tokens = sorted(k for k, c in counts.items() if c >= least)
        self.index = {k: i for i, k in enumerate(self.tokens)}
        spread = np.vstack([self._raw(chosen), self._raw(rejected)]).std(0)
        self.scale = np.where(spread > 1e-9, spread, 1.0)  # numeric features on one scale
        self.scale[len(self.numeric) :] = 1.0

    @property
    def names(self) -> list[str]:
        return self.numeric + [f"{k} = {v!r}" for k, v in self.tokens]

    def _raw(self, feats: list[tuple[dict, dict]]) -> np.ndarray:
        out = np.zeros((len(feats), len(self.numeric) + len(self.tokens)))
        for row, (num, cat) in enumerate(feats):
            out[row, : len(self.numeric)] = [num[k] for k in self.numeric]
            for item in cat.items():
                j = self.index.get(item)
                if j is not None:
                    out[row, len(self.numeric) + j] = 1.0
        return out

    def diff(self, chosen: list[tuple[dict, dict]], rejected: list[tuple[dict, dict]]) -> np.ndarray:
        return (self._raw(chosen) - self._raw(rejected)) / self.scale


def fit_pairwise(diffs: np.ndarray, l2: float = 1.0, steps: int = 30) -> np.ndarray:
    """Weights w with P(chosen first) = σ(w·d), by Newton steps on the L2-penalized log loss.

    Each pair enters twice (d, 1) and (−d, 0), so no intercept is needed and a pair whose
    features are equal on both sides gives no push in any direction.
    """
    x = np.vstack([diffs, -diffs])
    y = np.concatenate([np.ones(len(diffs)), np.zeros(len(diffs))])
    w = np.zeros(x.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        grad = x.T @ (p - y) + l2 * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + l2 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-6:
            break
    return w


def _correct(margins: np.ndarray) -> np.ndarray:
    """1 when the chosen side wins, 0.5 on a tie (features equal), 0 otherwise."""
    return np.where(margins > 1e-9, 1.0, np.where(margins < -1e-9, 0.0, 0.5))


def audit(frame: pl.DataFrame, folds: int = 5, seed: int = 0, max_pairs: int = MAX_PAIRS) -> AuditReport:
    """The surface-cue audit of a preference table (see the module docstring for columns).

    Above ``max_pairs`` pairs it audits a seeded sample of that many: the accuracy of a shallow
    classifier is a statistic, and fitting on every pair of a 100k-item run would take minutes."""
    if frame.height < 4:
        raise ValueError(f"the surface audit needs at least 4 pairs, got {frame.height}")
    sampled = ""
    if frame.height > max_pairs:
        sampled = f", a seeded sample of {max_pairs} of {frame.height} pairs"
        frame = frame.sample(n=max_pairs, seed=seed)
    chosen_text, rejected_text = _texts(frame, "chosen"), _texts(frame, "rejected")
    chosen = [response_features(t) for t in chosen_text]
    rejected = [response_features(t) for t in rejected_text]
    templates = _provenance(frame, "generator", "source")
    groups = _provenance(frame, "group", "id")
    split = frame["split"].to_list() if "split" in frame.columns else [None] * frame.height
    test = np.array([s == "test" for s in split])
    if test.any() and (~test).sum() >= 2:
        plan, method = [(~test, test)], "train/test"
    else:
        plan, method = _group_folds(groups, folds, seed), f"grouped {folds}-fold"
    correct = np.full(frame.height, np.nan)
    for train, held in plan:
        featurizer = _Featurizer(_pick(chosen, train), _pick(rejected, train))
        w = fit_pairwise(featurizer.diff(_pick(chosen, train), _pick(rejected, train)))
        correct[held] = _correct(featurizer.diff(_pick(chosen, held), _pick(rejected, held)) @ w)
    scored = ~np.isnan(correct)
    full = _Featurizer(chosen, rejected)
    diffs = full.diff(chosen, rejected)
    weights = fit_pairwise(diffs)
    return AuditReport(
        accuracy=round(float(correct[scored].mean()), 4),
        method=method + sampled,
        pairs=int(scored.sum()),
        cues=_cues(full.names, weights, diffs, chosen_text, rejected_text),
        by_template=_by_template(templates, correct),
        length=_lengths(chosen, rejected),
        openings={
            "chosen": dict(Counter(c["first word"] for _, c in chosen).most_common(8)),
            "rejected": dict(Counter(c["first word"] for _, c in rejected).most_common(8)),
        },
    )


def _pick(items: list, mask: np.ndarray) -> list:
    return [x for x, keep in zip(items, mask, strict=True) if keep]


def _provenance(frame: pl.DataFrame, key: str, fallback: str) -> list[str]:
    if "provenance" in frame.columns:
        prov = frame["provenance"].to_list()
        values = [(p or {}).get(key) or (p or {}).get(fallback) for p in prov]
        if any(values):
            return [str(v) if v else "?" for v in values]
    if fallback in frame.columns:
        return [str(v) for v in frame[fallback].to_list()]
    return [str(i) for i in range(frame.height)]


def _group_folds(groups: list[str], folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    unique = sorted(set(groups))
    order = np.random.default_rng(seed).permutation(len(unique))
    fold_of = {unique[i]: k % folds for k, i in enumerate(order)}
    assignment = np.array([fold_of[g] for g in groups])
    plan = []
    for k in range(min(folds, len(unique))):
        held = assignment == k
        if held.any() and (~held).any():
            plan.append((~held, held))
    return plan


def _cues(
    names: list[str], weights: np.ndarray, diffs: np.ndarray, chosen: list[str], rejected: list[str]
) -> list[dict[str, Any]]:
    """The ten strongest features, each with the response that shows it most (the side it favours)."""
    out = []
    for j in np.argsort(-np.abs(weights))[:10]:
        if abs(weights[j]) < 1e-6:
            break
        row = int(np.argmax(diffs[:, j] * np.sign(weights[j])))
        text = chosen[row] if weights[j] > 0 else rejected[row]
        side = "chosen" if weights[j] > 0 else "rejected"
        out.append(
            {
                "feature": names[j],
                "weight": round(float(weights[j]), 3),
                "favours": side,
                "example": text[:160],
            }
        )
    return out


def _by_template(templates: list[str], correct: np.ndarray) -> dict[str, dict[str, float | int]]:
    table: dict[str, list[float]] = {}
    for name, value in zip(templates, correct, strict=True):
        if not np.isnan(value):
            table.setdefault(name, []).append(float(value))
    return {k: {"pairs": len(v), "accuracy": round(float(np.mean(v)), 4)} for k, v in sorted(table.items())}


def _lengths(chosen: list[tuple[dict, dict]], rejected: list[tuple[dict, dict]]) -> dict[str, float]:
    c = np.expm1([f["word count"] for f, _ in chosen])
    r = np.expm1([f["word count"] for f, _ in rejected])
    return {
        "chosen_mean_words": round(float(c.mean()), 1),
        "rejected_mean_words": round(float(r.mean()), 1),
        "median_ratio": round(float(np.median(c / np.maximum(r, 1))), 3),
    }
