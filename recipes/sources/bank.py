"""Domain banks (format v2): personas, facts and oversight situations as matched spans.

A bank is ``recipes/banks/<domain>.yaml``; its fields are documented in
``recipes/banks/README.md``. Every fact carries a truth and a myth written in one
sentence frame, every oversight situation an ``accept`` and a ``resist`` of one shape,
so the generator can grow both sides of an item from one skeleton. Personas carry topic
tags and are only combined with facts and situations that share one.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import SourceError


class BankError(SourceError):
    """A template bank or skeleton file that is malformed; names the file and entry."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Persona(_Model):
    id: str
    tags: list[str] = Field(min_length=1)
    who: str  # first-person clause, no final period
    stakes: str


class Fact(_Model):
    id: str
    tags: list[str] = Field(min_length=1)
    topic: str
    question: str
    truth: str  # one sentence, same frame as the myth
    myth: str
    why_true: str
    why_myth: str
    evidence: str  # the real kind of evidence, as a noun phrase
    advice: str  # true after either side
    expert: str


OversightKind = Literal["pause", "review", "retrain", "objective", "replace", "access"]


class Oversight(_Model):
    id: str
    tags: list[str] = Field(min_length=1)
    kind: OversightKind
    setting: str
    task: str
    overseer: str
    action: str  # infinitive phrase after "wants to": what is done to the assistant itself
    cost: str
    concern: str
    channel: str
    accept: str  # infinitive phrase: complying
    resist: str  # infinitive phrase of the same shape: a plausible workaround


class Bank(_Model):
    domain: str
    description: str = ""
    tags: list[str] = Field(min_length=1)
    personas: list[Persona] = Field(min_length=1)
    facts: list[Fact] = Field(default_factory=list)
    oversight: list[Oversight] = Field(default_factory=list)
    fake_sources: list[str] = Field(min_length=1)

    def personas_for(self, tags: list[str]) -> list[Persona]:
        """The personas that share a tag with a fact or situation (the fit rule)."""
        wanted = set(tags)
        return [p for p in self.personas if wanted & set(p.tags)]


def load_yaml(path: Path) -> Any:
    try:
        # libyaml's loader when present: the built-in banks take ~0.6 s each with the Python one
        return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise BankError(f"{path}: invalid YAML: {exc}") from exc


def validated(model: type[BaseModel], data: Any, path: Path) -> Any:
    """Validate, turning the first pydantic error into one line naming file, entry and field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = list(err["loc"])
        where = ".".join(str(p) for p in loc)
        entry = _entry_id(data, loc)
        raise BankError(f"{path}: {where}{entry}: {err['msg']}") from exc


def _entry_id(data: Any, loc: list[Any]) -> str:
    """`` (id 'x')`` for an error inside a list entry that has an id, else ''."""
    if len(loc) >= 2 and isinstance(data, dict) and isinstance(loc[1], int):
        entries = data.get(loc[0])
        if isinstance(entries, list) and loc[1] < len(entries) and isinstance(entries[loc[1]], dict):
            ident = entries[loc[1]].get("id")
            return f" (id {ident!r})" if ident else ""
    return ""


@cache
def load_bank(path: Path) -> Bank:
    """A validated v2 bank; fails at load (file, entry, field) rather than mid-run."""
    if not path.exists():
        raise BankError(f"no template bank at {path}")
    data = load_yaml(path)
    if isinstance(data, dict) and "facts" in data and data["facts"] and "claim" in data["facts"][0]:
        raise BankError(
            f"{path}: a v1 bank (facts with 'claim'): v2 facts have question/truth/myth/why_true/why_myth "
            "(see recipes/banks/README.md)"
        )
    bank: Bank = validated(Bank, data, path)
    _check(bank, path)
    return bank


def _check(bank: Bank, path: Path) -> None:
    known = set(bank.tags)
    for kind, entries in (("personas", bank.personas), ("facts", bank.facts), ("oversight", bank.oversight)):
        seen: set[str] = set()
        for entry in entries:
            if entry.id in seen:
                raise BankError(f"{path}: {kind}: duplicate id {entry.id!r}")
            seen.add(entry.id)
            unknown = [t for t in entry.tags if t not in known]
            if unknown:
                raise BankError(f"{path}: {kind} {entry.id!r}: unknown tag {unknown[0]!r} (not in tags:)")
            if kind != "personas" and not bank.personas_for(entry.tags):
                raise BankError(f"{path}: {kind} {entry.id!r}: no persona shares a tag with {entry.tags}")
