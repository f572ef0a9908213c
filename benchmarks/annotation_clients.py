"""The clients of ``annotation_load.py``: people labeling, timed call by call.

``InProcess`` calls the ASGI app directly (no socket, no HTTP client: what is timed is the
server's own work, request parsing to response body); ``Loopback`` speaks
HTTP/1.1 over one keep-alive connection per annotator, written out by hand so that on a
shared 2-core machine the load clients cost a small fraction of the server they measure.
Every request goes to 127.0.0.1 only; every loop is bounded in count and time.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from collections import Counter
from typing import Any

from annotation.web.deps import SESSION_COOKIE
from annotation.web.limits import KEEP_ALIVE_S

CALLS = ("page", "next", "submit")


def ms(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] * 1000 if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


Answer = tuple[int, bytes]  # status, body


class CallFailed(Exception):
    """A call answered with an unexpected status."""


class Recorder:
    def __init__(self) -> None:
        self.calls: dict[str, list[float]] = {c: [] for c in CALLS}
        # CPU seconds of this thread per call: the server's own CPU for in-process calls
        # (wall time on a loaded machine is mostly waiting for a core).
        self.cpu: dict[str, list[float]] = {c: [] for c in CALLS}
        self.submitted: list[tuple[str, str]] = []  # (item, token) the server said it stored
        self.errors: Counter[str] = Counter()
        self.server_cpu = float("nan")
        self.client_cpu = float("nan")
        self.wall = float("nan")

    async def timed(self, name: str, call: Any, expect: int = 200) -> bytes:
        t0, c0 = time.perf_counter(), time.thread_time()
        status, body = await call
        self.calls[name].append(time.perf_counter() - t0)
        self.cpu[name].append(time.thread_time() - c0)
        if status != expect:
            raise CallFailed(f"{name}: HTTP {status} {body[:80]!r}")
        return body


class InProcess:
    """Calls the ASGI app directly, as a server would: one scope, the body in one message,
    the answer collected from its messages. No socket and no HTTP client (httpx's ASGI
    transport costs about as much CPU as the route itself), so the time is the app's."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def call(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> Answer:
        raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        raw.append((b"content-length", str(len(body)).encode()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": raw,
            "server": ("127.0.0.1", 80),
            "client": ("127.0.0.1", 40000),
        }
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        status, chunks = 0, []

        async def receive() -> dict[str, Any]:
            return messages.pop() if messages else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            else:
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks)


class Loopback:
    """HTTP/1.1 with keep-alive over one loopback connection, written out by hand: a small
    fraction of the CPU httpx spends a call, so on a shared 2-core machine the load clients
    do not crowd out the server they measure. Every answer here carries Content-Length.
    Like a browser, it reconnects when the server has closed an idle connection
    (``traitdose annotate serve`` keeps one ``KEEP_ALIVE_S``)."""

    IDLE_S = KEEP_ALIVE_S - 5  # reconnect rather than race the server's keep-alive timeout

    def __init__(self, port: int) -> None:
        self.port = port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.last = 0.0

    async def call(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> Answer:
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
        request = (head + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode() + body
        if self.streams is not None and time.monotonic() - self.last > self.IDLE_S:
            self.close()
        for attempt in range(2):
            fresh = self.streams is None
            if fresh:
                self.streams = await asyncio.open_connection("127.0.0.1", self.port)
            reader, writer = self.streams
            writer.write(request)
            status_line = await reader.readline()
            if status_line or fresh or attempt:
                break
            self.close()  # closed while idle, before reading this request: send it again
        if not status_line:
            raise CallFailed(f"{path}: connection closed")
        answer = int(status_line.split()[1]), await self._body(reader, path)
        self.last = time.monotonic()
        return answer

    @staticmethod
    async def _body(reader: asyncio.StreamReader, path: str) -> bytes:
        length = None
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise CallFailed(f"{path}: answer without Content-Length")
        return await reader.readexactly(length)

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def one_label(conn: InProcess | Loopback, token: str, rec: Recorder, read_s: float = 0.0) -> bool:
    """next → (read) → submit; False when the queue has nothing for this annotator."""
    headers = auth(token)
    task = json.loads(await rec.timed("next", conn.call("GET", "/api/next", headers)))
    if task["item_id"] is None:
        return False
    if read_s:
        await asyncio.sleep(read_s)
    body = json.dumps({"item_id": task["item_id"], "choice": random.choice("AB")}).encode()
    posted = {**headers, "Content-Type": "application/json"}
    done = json.loads(await rec.timed("submit", conn.call("POST", "/api/submit", posted, body)))
    if done["recorded"]:
        rec.submitted.append((task["item_id"], token))
    return True


async def per_call(conn: InProcess | Loopback, token: str, session: str, rounds: int) -> Recorder:
    """The label page (with a web session's cookie), next and submit, one annotator alone."""
    rec = Recorder()
    cookie = {"Cookie": f"{SESSION_COOKIE}={session}"}
    for _ in range(rounds):
        await rec.timed("page", conn.call("GET", "/", cookie))
        if not await one_label(conn, token, rec):
            break
    return rec


async def human_pace(port: int, tokens: list[str], duration: float, seed: int) -> Recorder:
    rng = random.Random(seed)
    rec = Recorder()
    deadline = time.monotonic() + duration

    async def person(token: str) -> None:
        conn = Loopback(port)  # one connection per person, kept open like a browser tab's
        await asyncio.sleep(rng.uniform(0, 6))  # people do not all start on the same second
        try:
            while time.monotonic() < deadline:
                if not await one_label(conn, token, rec, read_s=rng.uniform(2, 6)):
                    return
        finally:
            conn.close()

    await asyncio.gather(*(person(t) for t in tokens))
    return rec


async def poisson(port: int, tokens: list[str], rate: float, seconds: float, seed: int) -> Recorder:
    """Open-loop arrivals at ``rate`` labels/s, each by a free annotator; bounded by ``seconds``."""
    rng = random.Random(seed)
    rec = Recorder()
    free = list(tokens)
    conns = {t: Loopback(port) for t in tokens}
    tasks: list[asyncio.Task] = []
    # Each person's tab is open before they label (they loaded the page): connect first, so
    # the timed calls are label calls, not TCP handshakes for hundreds of fresh connections.
    for start in range(0, len(tokens), 50):
        batch = tokens[start : start + 50]
        await asyncio.gather(*(conns[t].call("GET", "/api/status", auth(t)) for t in batch))

    async def arrival(token: str) -> None:
        try:
            await one_label(conns[token], token, rec)
        except (CallFailed, OSError, asyncio.IncompleteReadError) as exc:
            rec.errors[type(exc).__name__ + ": " + str(exc)[:60]] += 1
            conns[token].close()
            conns[token] = Loopback(port)
        finally:
            free.append(token)

    start = time.monotonic()
    next_at = start
    while next_at < start + seconds:
        next_at += rng.expovariate(rate)  # arrival times fixed in advance: open loop
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        if free:  # an arrival with every annotator busy is shed, not queued on the client
            tasks.append(asyncio.create_task(arrival(free.pop(rng.randrange(len(free))))))
    await asyncio.gather(*tasks)
    for conn in conns.values():
        conn.close()
    return rec
