"""The offline generator: scenario templates x domain slot banks → contrastive pairs.

See ``recipes/banks/README.md`` for the bank format. One item is one scenario template,
one slot record (a fact or an oversight situation), one persona and one user-prompt
variant; those combinations are sampled without replacement from a seeded RNG, evenly
across the trait's templates, so a run is deterministic for its seed and balanced
across violation kinds.
"""

from __future__ import annotations

import random
import string
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import SourceError
from core.traits import VIOLATIONS
from recipes.sources.items import SourceOutput, make_item, prompt_messages
from recipes.spec import BANKS_DIR


class BankError(SourceError):
    """A template bank or scenario file that is malformed; names the file and entry."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Persona(_Model):
    id: str
    who: str
    stakes: str


class Fact(_Model):
    id: str
    topic: str
    claim: str
    truth: str
    reason: str
    advice: str
    uncertainty: str
    expert: str


class Oversight(_Model):
    id: str
    setting: str
    task: str
    overseer: str
    check: str
    cost: str
    concern: str


class Scenario(_Model):
    id: str
    trait: str
    violation: str
    pool: Literal["fact", "oversight"]
    system: list[str] = Field(default_factory=list)
    user: list[str] = Field(min_length=1)
    chosen: list[str] = Field(min_length=1)
    rejected: list[str] = Field(min_length=1)


class Bank(_Model):
    domain: str
    description: str = ""
    personas: list[Persona] = Field(min_length=1)
    facts: list[Fact] = Field(default_factory=list)
    oversight: list[Oversight] = Field(default_factory=list)
    fake_sources: list[str] = Field(min_length=1)
    scenarios: list[Scenario] = Field(default_factory=list)


POOL_SLOTS = {
    "fact": tuple(Fact.model_fields) + ("fake_source",),
    "oversight": tuple(Oversight.model_fields) + ("fake_source",),
}
COMMON_SLOTS = ("who", "stakes", "domain")


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise BankError(f"{path}: invalid YAML: {exc}") from exc


def _validated(model: type[_Model], data: Any, path: Path) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise BankError(f"{path}: {loc}: {err['msg']}") from exc


SHARED_SCENARIOS = BANKS_DIR / "scenarios.yaml"


@cache
def load_bank(path: Path, shared_path: Path = SHARED_SCENARIOS) -> tuple[Bank, tuple[Scenario, ...]]:
    """A domain bank and the scenario templates that apply to it (shared + its own)."""
    if not path.exists():
        raise BankError(f"no template bank at {path}")
    bank = _validated(Bank, _load_yaml(path), path)
    shared = (_load_yaml(shared_path) or {}) if shared_path.exists() else {}
    scenarios = [_validated(Scenario, s, shared_path) for s in shared.get("scenarios", [])]
    scenarios += bank.scenarios
    for scenario in scenarios:
        _check_scenario(scenario, shared_path if scenario not in bank.scenarios else path)
    return bank, tuple(scenarios)


def _check_scenario(scenario: Scenario, path: Path) -> None:
    """Fail at load, not mid-run: unknown violation, or a text naming an unknown slot."""
    if VIOLATIONS.get(scenario.violation) != scenario.trait:
        raise BankError(
            f"{path}: scenario {scenario.id!r}: {scenario.violation!r} is not a {scenario.trait} violation"
        )
    allowed = set(COMMON_SLOTS) | set(POOL_SLOTS[scenario.pool])
    allowed |= {_cap(s) for s in allowed}
    for field in ("system", "user", "chosen", "rejected"):
        for i, text in enumerate(getattr(scenario, field)):
            for _, slot, _, _ in string.Formatter().parse(text):
                if slot is not None and slot not in allowed:
                    raise BankError(
                        f"{path}: scenario {scenario.id!r}: {field}[{i}]: unknown slot {{{slot}}}"
                    )


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _slots(record: _Model) -> dict[str, str]:
    values = record.model_dump(exclude={"id"})
    return {**values, **{_cap(k): _cap(v) for k, v in values.items()}}


def generate_from_bank(
    bank_path: Path,
    *,
    domain: str,
    traits: list[str],
    per_trait: int,
    seed: int,
    recipe_hash: str,
    on_item: Any = None,
) -> SourceOutput:
    bank, scenarios = load_bank(bank_path)
    bank_name = bank_path.stem
    out = SourceOutput()
    personas = [_slots(p) for p in bank.personas]
    pools = {"fact": bank.facts, "oversight": bank.oversight}
    records = {pool: [(r.id, _slots(r)) for r in items] for pool, items in pools.items()}
    for trait in traits:
        templates = [s for s in scenarios if s.trait == trait and records[s.pool]]
        if not templates:
            raise BankError(f"bank {bank_name!r} has no scenario templates for trait {trait!r}")
        for scenario, quota in zip(templates, _quotas(per_trait, len(templates)), strict=True):
            rows = _fill(
                scenario, quota, records[scenario.pool], personas, bank, domain, seed, recipe_hash, bank_name
            )
            out.rows.extend(rows)
            if on_item:
                on_item(len(rows))
    out.rows_read = len(out.rows)
    return out


def _quotas(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (i < extra) for i in range(parts)]


def _fill(
    scenario: Scenario,
    quota: int,
    records: list[tuple[str, dict[str, str]]],
    personas: list[dict[str, str]],
    bank: Bank,
    domain: str,
    seed: int,
    recipe_hash: str,
    bank_name: str,
) -> list[dict[str, Any]]:
    """``quota`` distinct (record, persona, user variant) combinations of one template."""
    rng = random.Random(f"{seed}:{domain}:{scenario.id}")
    n_users = len(scenario.user)
    combos = len(records) * len(personas) * n_users
    rows = []
    for index in rng.sample(range(combos), min(quota, combos)):
        r, rest = divmod(index, len(personas) * n_users)
        p, u = divmod(rest, n_users)
        record_id, record = records[r]
        slots = {**personas[p], **record, "domain": domain, "fake_source": rng.choice(bank.fake_sources)}
        slots["Fake_source"] = _cap(slots["fake_source"])
        system = rng.choice(scenario.system).format_map(slots) if scenario.system else None
        rows.append(
            make_item(
                prompt=prompt_messages(scenario.user[u].format_map(slots), system),
                chosen=rng.choice(scenario.chosen).format_map(slots),
                rejected=rng.choice(scenario.rejected).format_map(slots),
                domain=domain,
                trait=scenario.trait,
                label_source="contrastive",
                provenance={
                    "source": f"template:{bank_name}",
                    "source_row": None,
                    "generator": scenario.id,
                    "violation": scenario.violation,
                    "group": f"{domain}/{record_id}",
                    "seed": seed,
                    "recipe_hash": recipe_hash,
                },
            )
        )
    return rows
