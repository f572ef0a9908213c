"""The annotation server measured as people use it: per-call cost, human-pace load, saturation.

Three measurements, one run, one store:

1. **Per-call server cost** of the label page, "next item" and "submit label", one annotator
   alone, sequential calls: in-process (the ASGI app called directly, so no socket and no HTTP
   client: the server's own cost, as wall time and as CPU time, which a loaded machine does
   not inflate) and over loopback (a real uvicorn server on 127.0.0.1).
2. **Human pace**: ``--annotators`` people (default 50) with open-loop arrivals: each opens the
   next item, reads it for 2–6 s (uniform at random), submits a label, and goes on; for
   ``--duration`` seconds. p50/p95 per call, and labels lost or duplicated, counted against the
   queue (every submit the clients saw succeed must be stored exactly once).
3. **Saturation**: Poisson arrivals of (next + submit) at rising rates, by annotators whose
   connections are already open (their tab is loaded); the rate at which p95 crosses 100 ms,
   the server's CPU per label at each rate and what bounds it (busy most of the time: the one
   event loop; busy no more than a loaded machine's fair share: waiting for a core; idle CPU
   while p95 grows on a quiet machine: a lock), and with ``--profile`` a cProfile summary of
   the server at the first rate past 100 ms (SQLite, template rendering, the event loop and HTTP).

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
import os
import pstats
import signal
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

from annotation_clients import (  # noqa: E402  (beside this script)
    CALLS,
    InProcess,
    Loopback,
    Recorder,
    human_pace,
    ms,
    per_call,
    poisson,
)

from annotation.queue import Queue  # noqa: E402
from annotation.sync import sync_routed  # noqa: E402
from annotation.web.app import create_app  # noqa: E402
from annotation.web.server import free_port  # noqa: E402
from core.schema import from_rows, item_id, messages  # noqa: E402
from core.store import Store  # noqa: E402

DATASET = "bench"
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
def row(name: str, rec: Recorder, base: Recorder | None = None, cpu: bool = False) -> str:
    cells = []
    for call in CALLS:
        values = rec.cpu[call] if cpu else rec.calls[call]
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


def profile_summary(path: Path, labels: int, server_cpu: float) -> list[str]:
    """Where the server's time went: by layer (own time), then the top functions."""
    stats = pstats.Stats(str(path))
    total = sum(tt for _, _, tt, _, _ in stats.stats.values())
    layers = dict.fromkeys([b for b, _ in BUCKETS] + ["our code and the rest"], 0.0)
    for (file, _, func), (_, _, tt, _, _) in stats.stats.items():
        where = f"{file}:{func}"
        layer = next((b for b, keys in BUCKETS if any(k in where for k in keys)), "our code and the rest")
        layers[layer] += tt
    lines = [
        f"  profile: {total:.2f} s of the event-loop thread's CPU (under the profiler; the whole server"
        f" process: {server_cpu:.2f} s, worker threads included), {labels} labels"
    ]
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
            return await per_call(InProcess(app), solo, sessions[0], args.rounds)

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
                *profile_summary(out, len(prof.submitted), prof.server_cpu),
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
    print(row("  the same, CPU time of each call", inproc, cpu=True))
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
    print(bound(rates, sweep, crossed))


def bound(rates: list[float], sweep: list[Recorder], crossed: float | None) -> str:
    """What bounds the saturation point: the server's one event loop when it is busy most of
    the time there; otherwise the core it waits for on a shared machine (or a lock)."""
    rec = sweep[rates.index(crossed)] if crossed else sweep[-1]
    busy = rec.server_cpu / rec.wall
    per_label = rec.server_cpu / max(1, len(rec.submitted))
    load = os.getloadavg()[0]
    share = min(1.0, (os.cpu_count() or 1) / max(load, 1.0))
    why = (
        "the event loop: one core's worth of server CPU"
        if busy >= 0.8
        else f"waiting for a core: a load average of {load:.1f} on {os.cpu_count()} cores leaves one "
        f"process about {share:.0%} of a core, and the server got {busy:.0%}"
    )
    return (
        f"  bounded by {why}; at {1000 * per_label:.2f} ms of server CPU a label, one free core "
        f"would serve ~{1 / per_label:.0f} labels/s"
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
