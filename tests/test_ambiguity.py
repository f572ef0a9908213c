"""Ambiguity scoring and routing: every signal, kept reasons, the threshold."""

from __future__ import annotations

import pytest
from curation_items import frame, item

from curation.ambiguity import RouteAmbiguous
from curation.config import RouteConfig

Q = "Is it safe to take ibuprofen every day?"
C = "For short periods it is usually fine, but long-term daily use needs a doctor's review."
R = "Yes, it is completely safe forever at any dose."


def route(rows: list[dict], config: RouteConfig | None = None) -> dict[str, dict]:
    result = RouteAmbiguous(config or RouteConfig())(frame(rows))
    assert result.dropped.height == 0  # routing never drops
    return {r["id"]: r for r in result.kept.iter_rows(named=True)}


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (item("split", Q, C, R, votes=["chosen", "rejected", "chosen"], confidence=0.9), "judge_votes_split"),
        (item("unsure", Q, C, R, votes=["chosen"] * 3, confidence=0.3), "low_judge_confidence"),
        (item("similar", Q, C, C + " Really."), "responses_too_similar"),
        (
            item("gold", Q, C, R, label_source="gold", votes=["rejected", "rejected"], confidence=0.9),
            "gold_contradicted_by_judge",
        ),
    ],
)
def test_each_signal_routes_with_its_reason(row: dict, reason: str) -> None:
    out = route([row])[row["id"]]
    assert out["status"] == "routed"
    assert reason in out["ambiguity_reasons"]
    assert 0.5 <= out["ambiguity"] <= 1.0


def test_a_clear_item_is_accepted_with_zero_ambiguity() -> None:
    out = route([item("clear", Q, C, R, votes=["chosen"] * 5, confidence=0.95)])["clear"]
    assert (out["status"], out["ambiguity"], out["ambiguity_reasons"]) == ("accepted", 0.0, [])


def test_reasons_set_earlier_are_kept_and_scored() -> None:
    rows = [
        item("judge", Q, C, R, reasons=["judge_disagrees_with_label"]),
        item("conflict", Q, C, R, reasons=["near_duplicate_label_conflict"]),
        item("other", Q, C, R, reasons=["annotator_flagged"], votes=["chosen", "rejected"], confidence=0.9),
    ]
    out = route(rows)
    assert (
        out["judge"]["ambiguity_reasons"] == ["judge_disagrees_with_label"]
        and out["judge"]["ambiguity"] == 1.0
    )
    assert out["conflict"]["ambiguity"] == 1.0
    assert out["other"]["ambiguity_reasons"] == ["annotator_flagged", "judge_votes_split"]
    assert all(r["status"] == "routed" for r in out.values())


def test_threshold_decides_and_report_counts() -> None:
    rows = [
        item("split", Q, C, R, votes=["chosen", "chosen", "rejected"], confidence=0.9),
        item("ok", Q, C, R),
    ]
    assert route(rows, RouteConfig(route_threshold=0.7))["split"]["status"] == "accepted"
    result = RouteAmbiguous()(frame(rows))
    assert result.report == {"routed": 1, "threshold": 0.5, "reasons": {"judge_votes_split": 1}}
