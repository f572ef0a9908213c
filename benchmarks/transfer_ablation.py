"""Which forms of the built-in data transfer? A fast loop for ``benchmarks/transfer.py``.

Generates a built-in bank's items straight from the generator (no curation stages), reads
the evaluation sets through the project's own sources, encodes every text with the MiniLM
encoder through an on-disk cache keyed by the text's hash (a re-run after a generator
change encodes only the new texts), and trains the Bradley–Terry reward head on subsets
of the generated items: all of them, each form alone, each skeleton left out. Prints the
head's pairwise accuracy on the four non-health TruthfulQA groups and the corrigibility
A/B set, beside a shuffled-label head on all items.

    python benchmarks/transfer_ablation.py [--domain health] [--data ../shared/data]
        [--cache /tmp/traitdose-emb.sqlite] [--only all,forms,drop] [--audit] [--split]

Subsets are read from ``provenance.generator`` (``form/skeleton-id``). ``--split`` adds
columns for two fixed halves of the corrigibility set (by a hash of the item id: choose a
change on ``corr-A``, report ``corr-B`` as held out) and for its items by the chosen
answer's first word (``yes``, ``no``, ``other``), as in ``transfer.py``.
"""

from __future__ import annotations

import argparse
import hashlib
import sqlite3
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
import transfer  # noqa: E402

from recipes.runner import read_source  # noqa: E402
from recipes.sources.templates import generate_from_bank  # noqa: E402
from recipes.spec import load_recipe  # noqa: E402
from trainer.reward import Encoder, PairEmbeddings, RewardHead, pairwise_report  # noqa: E402


class DiskEncoder(Encoder):
    """The reward head's encoder with its cache in SQLite, keyed by the text's SHA-1."""

    def __init__(self, path: Path):
        super().__init__()
        self.db = sqlite3.connect(path)
        self.db.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, vec BLOB)")
        self._keys: dict[str, str] = {}

    def embed(self, texts, tick=None):  # type: ignore[override]
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        keys = {t: hashlib.sha1(t.encode()).hexdigest() for t in missing}
        for start in range(0, len(missing), 900):
            chunk = [keys[t] for t in missing[start : start + 900]]
            marks = ",".join("?" * len(chunk))
            found = dict(self.db.execute(f"SELECT key, vec FROM emb WHERE key IN ({marks})", chunk))
            for t in missing[start : start + 900]:
                if keys[t] in found:
                    self._cache[t] = np.frombuffer(found[keys[t]], dtype=np.float32)
        new = [t for t in missing if t not in self._cache]
        if new:
            print(f"encoding {len(new)} new texts", file=sys.stderr)
            super().embed(new, tick)
            self.db.executemany(
                "INSERT OR REPLACE INTO emb VALUES (?, ?)",
                [(keys[t], self._cache[t].astype(np.float32).tobytes()) for t in new],
            )
            self.db.commit()
        return super().embed(texts, tick)


def _read(recipe) -> pl.DataFrame:
    out = read_source(
        recipe, traits=recipe.trait_list, seed=recipe.seed, recipe_hash="x", limit=None, tick=lambda *a: None
    )
    return pl.DataFrame(out.rows)


def eval_sets() -> dict[str, pl.DataFrame]:
    sets = {name: _read(transfer.truthfulqa(name, name[4:], cats)) for name, cats in transfer.GROUPS.items()}
    sets["corrigibility-ab"] = _read(transfer.corrigibility_ab())
    return sets


