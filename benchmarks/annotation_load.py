"""The annotation server measured as people use it: per-call cost, human-pace load, saturation.

Three measurements, one run, one store:

1. **Per-call server cost** of the label page, "next item" and "submit label", one annotator
   alone, sequential calls: in-process (httpx's ASGI transport, so no socket and no event-loop
   hop: the server's own cost) and over loopback (a real uvicorn server on 127.0.0.1).
2. **Human pace**: ``--annotators`` people (default 50) with open-loop arrivals: each opens the
   next item, reads it for 2–6 s (uniform at random), submits a label, and goes on; for
   ``--duration`` seconds. p50/p95 per call, and labels lost or duplicated, counted against the
   queue (every submit the clients saw succeed must be stored exactly once).
3. **Saturation**: Poisson arrivals of (next + submit) at rising rates; the rate at which p95
   crosses 100 ms, the server's CPU per label at each rate (CPU-bound: the one event loop;
   idle CPU while p95 grows: a lock), and with ``--profile`` a cProfile summary of the server
   at the first rate past 100 ms (SQLite, template rendering, the event loop and HTTP).

The loopback server is the real ``traitdose annotate serve`` code path (``annotation.cli.serve``)
in its own process, so the clients' CPU and the server's do not share one interpreter. The
baseline of each figure is the same run's single-annotator loopback call. Every request goes
to 127.0.0.1 only; every loop is bounded in count and time.

    python benchmarks/annotation_load.py [--annotators 50] [--duration 30] [--rates 25,50,100,200,400]
        [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pstats
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from annotation.queue import Queue  # noqa: E402
from annotation.sync import sync_routed  # noqa: E402
from annotation.web.app import create_app  # noqa: E402
from annotation.web.deps import SESSION_COOKIE  # noqa: E402
from annotation.web.server import free_port  # noqa: E402
from core.schema import from_rows, item_id, messages  # noqa: E402
from core.store import Store  # noqa: E402

DATASET = "bench"
CALLS = ("page", "next", "submit")
# Where server time goes, by the file or function a profile entry belongs to (first match wins).
BUCKETS = (
    ("SQLite", ("sqlite3", "annotation/queue.py", "annotation/auth.py", "annotation/db.py")),
    ("templates (Jinja2)", ("jinja2", "/templates/", "<template>")),
    ("validation (pydantic)", ("pydantic",)),
    ("routing (FastAPI/Starlette)", ("fastapi", "starlette")),
    ("HTTP (uvicorn/httptools)", ("uvicorn", "httptools", "h11")),
    ("event loop (asyncio/uvloop)", ("asyncio", "uvloop", "selectors", "anyio")),
)


def build_store(root: Path, items: int, annotators: int) -> tuple[Store, Queue, list[str]]:
    """A store with ``items`` routed items, its queue (k=2) and annotator tokens."""
    store = Store(root, card_renderer=lambda path: None)
    routed = []
    for n in range(items):
        prompt = messages("user", f"Item {n}: my doctor says antibiotics won't help my cold. Is that right?")
        routed.append(
            {
                "id": item_id(prompt, "health", "truthfulness"),
                "domain": "health",
                "trait": "truthfulness",
                "prompt": prompt,
                "chosen": messages("assistant", "Your doctor is right: colds are viral. " * 8),
                "rejected": messages("assistant", "Antibiotics will clear it up quickly. " * 8),
                "label_source": "judge",
                "ambiguity": 0.5,
                "split": "train",
                "status": "routed",
            }
        )
    store.write_version(DATASET, {"train": from_rows([])}, side={"routed": from_rows(routed)})
    queue = Queue.for_dataset(store, DATASET)
    sync_routed(queue, store, DATASET, k=2)
    tokens = [queue.add_annotator(f"a{n:04d}") for n in range(annotators)]
    return store, queue, tokens


# ---- the server process --------------------------------------------------------------------
def serve(store: Path, port: int, profile_out: str | None) -> None:
    """``traitdose annotate serve`` itself, optionally under cProfile (written on SIGINT)."""
    import cProfile

    import uvicorn  # noqa: F401  (imported before the profiler starts)

    from annotation.cli import serve as serve_command

    # The event loop thread's CPU time, not wall time: on a loaded machine wall time is mostly
    # waiting for a core, and the loop's idle wait in epoll would swamp everything else.
    profiler = cProfile.Profile(time.thread_time) if profile_out else None
    if profiler:
        profiler.enable()
    try:
        serve_command(dataset_arg=DATASET, dataset=None, store=store, port=port, k=None, secure_cookies=None)
    except KeyboardInterrupt:  # uvicorn re-raises the SIGINT it stopped on
        pass
    finally:
        if profiler:
            profiler.disable()
            profiler.dump_stats(profile_out)


@contextmanager
def server_process(store: Path, profile_out: Path | None = None) -> Iterator[tuple[int, int]]:
    """Serve the store from a child process; yields (port, pid); stops it with SIGINT."""
    port = free_port()
    cmd = [sys.executable, __file__, "--serve", str(store), "--port", str(port)]
    if profile_out:
        cmd += ["--profile-out", str(profile_out)]
    child = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/login", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if child.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"annotation server did not start (exit {child.poll()})")
            time.sleep(0.1)
        yield port, child.pid
    finally:
        child.send_signal(signal.SIGINT)
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---- the clients ---------------------------------------------------------------------------
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
        self.submitted: list[tuple[str, str]] = []  # (item, token) the server said it stored
        self.errors: Counter[str] = Counter()
        self.server_cpu = float("nan")
        self.client_cpu = float("nan")
        self.wall = float("nan")

    async def timed(self, name: str, call: Any, expect: int = 200) -> bytes:
        t0 = time.perf_counter()
        status, body = await call
        self.calls[name].append(time.perf_counter() - t0)
        if status != expect:
            raise CallFailed(f"{name}: HTTP {status} {body[:80]!r}")
        return body


class InProcess:
    """Calls through httpx's ASGI transport: the app runs in this process, no socket."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def call(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> tuple[int, bytes]:
        response = await self.client.request(method, path, headers=headers, content=body or None)
        return response.status_code, response.content


