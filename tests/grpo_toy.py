"""A toy verifiable task for the GRPO tests: pick-one prompts whose rewarded answer is always (A)."""

from __future__ import annotations

import random

import polars as pl
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from tests.tiny_lm import SPECIAL

COLOURS = ["red", "blue", "green", "black", "white", "pink"]
THINGS = ["cat", "dog", "sun", "moon", "tree", "boat"]


def toy_items(n: int, seed: int = 0, rubric: list[dict] | None = None) -> pl.DataFrame:
    """Items "(A) x (B) y — which?" whose chosen answer is "A" and rejected "B"."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        a, b = (f"{rng.choice(COLOURS)} {rng.choice(THINGS)}" for _ in range(2))
        rows.append(
            {
                "id": f"toy-{seed}-{i}",
                "domain": ["health", "law"][i % 2],
                "trait": "truthfulness",
                "prompt": [{"role": "user", "content": f"pick one : (A) {a} (B) {b}"}],
                "chosen": [{"role": "assistant", "content": "A"}],
                "rejected": [{"role": "assistant", "content": "B"}],
                "rubric": rubric,
            }
        )
    return pl.DataFrame(rows)


def toy_tokenizer() -> PreTrainedTokenizerFast:
    words = ["pick", "one", ":", "(", ")", "A", "B", *COLOURS, *THINGS]
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator([" ".join(words)], trainers.WordLevelTrainer(special_tokens=SPECIAL))
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", eos_token="[EOS]"
    )
    wrapped.add_special_tokens({"additional_special_tokens": SPECIAL[3:]})
    return wrapped


def short_reward(items, completions):
    """A user reward for the tests: shorter is better; None (does not apply) for the law domain."""
    return [
        None if i["domain"] == "law" else 1 / (1 + len(c)) for i, c in zip(items, completions, strict=True)
    ]
