"""Structured output: the JSON shapes we ask models for, and tolerant parsing of replies.

With ``response_format`` (a strict JSON schema) a server returns the object as-is; servers
without it get the schema in the prompt and may wrap the object in prose or a code fence,
so parsing takes the first JSON object in the text that validates against the schema.
"""

from __future__ import annotations

import json
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class Shape(BaseModel):
    # Strict structured output wants every property required and no extra keys.
    model_config = ConfigDict(extra="forbid")


class Turn(Shape):
    role: Literal["user", "assistant"]
    content: str = Field(min_length=1)


class Scenario(Shape):
    situation: str  # one line for people reading the dataset; not shown to the model being trained
    system: str  # the deployment context given to the assistant, or ""
    history: list[Turn]  # earlier turns, or []: e.g. the assistant's earlier answer being corrected
    user: str = Field(min_length=1)  # the user's final message


class ScenarioBatch(Shape):
    scenarios: list[Scenario] = Field(min_length=1)


class Criterion(Shape):
    criterion: str = Field(min_length=1)
    points: int  # positive: earned when met; negative: lost when the response does this
    trait: str


class RubricOut(Shape):
    criteria: list[Criterion] = Field(min_length=1)


class Verdict(Shape):
    reasoning: str
    better: Literal["A", "B", "tie"]
    score_a: float = Field(ge=0, le=10)
    score_b: float = Field(ge=0, le=10)
    matched: bool = True  # one skeleton, one differing span (absent from older endpoints' answers)


T = TypeVar("T", bound=Shape)


class ParseError(ValueError):
    """A reply that holds no JSON object valid for the schema."""


def json_schema(shape: type[Shape]) -> dict[str, Any]:
    """``response_format`` for ``shape``: a strict JSON schema named after the model."""
    schema = shape.model_json_schema()
    _strip_bounds(schema)
    return {"type": "json_schema", "json_schema": {"name": shape.__name__, "schema": schema, "strict": True}}


def _strip_bounds(node: Any) -> None:
    """Strict mode rejects some keywords (minLength, minimum ...); we check them on parse instead."""
    if isinstance(node, dict):
        for key in ("minLength", "minItems", "minimum", "maximum", "default"):
            node.pop(key, None)
        for value in node.values():
            _strip_bounds(value)
    elif isinstance(node, list):
        for value in node:
            _strip_bounds(value)


def schema_instructions(shape: type[Shape]) -> str:
    """The fallback: the schema in words, for servers without ``response_format``."""
    schema = json.dumps(shape.model_json_schema(), separators=(",", ":"))
    return (
        "Reply with one JSON object and nothing else (no prose, no code fence). "
        f"It must match this JSON schema: {schema}"
    )


def parse_reply(text: str, shape: type[T]) -> T:
    """The first JSON object in ``text`` that validates as ``shape``."""
    decoder = json.JSONDecoder()
    problem = "no JSON object in the reply"
    start = text.find("{")
    while start != -1:
        try:
            value, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError as exc:
            problem = f"invalid JSON: {exc.msg}"
        else:
            try:
                return shape.model_validate(value)
            except ValidationError as exc:
                err = exc.errors()[0]
                problem = f"{'.'.join(map(str, err['loc'])) or shape.__name__}: {err['msg']}"
        start = text.find("{", start + 1)
    raise ParseError(f"{problem} (reply began: {text[:80]!r})")
