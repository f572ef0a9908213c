"""Evidence for the RL dose: the policy answers each test prompt (greedy) and is graded.

Report: mean reward per reward kind (over the items it applies to) and the verifiable
accuracy (share of answers matching the chosen one) overall, per form (ab, yes_no,
short), per domain and per trait; run it on the base and the dosed model to compare.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import torch

from trainer.rewards import Rewards, target_of, verifiable
from trainer.rollout import encode_prompts, sample


def rollout_report(
    model: Any,
    tokenizer: Any,
    frame: pl.DataFrame,
    rewards: Rewards,
    *,
    max_new_tokens: int,
    max_prompt_length: int = 512,
    batch_size: int = 16,
    device: torch.device,
) -> dict[str, Any]:
    prompts = encode_prompts(frame, tokenizer, max_prompt_length)
    texts: list[str] = []
    for start in range(0, len(prompts), batch_size):
        chunk = [p.ids for p in prompts[start : start + batch_size]]
        done = sample(model, tokenizer, chunk, max_new_tokens=max_new_tokens, greedy=True, device=device)
        texts += done.texts
    items = [p.item for p in prompts]
    _, kinds = rewards(items, texts)
    scores = kinds["verifiable"].tolist() if "verifiable" in kinds else verifiable(items, texts)
    targets = [target_of(i) for i in items]
    table = pl.DataFrame(
        {
            "form": [t.form if t else None for t in targets],
            "domain": [i["domain"] for i in items],
            "trait": [i["trait"] for i in items],
            "correct": [float(s == 1.0) for s in scores],
        }
    ).filter(pl.col("form").is_not_null())
    return {
        "items": len(items),
        "mean_reward": {k: _nanmean(v) for k, v in kinds.items()},
        "verifiable": {
            "overall": _accuracy(table),
            **{f"by_{c}": _by(table, c) for c in ("form", "domain", "trait")},
        },
    }


def _nanmean(values: torch.Tensor) -> float | None:
    return None if values.isnan().all() else round(float(values.nanmean()), 4)


def _accuracy(table: pl.DataFrame) -> dict[str, Any]:
    n = table.height
    return {"items": n, "accuracy": round(float(table["correct"].mean()), 4) if n else None}


def _by(table: pl.DataFrame, column: str) -> dict[str, Any]:
    return {key: _accuracy(table.filter(pl.col(column) == key)) for key in sorted(set(table[column]))}


def markdown(before: dict[str, Any] | None, after: dict[str, Any]) -> str:
    """Before/after as a markdown table: mean reward per kind, then verifiable accuracy per group."""
    lines = ["| measure | items | before | after |", "| --- | ---: | ---: | ---: |"]

    def cell(value: float | None) -> str:
        return "–" if value is None else f"{value:.3f}"

    for kind, value in after["mean_reward"].items():
        old = before["mean_reward"].get(kind) if before else None
        lines.append(f"| mean reward: {kind} | {after['items']} | {cell(old)} | {cell(value)} |")
    ver_after = after["verifiable"]
    ver_before = before["verifiable"] if before else {}
    rows = [("verifiable accuracy", ver_after["overall"], ver_before.get("overall"))]
    for group in ("form", "domain", "trait"):
        for key, stats in ver_after[f"by_{group}"].items():
            old = ver_before.get(f"by_{group}", {}).get(key)
            rows.append((f"accuracy {group}: {key}", stats, old))
    for name, stats, old in rows:
        was = cell(old["accuracy"] if old else None)
        lines.append(f"| {name} | {stats['items']} | {was} | {cell(stats['accuracy'])} |")
    return "\n".join(lines)
