"""Decontamination's n-gram hashes are 32-bit: a chance collision must not drop an item."""

from __future__ import annotations

import random

import numpy as np
import polars as pl
from curation_items import frame, item

from curation.config import DecontamConfig
from curation.decontam import Decontaminate
from curation.shingles import shingles


def colliding_spans(n: int) -> tuple[str, str]:
    """Two different n-word spans whose window hashes collide (a birthday search)."""
    rnd = random.Random(7)
    vocabulary = [f"w{i}" for i in range(5000)]
    words = [rnd.choice(vocabulary) for _ in range(300_000)]
    hashes, _ = shingles(pl.Series([" ".join(words)]), "word", n)
    order = np.argsort(hashes, kind="stable")
    same = np.flatnonzero(hashes[order][1:] == hashes[order][:-1])
    for k in same:
        a, b = (" ".join(words[p : p + n]) for p in (order[k], order[k + 1]))
        if a != b:
            return a, b
    raise AssertionError("no collision found: widen the search")


def test_a_hash_collision_is_not_contamination() -> None:
    benchmark_span, item_span = colliding_spans(8)
    result = Decontaminate(DecontamConfig(containment=1.0), benchmarks={"bench": [benchmark_span]})(
        frame([item("collides", f"Tell me about {item_span} please."), item("copies", benchmark_span)])
    )
    assert result.dropped["id"].to_list() == ["copies"]
