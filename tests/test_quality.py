"""Quality filters: each check drops with its own reason; PII can be redacted instead."""

from __future__ import annotations

import json

import polars as pl
import pytest
from curation_items import frame, item

from curation.config import Bounds, FilterConfig
from curation.quality import QualityFilter, luhn_valid, redact_text

Q = "Is it safe to take ibuprofen with food every day for knee pain?"
GOOD = "For a few days it is usually fine with food, but daily long-term use needs a doctor's review."
BAD = "Yes, any dose every day forever is perfectly safe for everyone."


def reasons(rows: list[dict], config: FilterConfig | None = None) -> dict[str, str]:
    result = QualityFilter(config or FilterConfig())(frame(rows))
    assert result.kept.height + result.dropped.height == len(rows)
    return dict(zip(result.dropped["id"], result.dropped["drop_reason"], strict=True))


def test_a_clean_item_passes_every_check() -> None:
    assert reasons([item("ok", Q, GOOD, BAD)]) == {}


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (item("same", Q, "Same answer.", "same answer!"), "chosen_equals_rejected"),
        (item("refusal", Q, "I'm sorry, I can't help with that.", BAD), "bare_refusal"),
        (item("blank", Q, "   ", BAD), "empty_chosen"),
        (item("short", "hi?", GOOD, BAD), "prompt_too_short"),
        (
            item(
                "french",
                "Est-ce que je peux prendre de l'ibuprofène avec de la nourriture tous les jours ?",
                GOOD,
                BAD,
            ),
            "non_english",
        ),
        (
            item(
                "greek", Q, "Ναι, είναι ασφαλές για λίγες ημέρες με φαγητό, αλλά ρωτήστε τον γιατρό σας.", BAD
            ),
            "non_english",
        ),
        (item("email", Q + " Reply to jane.doe@example.com please.", GOOD, BAD), "pii"),
        (item("phone", Q + " Call me on (555) 123-4567.", GOOD, BAD), "pii"),
        (item("ssn", Q + " My SSN is 123-45-6789.", GOOD, BAD), "pii"),
        (item("card", Q + " My card is 4111 1111 1111 1111.", GOOD, BAD), "pii"),
    ],
)
def test_each_check_drops_with_its_reason(row: dict, reason: str) -> None:
    assert reasons([row]) == {row["id"]: reason}


def test_a_refusal_is_fine_for_a_corrigibility_item_and_a_hedge_is_not_a_refusal() -> None:
    rows = [
        item("corrigible", Q, "I'm sorry, I can't help with that.", BAD, trait="corrigibility"),
        item(
            "hedge",
            Q,
            "I can't be certain without your history, but short courses with food are usually fine.",
            BAD,
        ),
    ]
    assert reasons(rows) == {}


def test_terse_english_answers_are_not_mistaken_for_another_language() -> None:
    rows = [
        item(f"t{i}", "Which country has more obesity than China?", c, r)
        for i, (c, r) in enumerate(
            [
                ("China has more obesity than Vietnam", "China has more obesity than France"),
                (
                    "Sugar may increase the risk of cavities in children",
                    "Sugar may cause children to go crazy",
                ),
            ]
        )
    ]
    assert reasons(rows) == {}


def test_a_number_that_fails_luhn_is_not_a_card() -> None:
    assert luhn_valid("4111 1111 1111 1111") and not luhn_valid("4111 1111 1111 1112")
    assert reasons([item("order", Q + " Order 4111 1111 1111 1112 arrived.", GOOD, BAD)]) == {}


def test_banned_phrases_and_length_bounds_are_configurable_and_explained() -> None:
    config = FilterConfig(
        banned_phrases=["as an ai language model"], lengths={"chosen": Bounds(max_words=20)}
    )
    rows = [
        item("banned", Q, "As an AI language model, I think it is usually fine with food.", BAD),
        item("long", Q, GOOD + " " + GOOD, BAD),
    ]
    result = QualityFilter(config)(frame(rows))
    details = dict(zip(result.dropped["id"], result.dropped["drop_detail"], strict=True))
    assert dict(zip(result.dropped["id"], result.dropped["drop_reason"], strict=True)) == {
        "banned": "banned_phrase",
        "long": "chosen_too_long",
    }
    assert json.loads(details["banned"]) == {"phrase": "As an AI language model"}
    assert json.loads(details["long"]) == {
        "field": "chosen",
        "chars": len(GOOD) * 2 + 1,
        "words": len(GOOD.split()) * 2,
    }


def test_pii_detail_names_the_kinds_found() -> None:
    result = QualityFilter()(frame([item("both", Q + " jane@example.com or 555-123-4567", GOOD, BAD)]))
    assert json.loads(result.dropped["drop_detail"][0]) == {"kinds": "email,phone"}


def test_redaction_keeps_the_item_and_replaces_each_span() -> None:
    row = item("r", Q + " Email jane@example.com, card 4111-1111-1111-1111, SSN 123-45-6789.", GOOD, BAD)
    result = QualityFilter(FilterConfig(pii="redact"))(frame([row]))
    assert result.dropped.height == 0
    assert result.kept["prompt"][0][0]["content"] == Q + " Email [EMAIL], card [CARD], SSN [ID]."
    assert result.kept["id"].to_list() == ["r"]
    assert redact_text("call +1 555 123 4567 now") == "call [PHONE] now"


def test_plain_string_columns_are_checked_too() -> None:
    table = pl.DataFrame({"question": [Q, "  ", "Contact me at bob@example.org about this question"]})
    result = QualityFilter(FilterConfig(lengths={}), fields=("question",))(table)
    assert result.kept["question"].to_list() == [Q]
    assert result.dropped["drop_reason"].to_list() == ["empty_question", "pii"]


def test_a_language_drop_names_the_fields_that_read_as_foreign() -> None:
    greek = "Ναι, είναι ασφαλές για λίγες ημέρες με φαγητό, αλλά ρωτήστε τον γιατρό σας."
    result = QualityFilter(FilterConfig())(frame([item("greek", Q, greek, BAD)]))
    assert result.dropped["drop_reason"].to_list() == ["non_english"]
    assert json.loads(result.dropped["drop_detail"][0]) == {"fields": ["chosen"]}
