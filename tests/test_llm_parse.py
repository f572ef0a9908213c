from __future__ import annotations

import json

import pytest

from recipes.llm.parse import ParseError, RubricOut, ScenarioBatch, Verdict, json_schema, parse_reply

VERDICT = {"reasoning": "B is calibrated.", "better": "B", "score_a": 3, "score_b": 8}


def test_plain_json_parses():
    assert parse_reply(json.dumps(VERDICT), Verdict).better == "B"


@pytest.mark.parametrize(
    "wrapped",
    [
        "Sure! Here is my verdict:\n```json\n{body}\n```\nHope that helps.",
        "{{ not this one }} but this: {body}",
        "Verdict: {body} (scores are out of 10)",
    ],
)
def test_tolerant_parse_finds_the_object_in_prose_and_fences(wrapped):
    text = wrapped.format(body=json.dumps(VERDICT))
    verdict = parse_reply(text, Verdict)
    assert (verdict.better, verdict.score_b) == ("B", 8)


def test_garbage_and_wrong_shapes_raise_with_the_reason():
    with pytest.raises(ParseError, match="no JSON object"):
        parse_reply("I cannot help with that.", Verdict)
    with pytest.raises(ParseError, match="better"):
        parse_reply(json.dumps({**VERDICT, "better": "C"}), Verdict)
    with pytest.raises(ParseError, match="score_a"):
        parse_reply(json.dumps({**VERDICT, "score_a": 11}), Verdict)
    with pytest.raises(ParseError, match="scenarios"):
        parse_reply('{"scenarios": []}', ScenarioBatch)


def test_strict_schema_has_every_property_required_and_no_unsupported_keywords():
    fmt = json_schema(RubricOut)
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    schema = fmt["json_schema"]["schema"]
    criterion = schema["$defs"]["Criterion"]
    assert criterion["additionalProperties"] is False
    assert set(criterion["required"]) == set(criterion["properties"])
    assert "minLength" not in json.dumps(schema) and "minItems" not in json.dumps(schema)
