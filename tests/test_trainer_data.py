"""Dose sampling, mixing, chat template, prompt masking, and the store reference syntax."""

from __future__ import annotations

import polars as pl
import pytest

pytest.importorskip("torch", reason="the trainer needs the `train` extra (torch)")

from tests.tiny_lm import make_pairs, tiny_tokenizer  # noqa: E402
from trainer.config import DPOConfig, MixSpec, config_from_options  # noqa: E402
from trainer.data import IGNORE, collate, encode_pairs, mix_pairs, sample_dose, split_ref  # noqa: E402


def _strata() -> pl.DataFrame:
    return pl.concat(
        [
            make_pairs(60, 1, "health", "truthfulness"),
            make_pairs(30, 2, "health", "corrigibility"),
            make_pairs(10, 3, "law", "truthfulness"),
        ]
    ).with_columns(pl.format("{}-{}-{}", "domain", "trait", "id").alias("id"))


def test_dose_is_stratified_by_domain_and_trait():
    dose = sample_dose(_strata(), 20, seed=0)
    counts = {(d, t): n for d, t, n in dose.group_by("domain", "trait").len().iter_rows()}
    assert dose.height == 20
    assert counts == {
        ("health", "truthfulness"): 12,
        ("health", "corrigibility"): 6,
        ("law", "truthfulness"): 2,
    }
    assert dose["id"].n_unique() == 20


def test_dose_rounds_to_exactly_n_and_is_seeded():
    frame = _strata()
    for n in (1, 7, 33, 99):
        assert sample_dose(frame, n, seed=5).height == n
    assert sample_dose(frame, 7, seed=5)["id"].to_list() == sample_dose(frame, 7, seed=5)["id"].to_list()
    assert set(sample_dose(frame, 7, seed=5)["id"]) != set(sample_dose(frame, 7, seed=6)["id"])


def test_mix_makes_trait_pairs_the_given_share():
    trait = make_pairs(40, 1).with_columns(pl.format("t{}", "id").alias("id"))
    other = make_pairs(90, 2, "chat", "helpfulness").with_columns(pl.format("o{}", "id").alias("id"))
    mixed = mix_pairs(trait, other, share=0.1, seed=0)
    assert mixed.height == 100  # all of the other set, plus 10 trait pairs
    assert (mixed["trait"] == "truthfulness").sum() == 10
    # Not enough trait pairs for the share: keep all of them and shrink the other set.
    mixed = mix_pairs(trait, other, share=0.5, seed=0)
    assert (mixed["trait"] == "truthfulness").sum() == 40 and mixed.height == 80


def test_mix_spec_parses_and_rejects_bad_shares():
    assert MixSpec.parse("chat@v3:0.05") == MixSpec(ref="chat@v3", share=0.05)
    with pytest.raises(ValueError, match="expected DATASET@vN:SHARE"):
        MixSpec.parse("chat@v3")
    with pytest.raises(ValueError, match="between 0 and 1"):
        MixSpec.parse("chat@v3:1.5")
    assert DPOConfig(mix="chat@v1:0.1").mix == MixSpec(ref="chat@v1", share=0.1)


def test_bad_options_become_one_line_naming_the_option():
    with pytest.raises(ValueError, match="--beta: Input should be greater than 0"):
        config_from_options(beta=0)
    with pytest.raises(ValueError, match="either --dose N or --dose-fraction F"):
        config_from_options(dose=5, dose_fraction=0.5)
    with pytest.raises(ValueError, match="--loss: "):
        config_from_options(loss="hinge")


def test_split_ref():
    assert split_ref("health@v2:test") == ("health@v2", "test")
    assert split_ref("health@v2") == ("health@v2", None)
    assert split_ref("health", "train") == ("health", "train")


def test_chat_template_is_applied_and_prompt_tokens_are_masked():
    tokenizer = tiny_tokenizer()
    pairs = encode_pairs(make_pairs(2, 0), tokenizer, max_length=64, prompt_budget=32)
    first = pairs[0]
    assert tokenizer.decode(first.prompt_ids).startswith("<|user|>")
    assert tokenizer.decode(first.prompt_ids).endswith("<|assistant|>")
    assert first.chosen_ids[-1] == tokenizer.eos_token_id  # the turn ends as the template closes it
    batch = collate(pairs, [0, 1], tokenizer.pad_token_id)
    assert batch.input_ids.shape[0] == 4  # chosen rows then rejected rows
    rows = [(pairs[0], pairs[0].chosen_ids), (pairs[1], pairs[1].chosen_ids)]
    rows += [(pairs[0], pairs[0].rejected_ids), (pairs[1], pairs[1].rejected_ids)]
    for row, (p, response) in enumerate(rows):
        labels = batch.labels[row].tolist()
        n = len(p.prompt_ids)
        assert labels[:n] == [IGNORE] * n
        assert labels[n : n + len(response)] == response
        assert all(x == IGNORE for x in labels[n + len(response) :])  # padding is masked too
        assert batch.attention_mask[row].sum().item() == n + len(response)


def test_long_prompts_keep_their_end_and_fit_max_length():
    tokenizer = tiny_tokenizer()
    frame = make_pairs(1, 0).with_columns(
        pl.col("prompt").list.eval(
            pl.struct(
                pl.element().struct.field("role"),
                (pl.lit("zinc " * 80) + pl.element().struct.field("content")).alias("content"),
            )
        )
    )  # fmt: skip
    pair = encode_pairs(frame, tokenizer, max_length=40, prompt_budget=20)[0]
    assert len(pair.prompt_ids) == 20
    assert tokenizer.decode(pair.prompt_ids).endswith("<|assistant|>")
    assert len(pair.prompt_ids) + max(len(pair.chosen_ids), len(pair.rejected_ids)) <= 40


def test_training_set_reads_the_store_then_doses_then_mixes(tmp_path):
    from core.store import Store
    from tests.tiny_lm import store_items

    store = Store(tmp_path)
    store.write_version(
        "meds",
        {
            "train": store_items(make_pairs(40, 1), "train"),
            "test": store_items(make_pairs(8, 2, held_out=True), "test"),
        },
    )
    store.write_version("chat", {"train": store_items(make_pairs(90, 3, "chat", "helpfulness"), "train")})
    from trainer.data import training_set

    pairs, held = training_set(store, "meds@v1", DPOConfig(dose=10, mix="chat@v1:0.1"))
    assert pairs.height == 100 and (pairs["domain"] == "health").sum() == 10
    assert held is not None and held.height == 8
    with pytest.raises(LookupError, match="no dataset 'nope'"):
        training_set(store, "meds@v1", DPOConfig(mix="nope@v1:0.1"))


def test_train_options_take_their_defaults_and_help_from_dpo_config():
    import typer

    from trainer.cli import app as trainer_app
    from trainer.config import DPOConfig

    command = typer.main.get_command(trainer_app).commands["train"]
    defaults, fields = DPOConfig(), DPOConfig.model_fields
    options = {p.name: p for p in command.params if p.name in fields}
    assert {"beta", "lr", "epochs", "batch_size", "max_length", "lora_r", "dose"} <= set(options)
    by_method = {"beta", "lr", "batch_size"}  # DPO and GRPO default them differently: the help says both
    for name, param in options.items():
        if name in by_method:
            assert param.default is None and "DPO:" in param.help and "GRPO" in param.help, name
            continue
        if name != "mix":  # given as text, parsed into a MixSpec
            assert param.default == getattr(defaults, name), name
        assert param.help == fields[name].description, name
