"""The GRPO side of ``traitdose train`` and ``traitdose eval`` (``--method grpo``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.store import Store
from traitdose.console import console

CACHE = Path(".cache") / "llm.sqlite"  # the store's LLM cache, shared with the recipes' calls


def train_grpo(
    dataset: str, model: str, out: Path, store: Path, reference: str | None, bar, resume: bool, **options: Any
):
    """Train with GRPO; ``options`` are GRPOConfig fields from the command line."""
    from trainer.config import config_from_options
    from trainer.data import training_set
    from trainer.grpo import GRPOTrainer
    from trainer.grpo_config import GRPOConfig
    from trainer.models import load_causal_lm
    from trainer.rewards import build_rewards

    config = config_from_options(GRPOConfig, judge_cache=str(Path(store) / CACHE), **options)
    frame, held_out = training_set(Store(store), dataset, config)
    rewards = build_rewards(config)
    policy, tokenizer = load_causal_lm(model)
    ref_model = load_causal_lm(reference)[0] if reference else None
    kinds = ", ".join(f"{r.name}×{r.weight:g}" for r in config.rewards)
    console.print(f"GRPO on {frame.height} prompts, rewards {kinds} → {out}", highlight=False)
    with bar() as progress:
        task = progress.add_task("train", total=None, stats="")

        def on_progress(phase: str, done: int, total: int, m: dict[str, float]) -> None:
            kl = f"  kl {m['kl']:.4f}" if "kl" in m else ""
            stats = (
                f"reward {m['reward']:+.3f}  group std {m['reward_std']:.3f}{kl}  "
                f"length {m['completion_length']:.1f}"
            )
            progress.update(task, completed=done, total=total, stats=stats)

        trainer = GRPOTrainer(
            policy, tokenizer, config, out, rewards, reference=ref_model, on_progress=on_progress
        )
        result = trainer.train(frame, held_out=held_out, resume=resume)
    return result


def print_grpo_result(result, out: Path) -> None:
    from trainer.grpo_eval import markdown

    final = result.final
    if final:
        kl = f", kl {final['kl']:.4f}" if "kl" in final else ""
        spread = f"group std {final['reward_std']:.3f}"
        line = f"step {result.steps}: mean reward {final['reward']:+.4f}, {spread}{kl}"
        console.print(line, highlight=False)
    if result.held_out:
        report = result.held_out
        text = markdown(report["before"], report["after"])
        console.print("held-out (test split):\n" + text, highlight=False, markup=False)
    console.print(f"wrote {out} (log: {out / 'log.jsonl'})", highlight=False)


def eval_grpo(model: str, dataset: str, reference: str | None, store: Path, **options: Any) -> dict:
    """Greedy answers on the split, graded: ``{"before": report | None, "after": report}``."""
    from trainer.config import config_from_options
    from trainer.data import read_pairs
    from trainer.grpo_config import GRPOConfig
    from trainer.grpo_eval import rollout_report
    from trainer.models import load_causal_lm, pick_device
    from trainer.rewards import build_rewards

    config = config_from_options(GRPOConfig, judge_cache=str(Path(store) / CACHE), **options)
    frame = read_pairs(Store(store), dataset, default_split="test")
    rewards = build_rewards(config)
    device = pick_device(config.device)

    def report(name: str) -> dict:
        policy, tokenizer = load_causal_lm(name)
        from trainer.data import ensure_chat_template

        ensure_chat_template(tokenizer)
        policy.to(device)
        return rollout_report(
            policy,
            tokenizer,
            frame,
            rewards,
            max_new_tokens=config.max_new_tokens,
            max_prompt_length=config.max_prompt_length,
            batch_size=config.batch_size,
            device=device,
        )

    return {"before": report(reference) if reference else None, "after": report(model)}


def write_report(report: dict, json_out: Path | None) -> None:
    from trainer.grpo_eval import markdown

    if json_out:
        json_out.write_text(json.dumps(report, indent=2) + "\n")
    console.print(markdown(report["before"], report["after"]), highlight=False, markup=False)
