"""Step time and peak memory of our GRPO trainer vs TRL's ``GRPOTrainer``: same model, prompts, G.

Each side runs in its own subprocess (so peak memory is its own) on the same random-init
Llama-style model, the same random-word prompts, the same group size G, completion
length, temperature, β (so both hold a reference model) and the same reward function
(the share of completion words from a fixed half of the vocabulary). A step is one
generation round (B prompts × G completions) plus one optimizer update; time per step
is the median interval between consecutive step ends after warm-up, so it includes
generation, rewards and logging on both sides. Peak memory: on CUDA
``torch.cuda.max_memory_allocated``; on CPU the peak resident set above the process's
size just before the model is built. TRL is installed only for this benchmark
(``pip install trl==1.16.0``) and never imported by the package.

    python benchmarks/grpo_step.py                                # CPU: small model
    python benchmarks/grpo_step.py --preset 125m --device cuda    # GPU: ~125M params, completions/s
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.dpo_step import PRESETS, llama_config, measure, peak_rss_mib, rss_mib, word_tokenizer  # noqa: E402


def build(args):
    """Tokenizer, prompts and model config, identical for both sides (seeded)."""
    import random

    from transformers import LlamaForCausalLM

    preset = PRESETS[args.preset]
    tokenizer, words = word_tokenizer(preset)
    rng = random.Random(0)
    n = args.batch_size * (args.steps + args.warmup)
    prompts = [" ".join(rng.choice(words) for _ in range(args.prompt_len - 4)) for _ in range(n)]
    config = llama_config(preset, len(tokenizer), args.prompt_len + args.max_new_tokens)
    return tokenizer, prompts, config, LlamaForCausalLM


def even_words(completions: list[str]) -> list[float]:
    """The shared reward: the share of words w<even number> in the completion."""
    scores = []
    for text in completions:
        words = [w for w in text.split() if w.startswith("w")]
        scores.append(sum(int(w[1:]) % 2 == 0 for w in words if w[1:].isdigit()) / max(1, len(words)))
    return scores


def run_ours(args, tokenizer, prompts, config, model_cls) -> list[float]:
    import polars as pl

    from trainer.grpo import GRPOTrainer
    from trainer.grpo_config import GRPOConfig
    from trainer.rewards import Rewards

    ends: list[float] = []
    frame = pl.DataFrame(
        [
            {"id": str(i), "domain": "bench", "trait": "truthfulness",
             "prompt": [{"role": "user", "content": p}], "chosen": [{"role": "assistant", "content": "x"}],
             "rejected": [{"role": "assistant", "content": "y"}]}
            for i, p in enumerate(prompts)
        ]
    )  # fmt: skip
    cfg = GRPOConfig(
        batch_size=args.batch_size,
        num_generations=args.num_generations,
        max_new_tokens=args.max_new_tokens,
        beta=args.beta,
        steps=args.steps + args.warmup,
        gradient_checkpointing=args.checkpointing == "on",
        device=args.device,
    )
    rewards = Rewards([("even_words", 1.0, lambda items, completions: even_words(list(completions)))])

    def on_progress(phase, done, total, metrics):
        ends.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as out:
        trainer = GRPOTrainer(model_cls(config), tokenizer, cfg, out, rewards, on_progress=on_progress)
        trainer.train(frame)
    return ends


def run_trl(args, tokenizer, prompts, config, model_cls) -> list[float]:
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    ends: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, *a, **k):
            ends.append(time.perf_counter())

    def reward(prompts, completions, **kwargs):
        texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
        return even_words(texts)

    cuda = args.device == "cuda"
    rows = [{"prompt": [{"role": "user", "content": p}]} for p in prompts]
    with tempfile.TemporaryDirectory() as out:
        cfg = GRPOConfig(
            output_dir=out,
            per_device_train_batch_size=args.batch_size * args.num_generations,
            num_generations=args.num_generations,
            max_completion_length=args.max_new_tokens,
            max_steps=args.steps + args.warmup,
            beta=args.beta,
            learning_rate=1e-6,
            use_cpu=not cuda,
            bf16=cuda,
            report_to=[],
            save_strategy="no",
            logging_steps=1,
            dataloader_num_workers=0,
            gradient_checkpointing=args.checkpointing == "on",
            top_k=0,
            shuffle_dataset=False,
        )
        # TRL builds its reference model from the policy's path: save the random init first.
        model_cls(config).save_pretrained(Path(out) / "init")
        trainer = GRPOTrainer(
            model=str(Path(out) / "init"),
            reward_funcs=[reward],
            args=cfg,
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
            callbacks=[Clock()],
        )
        trainer.train()
    del torch
    return ends


def child(args) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    tokenizer, prompts, config, model_cls = build(args)
    cuda = args.device == "cuda"
    # Import each side's code before the baseline, so only what training allocates is counted.
    if args.side == "ours":
        import trainer.grpo  # noqa: F401
    else:
        import trl  # noqa: F401
    base = rss_mib()
    started = time.perf_counter()
    ends = (run_ours if args.side == "ours" else run_trl)(args, tokenizer, prompts, config, model_cls)
    intervals = [b - a for a, b in zip(ends[args.warmup - 1 :], ends[args.warmup :], strict=False)]
    result = {
        "side": args.side,
        "step_s": statistics.median(intervals),
        "steps": len(ends),
        "wall_s": time.perf_counter() - started,
        "peak_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else peak_rss_mib() - base,
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "params_m": sum(p.numel() for p in model_cls(config).parameters()) / 1e6,
    }
    print("RESULT " + json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", choices=PRESETS, default="small")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--batch-size", type=int, default=2, help="Prompts per step.")
    parser.add_argument("--num-generations", type=int, default=4, help="G: completions per prompt.")
    parser.add_argument("--prompt-len", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--beta", type=float, default=0.04)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="Interleaved runs per side; best median kept.")
    parser.add_argument(
        "--checkpointing",
        choices=["on", "off"],
        default="on",
        help="Gradient checkpointing (TRL's default: on).",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default).")
    parser.add_argument("--side", choices=["ours", "trl"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        child(args)
        return
    runs: dict[str, list[dict]] = {"ours": [], "trl": []}
    for _ in range(args.repeats):
        for side in ("ours", "trl"):
            runs[side].append(measure(args, side, __file__))
    ours = min(runs["ours"], key=lambda r: r["step_s"])
    trl = min(runs["trl"], key=lambda r: r["step_s"])
    completions = args.batch_size * args.num_generations
    print(
        f"model {ours['params_m']:.1f}M params ({args.preset}), {args.batch_size} prompts × "
        f"G={args.num_generations}, {args.prompt_len}-token prompts, "
        f"≤{args.max_new_tokens} new tokens, β={args.beta}, "
        f"device {ours['device']}"
        + (f", {args.threads} CPU thread(s)" if args.threads else "")
        + f", gradient checkpointing {args.checkpointing} (both sides)"
    )
    print(f"{'':8}{'s/step':>10}{'completions/s':>15}{'peak MiB':>12}")
    for name, r in (("ours", ours), ("TRL", trl)):
        print(f"{name:8}{r['step_s']:>10.4f}{completions / r['step_s']:>15.1f}{r['peak_mib']:>12.1f}")
    print(f"time per step: ours / TRL = {ours['step_s'] / trl['step_s']:.2f}x  (goal <= 1.0x)")
    print(f"peak memory:   ours / TRL = {ours['peak_mib'] / trl['peak_mib']:.2f}x  (goal <= 0.8x)")


if __name__ == "__main__":
    main()
