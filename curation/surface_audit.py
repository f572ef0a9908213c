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

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import polars as pl

from curation.text import column_text

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
# Counted with polars' Rust regexes: the same matches as Python's ``re`` for these patterns.
_WORD = r"[A-Za-z0-9']+"
_GAP = r"[^A-Za-z0-9']+"
_SENTENCE = r"[.!?]+(\s|$)"
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
    """(numeric features, categorical features) of one response (:func:`features` does a batch)."""
    table = features(pl.Series([text], dtype=pl.String))
    return {k: float(v) for k, v in zip(NUMERIC, table.numeric[0], strict=True)}, {
        k: str(v[0]) for k, v in zip(CATEGORICAL, table.categorical, strict=True)
    }


NUMERIC = ("word count", "sentence count", *LEXICONS)


@dataclass
class Features:
    """Shallow features of a batch of responses: a (rows, NUMERIC) matrix and one string array per
    :data:`CATEGORICAL` feature."""

    numeric: np.ndarray
    categorical: list[np.ndarray]

    def pick(self, mask: np.ndarray) -> Features:
        return Features(self.numeric[mask], [c[mask] for c in self.categorical])

    def __len__(self) -> int:
        return len(self.numeric)


def features(texts: pl.Series) -> Features:
    """Every feature of every text in one polars ``select`` (Rust regexes, no Python loop per text)."""
    frame = pl.DataFrame({"t": texts.fill_null("")})
    text = pl.col("t")
    # The words counted and the first, second and last one matched in place: extracting every
    # word into a list per text cost most of the audit's time.
    first = text.str.extract(f"({_WORD})", 1)
    second = text.str.extract(f"{_WORD}{_GAP}({_WORD})", 1)
    table = frame.select(
        _words=text.str.count_matches(_WORD),
        _sentences=text.str.count_matches(_SENTENCE),
        **{name: text.str.count_matches("(?i)" + rx) for name, rx in LEXICONS.items()},
        first=first.fill_null("").str.to_lowercase(),
        two=pl.when(second.is_null())
        .then(first)
        .otherwise(first + " " + second)
        .fill_null("")
        .str.to_lowercase(),
        last=text.str.extract(f"({_WORD})(?:{_GAP})?$", 1).fill_null("").str.to_lowercase(),
    )
    numeric = np.empty((frame.height, len(NUMERIC)))
    numeric[:, 0] = np.log1p(table["_words"].to_numpy())
    numeric[:, 1] = np.maximum(1, table["_sentences"].to_numpy())
    for j, name in enumerate(LEXICONS, start=2):
        numeric[:, j] = table[name].to_numpy()
    categorical = [table[c].to_numpy().astype(object) for c in ("first", "two", "last")]
    return Features(numeric, categorical)


def _texts(frame: pl.DataFrame, side: str) -> pl.Series:
    return frame.select(column_text(frame, side).alias(side))[side]


