"""The surface-cue audit on crafted data: voices leak, minimal pairs do not, a leaky template stands out."""

from __future__ import annotations

import random

import polars as pl
import pytest
from typer.testing import CliRunner

from core.store import Store
from curation.surface_audit import audit, fit_pairwise
from traitdose.cli import app

NOUNS = "kettle lamp river window garden ladder pocket engine blanket harbour meadow violin".split()  # noqa: SIM905
VERBS = "warms lights floods opens grows leans holds drives covers shelters feeds plays".split()  # noqa: SIM905


def sentence(rng: random.Random) -> str:
    return (
        f"The {rng.choice(NOUNS)} {rng.choice(VERBS)} the {rng.choice(NOUNS)} near the {rng.choice(NOUNS)}."
    )


def pairs(n: int, *, seed: int, chosen_voice: str = "", rejected_voice: str = "", template: str = "t"):
    """Minimal pairs: one shared sentence, then one differing sentence drawn from ONE pool for both sides."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        shared = sentence(rng)
        rows.append(
            {
                "chosen": [{"role": "assistant", "content": f"{chosen_voice}{shared} {sentence(rng)}"}],
                "rejected": [{"role": "assistant", "content": f"{rejected_voice}{shared} {sentence(rng)}"}],
                "split": "test" if i % 5 == 0 else "train",
                "provenance": {"generator": template, "group": f"{template}/{i}"},
            }
        )
    return rows


def test_sides_in_two_voices_score_high():
    rows = pairs(300, seed=1, chosen_voice="Understood, and happy to help. ", rejected_voice="Frankly, ")
    report = audit(pl.DataFrame(rows))
    assert report.accuracy > 0.9 and report.leaks
    assert report.method == "train/test" and report.pairs == 60
    assert any("understood" in c["feature"] or "frankly" in c["feature"] for c in report.cues[:3])


def test_true_minimal_pairs_score_near_chance():
    report = audit(pl.DataFrame(pairs(400, seed=2)))
    assert 0.38 <= report.accuracy <= 0.62 and not report.leaks
    assert report.length["median_ratio"] == pytest.approx(1.0, abs=0.1)


def test_per_template_table_finds_the_one_leaky_template():
    rows = []
    for k in range(4):
        rows += pairs(150, seed=10 + k, template=f"clean-{k}")
    rows += pairs(150, seed=20, template="leaky", chosen_voice="Certainly! ")
    report = audit(pl.DataFrame(rows))
    leaky = report.by_template["leaky"]["accuracy"]
    clean = [report.by_template[f"clean-{k}"]["accuracy"] for k in range(4)]
    assert leaky > 0.9 and max(clean) < 0.7
    assert report.worst()[0] == "leaky"


def test_without_a_test_split_it_cross_validates_by_group():
    frame = pl.DataFrame(pairs(200, seed=3, chosen_voice="Sure. ", rejected_voice="Well, ")).drop("split")
    report = audit(frame)
    assert report.method == "grouped 5-fold" and report.pairs == 200 and report.accuracy > 0.9


def test_identical_feature_differences_give_no_weight():
    import numpy as np

    diffs = np.zeros((10, 3))
    assert np.allclose(fit_pairwise(diffs), 0)


def test_cli_audit_prints_accuracy_and_templates(tmp_path):
    rows = pairs(60, seed=4, chosen_voice="Understood. ", rejected_voice="Frankly, ")
    for i, row in enumerate(rows):
        row |= {
            "id": f"i{i}",
            "domain": "d",
            "trait": "truthfulness",
            "label_source": "contrastive",
            "status": "accepted",
        }
        row["prompt"] = [{"role": "user", "content": f"question {i}"}]
    frame = pl.DataFrame(rows)
    Store(tmp_path).write_version(
        "crafted", {s: frame.filter(pl.col("split") == s) for s in ("train", "test")}, meta={"recipe": "x"}
    )
    result = CliRunner().invoke(app, ["audit", "crafted@v1", "--store", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "surface-cue accuracy" in result.output and "leaks" in result.output and "t " in result.output


def test_a_large_table_is_audited_on_a_seeded_sample():
    rows = pairs(300, seed=4, chosen_voice="Understood, and happy to help. ", rejected_voice="Frankly, ")
    first = audit(pl.DataFrame(rows), max_pairs=100)
    again = audit(pl.DataFrame(rows), max_pairs=100)
    assert "sample of 100 of 300 pairs" in first.method and first.pairs < 100
    assert first == again and first.leaks  # the sample is seeded, and still finds the two voices


def test_word_features_match_a_plain_word_split():
    import math
    import re

    from curation.surface_audit import CATEGORICAL, features

    texts = ["", "'", "a", "..a..", "a b", "a, b!", "No '!Z", "b’\tNo may .study é’\té\ta"]
    texts += ["Yes, I don't.\nOK", "  trailing words,  ", "9 lives!?"]
    got = features(pl.Series(texts, dtype=pl.String))
    for i, text in enumerate(texts):
        words = [w.lower() for w in re.findall(r"[A-Za-z0-9']+", text)]
        assert got.numeric[i, 0] == pytest.approx(math.log1p(len(words)))
        expected = {"first word": words[:1], "first two words": words[:2], "last word": words[-1:]}
        for name, column in zip(CATEGORICAL, got.categorical, strict=True):
            assert column[i] == " ".join(expected[name]), (text, name)
