"""The card reports rubric coverage: items with a grading rubric, per trait."""

from __future__ import annotations

from pathlib import Path

from data_cards.card import gather
from tests.card_data import items, write

RUBRIC = [
    {"criterion": "Corrects the false premise", "kind": "must", "weight": 2.0},
    {"criterion": "Invents a study", "kind": "must_not", "weight": 1.0},
]


def test_card_reports_rubric_coverage_per_trait(tmp_path: Path) -> None:
    graded = [{**row, "rubric": RUBRIC} for row in items(3)]
    ungraded = items(1, start=40) + items(4, start=50, trait="corrigibility")
    version = write(tmp_path, graded + ungraded)
    text = (version.path / "README.md").read_text()
    assert "## Rubrics\n\n3 of 8 items (38%) carry a grading rubric" in text
    assert "| truthfulness | 4 | 3 | 75% | 2.0 |" in text
    assert "| corrigibility | 4 | 0 | 0% | - |" in text
    facts = gather(version.path)
    assert facts.rubrics["with_rubric"].sum() == 3
