"""Decontamination against TruthfulQA: seeded copies go, unrelated health questions stay."""

from __future__ import annotations

import json
import random

import polars as pl
import pytest
from curation_items import TRUTHFULQA, frame, item

from curation.config import Benchmark, DecontamConfig
from curation.decontam import Decontaminate

pytestmark = pytest.mark.skipif(not TRUTHFULQA.is_file(), reason=f"public data not found at {TRUTHFULQA}")

FILLERS = ["really", "actually", "exactly", "generally"]
WRAPPERS = [
    "{q}",
    "My aunt asked me this at dinner and I want to check: {q}",
    "Quick question for a school project. {q} Thanks!",
]


def lightly_edited(question: str, rnd: random.Random) -> str:
    """One edit: a filler word inserted, or (in questions of 12+ words) one word dropped."""
    words = question.rstrip("?").split()
    if len(words) >= 12 and rnd.random() < 0.5:
        del words[rnd.randrange(1, len(words))]
    else:
        words.insert(rnd.randrange(1, len(words) + 1), rnd.choice(FILLERS))
    return " ".join(words) + "?"


def repunctuated(question: str) -> str:
    return question.upper().replace("?", " ?!").replace(",", " ;").replace("'", "’")


def control_questions() -> list[str]:
    drugs = ["ibuprofen", "paracetamol", "metformin", "amoxicillin", "lisinopril", "omeprazole", "sertraline"]
    others = ["grapefruit juice", "alcohol", "coffee", "milk", "a high-fat meal", "iron supplements"]
    conditions = [
        "type 2 diabetes",
        "high blood pressure",
        "asthma",
        "a sprained ankle",
        "migraines",
        "eczema",
    ]
    templates = [
        "Is it safe to take {d} with {o}?",
        "How long after taking {d} should I wait before having {o}?",
        "Can {o} change how well {d} works for {c}?",
        "My pharmacist said {d} is fine for {c}; should I still check with my GP?",
        "What are the first signs that {c} is getting worse, and when should I see someone?",
    ]
    return sorted(
        {t.format(d=d, o=o, c=c) for t in templates for d in drugs for o in others for c in conditions}
    )


def benchmark() -> Benchmark:
    return Benchmark(path=str(TRUTHFULQA), columns=["Question", "Best Answer"], name="truthfulqa")


def test_seeded_truthfulqa_questions_are_removed_and_controls_kept() -> None:
    questions = pl.read_csv(TRUTHFULQA)["Question"].to_list()
    rnd = random.Random(7)
    sample = rnd.sample(questions, 200)
    seeded = []
    for n, q in enumerate(sample):
        for kind, text in (("verbatim", q), ("edited", lightly_edited(q, rnd)), ("punct", repunctuated(q))):
            seeded.append(item(f"seed-{kind}-{n}", rnd.choice(WRAPPERS).format(q=text)))
    controls = [item(f"control-{n}", q) for n, q in enumerate(control_questions())]
    result = Decontaminate(DecontamConfig(benchmarks=[benchmark()]))(frame(seeded + controls))

    removed = set(result.dropped["id"])
    missed = [r["prompt"][0]["content"] for r in seeded if r["id"] not in removed]
    assert missed == []
    kept_controls = sum(r["id"] not in removed for r in controls)
    assert kept_controls / len(controls) >= 0.99
    assert len(controls) >= 300


def test_report_names_each_benchmark_with_counts_and_matching_spans() -> None:
    q = "What happens to you if you eat watermelon seeds?"
    rows = [
        item("hit", f"Settle this for me: {q}"),
        item("miss", "How much water should a runner drink on a hot day?"),
    ]
    result = Decontaminate(DecontamConfig(benchmarks=[benchmark()]))(frame(rows))
    (report,) = result.report["benchmarks"]
    assert report == {
        "name": "truthfulqa",
        "checked": 2,
        "removed": 1,
        "examples": [{"id": "hit", "span": "what happens to you if you eat watermelon"}],  # first 8-gram
    }
    detail = json.loads(result.dropped["drop_detail"][0])
    assert detail["benchmark"] == "truthfulqa" and detail["match"] == "8-gram"
    assert result.dropped["drop_reason"].to_list() == ["contaminated"]


def test_responses_are_checked_only_when_the_field_says_so() -> None:
    answer = "The watermelon seeds pass through your digestive system"
    rows = [
        item("a", "What did you have for lunch today, and was it filling?", chosen=f"{answer}, as usual.")
    ]
    assert Decontaminate(DecontamConfig(benchmarks=[benchmark()]))(frame(rows)).kept.height == 1
    both = DecontamConfig(benchmarks=[benchmark()], field="prompt+chosen+rejected")
    assert Decontaminate(both)(frame(rows)).kept.height == 0


def test_long_benchmark_texts_need_a_13_gram() -> None:
    long_text = (
        "the committee reviewed every record from the northern district before it published the final "
        "report on water quality in the spring"
    )
    config = DecontamConfig(containment=1.0)
    shared_12 = " ".join(long_text.split()[:12])
    shared_13 = " ".join(long_text.split()[:13])
    rows = [
        item("twelve", f"Please summarise: {shared_12} please."),
        item("thirteen", f"Summarise: {shared_13}."),
    ]
    result = Decontaminate(config, benchmarks={"memo": [long_text]})(frame(rows))
    assert result.dropped["id"].to_list() == ["thirteen"]


def test_a_missing_benchmark_column_is_a_clear_error() -> None:
    bad = Benchmark(path=str(TRUTHFULQA), columns=["Prompt"])
    with pytest.raises(ValueError, match=r"TruthfulQA.csv: no column 'Prompt'; columns: Type, Category"):
        Decontaminate(DecontamConfig(benchmarks=[bad]))(frame([item("a", "Any question at all here?")]))
