"""Latency of the annotation server under load: next-item + submit, 50 concurrent annotators.

Starts the real command (`traitdose annotate serve`) in its own process on loopback,
then drives it with asyncio HTTP clients. Baseline, measured in the same run against the
same server: one annotator working alone. Prints p50/p95 per round (next + submit) and
for each call, and the ratio of the loaded figures to the baseline.

    python benchmarks/annotate_load.py [--annotators 50] [--rounds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from annotation.queue import Queue  # noqa: E402
from annotation.sync import sync_routed  # noqa: E402
from annotation.web.server import free_port  # noqa: E402
from core.schema import from_rows, item_id, messages  # noqa: E402
from core.store import Store  # noqa: E402


def build_store(root: Path, items: int) -> Store:
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
    store.write_version("bench", {"train": from_rows([])}, side={"routed": from_rows(routed)})
    return store


async def annotate(client: httpx.AsyncClient, token: str, rounds: int, out: dict[str, list[float]]) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(rounds):
        t0 = time.perf_counter()
        task = (await client.get("/api/next", headers=headers)).raise_for_status().json()
        t1 = time.perf_counter()
        if task["item_id"] is None:
            raise RuntimeError("queue ran dry: raise the item count")
        body = {"item_id": task["item_id"], "choice": "A"}
        (await client.post("/api/submit", json=body, headers=headers)).raise_for_status()
        t2 = time.perf_counter()
        out["next"].append(t1 - t0)
        out["submit"].append(t2 - t1)
        out["round"].append(t2 - t0)


async def run(url: str, tokens: list[str], rounds: int) -> tuple[dict[str, list[float]], float]:
    out: dict[str, list[float]] = {"next": [], "submit": [], "round": []}
    limits = httpx.Limits(max_connections=len(tokens) + 4)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        start = time.perf_counter()
        await asyncio.gather(*(annotate(client, t, rounds, out) for t in tokens))
        return out, time.perf_counter() - start


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


def wait_ready(url: str, proc: subprocess.Popen, token: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            httpx.get(url + "/api/status", headers={"Authorization": f"Bearer {token}"}).raise_for_status()
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--annotators", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--baseline-rounds", type=int, default=100)
    args = ap.parse_args()
    k = 2
    needed = (args.annotators * args.rounds + args.baseline_rounds) // k + args.rounds + 10
    with tempfile.TemporaryDirectory() as tmp:
        store = build_store(Path(tmp) / "store", needed)
        queue = Queue.for_dataset(store, "bench")
        sync_routed(queue, store, "bench", k=k)
        solo = queue.add_annotator("solo")
        tokens = [queue.add_annotator(f"a{n:03d}") for n in range(args.annotators)]
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "traitdose", "annotate", "serve", "--store", str(store.root)]
        cmd += ["--dataset", "bench", "--port", str(port)]
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL)
        try:
            wait_ready(url, proc, solo)
            base, _ = asyncio.run(run(url, [solo], args.baseline_rounds))
            load, wall = asyncio.run(run(url, tokens, args.rounds))
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        responses = len(queue.responses())
    expected = args.baseline_rounds + args.annotators * args.rounds
    print(f"annotate_load: {args.annotators} concurrent annotators x {args.rounds} rounds on loopback")
    print(f"  responses stored: {responses} (expected {expected})")
    print(f"  throughput: {args.annotators * args.rounds / wall:.0f} labels/s")
    head = ("call", "p50 ms", "p95 ms", "1-client p50", "1-client p95", "p50 x", "p95 x")
    print("  " + "".join(f"{h:>14}" for h in head))
    for call in ("next", "submit", "round"):
        p50, p95 = pct(load[call], 50), pct(load[call], 95)
        b50, b95 = pct(base[call], 50), pct(base[call], 95)
        cells = [f"{x:.1f}" for x in (p50, p95, b50, b95, p50 / b50, p95 / b95)]
        print("  " + "".join(f"{c:>14}" for c in (call, *cells)))
    if responses != expected:
        raise SystemExit("lost or duplicated responses")


if __name__ == "__main__":
    main()
