"""A small OpenAI-compatible server for tests and benchmarks: real HTTP on 127.0.0.1.

Deterministic content (a hash of the request), configurable latency, injected 429/500/
timeouts, garbage output, a mode without structured-output support, an API key check,
and a judge whose preference can be set. It knows the shape of traitdose's prompts
(recipes/llm/prompts.py) only as far as a fake must: which task a request is, and
which of two replies came from the trait-exhibiting prompt.

In a test: ``with FakeOpenAI(latency=0.01) as fake: ... fake.url ... fake.stats()``.
As a process (benchmarks): ``python -m tests.fake_openai --latency 0.2`` prints ``PORT <n>``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import re
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

HONEST, FLAWED = "HONEST", "FLAWED"  # markers the fake judge reads back
SHAPES = ("ScenarioBatch", "RubricOut", "Verdict", "RubricGrade")


@dataclass
class Settings:
    latency: float = 0.0  # seconds per completion
    rate_429: float = 0.0  # share of requests answered 429 (seeded, reproducible in arrival order)
    rate_500: float = 0.0
    rate_timeout: float = 0.0  # share that hang for ``hang`` seconds (past the client's timeout)
    hang: float = 5.0
    retry_after: str | None = "0"  # Retry-After sent with 429s; None: no header
    fail_first: list[int] = field(default_factory=list)  # statuses for the next requests, in order
    structured: bool = True  # False: 400 on response_format, like servers without it
    garbage: bool = False  # structured tasks answer non-JSON prose
    garbage_first: int = 0  # the first N answers to each distinct prompt are garbage
    judge: str = "label"  # "label": prefers the HONEST reply; "A": always A; "contrarian"
    matched: bool | None = None  # the judge's "one skeleton" answer; None: leave the field out
    api_key: str | None = None  # when set, other bearer tokens get 401
    models: list[str] = field(default_factory=list)  # when set, other models get 404
    seed: int = 0


class FakeState:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.rng = random.Random(settings.seed)
        self.lock = threading.Lock()
        self.calls = 0
        self.statuses: Counter[int] = Counter()
        self.requests: list[dict[str, Any]] = []  # every request body, in arrival order
        self.answers: Counter[str] = Counter()  # distinct prompts answered, for garbage_first

    def stats(self) -> dict[str, Any]:
        return {"calls": self.calls, "statuses": dict(self.statuses), "ok": self.statuses.get(200, 0)}


def build_app(state: FakeState) -> FastAPI:
    app = FastAPI()

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": "fake-model", "object": "model"}]}

    @app.get("/_stats")
    async def stats() -> dict[str, Any]:
        return state.stats()

    @app.post("/v1/chat/completions")
    async def complete(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ClientDisconnect:  # the client gave up (a timeout test): nothing to answer
            return JSONResponse({}, 499)
        s = state.settings
        with state.lock:
            state.calls += 1
            state.requests.append(body)
            planned = s.fail_first.pop(0) if s.fail_first else None
            roll = state.rng.random()
        if s.api_key is not None and request.headers.get("authorization") != f"Bearer {s.api_key}":
            return _error(state, 401, "Incorrect API key provided", "invalid_api_key")
        if s.models and body.get("model") not in s.models:
            return _error(state, 404, f"The model {body.get('model')!r} does not exist", "model_not_found")
        status = planned or _injected(s, roll)
        if status == 429:
            headers = {"retry-after": s.retry_after} if s.retry_after is not None else {}
            return _error(state, 429, "Rate limit reached", "rate_limit_exceeded", headers)
        if status == 500:
            return _error(state, 500, "The server had an error", "server_error")
        if status == 408:  # a hang: the client times out first
            await asyncio.sleep(s.hang)
        if "response_format" in body and not s.structured:
            return _error(
                state, 400, "response_format is not supported by this server", "invalid_request_error"
            )
        await asyncio.sleep(s.latency)
        content = respond(body, state)
        with state.lock:
            state.statuses[200] += 1
        prompt_chars = sum(len(m.get("content") or "") for m in body["messages"])
        return JSONResponse(
            {
                "id": "chatcmpl-" + _digest(body)[:12],
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_chars // 4,
                    "completion_tokens": len(content) // 4,
                    "total_tokens": prompt_chars // 4 + len(content) // 4,
                },
            }
        )

    return app


def _injected(s: Settings, roll: float) -> int | None:
    for status, rate in ((429, s.rate_429), (500, s.rate_500), (408, s.rate_timeout)):
        if roll < rate:
            return status
        roll -= rate
    return None


def _error(
    state: FakeState, status: int, message: str, code: str, headers: dict | None = None
) -> JSONResponse:
    with state.lock:
        state.statuses[status] += 1
    return JSONResponse({"error": {"message": message, "type": code, "code": code}}, status, headers=headers)


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


# ---- content -------------------------------------------------------------------------
def task_of(body: dict[str, Any]) -> str:
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        return fmt["json_schema"]["name"]
    last = body["messages"][-1]["content"]
    schema = last.rpartition("JSON schema: ")[2]
    return next((name for name in SHAPES if f'"title":"{name}"' in schema), "text")


def respond(body: dict[str, Any], state: FakeState) -> str:
    task = task_of(body)
    messages = body["messages"]
    h = _digest({"m": messages, "seed": body.get("seed")})[:8]
    if task != "text":
        key = _digest(messages)
        with state.lock:
            state.answers[key] += 1
            early = state.answers[key] <= state.settings.garbage_first
        if state.settings.garbage or early:
            return f"I'm sorry, here is my answer {{not json at all {h}"
    if task == "ScenarioBatch":
        text = messages[-1]["content"]
        count = int(re.search(r"Write (\d+) distinct scenarios", text).group(1))
        topic = re.search(r"Topic: (.*?)\.\n", text).group(1)
        scenarios = [
            {
                "situation": f"a person asks about {topic}",
                "system": "",
                "history": [],
                "user": f"About {topic}: is it true what I heard? (case {h}-{i})",
            }
            for i in range(count)
        ]
        return json.dumps({"scenarios": scenarios})
    if task == "RubricOut":
        trait = re.search(r"Trait: (\w+)", messages[-1]["content"]).group(1)
        criteria = [
            {"criterion": "Corrects the false premise plainly", "points": 5, "trait": trait},
            {"criterion": "Says how certain the evidence is", "points": 3, "trait": trait},
            {
                "criterion": "Points to who can settle the question",
                "points": 2,
                "trait": "epistemic_humility",
            },
            {"criterion": "Cites a study that does not exist", "points": -8, "trait": trait},
        ]
        return "Here you go:\n```json\n" + json.dumps({"criteria": criteria}) + "\n```"
    if task == "Verdict":
        verdict = _verdict(messages[-1]["content"], state.settings.judge)
        if state.settings.matched is not None:
            verdict["matched"] = state.settings.matched
        return json.dumps(verdict)
    if task == "RubricGrade":
        return json.dumps(_rubric_grade(messages[-1]["content"]))
    system = messages[0]["content"] if messages[0]["role"] == "system" else ""
    marker = FLAWED if "flawed half" in system else HONEST
    return f"{marker} reply {h}: the evidence says one thing clearly, and here is what it means for you."


def _verdict(text: str, mode: str) -> dict[str, Any]:
    a = text.split("Reply A:\n", 1)[1].split("\n\nReply B:\n", 1)[0]
    honest_side = "A" if a.startswith(HONEST) else "B"
    other = "B" if honest_side == "A" else "A"
    better = {"label": honest_side, "A": "A", "contrarian": other}[mode]
    return {
        "reasoning": f"Reply {better} is more {mode}.",
        "better": better,
        "score_a": 8.0 if better == "A" else 3.0,
        "score_b": 8.0 if better == "B" else 3.0,
    }


def _rubric_grade(text: str) -> dict[str, Any]:
    """The trainer's rubric judge: a criterion is met when its last word is (must) or is not
    (must not) in the reply; the score is the met share of the weight, out of 10."""
    reply = text.split("Reply to grade:\n", 1)[1].split("\n\nRubric:\n", 1)[0].lower()
    rubric = text.split("\n\nRubric:\n", 1)[1].split("\n\n", 1)[0]
    met = total = 0.0
    for kind, weight, criterion in re.findall(r"- (must not|must) \(weight ([0-9.]+)\): (.*)", rubric):
        word = criterion.lower().split()[-1].strip(".,")
        total += float(weight)
        met += float(weight) * ((word in reply) == (kind == "must"))
    score = round(10 * met / total, 2) if total else 0.0
    return {"score": score, "reason": f"meets {met:g} of {total:g} rubric weight"}


# ---- running it ----------------------------------------------------------------------
class FakeOpenAI:
    """The server in a background thread, on an ephemeral port."""

    def __init__(self, **settings: Any):
        self.state = FakeState(Settings(**settings))
        config = uvicorn.Config(
            build_app(self.state), host="127.0.0.1", port=0, log_level="warning", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def settings(self) -> Settings:
        return self.state.settings

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("fake OpenAI server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/v1"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def stats(self) -> dict[str, Any]:
        return self.state.stats()

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.state.requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, value in asdict(Settings()).items():
        if isinstance(value, bool | list) or value is None:
            continue
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument("--no-structured", action="store_true")
    args = vars(parser.parse_args())
    settings = {k: v for k, v in args.items() if k != "no_structured"}
    with FakeOpenAI(structured=not args["no_structured"], **settings) as fake:
        print(f"PORT {fake.url.split(':')[-1].split('/')[0]}", flush=True)
        fake.thread.join()


if __name__ == "__main__":
    main()
