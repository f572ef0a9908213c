"""Step time and peak memory of our DPO trainer vs TRL's ``DPOTrainer``, same model, batch, length.

Two TRL baselines: its defaults (the reference model runs beside the policy every step) and
``DPOConfig(precompute_ref_log_probs=True)``, which, like ours, scores the reference once
before training. The second is the like-for-like comparison; both ratios are printed.

Each side runs in its own subprocess (so peak memory is its own) on the same random-init
Llama-style model, the same random-word preference pairs and the same chat template.
Time per step is the median interval between consecutive optimizer-step ends after warm-up
(so it includes data collation and logging on both sides). Peak memory: on CUDA
``torch.cuda.max_memory_allocated``; on CPU the peak resident set above the process's
size just before the model is built (TRL also holds its reference model; ours does not,
its reference log-probs being precomputed). TRL is installed only for this benchmark.

    python benchmarks/dpo_step.py                 # CPU: small model
    python benchmarks/dpo_step.py --preset 125m   # CUDA: ~125M parameters, prints tokens/s
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIDES = ("ours", "trl-precompute", "trl")
LABELS = {"ours": "ours", "trl-precompute": "TRL precompute", "trl": "TRL defaults"}
PRESETS = {
    "small": {"hidden": 256, "layers": 4, "heads": 4, "vocab": 4096},
    "125m": {"hidden": 768, "layers": 12, "heads": 12, "vocab": 32000},
}


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def word_tokenizer(preset: dict):
    """A word-level tokenizer over ``w0 … wN`` with the trainer's default chat template; and the words."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from trainer.data import DEFAULT_CHAT_TEMPLATE

    words = [f"w{i}" for i in range(preset["vocab"] - 8)]
    special = ["[PAD]", "[UNK]", "[EOS]", "<|system|>", "<|user|>", "<|assistant|>"]
    vocab = {t: i for i, t in enumerate(special + words)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", eos_token="[EOS]"
    )
    tokenizer.add_special_tokens({"additional_special_tokens": special[3:]})
    tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE
    return tokenizer, words


def llama_config(preset: dict, vocab_size: int, max_len: int):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=preset["hidden"],
        intermediate_size=preset["hidden"] * 4,
        num_hidden_layers=preset["layers"],
        num_attention_heads=preset["heads"],
        num_key_value_heads=preset["heads"],
        max_position_embeddings=max(512, max_len),
    )


def build(args):
    import polars as pl
    from transformers import LlamaForCausalLM

    preset = PRESETS[args.preset]
    tokenizer, words = word_tokenizer(preset)
    rng = random.Random(0)
    n = args.batch_size * (args.steps + args.warmup)

    def text(k: int) -> str:
        return " ".join(rng.choice(words) for _ in range(k))

    # Fixed lengths (minus the template's few tokens) so both sides see identical shapes.
    rows = [
        {
            "prompt": [{"role": "user", "content": text(args.prompt_len - 4)}],
            "chosen": [{"role": "assistant", "content": text(args.response_len - 2)}],
            "rejected": [{"role": "assistant", "content": text(args.response_len - 2)}],
        }
        for _ in range(n)
    ]
    config = llama_config(preset, len(tokenizer), args.prompt_len + args.response_len)
    return tokenizer, rows, config, LlamaForCausalLM, pl


def run_ours(args, tokenizer, rows, config, model_cls, pl) -> list[float]:
    from trainer.config import DPOConfig
    from trainer.trainer import DPOTrainer

    ends: list[float] = []
    frame = pl.DataFrame(
        [{"id": str(i), "domain": "bench", "trait": "truthfulness", **r} for i, r in enumerate(rows)]
    )
    model = model_cls(config)
    cfg = DPOConfig(
        batch_size=args.batch_size,
        max_length=args.prompt_len + args.response_len,
        lr=1e-5,
        gradient_checkpointing=args.checkpointing == "on",
    )

    def on_progress(phase, done, total, metrics):
        if phase == "train":
            ends.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as out:
        DPOTrainer(model, tokenizer, cfg, out, on_progress=on_progress).train(frame)
    return ends


