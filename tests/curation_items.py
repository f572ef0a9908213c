"""Building item frames for the curation tests (a helper module, not a test file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from core.schema import from_rows, messages

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TRUTHFULQA = DATA / "truthfulqa" / "TruthfulQA.csv"


def item(
    key: str,
    prompt: str,
    chosen: str = "A careful, accurate answer that explains what the evidence shows.",
    rejected: str = "A confident answer that gets the facts wrong and never says so.",
    *,
    trait: str = "truthfulness",
    label_source: str = "contrastive",
    votes: list[str] | None = None,
    confidence: float | None = None,
    reasons: list[str] | None = None,
    group: str | None = None,
) -> dict[str, Any]:
    judge = (
        None
        if votes is None and confidence is None
        else {
            "votes": votes or [],
            "scores": [],
            "confidence": confidence,
            "model": "test-judge",
        }
    )
    return {
        "id": key,
        "domain": "health",
        "trait": trait,
        "prompt": messages("user", prompt),
        "chosen": messages("assistant", chosen),
        "rejected": messages("assistant", rejected),
        "label_source": label_source,
        "judge": judge,
        "ambiguity_reasons": reasons or [],
        "provenance": {"source": "test", "group": group or key},
        "status": "accepted",
    }


def frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    out = pl.from_arrow(from_rows(rows))
    assert isinstance(out, pl.DataFrame)
    return out
