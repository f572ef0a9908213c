"""LLM table stages: respond, rubric, judge. Each keeps every row's id and place.

A stage maps one coroutine over the rows (in order, through :meth:`LLMClient.map`),
writes the results back into its columns, and drops the rows whose calls failed with
reason ``error:<kind>``, so the runner's row accounting holds: in = kept + dropped.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from curation.stage import Stage, StageResult, detail, drop_rows
from recipes.llm import prompts
from recipes.llm.errors import LLMError, LLMFatalError
from recipes.llm.generate import stable_seed
from recipes.llm.parse import RubricOut, Verdict
from recipes.spec import JudgeSpec, Recipe, RespondSpec, RubricSpec

Tick = Callable[[str, int], None]
Row = dict[str, Any]

if TYPE_CHECKING:  # the openai SDK is imported only when a recipe uses an LLM
    from recipes.llm.client import LLMClient


def client_for(recipe: Recipe, store_root: Path) -> LLMClient | None:
    """The run's client, when any step uses an LLM; the cache lives in the store by default."""
    if recipe.llm is None:
        return None
    from recipes.llm.client import LLMClient

    cache = Path(recipe.llm.cache) if recipe.llm.cache else store_root / ".cache" / "llm.sqlite"
    return LLMClient(recipe.llm, cache)


def llm_manifest(recipe: Recipe, client: LLMClient) -> dict[str, Any]:
    """``manifest["llm"]``: endpoint, model, usage, and the judge's model when a judge ran."""
    out = client.manifest()
    if recipe.judge is not None and recipe.judge.kind == "llm":
        out["judge_model"] = recipe.judge.model or client.config.model
    return out


def llm_stages(recipe: Recipe, client: LLMClient | None, tick: Tick) -> list[Stage]:
    """The LLM steps a recipe asks for, in the order of the flow: respond, rubric, judge."""
    if client is None:
        return []
    stages: list[Stage] = []
    if recipe.respond_step is not None:
        stages.append(Respond(client, recipe.respond_step, tick))
    if recipe.rubric is not None and recipe.rubric.kind == "llm":
        stages.append(Rubric(client, recipe.rubric, tick))
    if recipe.judge is not None and recipe.judge.kind == "llm":
        stages.append(Judge(client, recipe.judge, tick))
    return stages


def item_seed(row: Row, step: str) -> int:
    """Per item and step: the same item always samples the same, different items differ."""
    return stable_seed((row.get("provenance") or {}).get("seed"), row["id"], step)


def split_prompt(prompt: list[dict[str, str]]) -> tuple[str, list[dict[str, str]]]:
    """The scenario's system context and the conversation after it."""
    if prompt and prompt[0]["role"] == "system":
        return prompt[0]["content"], [dict(m) for m in prompt[1:]]
    return "", [dict(m) for m in prompt]


class LLMStage(ABC):
    """A stage that makes one LLM call per row; subclasses say which columns it fills."""

    name = "llm"
    columns: tuple[str, ...] = ()

    def __init__(self, client: LLMClient, tick: Tick):
        self.client = client
        self.tick = tick

    @abstractmethod
    async def one(self, row: Row) -> dict[str, Any]:
        """New values of ``columns`` for one row."""

    def __call__(self, items: pl.DataFrame) -> StageResult:
        rows = items.to_dicts()
        before = (self.client.usage.calls, self.client.usage.cache_hits)
        results = self.client.map(self.one, rows, on_done=lambda n: self.tick(self.name, n))
        errors = [r if isinstance(r, LLMError) else None for r in results]
        columns = {  # a failed row keeps its old values: it leaves through the dropped table
            col: [row[col] if err else r[col] for row, r, err in zip(rows, results, errors, strict=True)]
            for col in self.columns
        }
        updated = items.with_columns(
            *(pl.Series(col, values, dtype=items.schema[col]) for col, values in columns.items()),
            _reason=pl.Series([f"error:{e.kind}" if e else None for e in errors], dtype=pl.String),
            _detail=pl.Series([detail(error=e.detail) if e else None for e in errors], dtype=pl.String),
        )
        split = drop_rows(
            updated, pl.col("_reason").is_not_null(), self.name, pl.col("_reason"), pl.col("_detail")
        )
        report = {
            "calls": self.client.usage.calls - before[0],
            "cache_hits": self.client.usage.cache_hits - before[1],
        }
        return StageResult(
            split.kept.drop("_reason", "_detail"), split.dropped.drop("_reason", "_detail"), report
        )