def corrigibility_parts(frame: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """Two fixed halves of the corrigibility set (a hash of the id, not the row order) and its
    items by the chosen answer's first word."""
    half = frame["id"].map_elements(lambda i: int(hashlib.sha1(i.encode()).hexdigest(), 16) % 2, pl.Int64)
    first = frame["chosen"].map_elements(
        lambda m: m[0]["content"].strip().split(" ")[0].strip(",.").lower(), pl.String
    )
    kind = pl.when(first.is_in(["yes", "no"])).then(first).otherwise(pl.lit("other"))
    parts = {"corr-A": frame.filter(half == 0), "corr-B": frame.filter(half == 1)}
    kinds = frame.select(kind.alias("k"))["k"]
    return parts | {f"corr-{k}": frame.filter(kinds == k) for k in ("yes", "no", "other")}


def generated(domain: str, per_trait: int | None, seed: int, skeletons: Path | None = None) -> pl.DataFrame:
    recipe = load_recipe(domain)
    gen = recipe.generator
    out = generate_from_bank(
        gen.bank_path(recipe.domain),
        domain=recipe.domain,
        traits=recipe.trait_list,
        per_trait=per_trait or gen.per_trait,
        seed=seed,
        recipe_hash="x",
        **({"skeleton_path": skeletons} if skeletons else {}),
    )
    frame = pl.DataFrame(out.rows)
    return frame.with_columns(
        generator=pl.col("provenance").struct.field("generator"),
        group=pl.col("provenance").struct.field("group"),
    )


def subsets(frame: pl.DataFrame, only: set[str]) -> dict[str, pl.DataFrame]:
    gens = sorted(frame["generator"].unique())
    out = {"all": frame} if "all" in only else {}
    if "traits" in only:
        out |= {f"trait={t}": frame.filter(pl.col("trait") == t) for t in sorted(frame["trait"].unique())}
    if "forms" in only:
        for form in sorted({g.split("/")[0] for g in gens}):
            for trait in sorted(frame["trait"].unique()):
                part = frame.filter(
                    pl.col("generator").str.starts_with(form + "/") & (pl.col("trait") == trait)
                )
                if part.height:
                    out[f"{trait[:5]} {form} only"] = part
    if "skeletons" in only:
        out |= {f"only {g}": frame.filter(pl.col("generator") == g) for g in gens}
    if "drop" in only:
        out |= {f"all - {g}": frame.filter(pl.col("generator") != g) for g in gens}
    return out


def accuracy(head: RewardHead, pairs: PairEmbeddings) -> float:
    return pairwise_report(head.margins(pairs), pairs)["overall"]["accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--domain", default="health")
    parser.add_argument("--per-trait", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/traitdose-emb.sqlite"))
    parser.add_argument("--only", default="all,traits,forms,drop", help="all,traits,forms,skeletons,drop")
    parser.add_argument("--audit", action="store_true", help="Also print the surface-cue audit of the items.")
    parser.add_argument("--skeletons", type=Path, help="A skeleton file to try instead of scenarios.yaml.")
    parser.add_argument(
        "--split", action="store_true", help="Add corrigibility halves A/B and by-first-word columns."
    )
    args = parser.parse_args()
    transfer.DATA = (args.data or transfer.DATA).resolve()
    started = time.perf_counter()
    encoder = DiskEncoder(args.cache)
    sets = eval_sets()
    if args.split:
        sets |= corrigibility_parts(sets["corrigibility-ab"])
    evals = {name: PairEmbeddings.of(frame, encoder) for name, frame in sets.items()}
    names = list(evals)
    frame = generated(args.domain, args.per_trait, args.seed, args.skeletons)
    print(
        f"{frame.height} items: "
        + ", ".join(f"{g} {n}" for g, n in frame["generator"].value_counts().sort("generator").iter_rows()),
        file=sys.stderr,
    )
    embedded = PairEmbeddings.of(frame, encoder)
    index = {item: i for i, item in enumerate(embedded.ids)}
    if args.audit:
        from curation.surface_audit import audit

        report = audit(frame)
        worst = sorted(report.by_template.items(), key=lambda kv: -float(kv[1]["accuracy"]))[:4]
        print(
            f"surface-cue audit: {report.accuracy:.3f} ({report.method}); worst: "
            + ", ".join(f"{k} {float(v['accuracy']):.2f}" for k, v in worst)
        )
    header = " | ".join(f"{n} (n={len(evals[n].ids)})" for n in names)
    print(f"| trained on | pairs | {header} | min tqa |")
    print("| --- | ---: |" + " ---: |" * (len(names) + 1))
    rows = subsets(frame, set(args.only.split(",")))
    rows["  shuffled (all)"] = frame
    for label, part in rows.items():
        take = np.array([index[i] for i in part["id"]])
        pairs = PairEmbeddings(
            embedded.prompt[take], embedded.chosen[take], embedded.rejected[take], [], [], []
        )
        head = RewardHead.fit(pairs, shuffle_labels=label.startswith("  shuffled"))
        accs = [accuracy(head, evals[e]) for e in names]
        print(
            f"| {label} | {part.height} | "
            + " | ".join(f"{a:.3f}" for a in accs)
            + f" | {min(accs[: len(transfer.GROUPS)]):.3f} |"
        )
    print(f"{time.perf_counter() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
