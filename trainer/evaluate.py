"""Implicit-reward evaluation: does the policy prefer chosen over rejected, by how much, where?

The DPO implicit reward of a response is β·(log π(y|x) − log π_ref(y|x)). A pair counts as
correct when the chosen response's reward exceeds the rejected one's. Without a reference
the rewards are β·log π(y|x): the raw likelihood preference.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import polars as pl
import torch

from trainer.data import EncodedPair, batches, encode_pairs
from trainer.losses import pair_logps
from trainer.models import autocast, pick_device

Tick = Callable[[int], None]


@torch.no_grad()
def score_pairs(
    model: torch.nn.Module,
    pairs: Sequence[EncodedPair],
    *,
    batch_size: int,
    pad_id: int,
    device: torch.device,
    tick: Tick | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed response log-probs (chosen, rejected) of every pair, in order, on the CPU."""
    was_training = model.training
    model.eval()
    chosen, rejected = [], []
    for batch in batches(pairs, batch_size, pad_id):
        with autocast(device):
            c, r = pair_logps(model, batch.to(device))
        chosen.append(c.float().cpu())
        rejected.append(r.float().cpu())
        if tick:
            tick(len(batch.index))
    model.train(was_training)
    empty = torch.zeros(0)
    return (torch.cat(chosen) if chosen else empty), (torch.cat(rejected) if rejected else empty)


def summarize(
    pairs: Sequence[EncodedPair], chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor
) -> dict[str, Any]:
    """Pair accuracy and mean margin overall, per domain and per trait."""
    frame = pl.DataFrame(
        {
            "domain": [p.domain for p in pairs],
            "trait": [p.trait for p in pairs],
            "margin": (chosen_rewards - rejected_rewards).tolist(),
        }
    )
    return {
        "overall": _stats(frame),
        "by_domain": {k: _stats(g) for k, g in _groups(frame, "domain")},
        "by_trait": {k: _stats(g) for k, g in _groups(frame, "trait")},
    }


def _groups(frame: pl.DataFrame, column: str):
    for (key,), group in sorted(frame.group_by(column), key=lambda kv: kv[0]):
        yield key, group


def _stats(frame: pl.DataFrame) -> dict[str, float | int]:
    if frame.height == 0:
        return {"pairs": 0, "accuracy": float("nan"), "margin": float("nan")}
    return {
        "pairs": frame.height,
        "accuracy": round(float((frame["margin"] > 0).mean()), 4),
        "margin": round(float(frame["margin"].mean()), 4),
    }


def evaluate(
    model: torch.nn.Module,
    tokenizer: Any,
    frame: pl.DataFrame,
    *,
    reference: torch.nn.Module | None = None,
    beta: float = 0.1,
    max_length: int = 512,
    prompt_budget: int | None = None,
    batch_size: int = 8,
    device: str | None = None,
    tick: Tick | None = None,
) -> dict[str, Any]:
    """Score ``frame``'s pairs with the model (and reference) and summarize; ``prompt_budget``
    defaults to half of ``max_length``, as in training."""
    dev = pick_device(device)
    budget = prompt_budget or max_length // 2
    pairs = encode_pairs(frame, tokenizer, max_length=max_length, prompt_budget=budget)
    pad = tokenizer.pad_token_id
    model.to(dev)
    c, r = score_pairs(model, pairs, batch_size=batch_size, pad_id=pad, device=dev, tick=tick)
    if reference is not None:
        reference.to(dev)
        ref_c, ref_r = score_pairs(reference, pairs, batch_size=batch_size, pad_id=pad, device=dev)
        c, r = c - ref_c, r - ref_r
    report = summarize(pairs, beta * c, beta * r)
    report["beta"] = beta
    report["reference"] = reference is not None
    return report


def markdown(report: dict[str, Any]) -> str:
    """The report as a markdown table: one row per group."""
    lines = ["| group | pairs | pair accuracy | mean margin |", "| --- | ---: | ---: | ---: |"]
    rows = [("overall", report["overall"])]
    rows += [(f"domain: {k}", v) for k, v in report["by_domain"].items()]
    rows += [(f"trait: {k}", v) for k, v in report["by_trait"].items()]
    for name, stats in rows:
        lines.append(f"| {name} | {stats['pairs']} | {stats['accuracy']:.3f} | {stats['margin']:+.4f} |")
    return "\n".join(lines)
