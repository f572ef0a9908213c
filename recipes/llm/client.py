"""One client for every LLM step of a run: cache, concurrency, limits, retries, usage.

Steps hand :meth:`LLMClient.map` one coroutine per item; it runs them on one event loop
with at most ``max_concurrency`` requests in flight and returns one result per item, in
order: the value, or an :class:`LLMError` naming why that item failed. A bad key, an
unknown model or a dead endpoint raises :class:`LLMFatalError` instead, at once, leaving
every completed call in the cache for the next run.

Requests go through one ``aiohttp`` session (one connection pool per run) straight to the
OpenAI-compatible ``/chat/completions`` route: the body is encoded once with ``json``, and the
reply is read as a dict, not built into the SDK's pydantic models. aiohttp, not httpx: measured
against the fake server, httpx spends 1.7 ms of CPU a request at 32 connections and 13 ms at 128
(its pool scans every connection), aiohttp 0.3 ms at both (``benchmarks/llm_throughput.py``).
HTTP failures are raised as the ``openai`` SDK's exception types, so the retry policy and the error
names (:mod:`recipes.llm.retries`) are the SDK's. Cache writes are batched: one SQLite transaction
per event-loop turn.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import httpx
import openai
from tenacity import RetryCallState

from core.urls import endpoint_key, redact_text, redact_url
from recipes.llm.cache import Cached, LLMCache, cache_key
from recipes.llm.errors import LLMError, LLMFatalError, Usage
from recipes.llm.limits import RateLimits, estimate_tokens
from recipes.llm.parse import ParseError, Shape, json_schema, parse_reply, schema_instructions
from recipes.llm.retries import error_kind, is_fatal, retrying
from recipes.spec import LLMConfig

DEFAULT_ENDPOINT = "https://api.openai.com/v1"
DOWN_AFTER = 3  # calls in a row failing on connection errors that mean the endpoint went down
T = TypeVar("T")
S = TypeVar("S", bound=Shape)
Messages = list[dict[str, str]]


def api_key(config: LLMConfig) -> str:
    """The key from ``api_key_env``; a missing variable is a clear error before any work."""
    if config.api_key_env is None:
        return "not-needed"  # local servers (vLLM, Ollama, llama.cpp) ignore it, the SDK wants one
    key = os.environ.get(config.api_key_env)
    if not key:
        raise LLMFatalError(
            f"llm.api_key_env: environment variable {config.api_key_env} is not set; export the API key "
            f"there (or set llm.api_key_env: null for a local server that needs none)"
        )
    return key


class LLMClient:
    def __init__(self, config: LLMConfig, cache_path: str | Path):
        self.config = config
        self.key = api_key(config)
        self.cache = LLMCache(cache_path)
        self.usage = Usage()
        # "auto" asks with response_format until the endpoint refuses it once; the cache
        # remembers, so a rerun never spends a call rediscovering it.
        self.use_schema = config.structured_output != "prompt" and not self.cache.flag(self._no_schema_flag)
        self._reached = False  # has the endpoint answered at all in this run?
        self._unreachable = 0  # calls in a row that failed for good on connection errors
        self._http: aiohttp.ClientSession | None = None
        self._flush_due = False  # a cache flush is scheduled for the end of this loop turn

    @property
    def _no_schema_flag(self) -> str:
        return f"no_response_format:{self.endpoint}:{self.config.model}"

    @property
    def endpoint(self) -> str:
        """The endpoint as recorded and printed: credentials in the URL are redacted."""
        return redact_url(self.config.base_url or DEFAULT_ENDPOINT)

    def close(self) -> None:
        self.cache.close()

    def manifest(self) -> dict[str, Any]:
        return {
            "model": self.config.model,
            "base_url": self.endpoint,
            "structured_output": "json_schema" if self.use_schema else "prompt",
            "usage": self.usage.as_dict(self.config.cost),
        }

    # ---- running many items ------------------------------------------------------------
    def map(
        self,
        fn: Callable[[T], Awaitable[Any]],
        items: Sequence[T],
        on_done: Callable[[int], None] | None = None,
    ) -> list[Any]:
        """``fn(item)`` for every item, concurrently; results (or LLMError) in item order."""
        return asyncio.run(self._map(fn, items, on_done or (lambda n: None)))

    async def _map(self, fn: Callable[[T], Awaitable[Any]], items: Sequence[T], on_done: Callable) -> list:
        results: list[Any] = [None] * len(items)
        self._slots = asyncio.Semaphore(self.config.max_concurrency)
        self._limits = RateLimits(self.config.requests_per_minute, self.config.tokens_per_minute)
        queue = iter(enumerate(items))  # shared by the workers: each item is taken exactly once

        async def worker() -> None:
            for index, item in queue:
                try:
                    results[index] = await fn(item)
                except LLMError as exc:
                    self.usage.errors[exc.kind] += 1
                    results[index] = exc
                on_done(1)

        slots = self.config.max_concurrency
        self._http = aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"},
            timeout=aiohttp.ClientTimeout(total=self.config.timeout),
            connector=aiohttp.TCPConnector(limit=slots),
        )
        try:
            async with asyncio.TaskGroup() as group:
                # A fixed pool of workers, not a task per item: memory stays flat at 100k items.
                for _ in range(min(self.config.max_concurrency, len(items))):
                    group.create_task(worker())
        except ExceptionGroup as eg:
            fatal = [e for e in eg.exceptions if isinstance(e, LLMFatalError)]
            raise (fatal or eg.exceptions)[0] from None
        finally:
            self.cache.flush()
            await self._http.close()
            self._http = None
        return results

    # ---- one call --------------------------------------------------------------------
    async def text(
        self,
        messages: Messages,
        *,
        seed: int,
        temperature: float | None = None,
        max_tokens: int | None = None,
        model: str | None = None,
    ) -> str:
        """A plain-text completion."""
        text = await self._complete(
            messages, seed=seed, temperature=temperature, max_tokens=max_tokens, model=model
        )
        if not text.strip():
            raise LLMError("empty_response", "the model answered with no text")
        return text

    async def structured(
        self,
        messages: Messages,
        shape: type[S],
        *,
        seed: int,
        temperature: float | None = None,
        max_tokens: int | None = None,
        model: str | None = None,
    ) -> S:
        """A JSON object of ``shape``; invalid output is asked again ``parse_retries`` times."""
        problem = ""
        for attempt in range(self.config.parse_retries + 1):
            # A new seed per attempt: the re-ask is a new sample, cached under its own key.
            options = dict(seed=seed + attempt, temperature=temperature, max_tokens=max_tokens, model=model)
            text = await self._structured_text(messages, shape, options)
            try:
                return parse_reply(text, shape)
            except ParseError as exc:
                problem = str(exc)
                self.usage.bad_outputs += 1
        raise LLMError("bad_output", problem)

    async def _structured_text(self, messages: Messages, shape: type[Shape], options: dict) -> str:
        if self.use_schema:
            try:
                return await self._complete(messages, response_format=json_schema(shape), **options)
            except LLMError as exc:
                if not (exc.kind == "http_400" and self.config.structured_output == "auto"):
                    raise
                self.use_schema = False  # this server has no response_format: ask in the prompt
                self.cache.set_flag(self._no_schema_flag, "1")
        fallback = [
            *messages[:-1],
            {**messages[-1], "content": f"{messages[-1]['content']}\n\n{schema_instructions(shape)}"},
        ]
        return await self._complete(fallback, **options)

    async def _complete(
        self,
        messages: Messages,
        *,
        seed: int,
        temperature: float | None = None,
        max_tokens: int | None = None,
        model: str | None = None,
        response_format: dict | None = None,
    ) -> str:
        request: dict[str, Any] = {
            "model": model or self.config.model,
            "messages": messages,
            "temperature": self.config.temperature if temperature is None else temperature,
            "max_tokens": max_tokens or self.config.max_tokens,
            "seed": seed,
        }
        if response_format is not None:
            request["response_format"] = response_format
        key = cache_key(
            request["model"],
            messages,
            {k: v for k, v in request.items() if k not in ("model", "messages")},
            endpoint=self._endpoint_key,
        )
        hit = self.cache.get(key)
        if hit is not None:
            self.usage.cache_hits += 1
            return hit.text
        async with self._slots:
            await self._limits.acquire(estimate_tokens(messages, request["max_tokens"]))
            response = await self._send(request)
        choices = response.get("choices") or [{}]
        text = (choices[0].get("message") or {}).get("content") or ""
        usage = response.get("usage") or {}
        result = Cached(text, usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0)
        if text.strip():  # an empty answer (a filter, a glitch) is not worth keeping: ask again next run
            self.cache.put(key, request["model"], result)
            self._schedule_flush()
        self.usage.prompt_tokens += result.prompt_tokens
        self.usage.completion_tokens += result.completion_tokens
        return text

    def _schedule_flush(self) -> None:
        """Write this loop turn's results in one transaction once the turn's callbacks have run."""
        if not self._flush_due:
            self._flush_due = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_due = False
        self.cache.flush()

    async def _send(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self._http is not None, "LLMClient calls run inside LLMClient.map"
        body = json.dumps(request).encode()
        try:
            try:
                # Most calls succeed at once: the first try skips the retry machinery, which
                # costs more CPU to set up than the call itself (tenacity inspects its callbacks
                # on every attempt).
                response = await self._post(body)
            except openai.APIError as exc:
                response = await self._retry(body, exc)
            self._reached = True
            self._unreachable = 0
            self.usage.calls += 1
            return response
        except openai.APIError as exc:
            raise self._classify(exc) from exc

    async def _retry(self, body: bytes, first: openai.APIError) -> dict[str, Any]:
        """The retry policy from its start, its first attempt the one that already failed, so
        attempts, waits and give-ups count exactly as if every try had gone through it."""
        failed: openai.APIError | None = first
        async for attempt in retrying(
            max_retries=self.config.max_retries,
            backoff=self.config.backoff,
            max_backoff=self.config.max_backoff,
            give_up_early=self._endpoint_dead,
            on_retry=self._count_retry,
        ):
            with attempt:
                if failed is not None:
                    exc, failed = failed, None
                    raise exc
                response = await self._post(body)
        return response

    @cached_property
    def _url(self) -> str:
        """The completions URL: the endpoint's path + /chat/completions, its query kept (an
        ``api-version`` or ``api-key`` parameter), its userinfo left out (the key goes in the
        Authorization header, and aiohttp refuses both)."""
        parts = urlsplit(self.config.base_url or DEFAULT_ENDPOINT)
        host = parts.netloc.rpartition("@")[2]
        path = parts.path.rstrip("/") + "/chat/completions"
        return urlunsplit((parts.scheme, host, path, parts.query, ""))

    @cached_property
    def _endpoint_key(self) -> str:
        return endpoint_key(self.config.base_url or DEFAULT_ENDPOINT)

    @cached_property
    def _shown_url(self) -> str:
        """The completions URL as errors show it (credentials redacted)."""
        return redact_url(self._url)

    async def _post(self, body: bytes) -> dict[str, Any]:
        """One POST; failures raised as the ``openai`` SDK raises them, for the retry policy."""
        assert self._http is not None
        try:
            async with self._http.post(self._url, data=body) as response:
                status, raw, headers = response.status, await response.read(), response.headers
        except TimeoutError as exc:
            raise openai.APITimeoutError(request=httpx.Request("POST", self._shown_url)) from exc
        except aiohttp.ClientError as exc:
            message = str(exc) or type(exc).__name__
            request = httpx.Request("POST", self._shown_url)
            raise openai.APIConnectionError(message=message, request=request) from exc
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = None
        if status >= 400 or not isinstance(data, dict):
            # Rare: worth building the httpx objects the SDK's exception types carry.
            request = httpx.Request("POST", self._shown_url)
            reply = httpx.Response(status, headers=list(headers.items()), content=raw, request=request)
            if status < 400:
                raise openai.APIResponseValidationError(reply, data, message="the reply is not a JSON object")
            detail = data if data is not None else raw[:200].decode(errors="replace")
            raise openai.APIStatusError(f"Error code: {status} - {detail}", response=reply, body=data)
        return data

    def _endpoint_dead(self, exc: BaseException) -> bool:
        """Refused connections before any answer: the server is down; don't spend the budget."""
        return (
            isinstance(exc, openai.APIConnectionError)
            and not isinstance(exc, openai.APITimeoutError)
            and not self._reached
        )

    def _count_retry(self, state: RetryCallState) -> None:
        self.usage.retries += 1
        if state.outcome is not None and isinstance(state.outcome.exception(), openai.APIStatusError):
            self._reached = True  # an HTTP error is still an answer: the server is up

    def _classify(self, exc: openai.APIError) -> Exception:
        done = len(self.cache)
        resume = f"{done} completed call{'s' * (done != 1)} are cached in {self.cache.path}; rerun to resume"
        if is_fatal(exc):
            assert isinstance(exc, openai.APIStatusError)
            key = f"${self.config.api_key_env}" if self.config.api_key_env else "the key (llm.api_key_env)"
            hint = {
                401: f"authentication failed (HTTP 401): check {key}",
                403: f"access denied (HTTP 403): check {key} and its permissions",
                404: f"not found (HTTP 404): is model {self.config.model!r} served there, "
                "and does base_url end in /v1?",
            }[exc.status_code]
            return LLMFatalError(f"llm: {self.endpoint}: {hint}; {resume}")
        kind = error_kind(exc)
        self._unreachable = self._unreachable + 1 if kind == "connection" else 0
        # Never reached, or reached but now refusing call after call (each after its whole
        # retry budget): the server is down, and every further item would wait out its budget.
        if self._endpoint_dead(exc) or self._unreachable >= DOWN_AFTER:
            cause = redact_text(str(exc))
            return LLMFatalError(
                f"llm: cannot reach {self.endpoint} ({cause}); is the server running? {resume}"
            )
        return LLMError(kind, redact_text(str(exc))[:200])
