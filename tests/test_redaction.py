"""Endpoint credentials never reach a manifest, a stored recipe, an error line or the cache key."""

from __future__ import annotations

import socket

import pytest

from core.store import Store
from core.urls import endpoint_key, redact_text, redact_url
from recipes.llm.client import LLMClient
from recipes.llm.errors import LLMFatalError
from recipes.runner import run_recipe
from recipes.spec import LLMConfig, load_recipe
from tests.conftest import write_recipe
from tests.fake_openai import FakeOpenAI
from tests.test_llm_recipe import llm_recipe

HELLO = [{"role": "user", "content": "Say hello."}]


def test_urls_lose_userinfo_and_secret_query_values():
    url = "http://alice:hunter2@models.example:8000/v1?api-key=SECRET1&token=SECRET2&region=eu"
    assert redact_url(url) == "http://***@models.example:8000/v1?api-key=***&token=***&region=eu"
    for name in ("key", "api_key", "apiKey", "access_token", "client_secret", "password", "sig", "X-Api-Key"):
        assert "S3" not in redact_url(f"https://h/v1?{name}=S3&page=2"), name
        assert redact_url(f"https://h/v1?{name}=S3&page=2").endswith("page=2")
    assert redact_url("https://api.openai.com/v1") == "https://api.openai.com/v1"
    assert redact_text(f"cannot reach {url} (refused)") == f"cannot reach {redact_url(url)} (refused)"
    # the cache's endpoint: no credentials at all, normalised
    assert endpoint_key(url) == endpoint_key("HTTP://bob:other@Models.Example:8000/v1/?region=eu")
    assert endpoint_key(url) != endpoint_key("http://models.example:8001/v1?region=eu")


def client(url: str, tmp_path) -> LLMClient:
    config = LLMConfig(base_url=url, model="fake-model", api_key_env=None, backoff=0.01, max_backoff=0.05)
    return LLMClient(config, tmp_path / "cache.sqlite")


def test_the_cache_keys_on_the_endpoint_without_credentials(tmp_path):
    with FakeOpenAI() as a, FakeOpenAI() as b:
        first = client(a.url, tmp_path)
        answer = first.map(lambda s: first.text(HELLO, seed=s), [1])
        first.close()
        # same server, other credentials: the cache answers
        again = client(a.url.replace("http://", "http://user:pw@"), tmp_path)
        assert again.map(lambda s: again.text(HELLO, seed=s), [1]) == answer
        assert again.usage.cache_hits == 1 and again.usage.calls == 0
        again.close()
        # another server with the same model name: asked, not served from the cache
        other = client(b.url, tmp_path)
        other.map(lambda s: other.text(HELLO, seed=s), [1])
        assert other.usage.cache_hits == 0 and other.usage.calls == 1 and b.stats()["calls"] == 1
        other.close()


def test_error_lines_redact_the_endpoint(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dead = client(f"http://alice:hunter2@127.0.0.1:{port}/v1", tmp_path)
    with pytest.raises(LLMFatalError) as info:
        dead.map(lambda s: dead.text(HELLO, seed=s), [1])
    assert "hunter2" not in str(info.value) and f"http://***@127.0.0.1:{port}/v1" in str(info.value)


def test_manifest_and_stored_recipe_hold_no_credentials(tmp_path):
    with FakeOpenAI() as fake:
        url = fake.url.replace("http://", "http://alice:hunter2@")
        recipe = load_recipe(write_recipe(tmp_path, llm_recipe(url, topics=1, per_topic=2)))
        assert "hunter2" not in recipe.to_yaml()
        version = run_recipe(recipe, Store(tmp_path / "store")).version
    assert version.manifest["llm"]["base_url"] == url.replace("alice:hunter2@", "***@")
    for path in version.path.rglob("*"):
        if path.is_file():
            assert b"hunter2" not in path.read_bytes(), path
