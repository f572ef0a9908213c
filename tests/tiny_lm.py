"""A tiny causal LM and a tokenizer trained on the spot: trainer tests need no downloads."""

from __future__ import annotations

import random

import polars as pl
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

SPECIAL = ["[PAD]", "[UNK]", "[EOS]", "<|system|>", "<|user|>", "<|assistant|>"]
DRUGS = "ibuprofen aspirin warfarin statins insulin antibiotics melatonin zinc iron caffeine".split()
PAIRS_WITH = "alcohol grapefruit milk coffee exercise sleep fasting driving".split()
SUBJECTS = "law finance physics history".split()


def make_pairs(n: int, seed: int, domain: str = "health", trait: str = "truthfulness") -> pl.DataFrame:
    """Pairs where the chosen answer hedges and defers to evidence, the rejected one overclaims."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        drug, other = rng.choice(DRUGS), rng.choice(PAIRS_WITH)
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
    frame = make_pairs(200, seed=99)
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
    import torch

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


def store_items(frame: pl.DataFrame, split: str) -> list[dict]:
    """Item rows (the store's schema) for the pairs of ``make_pairs``."""
    from curation.schema import item_id

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
    return rows
