"""Offline pipeline throughput: built-in recipes → versions on disk.

Runs the six built-in domain recipes (template generation → curation → splits →
versioned Parquet + manifest + card) sized so their items add up to each target, and
prints items/s and peak RSS, twice: with issue 3's curation stages off (generate → exact
dedupe → version, the path issue 2 set the goal for) and with the default stages on
(quality filters, MinHash near-dedupe, ambiguity routing). The baseline, measured in the same run, is template
generation alone (no curation, no writing): the ratio shows what the rest of the
pipeline costs on top of producing the rows. Goal (issue 2): 100k items end to end in
<= 20 s on 2 cores.

    python benchmarks/pipeline.py              # 10k and 100k
    python benchmarks/pipeline.py --sizes 10000
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from core.store import Store
from curation.config import CurationConfig, DedupeConfig, FilterConfig, RouteConfig
from data_cards.card import write_card
from recipes.runner import run_recipe
from recipes.sources.templates import generate_from_bank
from recipes.spec import builtin_recipes, load_recipe

DOMAINS = ("health", "science", "education", "law", "engineering", "finance")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# The issue-2 path (generate → exact dedupe → splits → version) with issue 3's stages switched off.
NO_CURATION = CurationConfig(
    filter=FilterConfig(enabled=False), dedupe=DedupeConfig(enabled=False), route=RouteConfig(enabled=False)
)


def run_pipeline(total: int, store_root: Path, curation: bool = True) -> tuple[int, float]:
    per_trait = -(-total // (2 * len(DOMAINS)))
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


def generate_only(total: int) -> tuple[int, float]:
    per_trait = -(-total // (2 * len(DOMAINS)))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    generate_only(1_000)  # warm the bank cache and imports so both sides start equal
    columns = ("curation", "items", "written", "seconds", "items/s", "gen-only s", "ratio", "peak RSS MiB")
    print(" ".join(f"{c:>{max(8, len(c))}}" for c in columns))
    for size in args.sizes:
        made, gen_seconds = generate_only(size)
        for curation in (False, True):
            with tempfile.TemporaryDirectory() as tmp:
                written, seconds = run_pipeline(size, Path(tmp), curation=curation)
            ratio = seconds / gen_seconds
            print(
                f"{'full' if curation else 'off':>8} {size:>8} {written:>8} {seconds:>8.2f} "
                f"{written / seconds:>9.0f} {gen_seconds:>10.2f} {ratio:>5.2f}x {peak_rss_mib():>12.0f}"
            )
            if size >= 100_000:
                verdict = "meets" if seconds <= 20 else "misses"
                print(f"goal: 100k items end to end in <= 20 s: {seconds:.1f} s ({verdict} the goal)")


if __name__ == "__main__":
    main()
