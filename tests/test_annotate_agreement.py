from __future__ import annotations

import numpy as np
import pytest

from annotation.agreement import _alpha, agreement, audit_accuracy, cohen_kappa, resolve
from annotation.queue import Response


def test_alpha_matches_krippendorffs_published_nominal_example():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability", example C:
    # 4 observers, 12 units, missing values; nominal alpha = 0.743.
    n = np.nan
    data = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, n, n, n],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, n, 3],
        [n, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, n],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, n],
    ]
    assert _alpha(np.array(data, dtype=float)) == pytest.approx(0.743, abs=5e-4)


def test_kappa_matches_the_textbook_example():
    # Wikipedia "Cohen's kappa", worked example: 50 proposals, 20 yes/yes, 5 yes/no,
    # 10 no/yes, 15 no/no: p_o = 0.7, p_e = 0.5, kappa = 0.4.
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa(["tie", "tie"], ["tie", "tie"]) is None  # chance agreement 1: undefined


def r(item: str, who: str, label: str) -> Response:
    return Response(item, who, label, False, [], "", "web")


def test_agreement_over_responses():
    responses = [
        r("i1", "ann", "chosen"), r("i1", "bob", "chosen"),
        r("i2", "ann", "rejected"), r("i2", "bob", "rejected"),
        r("i3", "ann", "chosen"), r("i3", "bob", "tie"),
        r("i4", "ann", "both_bad"),  # one label only: not part of agreement
    ]  # fmt: skip
    got = agreement(responses)
    assert (got.items, got.annotators) == (3, 2)
    assert list(got.cohen_kappa) == ["ann|bob"]
    # ann: c, r, c (+ both_bad on i4 not shared); bob: c, r, t → p_o = 2/3, p_e = (2*1 + 1*1)/9
    assert got.cohen_kappa["ann|bob"] == pytest.approx((2 / 3 - 3 / 9) / (1 - 3 / 9))
    assert got.krippendorff_alpha is not None and 0 < got.krippendorff_alpha < 1
    perfect = agreement(
        [r("i1", "a", "chosen"), r("i1", "b", "chosen"), r("i2", "a", "tie"), r("i2", "b", "tie")]
    )
    assert perfect.krippendorff_alpha == pytest.approx(1.0)
    assert agreement([r("i1", "a", "chosen"), r("i1", "b", "chosen")]).krippendorff_alpha is None


def test_majority_and_tie_rule():
    assert resolve(["chosen", "chosen"], k=2) == "chosen"
    assert resolve(["rejected", "rejected", "chosen"], k=2) == "rejected"
    assert resolve(["chosen"], k=2) is None, "fewer than k labels"
    assert resolve(["chosen", "rejected"], k=2) is None, "a tied vote stays routed"
    assert resolve(["both_bad", "both_bad", "tie"], k=3) == "both_bad"


def test_audit_accuracy_wilson_interval():
    # 8 of 10 agree: Wilson 95% interval [0.490, 0.943] (Newcombe 1998, method 3).
    est = audit_accuracy(["chosen"] * 8 + ["rejected", "both_bad", None])
    assert (est.resolved, est.agreed, est.accuracy) == (10, 8, 0.8)
    assert est.low == pytest.approx(0.490, abs=1e-3)
    assert est.high == pytest.approx(0.943, abs=1e-3)
    assert audit_accuracy([None]).accuracy is None
