"""From store items to token tensors: dose sampling, mixing, chat template, prompt masking.

A pair is tokenized as ``prompt_ids`` (the chat template up to the assistant's turn) plus
``chosen_ids`` / ``rejected_ids`` (the rest of the rendered conversation). Batches stack
every chosen sequence, then every rejected one, so one forward pass scores both; labels
are −100 on prompt and padding, so only response tokens count.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
import torch

from core.errors import OptionError, SchemaError, StoreError

PAIR_COLUMNS = ("id", "domain", "trait", "prompt", "chosen", "rejected")
OPTIONAL_COLUMNS = ("rubric",)  # kept when present: the GRPO rubric reward reads it
IGNORE = -100

# Used only when a tokenizer has none (a tokenizer trained from scratch): ChatML-style turns.
DEFAULT_CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}{{ eos_token }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


# ---- choosing pairs -------------------------------------------------------------------
def pairs_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """The columns training needs, with a check that they are there."""
    missing = [c for c in PAIR_COLUMNS if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"preference set lacks column(s) {', '.join(missing)}; has {', '.join(frame.columns)}"
        )
    return frame.select(*PAIR_COLUMNS, *(c for c in OPTIONAL_COLUMNS if c in frame.columns))


def sample_dose(frame: pl.DataFrame, n: int, seed: int) -> pl.DataFrame:
    """N pairs stratified by domain × trait: each stratum gets its proportional share.

    Shares are rounded by largest remainder so they sum to exactly N; within a stratum
    the pairs are a seeded random sample, so the same seed gives the same dose.
    """
    if n >= frame.height:
        return frame
    counts = frame.group_by("domain", "trait").len().sort("domain", "trait")
    exact = [n * c / frame.height for c in counts["len"]]
    quotas = [int(q) for q in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: (quotas[i] - exact[i], i))
    for i in by_remainder[: n - sum(quotas)]:
        quotas[i] += 1
    parts = []
    for (domain, trait, _), quota in zip(counts.iter_rows(), quotas, strict=True):
        stratum = frame.filter((pl.col("domain") == domain) & (pl.col("trait") == trait))
        parts.append(stratum.sample(quota, seed=_stratum_seed(seed, domain, trait)))
    return pl.concat(parts)


def mix_pairs(trait: pl.DataFrame, other: pl.DataFrame, share: float, seed: int) -> pl.DataFrame:
    """Blend trait pairs into another preference set so they make up ``share`` of the result.

    The blend is as large as both sets allow: all of the other set when there are enough
    trait pairs, otherwise all trait pairs and as much of the other set as keeps the share.
    """
    total = min(other.height / (1 - share), trait.height / share) if trait.height else 0
    n_trait = min(trait.height, round(total * share))
    n_other = min(other.height, round(total) - n_trait)
    if n_trait == 0:
        raise OptionError(f"a {share:.0%} share of {trait.height} trait pairs is zero pairs: nothing to mix")
    mixed = pl.concat(
        [
            trait.sample(n_trait, seed=seed),
            pairs_frame(other).sample(n_other, seed=seed + 1),
        ],
        how="diagonal_relaxed",  # one side may lack the optional columns (a rubric)
    )
    return mixed.sample(fraction=1.0, shuffle=True, seed=seed + 2)


def _stratum_seed(seed: int, domain: str, trait: str) -> int:
    return random.Random(f"{seed}:{domain}:{trait}").randrange(2**32)


# ---- tokenizing ------------------------------------------------------------------------
@dataclass
class EncodedPair:
    prompt_ids: list[int]
    chosen_ids: list[int]
    rejected_ids: list[int]
    domain: str
    trait: str


def ensure_chat_template(tokenizer: Any) -> None:
    if getattr(tokenizer, "chat_template", None) is None:
        tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token


def encode_pairs(
    frame: pl.DataFrame, tokenizer: Any, *, max_length: int, prompt_budget: int
) -> list[EncodedPair]:
    ensure_chat_template(tokenizer)
    encoded = []
    for row in pairs_frame(frame).iter_rows(named=True):
        prompt = _messages(row["prompt"])
        prompt_text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        prompt_ids = _ids(tokenizer, prompt_text)
        responses = [
            _ids(tokenizer, _completion(tokenizer, prompt, prompt_text, _messages(row[side])))
            for side in ("chosen", "rejected")
        ]
        longest = max(len(r) for r in responses)
        if len(prompt_ids) + longest > max_length:
            # Keep the end of the prompt (the question sits last), then cut responses to fit.
            prompt_ids = prompt_ids[-min(len(prompt_ids), prompt_budget) :]
        room = max_length - len(prompt_ids)
        encoded.append(
            EncodedPair(prompt_ids, responses[0][:room], responses[1][:room], row["domain"], row["trait"])
        )
    return encoded


def _messages(value: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    return [{"role": m["role"], "content": m["content"]} for m in value]


def _ids(tokenizer: Any, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _completion(tokenizer: Any, prompt: list[dict], prompt_text: str, response: list[dict]) -> str:
    """The rendered conversation after the prompt: the response turn(s) as the template writes them."""
    full = tokenizer.apply_chat_template(prompt + response, tokenize=False)
    if full.startswith(prompt_text):
        return full[len(prompt_text) :]
    # Templates that render the last turn differently (e.g. strip reasoning) do not extend the
    # prompt text; fall back to the response content closed by end-of-sequence.
    return "".join(m["content"] for m in response) + (tokenizer.eos_token or "")


# ---- batching --------------------------------------------------------------------------
@dataclass
class PairBatch:
    input_ids: torch.Tensor  # (2B, L): B chosen rows, then B rejected rows
    attention_mask: torch.Tensor
    labels: torch.Tensor  # −100 on prompt and padding
    index: torch.Tensor  # (B,) positions of the pairs in the encoded list

    def to(self, device: torch.device | str) -> PairBatch:
        return PairBatch(
            self.input_ids.to(device), self.attention_mask.to(device), self.labels.to(device), self.index
        )


def collate(pairs: Sequence[EncodedPair], index: Sequence[int], pad_id: int) -> PairBatch:
    rows = [(p.prompt_ids, p.chosen_ids) for p in pairs] + [(p.prompt_ids, p.rejected_ids) for p in pairs]
    width = max(len(a) + len(b) for a, b in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (prompt, response) in enumerate(rows):
        ids = prompt + response
        input_ids[i, : len(ids)] = torch.tensor(ids)
        if response:
            labels[i, len(prompt) : len(ids)] = torch.tensor(response)
        mask[i, : len(ids)] = 1
    return PairBatch(input_ids, mask, labels, torch.tensor(list(index)))


def batches(
    pairs: Sequence[EncodedPair], batch_size: int, pad_id: int, order: Sequence[int] | None = None
) -> Iterator[PairBatch]:
    order = list(range(len(pairs))) if order is None else list(order)
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        yield collate([pairs[i] for i in index], index, pad_id)


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The shuffled order of one epoch; a function of (seed, epoch) so resuming replays it."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator).tolist()


# ---- from the store --------------------------------------------------------------------
def split_ref(ref: str, default: str | None = None) -> tuple[str, str | None]:
    """``DATASET@vN[:split]`` → (``DATASET@vN``, split or ``default``)."""
    head, sep, tail = ref.rpartition(":")
    if sep and head and "@" not in tail:
        return head, tail
    return ref, default


def read_pairs(store: Any, ref: str, default_split: str | None = "train") -> pl.DataFrame:
    """One split of a stored version (all splits when it lacks the default one)."""
    ref, split = split_ref(ref, default_split)
    version = store.resolve(ref)
    if split not in version.splits and split == default_split:
        split = None
    frame = pairs_frame(version.frame(split))
    if frame.height == 0:
        raise StoreError(f"{version.ref}{':' + split if split else ''} has no pairs")
    return frame


def training_set(store: Any, ref: str, config: Any) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """The pairs to train on (dose, then mix) and the held-out test split when there is one."""
    trait = read_pairs(store, ref)
    if config.dose is not None or config.dose_fraction is not None:
        n = config.dose if config.dose is not None else max(1, round(config.dose_fraction * trait.height))
        trait = sample_dose(trait, n, config.seed)
    if config.mix is not None:
        trait = mix_pairs(trait, read_pairs(store, config.mix.ref), config.mix.share, config.seed)
    version = store.resolve(split_ref(ref)[0])
    held_out = pairs_frame(version.frame("test")) if "test" in version.splits else None
    return trait, held_out
