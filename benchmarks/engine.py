"""The local engine against the Ray engine (a local 2-CPU Ray), same corpus, same run.

    python benchmarks/engine.py --n 1000000      # the issue's size
    python benchmarks/engine.py --n 200000       # a few minutes on a busy 2-core machine

The corpus is ``benchmarks/dedupe.py``'s (documents of 30-120 Zipf words, 10% near-duplicate
variants of an earlier one, families known), plus 1% exact repeats of an earlier id; the stages
are exact dedupe then near dedupe (word 3-grams, threshold 0.8, 128 permutations). Each engine
runs in a fresh process that reads the corpus from Parquet and writes kept ids and dropped rows.

Figures: wall time of the curation, from the Parquet file to the kept ids and dropped rows on
the driver (Ray's start-up apart: ``ray.init`` and the first job's worker start, see ``start_ray``),
the time of each stage, peak RSS of the driver process, peak
total memory (PSS summed over the driver and every process it started: Ray's GCS, raylet, workers
and the shared-memory object store, sampled every 0.25 s), recall (planted pairs with exact
Jaccard >= 0.85 that end in one cluster) and precision (dropped rows whose keeper is in their own
planted family), and whether the two engines' outputs are identical. The per-partition cost of
the Ray run feeds the projection in docs/scale-out.md. Needs the ray extra, and psutil (which the
train extra brings) for the memory sampling.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from itertools import combinations
from pathlib import Path

import numpy as np
import polars as pl
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from dedupe import corpus, jaccard, shingle_set  # noqa: E402

THRESHOLD = 0.8


# ---- one engine, in its own process ------------------------------------------------------
def worker(engine: str, source: Path, out: Path, partitions: int | None) -> None:
    from curation.config import DedupeConfig
    from curation.engine import EngineSpec, open_engine
    from curation.exact import ExactDedupe
    from curation.near_dedupe import NearDedupe
    from curation.stage import Funnel

    started = time.perf_counter()
    if engine == "ray":
        start_ray()
    startup = time.perf_counter() - started
    stages = [ExactDedupe(), NearDedupe(DedupeConfig(field="text", threshold=THRESHOLD))]
    funnel, marks = Funnel(), []
    began = time.perf_counter()

    def on_stage(name: str, rows: int | None) -> None:
        marks.append((name, time.perf_counter()))

    # Both engines get the Parquet file: the Ray engine reads it on the workers, and only the
    # kept ids (what this benchmark writes) come back to the driver.
    with open_engine(EngineSpec(engine, partitions=partitions)) as runner:  # type: ignore[arg-type]
        kept, dropped = runner.run(source, stages, funnel, on_stage, columns=["id"])
        used = runner.partitions
        spilled = spilled_mib() if engine == "ray" else 0.0
    ended = time.perf_counter()
    kept.write_parquet(out / f"{engine}.kept.parquet")
    pl.concat(dropped).select("id", "drop_stage", "drop_reason", "drop_detail").write_parquet(
        out / f"{engine}.dropped.parquet"
    )
    peak = driver_peak_mib()
    times = [began, *(t for _, t in marks[1:]), ended]
    # The first stage's time includes reading the input (on the workers, for Ray).
    stage_s = {name: round(b - a, 2) for (name, _), a, b in zip(marks, times[:-1], times[1:], strict=True)}
    print(
        json.dumps(
            {
                "wall_s": ended - began,
                "startup_s": startup,
                "driver_peak_mib": peak,
                "partitions": used,
                "stage_s": stage_s,
                "spilled_mib": spilled,
            }
        )
    )


def driver_peak_mib() -> float:
    """This process's peak RSS (VmHWM). Not ``ru_maxrss``: Linux carries that over ``exec`` from the
    forked parent, so every engine would report the parent's size (the corpus it holds)."""
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024


