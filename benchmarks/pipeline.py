"""Offline pipeline throughput: built-in recipes → versions on disk.

Runs the six built-in domain recipes (template generation → curation → splits → versioned
Parquet + manifest + card) sized so their items add up to each target, each run in a fresh
process, and prints seconds, CPU seconds (all threads; on a busy machine the steadier figure)
and peak RSS, three ways, all in the same run:

- gen-only: template generation alone (no curation, no writing);
- off: generate → exact dedupe → splits → surface-cue audit → version and card, with the other
  curation stages switched off;
- full: the default stages on (quality filters with language and PII, exact dedupe, MinHash
  near-dedupe, decontamination against the benchmarks in ../shared/data, ambiguity routing),
  then the same splits, audit, version and card.

Goals (issue 16): the full run at 100k in <= 20 s on this 2-core machine, <= 2.5x the off run of
the same benchmark run, peak RSS <= 1 GiB.

    python benchmarks/pipeline.py              # 10k and 100k
    python benchmarks/pipeline.py --sizes 10000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout, not an installed copy

from core.store import Store  # noqa: E402
from curation.config import CurationConfig, DedupeConfig, FilterConfig, RouteConfig  # noqa: E402
from data_cards.card import write_card  # noqa: E402
from recipes.runner import run_recipe  # noqa: E402
from recipes.sources.templates import generate_from_bank  # noqa: E402
from recipes.spec import builtin_recipes, load_recipe  # noqa: E402

DOMAINS = ("health", "science", "education", "law", "engineering", "finance")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# The issue-2 path (generate → exact dedupe → splits → version) with issue 3's stages switched off.
NO_CURATION = CurationConfig(
    filter=FilterConfig(enabled=False), dedupe=DedupeConfig(enabled=False), route=RouteConfig(enabled=False)
)


def run_pipeline(per_trait: int, store_root: Path, curation: bool = True) -> tuple[int, float]:
    start = time.perf_counter()
    written = 0
    for domain in DOMAINS:
        recipe = load_recipe(builtin_recipes()[domain])
        update = {"generate": recipe.generator.model_copy(update={"per_trait": per_trait})}
        if not curation:
            update["curation"] = NO_CURATION
        store = Store(store_root, card_renderer=write_card)
        version = run_recipe(recipe.model_copy(update=update), store).version
        written += version.manifest.total_rows
    return written, time.perf_counter() - start


def generate_only(per_trait: int) -> tuple[int, float]:
    start = time.perf_counter()
    made = 0
    for domain in DOMAINS:
        recipe = load_recipe(builtin_recipes()[domain])
        out = generate_from_bank(
            recipe.generator.bank_path(domain),
            domain=domain,
            traits=recipe.trait_list,
            per_trait=per_trait,
            seed=0,
            recipe_hash="bench",
        )
        made += len(out.rows)
    return made, time.perf_counter() - start


def per_trait_for(total: int) -> tuple[int, int]:
    """A ``per_trait`` whose generated items reach ``total`` (a little over), and that item count.

    A bank runs out of distinct items for some skeletons before others, so asking for
    total / 12 per trait yields fewer (79,853 for 100k): the size is what is generated.
    """
    per_trait = -(-total // (2 * len(DOMAINS)))
    made, _ = generate_only(per_trait)
    while made < total:
        per_trait = max(per_trait + 1, int(per_trait * total / made) + 1)
        made, _ = generate_only(per_trait)
    return per_trait, made


def worker(mode: str, per_trait: int) -> None:
    generate_only(84)  # warm the bank cache and imports so every mode starts equal
    start_cpu = time.process_time()
    if mode == "gen-only":
        written, seconds = generate_only(per_trait)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            written, seconds = run_pipeline(per_trait, Path(tmp), curation=mode == "full")
    cpu = time.process_time() - start_cpu
    print(json.dumps({"written": written, "seconds": seconds, "cpu": cpu, "peak_rss_mib": peak_rss_mib()}))


def measure(mode: str, per_trait: int) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", mode, str(per_trait)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]))
        return
    import os

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at start")
    columns = (
        "mode",
        "items",
        "written",
        "seconds",
        "cpu s",
        "items/s",
        "vs off",
        "cpu vs off",
        "peak RSS MiB",
    )
    print(" ".join(f"{c:>{max(8, len(c))}}" for c in columns))
    for target in args.sizes:
        per_trait, size = per_trait_for(target)
        print(f"{target} items: per_trait {per_trait} generates {size}")
        runs = {mode: measure(mode, per_trait) for mode in ("gen-only", "off", "full")}
        off = runs["off"]
        for mode, r in runs.items():
            print(
                f"{mode:>8} {size:>8} {r['written']:>8} {r['seconds']:>8.2f} {r['cpu']:>8.2f} "
                f"{size / r['seconds']:>8.0f} {r['seconds'] / off['seconds']:>7.2f}x "
                f"{r['cpu'] / off['cpu']:>9.2f}x {r['peak_rss_mib']:>12.0f}"
            )
        full = runs["full"]
        ratio = full["seconds"] / off["seconds"]
        print(
            f"goal at {target}: full <= 2.5x off: {ratio:.2f}x wall, {full['cpu'] / off['cpu']:.2f}x CPU "
            f"({'meets' if ratio <= 2.5 else 'misses'}); peak RSS {full['peak_rss_mib']:.0f} MiB "
            f"({'meets' if full['peak_rss_mib'] <= 1024 else 'misses'} <= 1 GiB)"
            + (
                f"; {full['seconds']:.1f} s ({'meets' if full['seconds'] <= 20 else 'misses'} <= 20 s)"
                if target >= 100_000
                else ""
            )
        )


if __name__ == "__main__":
    main()
