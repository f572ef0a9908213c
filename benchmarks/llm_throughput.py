"""LLM client throughput against the fake OpenAI-compatible server (tests/fake_openai.py).

The server runs in its own process (its own interpreter and event loop) with 200 ms latency per
completion; the client is ``recipes.llm.client.LLMClient`` (one aiohttp pool, cache, limits,
retries). Both share this machine's cores: the benchmark prints the server's CPU per request
beside the client's, so a run that misses the ideal shows whether the client, the fake server
or the machine's load bounds it.

1. Throughput at concurrency 32 and 128: achieved requests/s as a ratio of the ideal
   concurrency / 0.2 s (160 and 640 req/s; goal >= 0.9), and of a bare ``httpx`` client measured
   in the same run (what the cache, limits and retry layers cost); client CPU per request (goal
   <= 1 ms) beside bare httpx's.
2. 10% injected 429s (Retry-After: 0.2): every item completes, exactly one result each.
3. Kill at ~50% (SIGKILL) and resume from the cache: total calls <= items + concurrency.

    python benchmarks/llm_throughput.py              # 640 requests per part
    python benchmarks/llm_throughput.py --items 320
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's packages and tests/, not an installed copy

from recipes.llm.client import LLMClient  # noqa: E402
from recipes.spec import LLMConfig  # noqa: E402

LATENCY = 0.2
CONCURRENCY = 32
CONCURRENCIES = (32, 128)


class Server:
    """``python -m tests.fake_openai`` in a child process."""

    def __init__(self, *args: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fake_openai", "--latency", str(LATENCY), *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line.startswith("PORT "):
            raise RuntimeError(f"fake server did not start: {line!r}")
        self.base = f"http://127.0.0.1:{line.split()[1]}"
        self.url = f"{self.base}/v1"

    def cpu_seconds(self) -> float:
        """The server process's user + system CPU so far (Linux /proc; NaN elsewhere)."""
        try:
            ticks = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[11:13]
        except OSError:
            return float("nan")
        return sum(map(int, ticks)) / os.sysconf("SC_CLK_TCK")

    def stats(self) -> dict:
        with urllib.request.urlopen(f"{self.base}/_stats") as response:
            return json.load(response)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait()


def make_client(url: str, cache: Path, concurrency: int = CONCURRENCY) -> LLMClient:
    config = LLMConfig(base_url=url, model="fake-model", api_key_env=None, max_concurrency=concurrency)
    return LLMClient(config, cache)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_items(
    url: str, cache: Path, items: int, concurrency: int = CONCURRENCY
) -> tuple[list, LLMClient, float]:
    client = make_client(url, cache, concurrency)
    start = time.perf_counter()

    async def ask(i: int) -> str:
        return await client.text([{"role": "user", "content": f"Say something about item {i}."}], seed=i)

    results = client.map(ask, list(range(items)))
    seconds = time.perf_counter() - start
    client.close()
    return results, client, seconds


def bare_httpx(url: str, items: int, concurrency: int) -> float:
    """The floor: the same requests with a plain httpx client, no SDK, cache or retries."""
    import httpx

    async def main() -> list:
        slots = asyncio.Semaphore(concurrency)
        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as http:

            async def one(i: int) -> None:
                async with slots:
                    body = {"model": "fake-model", "messages": [{"role": "user", "content": f"raw {i}"}]}
                    (await http.post("/chat/completions", json=body)).raise_for_status()

            return await asyncio.gather(*(one(i) for i in range(items)), return_exceptions=True)

    return _run_bare(main)


def bare_aiohttp(url: str, items: int, concurrency: int) -> float:
    """The same requests with a plain aiohttp session: the transport the client uses."""
    import aiohttp

    async def main() -> list:
        slots = asyncio.Semaphore(concurrency)
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as http:

            async def one(i: int) -> None:
                async with slots:
                    body = {"model": "fake-model", "messages": [{"role": "user", "content": f"raw {i}"}]}
                    async with http.post(f"{url}/chat/completions", json=body) as response:
                        response.raise_for_status()
                        await response.read()

            return await asyncio.gather(*(one(i) for i in range(items)), return_exceptions=True)

    return _run_bare(main)


def _run_bare(main: Callable[[], Any]) -> float:
    """Seconds to run a bare client's requests; failed requests (httpx drops connections now and
    then at 128 on a loaded machine) are counted and printed, not fatal."""
    start = time.perf_counter()
    failed = [r for r in asyncio.run(main()) if isinstance(r, BaseException)]
    seconds = time.perf_counter() - start
    if failed:
        print(f"    ({len(failed)} bare requests failed: {type(failed[0]).__name__} {failed[0]})")
    return seconds


def timed(server: Server, fn: Callable[[], float], items: int) -> tuple[float, float, float]:
    """(requests/s, client CPU ms per request, server CPU ms per request) of one run."""
    client0, server0 = cpu_seconds(), server.cpu_seconds()
    seconds = fn()
    client_ms = (cpu_seconds() - client0) / items * 1000
    return items / seconds, client_ms, (server.cpu_seconds() - server0) / items * 1000


