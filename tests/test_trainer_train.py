"""A short CPU dose on a tiny causal LM: it learns its pairs, generalizes, checkpoints, resumes."""

from __future__ import annotations

import copy
import json

import pytest

torch = pytest.importorskip("torch", reason="the trainer needs the `train` extra (torch)")

from typer.testing import CliRunner  # noqa: E402

from core.store import Store  # noqa: E402
from tests.tiny_lm import make_pairs, store_items, tiny_model, tiny_tokenizer  # noqa: E402
from trainer.config import DPOConfig  # noqa: E402
from trainer.evaluate import evaluate  # noqa: E402
from trainer.trainer import DPOTrainer  # noqa: E402
from traitdose.cli import app  # noqa: E402

FAST = {"lr": 3e-3, "batch_size": 8, "max_length": 64, "beta": 0.1, "device": "cpu"}


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer()


def test_a_short_dose_learns_the_pairs_and_the_held_out_margin_rises(tokenizer, tmp_path):
    train, held = make_pairs(64, seed=1), make_pairs(24, seed=2, held_out=True)
    model = tiny_model(len(tokenizer), seed=0)
    base = copy.deepcopy(model)
    before = evaluate(model, tokenizer, held, beta=0.1, max_length=64, device="cpu")  # no reference
    result = DPOTrainer(model, tokenizer, DPOConfig(epochs=3, **FAST), tmp_path).train(train, held_out=held)

    after_train = evaluate(
        result_model(tmp_path), tokenizer, train, reference=base, max_length=64, device="cpu"
    )
    assert after_train["overall"]["accuracy"] >= 0.9
    assert result.held_out["overall"]["margin"] > 0.5  # the reward margin vs the reference: 0 before training
    assert result.held_out["overall"]["accuracy"] >= 0.9
    after = evaluate(result_model(tmp_path), tokenizer, held, beta=0.1, max_length=64, device="cpu")
    assert after["overall"]["margin"] > before["overall"]["margin"] + 0.5  # likelihood margin rises too
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [m["step"] for m in log] == list(range(1, 25))  # 64 pairs / 8 per step × 3 epochs
    assert {"loss", "margin", "accuracy", "lr"} <= set(log[0])
    assert log[-1]["loss"] < log[0]["loss"]


def result_model(folder):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder)


def test_resume_continues_exactly_where_the_run_stopped(tokenizer, tmp_path):
    train = make_pairs(32, seed=1)
    config = DPOConfig(epochs=2, grad_accum=2, save_every=2, **{**FAST, "batch_size": 3})
    straight = DPOTrainer(tiny_model(len(tokenizer)), tokenizer, config, tmp_path / "a").train(train)

    class Killed(Exception):
        pass

    def kill_after_step_4(phase, done, total, metrics):
        if phase == "train" and done == 5:
            raise Killed  # dies mid-run, after the step-4 checkpoint was written

    with pytest.raises(Killed):
        DPOTrainer(
            tiny_model(len(tokenizer)), tokenizer, config, tmp_path / "b", on_progress=kill_after_step_4
        ).train(train)
    assert (tmp_path / "b" / "checkpoints" / "step-4" / "state.json").exists()
    steps_seen = []
    resumed = DPOTrainer(
        tiny_model(len(tokenizer), seed=123),  # different init: the checkpoint must overwrite it
        tokenizer,
        config,
        tmp_path / "b",
        on_progress=lambda phase, done, total, m: steps_seen.append(done) if phase == "train" else None,
    ).train(train, resume=True)
    assert steps_seen[0] == 5 and resumed.steps == straight.steps == 12  # ceil(ceil(32 / 3) / 2) × 2
    a, b = result_model(tmp_path / "a").state_dict(), result_model(tmp_path / "b").state_dict()
    for name, tensor in a.items():
        torch.testing.assert_close(b[name], tensor, rtol=1e-5, atol=1e-6, msg=name)
    assert len(list((tmp_path / "b" / "checkpoints").iterdir())) <= 2  # old checkpoints pruned
    changed = DPOConfig(epochs=2, grad_accum=4, save_every=2, **{**FAST, "batch_size": 3})
    with pytest.raises(ValueError, match="cannot resume with --grad-accum 4 \\(the run used 2\\)"):
        DPOTrainer(tiny_model(len(tokenizer)), tokenizer, changed, tmp_path / "b").train(train, resume=True)


def test_lora_dose_trains_only_adapters_and_saves_a_merged_model(tokenizer, tmp_path):
    model = tiny_model(len(tokenizer))
    frozen = copy.deepcopy(model)
    config = DPOConfig(epochs=2, lora_r=4, **{**FAST, "lr": 1e-2})
    result = DPOTrainer(model, tokenizer, config, tmp_path).train(
        make_pairs(32, 1), held_out=make_pairs(16, 2, held_out=True)
    )
    assert (tmp_path / "adapter" / "adapter_config.json").exists()
    assert result.held_out["overall"]["margin"] > 0
    merged = result_model(tmp_path)
    changed = [n for n, p in merged.state_dict().items() if not torch.equal(p, frozen.state_dict()[n])]
    assert changed and all("proj" in n or "lm_head" in n for n in changed)  # embeddings, norms untouched


