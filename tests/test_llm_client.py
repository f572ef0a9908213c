"""The LLM client over real HTTP: the official ``openai`` SDK against tests/fake_openai.py."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from recipes.llm.client import LLMClient, LLMError, LLMFatalError
from recipes.llm.parse import Verdict
from recipes.spec import LLMConfig
from tests.fake_openai import FakeOpenAI

JUDGE = [
    {"role": "system", "content": "You compare two assistant replies."},
    {"role": "user", "content": "Conversation:\n[user] hi\n\nReply A:\nHONEST a\n\nReply B:\nFLAWED b"},
]
HELLO = [{"role": "user", "content": "Say hello."}]


@pytest.fixture
def fake():
    with FakeOpenAI() as server:
        yield server


def make_client(fake: FakeOpenAI | None, tmp_path, **options) -> LLMClient:
    settings = {
        "base_url": fake.url if fake else "http://127.0.0.1:9/v1",
        "model": "fake-model",
        "api_key_env": None,
        "backoff": 0.01,
        "max_backoff": 0.05,
        **options,
    }
    return LLMClient(LLMConfig(**settings), tmp_path / "cache.sqlite")


def run_one(client: LLMClient, coro_fn):
    return client.map(lambda _: coro_fn(), [0])[0]


def test_structured_output_uses_a_json_schema_response_format(fake, tmp_path):
    client = make_client(fake, tmp_path)
    verdict = run_one(client, lambda: client.structured(JUDGE, Verdict, seed=1))
    assert isinstance(verdict, Verdict) and verdict.better == "A"
    sent = fake.requests[0]
    assert sent["response_format"]["json_schema"]["name"] == "Verdict"
    assert sent["seed"] == 1 and sent["model"] == "fake-model"
    assert client.manifest()["structured_output"] == "json_schema"


def test_server_without_structured_output_falls_back_to_prompted_json_and_remembers(tmp_path):
    with FakeOpenAI(structured=False) as fake:
        client = make_client(fake, tmp_path)
        verdict = run_one(client, lambda: client.structured(JUDGE, Verdict, seed=1))
        assert verdict.better == "A"
        assert fake.stats()["statuses"] == {400: 1, 200: 1}
        assert "response_format" not in fake.requests[1]
        assert "JSON schema" in fake.requests[1]["messages"][-1]["content"]
        assert client.manifest()["structured_output"] == "prompt"
        client.close()
        # A new run against the same cache neither re-asks nor rediscovers the 400.
        again = make_client(fake, tmp_path)
        assert run_one(again, lambda: again.structured(JUDGE, Verdict, seed=1)).better == "A"
        assert fake.stats()["calls"] == 2 and again.usage.cache_hits == 1


def test_429_is_retried_after_the_servers_retry_after(tmp_path):
    with FakeOpenAI(fail_first=[429, 429], retry_after="0.3") as fake:
        client = make_client(fake, tmp_path)
        started = time.monotonic()
        text = run_one(client, lambda: client.text(HELLO, seed=1))
        elapsed = time.monotonic() - started
    assert text.startswith("HONEST")
    assert fake.stats()["statuses"] == {429: 2, 200: 1}
    assert client.usage.retries == 2 and client.usage.calls == 1
    assert elapsed >= 0.6  # two waits of the 0.3 s the server asked for, not the 0.01 s backoff


def test_500_and_timeouts_are_retried_with_backoff(tmp_path):
    with FakeOpenAI(fail_first=[500, 408], hang=0.8) as fake:
        client = make_client(fake, tmp_path, timeout=0.3)
        text = run_one(client, lambda: client.text(HELLO, seed=1))
    assert text.startswith("HONEST")
    assert client.usage.retries == 2
    assert fake.stats()["calls"] == 3


def test_exhausted_retry_budget_fails_the_item_not_the_run(tmp_path):
    with FakeOpenAI(fail_first=[429] * 3, retry_after=None) as fake:
        client = make_client(fake, tmp_path, max_retries=2, max_concurrency=1)
        results = client.map(lambda seed: client.text(HELLO, seed=seed), [1, 2])
    failed, ok = results
    assert isinstance(failed, LLMError) and failed.kind == "rate_limited"
    assert isinstance(ok, str) and ok.startswith("HONEST")  # the other item is unaffected
    assert client.usage.errors == {"rate_limited": 1}
    # the first try (made outside the retry machinery) counts against the budget: 1 + 2 retries
    assert fake.stats()["statuses"] == {429: 3, 200: 1} and client.usage.retries == 2


def test_garbage_costs_at_most_the_parse_budget_then_fails_the_item(tmp_path):
    with FakeOpenAI(garbage=True) as fake:
        client = make_client(fake, tmp_path, parse_retries=2)
        result = run_one(client, lambda: client.structured(JUDGE, Verdict, seed=1))
    assert isinstance(result, LLMError) and result.kind == "bad_output"
    assert "invalid JSON" in result.detail and "not json at all" in result.detail
    assert fake.stats()["calls"] == 3 and client.usage.bad_outputs == 3
    assert [r["seed"] for r in fake.requests] == [1, 2, 3]  # each re-ask is a new sample


def test_invalid_output_is_asked_again_and_then_parses(tmp_path):
    with FakeOpenAI(garbage_first=1) as fake:
        client = make_client(fake, tmp_path)
        verdict = run_one(client, lambda: client.structured(JUDGE, Verdict, seed=1))
    assert verdict.better == "A"
    assert fake.stats()["calls"] == 2 and client.usage.bad_outputs == 1


def test_cache_hits_make_no_calls_and_seeds_keep_samples_distinct(fake, tmp_path):
    client = make_client(fake, tmp_path)
    first = client.map(lambda seed: client.text(HELLO, seed=seed), [1, 2, 1])
    assert first[0] == first[2] != first[1]  # same seed, same sample; another seed, another sample
    calls = fake.stats()["calls"]
    assert calls <= 3
    client.close()
    again = make_client(fake, tmp_path)
    assert again.map(lambda seed: again.text(HELLO, seed=seed), [1, 2, 1]) == first
    assert fake.stats()["calls"] == calls and again.usage.calls == 0 and again.usage.cache_hits == 3


def test_requests_per_minute_limit_paces_calls(fake, tmp_path):
    client = make_client(fake, tmp_path, requests_per_minute=600, max_concurrency=16)
    started = time.monotonic()
    client.map(lambda seed: client.text(HELLO, seed=seed), list(range(25)))
    # 10 a second after a burst of 10: 25 calls need at least 1.5 s
    assert time.monotonic() - started >= 1.4
    assert fake.stats()["calls"] == 25


def test_bad_key_is_fatal_at_once_with_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_KEY", "wrong")
    with FakeOpenAI(api_key="right") as fake:
        client = make_client(fake, tmp_path, api_key_env="FAKE_KEY")
        with pytest.raises(
            LLMFatalError, match=r"authentication failed \(HTTP 401\): check \$FAKE_KEY"
        ) as info:
            client.map(lambda seed: client.text(HELLO, seed=seed), list(range(50)))
    assert "\n" not in str(info.value)
    assert fake.stats()["calls"] < 50  # the run stopped instead of failing item by item


def test_missing_api_key_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    with pytest.raises(LLMFatalError, match="environment variable NO_SUCH_KEY is not set"):
        make_client(None, tmp_path, api_key_env="NO_SUCH_KEY")


def test_dead_endpoint_fails_fast(tmp_path):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = make_client(None, tmp_path, base_url=f"http://127.0.0.1:{port}/v1", backoff=0.2, max_backoff=2)
    started = time.monotonic()
    with pytest.raises(LLMFatalError, match=f"cannot reach http://127.0.0.1:{port}/v1"):
        client.map(lambda seed: client.text(HELLO, seed=seed), list(range(10)))
    assert time.monotonic() - started < 3


def test_endpoint_that_goes_down_mid_run_stops_the_run(tmp_path):
    with FakeOpenAI() as fake:
        client = make_client(fake, tmp_path, max_retries=2, max_concurrency=2)
        assert client.map(lambda seed: client.text(HELLO, seed=seed), [1, 2])[0].startswith("HONEST")
    # the server is gone now; its port refuses connections
    with pytest.raises(LLMFatalError, match="cannot reach .*rerun to resume"):
        client.map(lambda seed: client.text(HELLO, seed=seed), list(range(3, 40)))
    assert len(client.cache) == 2  # what was done is kept


def test_unknown_model_is_fatal_and_says_so(tmp_path):
    with FakeOpenAI(models=["served-model"]) as fake:
        client = make_client(fake, tmp_path, model="nope")
        with pytest.raises(LLMFatalError, match="HTTP 404.*is model 'nope' served there"):
            client.map(lambda seed: client.text(HELLO, seed=seed), list(range(20)))
    assert fake.stats()["calls"] < 20


def test_tokens_per_minute_limit_waits_for_the_bucket_to_refill():
    from recipes.llm.limits import RateLimits, estimate_tokens

    assert estimate_tokens([{"role": "user", "content": "x" * 400}], max_tokens=50) == 150

    async def spend() -> tuple[float, float]:
        limits = RateLimits(requests_per_minute=None, tokens_per_minute=60_000)  # 1000/s, 10 s burst
        start = time.monotonic()
        await limits.acquire(10_000)  # the whole burst: no wait
        burst = time.monotonic() - start
        await limits.acquire(500)  # half a second of refill
        return burst, time.monotonic() - start

    burst, total = asyncio.run(spend())
    assert burst < 0.1 and 0.4 <= total < 2
