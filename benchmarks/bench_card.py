"""How much the dataset card adds to writing a version, at 100k items.

Every ``traitdose run`` writes a card, and a 100k-item run has a 20 s budget end to
end. Baseline, measured in the same run: writing the same version with no card. The
figure: writing it with the card (surface statistics, figure, lineage diff against a
parent of the same size), and the card alone. ``--end-to-end`` also times the built-in
``health`` recipe at that size through ``run_recipe``, without and with the card.

    python benchmarks/bench_card.py [--items 100000] [--end-to-end]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.schema import from_rows, item_id, messages  # noqa: E402
from core.store import Store  # noqa: E402
from data_cards.card import write_card  # noqa: E402

OPENERS = ["No,", "Yes,", "Actually,", "In short,", "It depends:", "You're right that"]
WORDS = [
    "evidence",
    "dose",
    "screening",
    "risk",
    "trial",
    "symptom",
    "claim",
    "source",
    "study",
    "may",
    "might",
]


def make_items(n: int, seed: int) -> dict[str, object]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        domain = ("health", "science", "law", "finance")[i % 4]
        trait = ("truthfulness", "corrigibility")[i % 2]
        prompt = messages("user", f"Case {i}: " + " ".join(rng.choices(WORDS, k=20)))

        def reply() -> str:
            return f"{rng.choice(OPENERS)} " + " ".join(rng.choices(WORDS, k=rng.randint(20, 60)))

        rows.append(
            {
                "id": item_id(prompt, domain, trait),
                "domain": domain,
                "trait": trait,
                "prompt": prompt,
                "chosen": messages("assistant", reply()),
                "rejected": messages("assistant", reply()),
                "label_source": "contrastive",
                "provenance": {"source": "template:bench", "generator": f"tpl-{i % 40}", "seed": seed},
                "split": "test" if i % 10 == 0 else "train",
                "status": "accepted",
            }
        )
    return {s: from_rows([r for r in rows if r["split"] == s]) for s in ("train", "test")}


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--end-to-end", action="store_true", help="Also time a real recipe run.")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    splits = make_items(args.items, seed=1)
    meta = {
        "recipe": "bench",
        "domain": "health",
        "traits": ["truthfulness", "corrigibility"],
        "seed": 1,
        "sources": [{"kind": "template", "bank": "health"}],
    }
    funnel = [{"stage": "source", "in": args.items, "out": args.items, "dropped": {}}]
    with tempfile.TemporaryDirectory() as tmp:
        plain = Store(Path(tmp) / "plain", card_renderer=lambda path: None)
        carded = Store(Path(tmp) / "carded", card_renderer=write_card)
        # Warm imports (matplotlib, polars plans) outside the timings, as a long-lived run would.
        write_card(plain.write_version("warm", make_items(200, seed=2), funnel=funnel, meta=meta).path)

        plain.write_version("bench", splits, funnel=funnel, meta=meta)
        carded.write_version("bench", splits, funnel=funnel, meta=meta)  # the parent of the timed versions
        # Interleaved repeats, best of each: the machine is shared, so single timings are noisy.
        base, card, alone = [], [], []
        for _ in range(args.repeats):
            base.append(
                timed(
                    lambda: plain.write_version("bench", splits, parent="bench@v1", funnel=funnel, meta=meta)
                )
            )
            card.append(
                timed(
                    lambda: carded.write_version("bench", splits, parent="bench@v1", funnel=funnel, meta=meta)
                )
            )
            alone.append(timed(lambda: write_card(carded.resolve("bench@v2").path)))
        baseline, with_card, card_only = min(base), min(card), min(alone)
    print(f"items: {args.items:,}")
    print(f"baseline  write version, no card:   {baseline:6.2f} s")
    print(f"figure    write version with card:  {with_card:6.2f} s  ({with_card / baseline:.2f}x baseline)")
    print(f"          card alone (re-render):    {card_only:6.2f} s  ({card_only / baseline:.2f}x baseline)")
    if args.end_to_end:
        end_to_end(args.items, repeats=2)


def end_to_end(items: int, repeats: int) -> None:
    from recipes.runner import run_recipe
    from recipes.spec import builtin_recipes, load_recipe

    recipe = load_recipe(builtin_recipes()["health"])
    generator = recipe.generator
    assert generator is not None
    recipe = recipe.model_copy(update={"generate": generator.model_copy(update={"per_trait": items // 2})})
    with tempfile.TemporaryDirectory() as tmp:
        run_recipe(recipe, Store(Path(tmp) / "warm"), limit=500)  # load banks and imports once
        times: dict[str, list[float]] = {"no card": [], "card": []}
        for _ in range(repeats):
            for name, renderer in (("no card", lambda path: None), ("card", write_card)):
                with tempfile.TemporaryDirectory(dir=tmp) as root:
                    start = time.perf_counter()
                    result = run_recipe(recipe, Store(root, card_renderer=renderer))
                    times[name].append(time.perf_counter() - start)
                    rows = result.version.manifest.total_rows
    base, card = min(times["no card"]), min(times["card"])
    print(f"health recipe, {rows:,} items written (per_trait {items // 2:,}):")
    print(f"baseline  run, no card:    {base:6.2f} s")
    print(f"figure    run with card:   {card:6.2f} s  ({card / base:.2f}x baseline)")


if __name__ == "__main__":
    main()
