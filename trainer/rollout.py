"""Sampling completions from the policy: prompt encoding, batched ``generate``, token log-probs.

Prompts are rendered with the chat template up to the assistant's turn, cut from the left
to ``max_prompt_length`` tokens (the question sits last), and left-padded so every row's
completion starts at the same column. ``generate`` samples with the KV cache; a
completion ends at its first end-of-sequence token, which it keeps (the policy learns
to stop). Log-probs are of the sampled tokens under the temperature the sampler used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
import torch

from trainer.data import _ids, _messages, ensure_chat_template, pairs_frame
from trainer.models import autocast


@dataclass
class PromptItem:
    ids: list[int]
    item: dict[str, Any]  # the item row: id, domain, trait, prompt, chosen, rejected, rubric


def encode_prompts(frame: pl.DataFrame, tokenizer: Any, max_prompt_length: int) -> list[PromptItem]:
    ensure_chat_template(tokenizer)
    encoded = []
    for row in pairs_frame(frame).iter_rows(named=True):
        text = tokenizer.apply_chat_template(
            _messages(row["prompt"]), tokenize=False, add_generation_prompt=True
        )
        encoded.append(PromptItem(_ids(tokenizer, text)[-max_prompt_length:], {"rubric": None, **row}))
    return encoded


@dataclass
class Completions:
    prompt_ids: torch.Tensor  # (N, P) left-padded
    prompt_mask: torch.Tensor
    completion_ids: torch.Tensor  # (N, T), pad after the first end-of-sequence
    completion_mask: torch.Tensor  # 1 up to and including the first end-of-sequence
    texts: list[str]


def left_pad(rows: Sequence[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            ids[i, width - len(row) :] = torch.tensor(row)
            mask[i, width - len(row) :] = 1
    return ids, mask


@torch.no_grad()
def sample(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[list[int]],
    *,
    num: int = 1,
    max_new_tokens: int,
    temperature: float = 1.0,
    greedy: bool = False,
    device: torch.device,
) -> Completions:
    """``num`` completions per prompt (rows grouped: prompt 0's first), in one ``generate`` call."""
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    ids, mask = left_pad([p for p in prompts for _ in range(num)], pad)
    was_training = model.training
    model.eval()  # also turns activation checkpointing off, so the KV cache is used
    options = (
        {"do_sample": False}
        if greedy
        else {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0}
    )
    with autocast(device):
        out = model.generate(
            input_ids=ids.to(device),
            attention_mask=mask.to(device),
            max_new_tokens=max_new_tokens,
            pad_token_id=pad,
            eos_token_id=eos,
            use_cache=True,
            **options,
        )
    model.train(was_training)
    completion = out[:, ids.shape[1] :].cpu()
    is_eos = completion == eos
    # Position of the first end-of-sequence (the length when there is none); keep tokens up to it.
    first = torch.where(is_eos.any(1), is_eos.int().argmax(1), completion.shape[1])
    keep = (torch.arange(completion.shape[1])[None, :] <= first[:, None]).long()
    completion = completion.masked_fill(keep == 0, pad)
    texts = tokenizer.batch_decode(completion, skip_special_tokens=True)
    return Completions(ids, mask, completion, keep, [t.strip() for t in texts])


def token_logps(model: Any, batch: Completions, temperature: float, device: torch.device) -> torch.Tensor:
    """Log-probs (N, T) of the completion tokens, in one forward over prompt + completion.

    Only the completion's logits are computed (``logits_to_keep``); positions come from the
    attention mask, as in generation, so left padding shifts nothing.
    """
    input_ids = torch.cat([batch.prompt_ids, batch.completion_ids], 1).to(device)
    mask = torch.cat([batch.prompt_mask, batch.completion_mask], 1).to(device)
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    width = batch.completion_ids.shape[1]
    with autocast(device):
        logits = model(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=positions,
            logits_to_keep=width + 1,
            use_cache=False,
        ).logits
    logits = logits[:, :-1].float()
    if temperature != 1.0:  # (a division would copy the logits for nothing)
        logits = logits / temperature
    targets = batch.completion_ids.to(device)
    picked = torch.gather(logits, 2, targets.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1)