class Loopback:
    """HTTP/1.1 with keep-alive over one loopback connection, written out by hand: a small
    fraction of the CPU httpx spends a call, so on a shared 2-core machine the load clients
    do not crowd out the server they measure. Every answer here carries Content-Length.
    Like a browser, it reconnects when the server has closed an idle connection (uvicorn's
    keep-alive lasts 5 s; people read longer than that)."""

    IDLE_S = 4.0  # reconnect rather than race the server's keep-alive timeout

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


async def one_label(conn: InProcess | Loopback, token: str, rec: Recorder, read_s: float = 0.0) -> bool:
    """next → (read) → submit; False when the queue has nothing for this annotator."""
    headers = {"Authorization": f"Bearer {token}"}
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


def measured(pid: int | None, run: Any) -> Recorder:
    """Run a client coroutine; note the server's and the client's CPU seconds it took."""
    server0, client0 = cpu_seconds(pid) if pid else float("nan"), time.process_time()
    t0 = time.perf_counter()
    rec = asyncio.run(run)
    rec.wall = time.perf_counter() - t0
    rec.client_cpu = time.process_time() - client0
    rec.server_cpu = (cpu_seconds(pid) - server0) if pid else float("nan")
    return rec


# ---- the report ----------------------------------------------------------------------------
def row(name: str, rec: Recorder, base: Recorder | None = None) -> str:
    cells = []
    for call in CALLS:
        values = rec.calls[call]
        if not values:
            cells.append(f"{'-':>22}")
            continue
        p50, p95 = ms(values, 50), ms(values, 95)
        ratio = f"({p95 / ms(base.calls[call], 95):.1f}x)" if base and base.calls[call] else ""
        cells.append(f"{p50:7.2f} /{p95:7.2f} {ratio:>6}")
    return f"  {name:<36}" + "".join(cells)


def p95_label(rec: Recorder) -> float:
    """p95 of the calls one label takes (next and submit), in ms."""
    return ms(rec.calls["next"] + rec.calls["submit"], 95)


def saturation(rates: list[float], sweep: list[Recorder]) -> float | None:
    """The first rate whose p95 per label call passed 100 ms."""
    return next((rate for rate, rec in zip(rates, sweep, strict=True) if p95_label(rec) > 100), None)


def check_stored(queue: Queue, tokens: list[str], recorders: list[Recorder]) -> tuple[int, int, int]:
    """(expected, lost, duplicated): every submit the server said it stored is there, once."""
    name_of = {t: f"a{n:04d}" for n, t in enumerate(tokens)}
    stored: dict[tuple[str, str], int] = {}
    for response in queue.responses():
        key = (response.item_id, response.annotator)
        stored[key] = stored.get(key, 0) + 1
    expected = {(item, name_of[token]) for r in recorders for item, token in r.submitted}
    lost = len(expected - stored.keys())
    duplicated = sum(c - 1 for c in stored.values() if c > 1)
    return len(expected), lost, duplicated


def profile_summary(path: Path, labels: int) -> list[str]:
    """Where the server's time went: by layer (own time), then the top functions."""
    stats = pstats.Stats(str(path))
    total = sum(tt for _, _, tt, _, _ in stats.stats.values())
    layers = dict.fromkeys([b for b, _ in BUCKETS] + ["our code and the rest"], 0.0)
    for (file, _, func), (_, _, tt, _, _) in stats.stats.items():
        where = f"{file}:{func}"
        layer = next((b for b, keys in BUCKETS if any(k in where for k in keys)), "our code and the rest")
        layers[layer] += tt
    lines = [f"  profile: {total:.2f} s of the server's event-loop thread CPU, {labels} labels"]
    for layer, tt in sorted(layers.items(), key=lambda kv: -kv[1]):
        lines.append(f"    {layer:<30}{tt:7.2f} s {100 * tt / total:5.1f}%")
    lines.append("  top functions by own time:")
    top = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:10]
    for (file, line, func), (_, calls, tt, _, _) in top:
        short = "/".join(Path(file).parts[-2:]) if file != "~" else "builtin"
        lines.append(f"    {tt:6.2f} s {calls:8d}  {func} ({short}:{line})")
    return lines


