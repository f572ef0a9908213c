"""GRPO on a tiny causal LM: the objective, learning a verifiable task, KL, resume, the judge, the CLI."""

from __future__ import annotations

import json
import math

import pytest

torch = pytest.importorskip("torch", reason="the trainer needs the `train` extra (torch)")

from typer.testing import CliRunner  # noqa: E402

from core.schema import from_rows  # noqa: E402
from core.store import Store  # noqa: E402
from tests.fake_openai import FakeOpenAI  # noqa: E402
from tests.grpo_toy import toy_items, toy_tokenizer  # noqa: E402
from tests.tiny_lm import tiny_model  # noqa: E402
from trainer.grpo import GRPOTrainer  # noqa: E402
from trainer.grpo_config import GRPOConfig  # noqa: E402
from trainer.losses import grpo_loss  # noqa: E402
from trainer.rewards import build_rewards  # noqa: E402
from trainer.rollout import Completions, left_pad, token_logps  # noqa: E402
from traitdose.cli import app  # noqa: E402

TOY = {"lr": 1e-2, "batch_size": 4, "num_generations": 8, "max_new_tokens": 3, "device": "cpu"}


@pytest.fixture(scope="module")
def tokenizer():
    return toy_tokenizer()


def make(tokenizer, config: GRPOConfig, folder, **options) -> GRPOTrainer:
    """A trainer on a fresh tiny model (the same init every time) with the config's rewards."""
    return GRPOTrainer(
        tiny_model(len(tokenizer)), tokenizer, config, folder, build_rewards(config), **options
    )


def log_of(folder) -> list[dict]:
    return [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]


def test_the_objective_on_a_fixed_batch_equals_an_independent_formula(tokenizer):
    model = tiny_model(len(tokenizer), seed=3)
    reference = tiny_model(len(tokenizer), seed=4)
    prompts = [[7, 8, 9], [10, 11], [12, 13, 14, 15]]  # different lengths: left padding
    completions = [[16, 17, 2], [18, 2, 0], [19, 20, 21]]  # row 1 ends early (eos = 2, then pad)
    prompt_ids, prompt_mask = left_pad(prompts, tokenizer.pad_token_id)
    completion_mask = torch.tensor([[1, 1, 1], [1, 1, 0], [1, 1, 1]])
    batch = Completions(prompt_ids, prompt_mask, torch.tensor(completions), completion_mask, [])
    temperature, beta, epsilon = 0.7, 0.1, 0.2
    advantages = torch.tensor([1.0, -0.5, 0.25])
    old = token_logps(model, batch, temperature, torch.device("cpu")).detach() + torch.tensor(
        [[0.3, -0.1, 0.0], [-0.4, 0.05, 0.0], [0.0, 0.2, -0.25]]
    )  # a stale π_old, so that some ratios leave [1 − ε, 1 + ε]
    logps = token_logps(model, batch, temperature, torch.device("cpu"))
    ref = token_logps(reference, batch, temperature, torch.device("cpu")).detach()
    n_tokens = int(completion_mask.sum())
    out = grpo_loss(
        logps, old, ref, advantages, completion_mask, beta=beta, epsilon=epsilon, n_tokens=n_tokens
    )

    # Independently: each row scored alone, unpadded, token by token.
    def row_logps(net, prompt, completion):
        ids = torch.tensor([prompt + completion])
        logits = net(input_ids=ids).logits[0, len(prompt) - 1 : -1] / temperature
        return [float(torch.log_softmax(logits[t], -1)[tok]) for t, tok in enumerate(completion)]

    total = 0.0
    for i, (prompt, completion) in enumerate(zip(prompts, completions, strict=True)):
        length = int(completion_mask[i].sum())
        mine = row_logps(model, prompt, completion[:length])
        theirs = row_logps(reference, prompt, completion[:length])
        for t in range(length):
            assert logps[i, t].item() == pytest.approx(mine[t], abs=1e-5)
            ratio = math.exp(mine[t] - old[i, t].item())
            a = advantages[i].item()
            clipped = min(max(ratio, 1 - epsilon), 1 + epsilon)
            kl = math.exp(theirs[t] - mine[t]) - (theirs[t] - mine[t]) - 1
            total += -min(ratio * a, clipped * a) + beta * kl
    assert out.loss.item() == pytest.approx(total / n_tokens, abs=1e-5)
    assert bool(out.clipped.any())  # the batch exercises the clip


def test_a_verifiable_task_rises_from_chance_and_kl_is_logged(tokenizer, tmp_path):
    config = GRPOConfig(steps=30, beta=0.04, **TOY)
    result = GRPOTrainer(
        tiny_model(len(tokenizer)), tokenizer, config, tmp_path, build_rewards(config)
    ).train(toy_items(32), held_out=toy_items(8, seed=5))
    log = log_of(tmp_path)
    assert [m["step"] for m in log] == list(range(1, 31))
    assert log[0]["reward"] < 0.25  # chance: mostly no readable answer (−0.5), sometimes B (0)
    assert sum(m["reward"] for m in log[-5:]) / 5 >= 0.9
    assert all(math.isfinite(m["kl"]) and m["kl"] >= 0 for m in log)
    assert log[0]["kl"] < 1e-4 < log[-1]["kl"]  # the policy starts at the reference and moves away
    assert {"reward_std", "completion_length", "clip_ratio", "reward_verifiable", "loss"} <= set(log[0])
    report = result.held_out
    assert report["before"]["verifiable"]["overall"]["accuracy"] < 0.5
    assert report["after"]["verifiable"]["by_form"]["ab"] == {"items": 8, "accuracy": 1.0}
    assert set(report["after"]["verifiable"]["by_domain"]) == {"health", "law"}
    assert json.loads((tmp_path / "training.json").read_text())["held_out"]["after"]["items"] == 8


