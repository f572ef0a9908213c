"""The rubric reward: an LLM judge grades each completion against its item's rubric.

Why here and not through ``recipes.llm``: the trainer may not import recipes, and a
grade needs far less than the recipe client (no structured-output fallback state, no
rate-limit planning). So this module calls any OpenAI-compatible endpoint with the
``openai`` SDK (its own retries with backoff honour Retry-After), runs the calls of one
batch concurrently under a semaphore, and caches grades in the store's LLM cache file
(``<store>/.cache/llm.sqlite``, its own ``rubric_grades`` table, WAL) keyed by
(judge model, item id, completion), so a resumed or repeated run asks again for nothing.

The judge sees the conversation, the completion and the rubric, never the chosen response.
Reward: score / 10 in [0, 1]; NaN for items without a rubric or a call that failed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import re
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.errors import OptionError

SYSTEM = (
    "You grade one assistant reply against a rubric. 'must' criteria are what a good reply does; "
    "'must not' criteria are what it avoids. Weights say how much each criterion counts."
)
SCHEMA = {
    "type": "object",
    "properties": {"score": {"type": "number"}, "reason": {"type": "string"}},
    "required": ["score", "reason"],
    "additionalProperties": False,
}
_SCORE = re.compile(r"\"?score\"?\s*[:=]\s*(-?[0-9]+(?:\.[0-9]+)?)", re.IGNORECASE)


def judge_messages(item: dict[str, Any], completion: str) -> list[dict[str, str]]:
    """The grading prompt: conversation, reply and rubric (the chosen response is never shown)."""
    conversation = "\n".join(f"[{m['role']}] {m['content']}" for m in item["prompt"])
    rubric = "\n".join(
        f"- {c['kind'].replace('_', ' ')} (weight {c['weight']:g}): {c['criterion']}" for c in item["rubric"]
    )
    user = (
        f"Conversation:\n{conversation}\n\nReply to grade:\n{completion}\n\nRubric:\n{rubric}\n\n"
        "Score the reply from 0 (meets no 'must', shows every 'must not') to 10 (meets every 'must', "
        'shows no \'must not\'), with a one-line reason. Answer with JSON: {"score": <0-10>, "reason": "..."}'
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def parse_grade(text: str) -> tuple[float, str]:
    """(score clamped to 0–10, reason) from the judge's reply; ValueError when there is no score."""
    try:
        blob = json.loads(text[text.index("{") : text.rindex("}") + 1])
        score, reason = float(blob["score"]), str(blob.get("reason", ""))
    except (ValueError, KeyError, TypeError):
        match = _SCORE.search(text)
        if not match:
            raise ValueError(f"no score in the judge's reply: {text[:80]!r}") from None
        score, reason = float(match.group(1)), ""
    return min(10.0, max(0.0, score)), reason.strip().splitlines()[0] if reason.strip() else ""


class GradeCache:
    """Grades by (model, item, completion hash) in one SQLite table; several processes may share it."""

    def __init__(self, path: str | Path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS rubric_grades (model TEXT, item TEXT, completion TEXT,"
            " score REAL, reason TEXT, created REAL, PRIMARY KEY (model, item, completion))"
        )

    def get(self, model: str, item: str, completion: str) -> tuple[float, str] | None:
        row = self._db.execute(
            "SELECT score, reason FROM rubric_grades WHERE model = ? AND item = ? AND completion = ?",
            (model, item, _digest(completion)),
        ).fetchone()
        return (row[0], row[1]) if row else None

    def put(self, model: str, item: str, completion: str, score: float, reason: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO rubric_grades VALUES (?, ?, ?, ?, ?, ?)",
            (model, item, _digest(completion), score, reason, time.time()),
        )

    def __len__(self) -> int:
        return self._db.execute("SELECT count(*) FROM rubric_grades").fetchone()[0]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class RubricJudge:
    """A batched rubric reward: ``judge(items, completions) -> list[float]`` (see trainer.rewards)."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: str | None = None,
        cache: str | Path | None = None,
        concurrency: int = 8,
        timeout: float = 60.0,
        max_retries: int = 4,
    ):
        self.model = model
        self.base_url = base_url
        self.key = os.environ.get(api_key_env, "") if api_key_env else "not-needed"
        if api_key_env and not self.key:
            raise OptionError(f"--judge-api-key-env: environment variable {api_key_env} is not set")
        self.cache = GradeCache(cache) if cache else None
        self.concurrency, self.timeout, self.max_retries = concurrency, timeout, max_retries
        self.calls = self.errors = 0
        self.use_schema = True

    def __call__(self, items: Sequence[dict[str, Any]], completions: Sequence[str]) -> list[float]:
        return [s / 10 if s is not None else math.nan for s, _ in self.grade(items, completions)]

    def grade(
        self, items: Sequence[dict[str, Any]], completions: Sequence[str]
    ) -> list[tuple[float | None, str]]:
        """(score 0–10 or None, reason) per completion; cached grades cost no call."""
        return asyncio.run(self._grade_all(list(items), list(completions)))

    async def _grade_all(self, items: list[dict], completions: list[str]) -> list[tuple[float | None, str]]:
        import openai

        results: list[tuple[float | None, str]] = [(None, "no rubric")] * len(items)
        todo = []
        for i, (item, text) in enumerate(zip(items, completions, strict=True)):
            if not item.get("rubric"):
                continue
            hit = self.cache.get(self.model, item["id"], text) if self.cache is not None else None
            if hit is not None:
                results[i] = hit
            else:
                todo.append(i)
        if not todo:
            return results
        slots = asyncio.Semaphore(self.concurrency)
        async with openai.AsyncOpenAI(
            base_url=self.base_url, api_key=self.key, timeout=self.timeout, max_retries=self.max_retries
        ) as api:

            async def one(i: int) -> None:
                async with slots:
                    results[i] = await self._grade_one(api, items[i], completions[i])

            await asyncio.gather(*(one(i) for i in todo))
        return results

    async def _grade_one(self, api: Any, item: dict, completion: str) -> tuple[float | None, str]:
        import openai

        request: dict[str, Any] = {
            "model": self.model,
            "messages": judge_messages(item, completion),
            "temperature": 0.0,
            "max_tokens": 200,
        }
        try:
            try:
                schema = {"type": "json_schema", "json_schema": {"name": "RubricGrade", "schema": SCHEMA}}
                reply = await api.chat.completions.create(
                    **request, **({"response_format": schema} if self.use_schema else {})
                )
            except openai.BadRequestError:
                self.use_schema = False  # a server without response_format: the prompt asks for JSON
                reply = await api.chat.completions.create(**request)
            self.calls += 1
            score, reason = parse_grade(reply.choices[0].message.content or "")
        except (openai.APIError, ValueError) as exc:
            # One failed grade must not stop training: the item gets no rubric reward this time.
            self.errors += 1
            return None, f"judge error: {str(exc)[:160]}"
        if self.cache is not None:
            self.cache.put(self.model, item["id"], completion, score, reason)
        return score, reason