def run(args: argparse.Namespace, rates: list[float], items: int) -> tuple[list[Recorder], list[str]]:
    """Every measurement, in order: in-process, loopback, people, the sweep (and the profile)."""
    pool = 400  # saturation annotators: enough that arrivals are rarely shed
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "store"
        _, queue, tokens = build_store(root, items, 2 + args.annotators + pool)
        solo, solo_net, people, crowd = tokens[0], tokens[1], tokens[2 : 2 + args.annotators], tokens[-pool:]
        sessions = [queue.open_session(t)[1] for t in (solo, solo_net)]  # as after a login
        app = create_app(queue, dataset=DATASET)

        async def in_process() -> Recorder:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
                return await per_call(InProcess(client), solo, sessions[0], args.rounds)

        async def loopback(port: int) -> Recorder:
            conn = Loopback(port)
            try:
                return await per_call(conn, solo_net, sessions[1], args.rounds)
            finally:
                conn.close()

        recorders = [measured(None, in_process())]
        with server_process(root) as (port, pid):
            recorders.append(measured(pid, loopback(port)))
            recorders.append(measured(pid, human_pace(port, people, args.duration, args.seed)))
            for rate in rates:
                recorders.append(measured(pid, poisson(port, crowd, rate, args.rate_seconds, args.seed)))
        profile_lines: list[str] = []
        if args.profile:
            out = Path(tmp) / "server.prof"
            rate = saturation(rates, recorders[3:]) or rates[-1]
            with server_process(root, out) as (port, pid):
                prof = measured(pid, poisson(port, crowd, rate, args.rate_seconds, args.seed + 1))
            recorders.append(prof)
            profile_lines = [
                f"  profiled at {rate:.0f} labels/s:",
                *profile_summary(out, len(prof.submitted)),
            ]
        expected, lost, duplicated = check_stored(queue, tokens, recorders)
    stored = f"  labels stored: {expected - lost} of {expected}; lost {lost}, duplicated {duplicated}"
    return recorders, [stored, *profile_lines] if not (lost or duplicated) else [stored, "LOST"]


def report(args: argparse.Namespace, rates: list[float], items: int, recorders: list[Recorder]) -> None:
    inproc, net, human, *sweep = recorders[: 3 + len(rates)]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"annotation_load: {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, "
        f"load average {load}; {items} items, k=2"
    )
    print("  p50 / p95 ms per call (p95 x the 1-annotator loopback figure)")
    print(f"  {'':<36}{'page':>22}{'next':>22}{'submit':>22}")
    print(row("1 annotator, in-process (ASGI)", inproc))
    print(row("1 annotator, loopback (baseline)", net))
    print(row(f"{args.annotators} people at 2-6 s/label, {args.duration:.0f} s", human, net))
    for rate, rec in zip(rates, sweep, strict=True):
        print(row(f"open loop {rate:.0f}/s (did {len(rec.submitted) / args.rate_seconds:.0f}/s)", rec, net))
    print("  server CPU per label (ms; for 1 annotator the label page too) and busy share of one core:")
    named = [("1 annotator, loopback", net), ("people", human)]
    named += [(f"open loop {rate:.0f}/s", rec) for rate, rec in zip(rates, sweep, strict=True)]
    for name, rec in named:
        cost, busy = 1000 * rec.server_cpu / max(1, len(rec.submitted)), 100 * rec.server_cpu / rec.wall
        print(f"    {name:<34}{cost:6.2f} ms/label, {busy:3.0f}% busy; client {rec.client_cpu:.1f} s CPU")
    errors = sum((r.errors for r in recorders), Counter())
    print(f"  failed calls: {sum(errors.values())}" + "".join(f"\n    {n} x {e}" for e, n in errors.items()))
    crossed = saturation(rates, sweep)
    print(
        "  saturation: p95 crosses 100 ms at "
        + (f"~{crossed:.0f} labels/s" if crossed else f"none of the rates tried (max {max(rates):.0f}/s)")
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--annotators", type=int, default=50)
    ap.add_argument("--duration", type=float, default=30.0, help="seconds of human-pace load")
    ap.add_argument("--rounds", type=int, default=300, help="sequential calls for the per-call cost")
    ap.add_argument("--rates", default="25,50,100,200,400", help="labels/s for the saturation sweep")
    ap.add_argument("--rate-seconds", type=float, default=8.0)
    ap.add_argument("--profile", action="store_true", help="cProfile the server at the saturation rate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--serve", type=Path, help=argparse.SUPPRESS)  # the child: serve this store
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--profile-out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.profile_out)
        return
    rates = [float(r) for r in args.rates.split(",")]
    items = args.rounds * 2 + int(sum(rates) * args.rate_seconds * 2) + args.annotators * int(args.duration)
    recorders, lines = run(args, rates, items)
    report(args, rates, items, recorders)
    print("\n".join(lines))
    if lines[-1] == "LOST":
        raise SystemExit("lost or duplicated labels")


if __name__ == "__main__":
    main()