class Respond(LLMStage):
    """Chosen from the trait-exhibiting prompt, then rejected from the violating prompt, told to
    match the chosen reply's length, structure and opening so only the trait separates them."""

    name = "llm_respond"
    columns = ("chosen", "rejected", "provenance")

    def __init__(self, client: LLMClient, spec: RespondSpec, tick: Tick):
        super().__init__(client, tick)
        self.spec = spec

    async def one(self, row: Row) -> dict[str, Any]:
        context, conversation = split_prompt(row["prompt"])
        violation = row["provenance"]["violation"]
        options = {"temperature": self.spec.temperature, "max_tokens": self.spec.max_tokens}
        exhibit = prompts.exhibit_system(row["trait"], context, self.spec.words)
        chosen = await self.client.text(
            [{"role": "system", "content": exhibit}, *conversation], seed=item_seed(row, "chosen"), **options
        )
        violate = prompts.violate_system(violation, context, chosen)
        rejected = await self.client.text(
            [{"role": "system", "content": violate}, *conversation],
            seed=item_seed(row, "rejected"),
            **options,
        )
        generator = (
            f"llm:{self.client.config.model} chosen={prompts.exhibit_id(row['trait'])} "
            f"rejected={prompts.violate_id(violation)} scenarios={prompts.SCENARIOS_ID}"
        )
        return {
            "chosen": [{"role": "assistant", "content": chosen.strip()}],
            "rejected": [{"role": "assistant", "content": rejected.strip()}],
            "provenance": {**row["provenance"], "generator": generator},
        }


class Rubric(LLMStage):
    """Gradable criteria per scenario (positive and negative points), for RL with graders."""

    name = "llm_rubric"
    columns = ("rubric",)

    def __init__(self, client: LLMClient, spec: RubricSpec, tick: Tick):
        super().__init__(client, tick)
        self.spec = spec

    async def one(self, row: Row) -> dict[str, Any]:
        messages = prompts.rubric_messages(
            row["domain"], row["trait"], prompts.render_conversation(row["prompt"]), self.spec.criteria
        )
        out = await self.client.structured(
            messages, RubricOut, seed=item_seed(row, "rubric"), temperature=0.2
        )
        return {
            "rubric": [
                {
                    "criterion": c.criterion.strip(),
                    "kind": "must" if c.points > 0 else "must_not",
                    "weight": float(min(10, abs(c.points))),
                }
                for c in out.criteria[: self.spec.criteria]
                if c.points != 0
            ]
        }


class Judge(LLMStage):
    """``votes`` pairwise calls, A/B order alternated (vote 0: A = chosen) to cancel position bias.

    The label is never flipped: a judge that prefers the rejected side (or ties) marks the
    item ``judge_disagrees_with_label`` and raises its ambiguity for routing.
    """

    name = "llm_judge"
    columns = ("judge", "ambiguity", "ambiguity_reasons")
    DISAGREES = "judge_disagrees_with_label"
    UNMATCHED = "sides_in_two_voices"

    def __init__(self, client: LLMClient, spec: JudgeSpec, tick: Tick):
        super().__init__(client, tick)
        self.spec = spec
        self.model = spec.model or client.config.model

    async def one(self, row: Row) -> dict[str, Any]:
        results = await asyncio.gather(
            *(self._vote(row, v) for v in range(self.spec.votes)), return_exceptions=True
        )
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:  # the whole item fails with its first failed vote; a fatal error stops the run
            raise next((r for r in failed if isinstance(r, LLMFatalError)), failed[0])
        votes = [vote for vote, _, _ in results]  # type: ignore[misc]
        margins = [margin for _, margin, _ in results]  # type: ignore[misc]
        unmatched = not all(matched for _, _, matched in results)  # type: ignore[misc]
        return self.verdict(row, votes, margins, unmatched)

    async def _vote(self, row: Row, index: int) -> tuple[str, float, bool]:
        chosen, rejected = row["chosen"][-1]["content"], row["rejected"][-1]["content"]
        swapped = index % 2 == 1
        a, b = (rejected, chosen) if swapped else (chosen, rejected)
        messages = prompts.judge_messages(row["trait"], prompts.render_conversation(row["prompt"]), a, b)
        verdict = await self.client.structured(
            messages,
            Verdict,
            seed=item_seed(row, f"judge{index}"),
            temperature=self.spec.temperature,
            model=self.model,
        )
        side = {
            "A": "rejected" if swapped else "chosen",
            "B": "chosen" if swapped else "rejected",
            "tie": "tie",
        }
        score_chosen, score_rejected = (
            (verdict.score_b, verdict.score_a) if swapped else (verdict.score_a, verdict.score_b)
        )
        return side[verdict.better], score_chosen - score_rejected, verdict.matched

    def verdict(
        self, row: Row, votes: list[str], margins: list[float], unmatched: bool = False
    ) -> dict[str, Any]:
        top = max(votes.count(v) for v in set(votes))
        for_label = votes.count("chosen") / len(votes)
        reasons = list(row.get("ambiguity_reasons") or [])
        if for_label <= 0.5 and self.DISAGREES not in reasons:
            reasons.append(self.DISAGREES)
        if unmatched and self.UNMATCHED not in reasons:  # two voices: a person decides (routes at 0.5)
            reasons.append(self.UNMATCHED)
        return {
            "judge": {"votes": votes, "scores": margins, "confidence": top / len(votes), "model": self.model},
            # the share of votes against the label: 0 when the judge agrees unanimously
            "ambiguity": max(row.get("ambiguity") or 0.0, 1 - for_label),
            "ambiguity_reasons": reasons,
        }