def throughput(items: int, tmp: Path, concurrency: int) -> None:
    with Server() as server:
        run_items(server.url, tmp / f"warm{concurrency}.sqlite", concurrency, concurrency)  # warm pools
        runs = {
            "bare httpx": timed(server, lambda: bare_httpx(server.url, items, concurrency), items),
            "bare aiohttp": timed(server, lambda: bare_aiohttp(server.url, items, concurrency), items),
        }
        box: dict[str, list] = {}

        def ours() -> float:
            results, _, seconds = run_items(server.url, tmp / f"t{concurrency}.sqlite", items, concurrency)
            box["results"] = results
            return seconds

        runs["client"] = timed(server, ours, items)
    ideal = concurrency / LATENCY
    achieved, cpu_ms, server_ms = runs["client"]
    ok = sum(isinstance(r, str) for r in box["results"])
    load = os.getloadavg()[0]
    print(
        f"[1] concurrency {concurrency}, latency {LATENCY * 1000:.0f} ms: {items} requests, {ok} ok "
        f"(load average {load:.1f} on {os.cpu_count()} cores)"
    )
    verdict = "meets" if achieved / ideal >= 0.9 else "misses"
    print(
        f"    client {achieved:.1f} req/s; ideal {ideal:.0f} req/s; "
        f"ratio {achieved / ideal:.3f} ({verdict} the 0.9 goal)"
    )
    verdict = "meets" if cpu_ms <= 1.0 else "misses"
    print(f"    client CPU {cpu_ms:.2f} ms/request ({verdict} the 1 ms goal)")
    for name in ("bare httpx", "bare aiohttp"):
        rate, ms, _ = runs[name]
        print(
            f"    {name:<12} {rate:.1f} req/s (ratio to ideal {rate / ideal:.3f}), "
            f"CPU {ms:.2f} ms/request; client / {name} {achieved / rate:.3f}"
        )
    # What bounds the figures: the client's CPU, and the fake server's, on the same cores.
    print(f"    one free core drives {1000 / cpu_ms:.0f} req/s = {1000 / cpu_ms / ideal:.2f}x ideal")
    print(
        "    fake server CPU per request: "
        + ", ".join(f"{name} {runs[name][2]:.2f} ms" for name in runs)
        + f"; at the ideal rate it needs {server_ms * ideal / 1000:.2f} of a core, the client "
        f"{cpu_ms * ideal / 1000:.2f}: {(server_ms + cpu_ms) * ideal / 1000:.2f} of the "
        f"{os.cpu_count()} cores, shared with a load average of {load:.1f}"
    )


def with_429s(items: int, tmp: Path) -> None:
    with Server("--rate-429", "0.1", "--retry-after", "0.2") as server:
        results, client, seconds = run_items(server.url, tmp / "r.sqlite", items)
        stats = server.stats()
    done = [r for r in results if isinstance(r, str)]
    duplicates = len(done) - len(set(done))
    print(f"[2] 10% injected 429s: {len(done)}/{items} items complete, {duplicates} duplicate results")
    print(
        f"    429s answered {stats['statuses'].get('429', 0)}, client retries {client.usage.retries}, "
        f"successful calls {stats['ok']} (= items: {stats['ok'] == items}); "
        f"{items / seconds:.1f} req/s, ratio to ideal {items / seconds / (CONCURRENCY / LATENCY):.3f}"
    )


def kill_and_resume(items: int, tmp: Path) -> None:
    cache = tmp / "k.sqlite"
    with Server() as server:
        worker = [
            sys.executable,
            __file__,
            "--worker",
            server.url,
            "--cache",
            str(cache),
            "--items",
            str(items),
        ]
        proc = subprocess.Popen(worker, cwd=ROOT)
        while server.stats()["ok"] < items // 2 and proc.poll() is None:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        at_kill = server.stats()["calls"]
        results, client, _ = run_items(server.url, cache, items)
        total = server.stats()["calls"]
    done = sum(isinstance(r, str) for r in results)
    verdict = "meets" if total <= items + CONCURRENCY else "misses"
    print(f"[3] SIGKILL after {at_kill} calls, then resume: {done}/{items} items complete")
    print(
        f"    resumed run: {client.usage.cache_hits} cache hits, {client.usage.calls} calls; "
        f"total calls {total} <= items + concurrency = {items + CONCURRENCY} ({verdict} the goal); "
        f"ratio {total / items:.3f} of items"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=640)
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # child process for part 3: the URL
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_items(args.worker, Path(args.cache), args.items)
        return
    # Client and server share this machine's cores: a busy machine lowers every req/s figure.
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at start")
    with tempfile.TemporaryDirectory() as tmp:
        for concurrency in CONCURRENCIES:
            throughput(max(args.items, 10 * concurrency), Path(tmp), concurrency)
        with_429s(args.items, Path(tmp))
        kill_and_resume(args.items, Path(tmp))


if __name__ == "__main__":
    main()