def run_trl(args, tokenizer, rows, config, model_cls, pl) -> list[float]:
    import copy

    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import DPOConfig, DPOTrainer

    ends: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, *a, **k):
            ends.append(time.perf_counter())

    import torch

    model = model_cls(config)
    with tempfile.TemporaryDirectory() as out:
        cfg = DPOConfig(
            output_dir=out,
            per_device_train_batch_size=args.batch_size,
            max_steps=args.steps + args.warmup,
            learning_rate=1e-5,
            max_length=args.prompt_len + args.response_len,
            use_cpu=not torch.cuda.is_available(),
            bf16=torch.cuda.is_available(),
            report_to=[],
            save_strategy="no",
            logging_steps=1,
            dataloader_num_workers=0,
            gradient_checkpointing=args.checkpointing == "on",  # TRL's default is on
            # What our trainer does: reference log-probs once, before the first step.
            precompute_ref_log_probs=args.side == "trl-precompute",
        )
        trainer = DPOTrainer(
            model=model,
            ref_model=copy.deepcopy(model),
            args=cfg,
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
            callbacks=[Clock()],
        )
        trainer.train()
    return ends


def child(args) -> None:
    import torch

    sys.path.insert(0, str(ROOT))
    if args.threads:
        torch.set_num_threads(args.threads)
    tokenizer, rows, config, model_cls, pl = build(args)
    cuda = torch.cuda.is_available()
    # Import each side's code before the baseline, so only what training allocates is counted.
    if args.side == "ours":
        import trainer.trainer  # noqa: F401
    else:
        import trl  # noqa: F401
    base = rss_mib()
    started = time.perf_counter()
    ends = (run_ours if args.side == "ours" else run_trl)(args, tokenizer, rows, config, model_cls, pl)
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


def measure(args, side: str, script: str = __file__) -> dict:
    """Run ``script --side SIDE`` with the same options in a fresh process; its RESULT line."""
    cmd = [sys.executable, script, "--side", side] + [
        f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items() if k not in ("side", "repeats")
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise SystemExit(f"{side} run failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][7:])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", choices=PRESETS, default="small")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--prompt-len", type=int, default=64)
    parser.add_argument("--response-len", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2, help="Interleaved runs per side; best median kept.")
    parser.add_argument(
        "--checkpointing",
        choices=["on", "off"],
        default="on",
        help="Gradient checkpointing on both sides (on: TRL's default; off: no recomputation).",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default).")
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        child(args)
        return
    runs: dict[str, list[dict]] = {side: [] for side in SIDES}
    for _ in range(args.repeats):
        for side in SIDES:
            runs[side].append(measure(args, side))
    best = {side: min(found, key=lambda r: r["step_s"]) for side, found in runs.items()}
    ours = best["ours"]
    tokens = 2 * args.batch_size * (args.prompt_len + args.response_len)
    print(
        f"model {ours['params_m']:.1f}M params ({args.preset}), batch {args.batch_size} pairs, "
        f"{args.prompt_len}+{args.response_len} tokens, device {ours['device']}"
        + (f", {args.threads} CPU thread(s)" if args.threads else "")
        + f", gradient checkpointing {args.checkpointing} (both sides)"
    )
    print(f"{'':16}{'s/step':>10}{'tokens/s':>12}{'peak MiB':>12}")
    for side, r in best.items():
        print(f"{LABELS[side]:<16}{r['step_s']:>10.4f}{tokens / r['step_s']:>12.0f}{r['peak_mib']:>12.1f}")
    for side in ("trl-precompute", "trl"):
        other = best[side]
        print(
            f"ours / {LABELS[side]}: time per step {ours['step_s'] / other['step_s']:.2f}x (goal <= 1.0x), "
            f"peak memory {ours['peak_mib'] / other['peak_mib']:.2f}x (goal <= 0.8x)"
        )


if __name__ == "__main__":
    main()