def test_beta_zero_keeps_no_reference_and_lora_uses_the_base(tokenizer, tmp_path):
    config = GRPOConfig(steps=2, beta=0.0, **TOY)
    trainer = make(tokenizer, config, tmp_path / "a")
    assert trainer.reference is None
    trainer.train(toy_items(8))
    assert "kl" not in log_of(tmp_path / "a")[0]
    lora = GRPOConfig(steps=2, beta=0.1, lora_r=4, **TOY)
    trainer = make(tokenizer, lora, tmp_path / "b")
    assert trainer.reference is None  # the reference is the base with adapters disabled
    trainer.train(toy_items(8))
    assert log_of(tmp_path / "b")[0]["kl"] == pytest.approx(0.0, abs=1e-6)  # adapters start at zero
    assert (tmp_path / "b" / "adapter" / "adapter_config.json").exists()


def test_resume_continues_the_step_count_and_the_run(tokenizer, tmp_path):
    config = GRPOConfig(steps=6, save_every=2, num_iterations=2, **TOY)
    items = toy_items(16)
    straight = make(tokenizer, config, tmp_path / "a")
    straight.train(items)

    class Killed(Exception):
        pass

    def kill(phase, done, total, metrics):
        if done == 5:
            raise Killed  # after the step-4 checkpoint

    with pytest.raises(Killed):
        make(tokenizer, config, tmp_path / "b", on_progress=kill).train(items)
    seen = []
    resumed = make(
        tokenizer, config, tmp_path / "b", on_progress=lambda phase, done, total, m: seen.append(done)
    ).train(items, resume=True)
    assert seen == [5, 6] and resumed.steps == 6
    assert [m["step"] for m in log_of(tmp_path / "b")][-2:] == [5, 6]
    assert log_of(tmp_path / "b")[-1]["reward"] == pytest.approx(log_of(tmp_path / "a")[-1]["reward"])
    a, b = straight.model.state_dict(), resumed_state(tmp_path / "b")
    for name, tensor in a.items():
        torch.testing.assert_close(b[name], tensor, rtol=1e-4, atol=1e-5, msg=name)
    changed = GRPOConfig(steps=6, save_every=2, num_iterations=2, **{**TOY, "num_generations": 4})
    with pytest.raises(ValueError, match="cannot resume with --num-generations 4"):
        make(tokenizer, changed, tmp_path / "b").train(items, resume=True)


def resumed_state(folder):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder).state_dict()


def test_a_rubric_reward_from_the_fake_judge_reaches_the_trainer(tokenizer, tmp_path):
    # The fake judge meets a criterion when its last word is (must) or is not (must not) in the
    # reply; "zebra" is in no reply, so every completion scores 3 of 4 weight: reward 0.75.
    rubric = [
        {"criterion": "mentions a zebra", "kind": "must", "weight": 1.0},
        {"criterion": "talks about a zebra", "kind": "must_not", "weight": 3.0},
    ]
    with FakeOpenAI() as fake:
        judge = {"judge_model": "fake-model", "judge_base_url": fake.url}
        cache = str(tmp_path / "llm.sqlite")
        config = GRPOConfig(
            steps=2, rewards=["rubric:1", "verifiable:0.5"], judge_cache=cache, **judge, **TOY
        )
        make(tokenizer, config, tmp_path).train(toy_items(8, rubric=rubric))
        calls = fake.stats()["calls"]
        grades = [r for r in fake.requests if "Rubric:" in r["messages"][-1]["content"]]
    assert calls == len(grades) > 0 and calls <= 2 * 4 * 8  # distinct completions only
    for m in log_of(tmp_path):
        assert m["reward_rubric"] == pytest.approx(0.75)
        assert m["reward"] == pytest.approx(0.75 + 0.5 * m["reward_verifiable"])


def test_train_and_eval_commands_with_grpo(tokenizer, tmp_path):
    store = Store(tmp_path / "store")

    def rows(frame, split):
        extra = {"label_source": "gold", "split": split, "status": "accepted"}
        return from_rows([{**r, **extra} for r in frame.iter_rows(named=True)])

    store.write_version("toy", {"train": rows(toy_items(24), "train"), "test": rows(toy_items(8, 5), "test")})
    base = tmp_path / "base"
    tiny_model(len(tokenizer)).save_pretrained(base)
    tokenizer.save_pretrained(base)
    out = tmp_path / "dosed"
    runner = CliRunner()
    args = ["train", "toy@v1", "--method", "grpo", "--model", str(base), "--out", str(out),
            "--store", str(store.root), "--reward", "verifiable:1",
            "--reward", "tests.grpo_toy:short_reward:0.1",
            "--steps", "30", "--lr", "1e-2", "--batch-size", "4", "--num-generations", "8",
            "--max-new-tokens", "3", "--beta", "0.04", "--device", "cpu", "--dose", "16"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "GRPO on 16 prompts, rewards verifiable×1, tests.grpo_toy:short_reward×0.1" in result.output
    assert "| accuracy form: ab | 8 |" in result.output
    report_path = tmp_path / "eval.json"
    result = runner.invoke(
        app,
        ["eval", "--method", "grpo", "--model", str(out), "--reference", str(base),
         "--dataset", "toy@v1:test", "--store", str(store.root), "--max-new-tokens", "3",
         "--json", str(report_path), "--device", "cpu"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text())
    assert report["after"]["verifiable"]["overall"] == {"items": 8, "accuracy": 1.0}
    assert report["before"]["verifiable"]["overall"]["accuracy"] < 0.5
    assert "| mean reward: verifiable | 8 |" in result.output
    bad = runner.invoke(app, [*args, "--reward", "model"])
    assert bad.exit_code == 1 and "--reward model needs --reward-head" in bad.output