def start_ray() -> None:
    """A local 2-CPU Ray, a worker process started on each CPU and its libraries imported: Ray's
    start-up.

    The first Ray Data job on a fresh instance spends seconds starting worker processes and
    importing polars, pyarrow and Ray Data in them; a long-lived cluster has paid that already,
    so it is counted here, with ``ray.init``, and printed apart from the curation's wall time.
    The warm-up runs under the engine's Ray Data settings, so its blocks run side by side, and
    checks that every CPU got a worker (a worker started later would count its start-up in the
    curation's time).
    """
    import logging

    import ray
    import ray.data

    from curation.ray_engine.session import configure_data_context

    cpus = 2
    ray.init(
        num_cpus=cpus,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
        runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}},
    )
    configure_data_context()
    blocks = ray.data.range(4 * cpus, override_num_blocks=4 * cpus)
    pids = blocks.map_batches(_warm, batch_format="pyarrow", batch_size=None).to_arrow_refs()
    workers = {pid for table in ray.get(pids) for pid in table["pid"].to_pylist()}
    if len(workers) < cpus:
        raise SystemExit(f"Ray's warm-up ran on {len(workers)} worker(s), not {cpus}")


def _warm(batch: object) -> object:
    import os

    import pyarrow as pa

    import curation.ray_engine.frames  # noqa: F401  (polars, pyarrow and Ray Data with it)

    time.sleep(0.25)  # long enough for the blocks to spread over every worker
    return pa.table({"pid": [os.getpid()]})


def spilled_mib() -> float:
    """Object store MiB Ray spilled to disk so far: the raylet logs each spill ("Spilled N MiB")."""
    import re

    from ray._private.worker import global_worker

    logs = Path(global_worker.node.get_session_dir_path()) / "logs"
    found = [
        int(m) for log in logs.glob("raylet*.out") for m in re.findall(r"Spilled (\d+) MiB", log.read_text())
    ]
    return float(max(found, default=0))


