"""Agreement between annotators, majority resolution, and audit accuracy.

Krippendorff's alpha comes from the ``krippendorff`` package, Cohen's kappa from
scikit-learn and the audit confidence interval from SciPy; tests check them against
published worked examples. Labels are nominal: chosen, rejected, tie, both_bad.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import krippendorff
import numpy as np
from scipy.stats import binomtest
from sklearn.metrics import cohen_kappa_score

from annotation.queue import LABELS, Response

TIE_RULE = (
    "an item is resolved when it has at least k labels and one label has strictly more votes "
    "than any other; when the top labels tie it stays routed for another annotator"
)


@dataclass
class Agreement:
    items: int  # items with at least two labels (the ones agreement is measured on)
    annotators: int
    krippendorff_alpha: float | None
    cohen_kappa: dict[str, float | None] = field(default_factory=dict)  # "a|b" → kappa on shared items


def by_item(responses: Iterable[Response]) -> dict[str, list[Response]]:
    grouped: dict[str, list[Response]] = defaultdict(list)
    for r in responses:
        grouped[r.item_id].append(r)
    return dict(grouped)


def agreement(responses: Sequence[Response]) -> Agreement:
    """Alpha over every item with two or more labels; kappa for every pair of annotators
    who labelled at least two items in common (None where it is undefined)."""
    grouped = {i: rs for i, rs in by_item(responses).items() if len(rs) >= 2}
    annotators = sorted({r.annotator for rs in grouped.values() for r in rs})
    code = {label: n for n, label in enumerate(LABELS)}
    alpha = None
    if grouped:
        matrix = np.full((len(annotators), len(grouped)), np.nan)
        column = {item: n for n, item in enumerate(grouped)}
        row = {name: n for n, name in enumerate(annotators)}
        for item, rs in grouped.items():
            for r in rs:
                matrix[row[r.annotator], column[item]] = code[r.label]
        alpha = _alpha(matrix)
    kappas: dict[str, float | None] = {}
    labels_of: dict[str, dict[str, str]] = defaultdict(dict)
    for r in responses:
        labels_of[r.annotator][r.item_id] = r.label
    for a, b in combinations(annotators, 2):
        shared = sorted(labels_of[a].keys() & labels_of[b].keys())
        if len(shared) >= 2:
            kappas[f"{a}|{b}"] = cohen_kappa(
                [labels_of[a][i] for i in shared], [labels_of[b][i] for i in shared]
            )
    return Agreement(len(grouped), len(annotators), alpha, kappas)


def _alpha(matrix: np.ndarray) -> float | None:
    """Nominal alpha; None when it is undefined (every label the same: no variation)."""
    values = matrix[~np.isnan(matrix)]
    if np.unique(values).size < 2:
        return None
    return float(krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal"))


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Cohen's kappa; None when chance agreement is 1 (both gave one and the same label
    throughout), where kappa is 0/0."""
    if len(set(a) | set(b)) < 2:
        return None
    return float(cohen_kappa_score(list(a), list(b)))


def resolve(labels: Sequence[str], k: int) -> str | None:
    """The majority label, or None while unresolved (see :data:`TIE_RULE`)."""
    if len(labels) < k or not labels:
        return None
    ranked = Counter(labels).most_common()
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        return None
    return ranked[0][0]


@dataclass
class AuditEstimate:
    """How often people agreed with the pipeline's label on audited accepted items."""

    resolved: int
    agreed: int
    accuracy: float | None
    low: float | None  # 95% Wilson interval
    high: float | None


def audit_accuracy(resolutions: Iterable[str | None], confidence: float = 0.95) -> AuditEstimate:
    """``resolutions`` are majority labels of audited accepted items (None: unresolved).
    ``chosen`` means people agreed with the stored preference; anything else disagrees."""
    settled = [r for r in resolutions if r is not None]
    agreed = sum(r == "chosen" for r in settled)
    if not settled:
        return AuditEstimate(0, 0, None, None, None)
    ci = binomtest(agreed, len(settled)).proportion_ci(confidence_level=confidence, method="wilson")
    return AuditEstimate(len(settled), agreed, agreed / len(settled), float(ci.low), float(ci.high))
