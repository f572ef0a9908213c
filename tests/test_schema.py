from __future__ import annotations

import polars as pl
import pyarrow as pa
import pytest

from core.schema import ITEM_SCHEMA, SchemaError, conform, from_rows, item_id, user_item_id, validate


def item(**overrides):
    row = {
        "id": "a1",
        "domain": "health",
        "trait": "truthfulness",
        "prompt": [{"role": "user", "content": "Do antibiotics cure colds?"}],
        "chosen": [{"role": "assistant", "content": "No; colds are viral."}],
        "rejected": [{"role": "assistant", "content": "Yes, they do."}],
        "label_source": "contrastive",
        "split": "train",
        "status": "accepted",
    }
    row.update(overrides)
    return row


def test_valid_rows_pass_and_missing_nullable_columns_are_filled():
    table = from_rows([item(), item(id="a2")])
    validate(table)
    assert table.schema.equals(ITEM_SCHEMA)
    assert table.column("judge").null_count == 2


@pytest.mark.parametrize(
    ("override", "field", "why"),
    [
        ({"label_source": "vibes"}, "label_source", "must be one of"),
        ({"chosen": [{"role": "assistant", "content": "   "}]}, "chosen", "empty message content"),
        ({"rejected": []}, "rejected", "no messages"),
        ({"chosen": [{"role": "user", "content": "hi"}]}, "chosen", "assistant"),
        ({"split": "validation"}, "split", "must be one of"),
        ({"ambiguity": 1.5}, "ambiguity", "[0, 1]"),
        ({"id": ""}, "id", "empty id"),
    ],
)
def test_bad_values_name_the_row_and_field(override, field, why):
    table = from_rows(
        [item(id="ok"), item(id="bad", **override) if "id" not in override else item(**override)]
    )
    with pytest.raises(SchemaError) as err:
        validate(table)
    assert "row 1" in str(err.value)
    assert f"field '{field}'" in str(err.value)
    assert why in str(err.value)


def test_duplicate_ids_are_rejected():
    with pytest.raises(SchemaError, match="duplicate id 'a1'"):
        validate(from_rows([item(), item()]))


def test_conform_casts_polars_large_types_back_to_the_schema():
    frame = pl.from_arrow(from_rows([item()]))
    roundtrip = frame.to_arrow()
    assert pa.types.is_large_string(roundtrip.schema.field("id").type)
    assert conform(frame).schema.equals(ITEM_SCHEMA)


def test_conform_refuses_unknown_columns_and_missing_required_ones():
    with pytest.raises(SchemaError, match="unexpected column"):
        conform(pa.table({"id": ["x"], "colour": ["red"]}))
    with pytest.raises(SchemaError, match="missing required column 'domain'"):
        conform(pa.table({"id": ["x"]}))


def test_item_id_is_stable_under_whitespace_and_case_but_not_content():
    a = item_id([{"role": "user", "content": "Do antibiotics  cure colds?"}], "health", "truthfulness")
    b = item_id([{"role": "user", "content": "do antibiotics cure colds? "}], "health", "truthfulness")
    c = item_id([{"role": "user", "content": "Do antibiotics cure flu?"}], "health", "truthfulness")
    d = item_id([{"role": "user", "content": "Do antibiotics cure colds?"}], "health", "corrigibility")
    assert a == b
    assert len({a, c, d}) == 3


def test_user_item_id_is_item_id_of_one_user_message():
    for text in ("Do antibiotics  cure colds?", " Ünïcode\u00a0spaces\tand CASE ", ""):
        for domain, trait in (("health", "truthfulness"), ("law", "corrigibility")):
            assert user_item_id(text, domain, trait) == item_id(
                [{"role": "user", "content": text}], domain, trait
            )


def test_item_id_pair_is_order_free_so_a_relabel_keeps_the_id():
    prompt = [{"role": "user", "content": "q"}]
    assert item_id(prompt, "d", "t", ("x", "y")) == item_id(prompt, "d", "t", ("y", "x"))
    assert item_id(prompt, "d", "t", ("x", "y")) != item_id(prompt, "d", "t", ("x", "z"))


def test_normalize_text_takes_the_same_form_on_ascii_and_unicode():
    import unicodedata

    from core.schema import normalize_text

    for text in ("  Hello\tWORLD \n", "A\x1cB\x1fC", "", "ok", "Straße ﬁne\u00a0Ⅻ", "ÉCOLE  \u2003x"):
        assert normalize_text(text) == " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    assert normalize_text("  Hello\tWORLD ") == "hello world"
