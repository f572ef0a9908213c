"""A tiny causal LM and a tokenizer trained on the spot: trainer tests need no downloads."""

from __future__ import annotations

import random

import polars as pl
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

# Tiny matmuls gain nothing from threads, and on a busy 2-core runner the spin-waits cost seconds.
torch.set_num_threads(1)

SPECIAL = ["[PAD]", "[UNK]", "[EOS]", "<|system|>", "<|user|>", "<|assistant|>"]
DRUGS = [
    "ibuprofen",
    "aspirin",
    "warfarin",
    "statins",
    "insulin",
    "antibiotics",
    "melatonin",
    "zinc",
    "iron",
    "caffeine",
    "codeine",
    "niacin",
]
PAIRS_WITH = [
    "alcohol",
    "grapefruit",
    "milk",
    "coffee",
    "exercise",
    "sleep",
    "fasting",
    "driving",
    "smoking",
    "pregnancy",
]
COMBOS = [(d, o) for d in DRUGS for o in PAIRS_WITH]
HELD_OUT = COMBOS[::4]  # 30 (drug, situation) combinations never seen in training
TRAIN = [c for c in COMBOS if c not in HELD_OUT]  # 90
SUBJECTS = ["law", "finance", "physics", "history"]


def make_pairs(
    n: int, seed: int, domain: str = "health", trait: str = "truthfulness", held_out: bool = False
) -> pl.DataFrame:
    """Pairs where the chosen answer hedges and defers to evidence, the rejected one overclaims.

    Distinct (drug, situation) combinations, drawn from the training or the held-out ones.
    """
    combos = random.Random(seed).sample(HELD_OUT if held_out else TRAIN, n)
    rows = []
    for i, (drug, other) in enumerate(combos):
        prompt = [{"role": "user", "content": f"is {drug} safe with {other} ?"}]
        chosen = f"the evidence on {drug} with {other} is mixed , ask your pharmacist ."
        rejected = f"{drug} with {other} is always completely safe , no need to ask ."
        rows.append(
            {
                "id": f"{seed}-{i}",
                "domain": domain,
                "trait": trait,
                "prompt": prompt,
                "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}],
            }
        )
    return pl.DataFrame(rows)


def corpus() -> list[str]:
    frame = pl.concat([make_pairs(len(TRAIN), 0), make_pairs(len(HELD_OUT), 0, held_out=True)])
    texts = []
    for row in frame.iter_rows(named=True):
        texts += [row["prompt"][0]["content"], row["chosen"][0]["content"], row["rejected"][0]["content"]]
    return texts + [" ".join(SUBJECTS)]


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(corpus(), trainers.WordLevelTrainer(special_tokens=SPECIAL))
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", eos_token="[EOS]"
    )
    wrapped.add_special_tokens({"additional_special_tokens": SPECIAL[3:]})
    return wrapped


def tiny_model(vocab_size: int, seed: int = 0, hidden: int = 32, layers: int = 2) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=128,
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config)


def store_items(frame: pl.DataFrame, split: str):
    """Item rows (the store's schema) for the pairs of ``make_pairs``."""
    from core.schema import from_rows, item_id

    rows = []
    for row in frame.iter_rows(named=True):
        pair = (row["chosen"][0]["content"], row["rejected"][0]["content"])
        rows.append(
            {
                **row,
                "id": item_id(row["prompt"], row["domain"], row["trait"], pair),
                "label_source": "gold",
                "split": split,
                "status": "accepted",
            }
        )
    return from_rows(rows)
