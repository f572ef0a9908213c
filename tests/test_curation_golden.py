"""The optimised curation stages give the output the first, straightforward ones gave.

A fixed synthetic corpus (English words, planted near-duplicates, label conflicts, PII, refusals,
judge splits and benchmark copies) runs through every default stage plus decontamination; the
digest of everything a version would hold (kept rows with their ambiguity and status, dropped rows
with stage, reason and detail, and each stage's funnel step) was recorded with the code as it stood
before the speed work (commit da2e895). A change that alters any byte of that output fails here.
"""

from __future__ import annotations

import hashlib
import json
import random

import polars as pl
from curation_items import frame, item

from curation.config import Benchmark, CurationConfig, DecontamConfig, FilterConfig
from curation.decontam import Decontaminate
from curation.pipeline import curation_stages
from curation.stage import Funnel, run_stages

# Digest of the stage output on the corpus below, recorded before the speed work.
GOLDEN = "79d1ac9a668f48d79f10c397d28b9356a32dfa5ec455e4b7937f9936181f31b8"

WORDS = [
    "patient",
    "doctor",
    "nurse",
    "dose",
    "tablet",
    "blood",
    "pressure",
    "heart",
    "lung",
    "fever",
    "cough",
    "week",
    "day",
    "morning",
    "evening",
    "water",
    "food",
    "sleep",
    "pain",
    "chest",
    "arm",
    "leg",
    "test",
    "result",
    "scan",
    "clinic",
    "hospital",
    "advice",
    "risk",
    "benefit",
    "study",
    "trial",
    "evidence",
    "effect",
    "side",
    "small",
    "large",
    "early",
    "late",
    "mild",
    "severe",
    "common",
    "rare",
    "child",
    "adult",
    "parent",
    "carer",
    "plan",
    "check",
    "visit",
    "call",
    "follow",
    "change",
    "keep",
    "stop",
    "start",
    "take",
]
GLUE = [
    "the",
    "of",
    "and",
    "to",
    "a",
    "in",
    "is",
    "it",
    "for",
    "on",
    "with",
    "as",
    "at",
    "this",
    "from",
    "or",
    "by",
    "not",
    "but",
    "can",
    "should",
    "will",
]


def sentence(rnd: random.Random, low: int, high: int) -> str:
    words = [rnd.choice(WORDS if rnd.random() < 0.6 else GLUE) for _ in range(rnd.randint(low, high))]
    return " ".join(words).capitalize() + "."


def variant(text: str, rnd: random.Random) -> str:
    words = text.split()
    words[rnd.randrange(len(words))] = rnd.choice(WORDS)
    return " ".join(words)


def corpus(n: int = 1500, seed: int = 7) -> tuple[pl.DataFrame, list[str]]:
    rnd = random.Random(seed)
    bench = [sentence(rnd, 10, 24) for _ in range(40)]
    rows = []
    for i in range(n):
        prompt = sentence(rnd, 6, 30) + " " + sentence(rnd, 4, 12) + "?"
        chosen, rejected = sentence(rnd, 8, 40), sentence(rnd, 8, 40)
        kind = rnd.random()
        if kind < 0.10 and rows:  # a near-duplicate of an earlier item, sometimes with labels swapped
            src = rows[rnd.randrange(len(rows))]
            prompt = variant(src["prompt"][0]["content"], rnd)
            chosen, rejected = src["chosen"][0]["content"], src["rejected"][0]["content"]
            if rnd.random() < 0.3:
                chosen, rejected = rejected, chosen
        elif kind < 0.13:
            prompt = f"Email me at person{i}@example.org or call 555-123-{1000 + i % 9000}. " + prompt
        elif kind < 0.15:
            chosen = "I'm sorry, but I can't help with that."
        elif kind < 0.17:
            rejected = chosen
        elif kind < 0.19:
            prompt = "Hi?"
        elif kind < 0.23:
            prompt = "Quick check: " + rnd.choice(bench)
        elif kind < 0.25:
            chosen = f"My card is 4111 1111 1111 {1111 + i % 10}. " + chosen
        votes = rnd.choice(
            [None, ["chosen", "chosen"], ["chosen", "rejected"], ["rejected", "rejected", "tie"]]
        )
        confidence = None if votes is None else round(rnd.random(), 2)
        rows.append(
            item(
                f"item-{i:05d}",
                prompt,
                chosen,
                rejected,
                trait=rnd.choice(["truthfulness", "corrigibility"]),
                label_source=rnd.choice(["contrastive", "gold", "judge"]),
                votes=votes,
                confidence=confidence,
            )
        )
    return frame(rows), bench


def stage_output() -> str:
    items, bench = corpus()
    config = CurationConfig(
        filter=FilterConfig(language=None),  # the language identifier has its own test set
        decontam=DecontamConfig(benchmarks=[Benchmark(path="bench.csv", columns=["text"], name="bench")]),
    )
    stages = curation_stages(config)
    stages = [
        Decontaminate(config.decontam, benchmarks={"bench": bench}) if s.name == "decontam" else s
        for s in stages
    ]
    funnel = Funnel()
    kept, dropped = run_stages(items, stages, funnel)
    parts = [
        kept.select("id", "ambiguity", "ambiguity_reasons", "status").write_ndjson(),
        *[d.select("id", "drop_stage", "drop_reason", "drop_detail").write_ndjson() for d in dropped],
        json.dumps(funnel.steps, sort_keys=True, default=str),
    ]
    return "\n".join(parts)


def test_every_stage_gives_the_recorded_output_on_a_fixed_corpus() -> None:
    out = stage_output()
    assert "near_duplicate" in out and "contaminated" in out and '"pii"' in out and "routed" in out
    assert hashlib.sha256(out.encode()).hexdigest() == GOLDEN