def measured(engine: str, source: Path, out: Path, partitions: int | None) -> dict[str, float]:
    """Run :func:`worker` in a fresh process, sampling the PSS of its whole process tree."""
    command = [sys.executable, __file__, "--worker", engine, "--source", str(source), "--out", str(out)]
    if partitions:
        command += ["--partitions", str(partitions)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    peak, done = [0.0], threading.Event()

    def sample() -> None:
        root = psutil.Process(child.pid)
        while not done.is_set():
            total = 0
            try:
                for proc in [root, *root.children(recursive=True)]:
                    try:
                        total += proc.memory_full_info().pss
                    except (psutil.NoSuchProcess, psutil.AccessDenied):
                        continue
            except psutil.NoSuchProcess:
                break
            peak[0] = max(peak[0], total / 2**20)
            done.wait(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = child.communicate()
    done.set()
    sampler.join()
    if child.returncode:
        raise SystemExit(f"{engine} run failed ({child.returncode})")
    return json.loads(output.strip().splitlines()[-1]) | {"total_peak_mib": peak[0]}


def median_run(runs: list[dict]) -> dict:
    """The run of median wall time (the middle one; of two, the faster)."""
    return sorted(runs, key=lambda run: run["wall_s"])[(len(runs) - 1) // 2]


# ---- corpus and quality ------------------------------------------------------------------
def write_corpus(n: int, path: Path) -> tuple[list[str], list[list[int]]]:
    texts, families = corpus(n)
    ids = [f"d{i}" for i in range(n)]
    rng = np.random.default_rng(1)
    repeats = rng.choice(n, n // 100, replace=False)
    extra_ids = [ids[i] for i in repeats]
    extra_texts = [texts[i] for i in repeats]
    pl.DataFrame({"id": ids + extra_ids, "text": texts + extra_texts}).write_parquet(path)
    return texts, families


def quality(texts: list[str], families: list[list[int]], dropped: pl.DataFrame) -> dict[str, float]:
    near = dropped.filter(pl.col("drop_stage") == "near_dedupe")
    kept_of = dict(
        zip(
            near["id"].to_list(),
            near["drop_detail"].map_elements(lambda d: json.loads(d)["kept_id"], pl.String).to_list(),
            strict=True,
        )
    )

    def root(row: int) -> str:
        return kept_of.get(f"d{row}", f"d{row}")

    family_of = {row: f for f, members in enumerate(families) for row in members}
    truth = [
        (i, j)
        for members in families
        for i, j in combinations(sorted(members), 2)
        if jaccard(shingle_set(texts[i]), shingle_set(texts[j])) >= THRESHOLD + 0.05
    ]
    found = sum(root(i) == root(j) for i, j in truth)
    rows = [int(k[1:]) for k in kept_of]
    right = sum(family_of.get(r, -1 - r) == family_of.get(int(kept_of[f"d{r}"][1:]), -2 - r) for r in rows)
    return {
        "planted_pairs_ge_0.85": len(truth),
        "recall": found / max(1, len(truth)),
        "near_dropped": len(rows),
        "precision": right / max(1, len(rows)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=None, help="Ray blocks (default: 2 per CPU)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="run the engines in turn this many times; medians are shown"
    )
    parser.add_argument("--worker", choices=["local", "ray"], help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.source, args.out, args.partitions)
        return
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        texts, families = write_corpus(args.n, out / "corpus.parquet")
        source = out / "corpus.parquet"
        # In turn (local, ray, local, ...): on a shared machine the load drifts between runs.
        tries: dict[str, list[dict]] = {"local": [], "ray": []}
        for _ in range(args.repeat):
            for engine, seen in tries.items():
                seen.append(measured(engine, source, out, args.partitions))
        runs = {engine: median_run(seen) for engine, seen in tries.items()}
        local_dropped = pl.read_parquet(out / "local.dropped.parquet")
        identical = all(
            (out / f"ray.{part}.parquet").read_bytes() == (out / f"local.{part}.parquet").read_bytes()
            for part in ("kept", "dropped")
        )
        scores = quality(texts, families, local_dropped)
    local, ray = runs["local"], runs["ray"]
    rows = args.n + args.n // 100
    print(f"{rows} items ({args.n} documents + {args.n // 100} exact repeats), exact + near dedupe")
    header = ("wall s", 8), ("items/s", 9), ("driver MiB", 11), ("total MiB", 10), ("partitions", 10)
    print(f"{'engine':8} " + " ".join(f"{name:>{width}}" for name, width in header))
    for name, run in runs.items():
        print(
            f"{name:8} {run['wall_s']:8.1f} {rows / run['wall_s']:9.0f} {run['driver_peak_mib']:11.0f} "
            f"{run['total_peak_mib']:10.0f} {run.get('partitions') or '-':>10}"
        )
    for name, run in runs.items():
        print(f"{name} per stage (s, the first with the read): {json.dumps(run['stage_s'])}")
    ratio = ray["wall_s"] / local["wall_s"]
    startup = ray["startup_s"]
    print(f"ray / local wall time: {ratio:.2f}x (goal <= 1.5x); Ray's start-up ({startup:.1f} s) not in it")
    if args.repeat > 1:
        pairs = zip(tries["ray"], tries["local"], strict=True)
        print("ratio of each turn: " + ", ".join(f"{r['wall_s'] / x['wall_s']:.2f}x" for r, x in pairs))
    print(f"ray object store spilled: {ray['spilled_mib']:.0f} MiB")
    print(f"ray driver peak: {ray['driver_peak_mib']:.0f} MiB (goal <= 1024 MiB at 1M)")
    per = ray["wall_s"] * 2 / ray["partitions"]
    print(f"per partition (ray): {per:.2f} CPU-s for {rows / ray['partitions']:.0f} items")
    print(f"quality: {json.dumps(scores)}")
    print(f"outputs identical (file bytes): {identical}")
    print(json.dumps({"n": rows, "local": local, "ray": ray, "quality": scores, "identical": identical}))


if __name__ == "__main__":
    main()