class _Featurizer:
    """Numeric features standardized on training data plus one-hot categorical values."""

    def __init__(self, chosen: Features, rejected: Features):
        self.numeric = list(NUMERIC)
        # A value seen in fewer than 1 in 500 responses cannot be a cue the audit should name,
        # and every kept value is a column of the Newton step.
        least = max(MIN_TOKEN_COUNT, (len(chosen) + len(rejected)) // 500)
        # Counted and looked up in polars: a Python loop over every value held the GIL the
        # parquet writes and the card's figure, running beside the audit, wait on.
        kept = []
        for key, c, r in zip(CATEGORICAL, chosen.categorical, rejected.categorical, strict=True):
            counts = _strings(np.concatenate([c, r])).value_counts()
            kept += [(key, v) for v, n in counts.iter_rows() if n >= least]
        self.tokens = sorted(kept)
        self.index = {k: i for i, k in enumerate(self.tokens)}
        spread = np.vstack([self._raw(chosen), self._raw(rejected)]).std(0)
        self.scale = np.where(spread > 1e-9, spread, 1.0)  # numeric features on one scale
        self.scale[len(self.numeric) :] = 1.0

    @property
    def names(self) -> list[str]:
        return self.numeric + [f"{k} = {v!r}" for k, v in self.tokens]

    def _raw(self, feats: Features) -> np.ndarray:
        out = np.zeros((len(feats), len(self.numeric) + len(self.tokens)))
        out[:, : len(self.numeric)] = feats.numeric
        for key, values in zip(CATEGORICAL, feats.categorical, strict=True):
            known = {v: i for (k, v), i in self.index.items() if k == key}
            lookup = _strings(values).replace_strict(known, default=-1, return_dtype=pl.Int64)
            column = lookup.to_numpy()
            rows = np.flatnonzero(column >= 0)
            out[rows, len(self.numeric) + column[rows]] = 1.0
        return out

    def diff(self, chosen: Features, rejected: Features) -> np.ndarray:
        return (self._raw(chosen) - self._raw(rejected)) / self.scale


def _strings(values: np.ndarray) -> pl.Series:
    return pl.Series(values, dtype=pl.String)


def fit_pairwise(diffs: np.ndarray, l2: float = 1.0, steps: int = 30) -> np.ndarray:
    """Weights w with P(chosen first) = σ(w·d), by Newton steps on the L2-penalized log loss.

    Each pair enters twice (d, 1) and (−d, 0), so no intercept is needed and a pair whose
    features are equal on both sides gives no push in any direction. The two copies are kept
    implicit, and the differences are sparse (one-hot values mostly cancel or are absent), so
    each step multiplies a sparse matrix: milliseconds where the dense 2n x d products took 0.2 s.
    """
    from scipy import sparse  # imported here: only an audit needs it
    from threadpoolctl import threadpool_limits

    d = sparse.csr_matrix(diffs)
    dt = d.T.tocsr()
    w = np.zeros(diffs.shape[1])
    # One BLAS thread: a ~200 x 200 solve takes a millisecond, but OpenBLAS's threads, fighting
    # polars' for the cores, made each one take 0.2 s on a busy 2-core machine.
    with threadpool_limits(1, user_api="blas"):
        for _ in range(steps):
            margin = d @ w
            p = 1.0 / (1.0 + np.exp(-margin))  # the (d, 1) copy
            q = 1.0 / (1.0 + np.exp(margin))  # the (−d, 0) copy
            grad = dt @ (p - 1.0 - q) + l2 * w
            curve = p * (1 - p) + q * (1 - q)
            hess = (dt.multiply(curve[None, :]).tocsr() @ d).toarray() + l2 * np.eye(len(w))
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
    chosen, rejected = features(chosen_text), features(rejected_text)
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
        featurizer = _Featurizer(chosen.pick(train), rejected.pick(train))
        w = fit_pairwise(featurizer.diff(chosen.pick(train), rejected.pick(train)))
        correct[held] = _correct(featurizer.diff(chosen.pick(held), rejected.pick(held)) @ w)
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
            "chosen": dict(Counter(chosen.categorical[0].tolist()).most_common(8)),
            "rejected": dict(Counter(rejected.categorical[0].tolist()).most_common(8)),
        },
    )


def _provenance(frame: pl.DataFrame, key: str, fallback: str) -> list[str]:
    """Per row: provenance ``key``, else ``fallback``, else ``"?"``; a frame without either gives
    the ``fallback`` column, or row numbers."""
    fast = _provenance_strings(frame, key, fallback)
    if fast is not None:
        return fast
    if "provenance" in frame.columns:
        prov = frame["provenance"].to_list()
        values = [(p or {}).get(key) or (p or {}).get(fallback) for p in prov]
        if any(values):
            return [str(v) if v else "?" for v in values]
    if fallback in frame.columns:
        return [str(v) for v in frame[fallback].to_list()]
    return [str(i) for i in range(frame.height)]


def _provenance_strings(frame: pl.DataFrame, key: str, fallback: str) -> list[str] | None:
    """:func:`_provenance` in polars when both fields are strings (a run's items): converting every
    provenance struct to a Python dict cost ~60 ms an audit. None: use the general path."""
    if "provenance" not in frame.columns or not isinstance(frame["provenance"].dtype, pl.Struct):
        return None
    prov = frame["provenance"]
    fields = [prov.struct.field(f) for f in (key, fallback) if f in prov.struct.fields]
    if not fields or any(f.dtype != pl.String for f in fields):
        return None
    # Python's ``a or b``: an empty string counts as missing, like None.
    picked = frame.select(pl.coalesce([pl.when(f != "").then(f) for f in fields]))[:, 0]
    if picked.null_count() == frame.height:
        return None  # no provenance at all: the general path's fallbacks
    return picked.fill_null("?").to_list()


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
    names: list[str], weights: np.ndarray, diffs: np.ndarray, chosen: pl.Series, rejected: pl.Series
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


def _lengths(chosen: Features, rejected: Features) -> dict[str, float]:
    c = np.expm1(chosen.numeric[:, 0])
    r = np.expm1(rejected.numeric[:, 0])
    return {
        "chosen_mean_words": round(float(c.mean()), 1),
        "rejected_mean_words": round(float(r.mean()), 1),
        "median_ratio": round(float(np.median(c / np.maximum(r, 1))), 3),
    }
