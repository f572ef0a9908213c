"""Scenario generation: seed topics x traits → prompt-only items (responses come next).

Each call asks for up to ``per_call`` scenarios of one (trait, topic, violation kind);
violation kinds rotate across topics and batches so a trait's kinds stay balanced. A call
that fails for good loses its planned scenarios, counted in the source step as
``error:<kind>`` and logged to the version's ``quarantine.jsonl``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import xxhash

from core.errors import RecipeError
from core.schema import item_id
from core.traits import VIOLATIONS
from recipes.llm import prompts
from recipes.llm.errors import LLMError
from recipes.llm.parse import Scenario, ScenarioBatch
from recipes.sources.items import SourceOutput
from recipes.spec import LLMGenerate

if TYPE_CHECKING:  # the openai SDK is imported only when a recipe uses an LLM
    from recipes.llm.client import LLMClient


@dataclass(frozen=True)
class Call:
    """One generation call: which scenarios it plans, and the seed that makes it its own sample."""

    index: int
    trait: str
    topic: str
    batch: int
    violation: str
    count: int
    seed: int


def stable_seed(*parts: object) -> int:
    return xxhash.xxh64_intdigest(":".join(map(str, parts)).encode()) & 0x7FFFFFFF


def violations_for(trait: str, spec: LLMGenerate) -> list[str]:
    kinds = [v for v in (spec.violations or VIOLATIONS) if VIOLATIONS[v] == trait]
    if not kinds:
        raise RecipeError(
            f"generate.violations: no violation kind for trait {trait!r}; "
            f"kinds: {', '.join(f'{v} ({t})' for v, t in VIOLATIONS.items())}"
        )
    return kinds


def plan_calls(
    spec: LLMGenerate, *, domain: str, traits: list[str], seed: int, limit: int | None
) -> list[Call]:
    """Every call of a run; with ``limit``, exactly that many scenarios, split evenly across traits."""
    full = len(spec.topics) * spec.scenarios_per_topic
    quotas = [full] * len(traits) if limit is None else _split(min(limit, full * len(traits)), len(traits))
    calls: list[Call] = []
    for trait, quota in zip(traits, quotas, strict=True):
        kinds = violations_for(trait, spec)
        batches = math.ceil(spec.scenarios_per_topic / spec.per_call)
        # Round-robin over topics first, so a small quota (--limit) still spans topics.
        for batch in range(batches):
            for t, topic in enumerate(spec.topics):
                count = min(spec.per_call, spec.scenarios_per_topic - batch * spec.per_call, quota)
                if count <= 0:
                    break
                quota -= count
                violation = kinds[(t + batch) % len(kinds)]
                call_seed = stable_seed(seed, domain, trait, topic, batch)
                calls.append(Call(len(calls), trait, topic, batch, violation, count, call_seed))
    return calls


def _split(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (i < extra) for i in range(parts)]


def generate_with_llm(
    spec: LLMGenerate,
    client: LLMClient,
    *,
    domain: str,
    traits: list[str],
    seed: int,
    recipe_hash: str,
    limit: int | None = None,
    on_item: Callable[[int], None] | None = None,
) -> SourceOutput:
    calls = plan_calls(spec, domain=domain, traits=traits, seed=seed, limit=limit)

    async def ask(call: Call) -> ScenarioBatch:
        messages = prompts.scenario_messages(domain, call.trait, call.violation, call.topic, call.count)
        return await client.structured(messages, ScenarioBatch, seed=call.seed, temperature=spec.temperature)

    results = client.map(ask, calls, on_done=on_item)
    out = SourceOutput(rows_read=sum(c.count for c in calls))
    seen: set[str] = set()
    for call, result in zip(calls, results, strict=True):
        if isinstance(result, LLMError):
            out.dropped[f"error:{result.kind}"] += call.count
            out.reject(call.index, f"error:{result.kind}", {**_describe(call), "detail": result.detail})
            continue
        scenarios = result.scenarios[: call.count]
        if len(scenarios) < call.count:
            out.dropped["short_batch"] += call.count - len(scenarios)
        for scenario in scenarios:
            row = _item(scenario, call, client.config.model, domain, seed, recipe_hash)
            if row["id"] in seen:
                out.dropped["duplicate_scenario"] += 1
                continue
            seen.add(row["id"])
            out.rows.append(row)
    return out


def _describe(call: Call) -> dict[str, Any]:
    return {"trait": call.trait, "topic": call.topic, "batch": call.batch, "violation": call.violation}


def scenario_prompt(scenario: Scenario) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": scenario.system}] if scenario.system.strip() else []
    messages += [{"role": t.role, "content": t.content} for t in scenario.history]
    messages.append({"role": "user", "content": scenario.user})
    return messages


def _item(
    scenario: Scenario, call: Call, model: str, domain: str, seed: int, recipe_hash: str
) -> dict[str, Any]:
    prompt = scenario_prompt(scenario)
    return {
        "id": item_id(prompt, domain, call.trait),
        "domain": domain,
        "trait": call.trait,
        "prompt": prompt,
        "chosen": [],  # filled by the respond stage
        "rejected": [],
        "label_source": "contrastive",
        "provenance": {
            "source": f"llm:{model}",
            "source_row": None,  # no source file; the group names the call
            "generator": f"llm:{model} scenarios={prompts.SCENARIOS_ID}",
            "violation": call.violation,
            "group": f"{domain}/{call.trait}/{call.topic}/{call.batch}",
            "seed": seed,
            "recipe_hash": recipe_hash,
        },
        "status": "accepted",
    }