def test_a_separate_reference_model_is_used_for_the_reference_pass(tokenizer, tmp_path):
    pairs = make_pairs(8, 1)
    reference = tiny_model(len(tokenizer), seed=7)
    policy = tiny_model(len(tokenizer), seed=0)
    config = DPOConfig(epochs=1, **{**FAST, "lr": 1e-9})
    trainer = DPOTrainer(policy, tokenizer, config, tmp_path, reference=reference)
    trainer.train(pairs)
    saved = torch.load(tmp_path / "reference_logps.pt")
    expected = evaluate(reference, tokenizer, pairs, beta=1.0, max_length=64, device="cpu")
    margins = (saved["chosen"] - saved["rejected"]).mean().item()
    assert margins == pytest.approx(expected["overall"]["margin"], abs=1e-3)
    assert trainer.reference is None  # released after the reference pass


@pytest.fixture()
def store_with_pairs(tmp_path, tokenizer):
    store = Store(tmp_path / "store")
    store.write_version(
        "tiny",
        {
            "train": store_items(make_pairs(40, 1), "train"),
            "test": store_items(make_pairs(16, 2, held_out=True), "test"),
        },
    )
    model_dir = tmp_path / "base"
    tiny_model(len(tokenizer)).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    return store, model_dir


def test_train_and_eval_commands(store_with_pairs, tmp_path):
    store, base = store_with_pairs
    out = tmp_path / "dosed"
    runner = CliRunner()
    args = ["train", "tiny@v1", "--model", str(base), "--out", str(out), "--store", str(store.root),
            "--dose", "24", "--lr", "3e-3", "--epochs", "3", "--batch-size", "8",
            "--max-length", "64", "--device", "cpu"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "training on 24 pairs (health/truthfulness: 24)" in result.output
    assert "held-out (test split)" in result.output
    report_path = tmp_path / "eval.json"
    result = runner.invoke(
        app,
        ["eval", "--model", str(out), "--reference", str(base), "--dataset", "tiny@v1:test",
         "--store", str(store.root), "--json", str(report_path), "--max-length", "64", "--device", "cpu"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text())
    assert report["overall"]["pairs"] == 16 and report["overall"]["accuracy"] >= 0.9
    assert set(report["by_domain"]) == {"health"} and set(report["by_trait"]) == {"truthfulness"}
    assert "| domain: health | 16 |" in result.output
    # With no settings given, eval scores as the run's held-out report did, and says how.
    plain = tmp_path / "plain.json"
    result = runner.invoke(
        app, ["eval", "tiny@v1:test", "--model", str(out), "--store", str(store.root), "--json", str(plain)]
    )
    assert result.exit_code == 0, result.output
    assert "max length 64" in result.output and f"reference {base}" in result.output
    assert str(out / "training.json") in result.output
    held_out = json.loads((out / "training.json").read_text())["held_out"]
    scored = json.loads(plain.read_text())
    assert scored["overall"]["accuracy"] == pytest.approx(held_out["overall"]["accuracy"])
    assert scored["overall"]["margin"] == pytest.approx(held_out["overall"]["margin"], abs=1e-3)


def test_train_errors_are_one_line(store_with_pairs, tmp_path):
    store, base = store_with_pairs
    runner = CliRunner()
    common = ["--model", str(base), "--out", str(tmp_path / "x"), "--store", str(store.root)]
    result = runner.invoke(app, ["train", "tiny@v9", *common])
    assert result.exit_code == 1 and "dataset 'tiny' has no version 'v9'" in result.output
    result = runner.invoke(app, ["train", "tiny@v1", *common, "--mix", "chat@v1"])
    assert result.exit_code == 1 and "expected DATASET@vN:SHARE" in result.output
    result = runner.invoke(app, ["train", "tiny@v1", *common[2:], "--model", str(tmp_path / "nowhere")])
    assert result.exit_code == 1 and "cannot load model" in result.output
    assert "Traceback" not in result.output


def test_gradient_checkpointing_changes_memory_not_results(tokenizer, tmp_path):
    train = make_pairs(16, seed=1)
    results = {}
    for on in (False, True):
        config = DPOConfig(epochs=1, gradient_checkpointing=on, **FAST)
        results[on] = DPOTrainer(tiny_model(len(tokenizer)), tokenizer, config, tmp_path / str(on)).train(
            train
        )
    assert [m["loss"] for m in results[True].history] == pytest.approx(
        [m["loss"] for m in results[False].history], abs=1e-5
    )
