"""Near-duplicate removal: quality against exact Jaccard, and speed/memory against baselines.

    python benchmarks/dedupe.py                  # quality at 10k; speed at 10k and 100k
    python benchmarks/dedupe.py --full           # also 1M documents
    python benchmarks/dedupe.py --naive-max 10000    # skip the naive datasketch loop at 100k (~2 min)

The corpus is generated deterministically: short documents of 30-120 words drawn from a
Zipf-distributed synthetic vocabulary, 10% of them near-duplicate variants of an earlier
document (words replaced, inserted or deleted, so true Jaccard spreads from ~0.4 to 1).

Quality (word 3-gram shingles, threshold 0.8, 128 permutations): every pair inside a planted
family and every flagged pair is scored with exact Jaccard. Recall is the share of pairs with
true Jaccard >= threshold + 0.05 that end in the same cluster; precision is the share of flagged
(verified) pairs with true Jaccard >= threshold - 0.05.

Speed: each method runs in a fresh process on the same corpus; docs/s covers shingling,
signatures, LSH and (for traitdose) verification, clustering and the keep policy, but not
generating the corpus (as a Python list for the Python-shingling methods, as a polars table for
traitdose, which reads tables). Peak RSS is the process's, corpus included. Methods:

- traitdose: the ``NearDedupe`` stage on a polars frame (id, text);
- datasketch-naive: ``MinHash()`` + ``update()`` per shingle + ``MinHashLSH.insert/query``;
- datasketch-bulk: ``MinHash.bulk`` over Python shingle lists + ``MinHashLSH``;
- rensa: Python shingling + ``RMinHash.digest_matrix_from_token_sets`` + ``RMinHashLSH``
  (duplicate flags only: no verification or clusters);
- shingling: Python word 3-gram shingling alone, the floor a Python-shingling method cannot beat.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import time
from itertools import combinations
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curation.config import DedupeConfig  # noqa: E402
from curation.minhash import LSHIndex, MinHashScheme, clusters, optimal_param  # noqa: E402
from curation.near_dedupe import NearDedupe  # noqa: E402

THRESHOLD, NUM_PERM, NGRAM = 0.8, 128, 3
WORD = re.compile(r"\w+")


# ---- corpus ----------------------------------------------------------------------------
def corpus(n: int, seed: int = 0) -> tuple[list[str], list[list[int]]]:
    """``n`` documents and the planted families (lists of row numbers)."""
    rng = np.random.default_rng(seed)
    syllables = np.array(["ka", "lo", "mi", "ne", "ru", "ta", "vo", "zi", "pe", "su", "da", "fo", "gu", "he"])
    vocab = np.array(["".join(rng.choice(syllables, rng.integers(2, 5))) for _ in range(30000)])
    weights = 1.0 / (np.arange(len(vocab)) + 10)
    weights /= weights.sum()
    lengths = rng.integers(30, 121, n)
    words = rng.choice(len(vocab), lengths.sum(), p=weights)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    docs = [words[starts[i] : starts[i + 1]] for i in range(n)]
    families: dict[int, list[int]] = {}
    root_of: dict[int, int] = {}
    variant_rows = np.flatnonzero(rng.random(n) < 0.10)
    for row in variant_rows[variant_rows > 0]:
        source = int(rng.integers(0, row))
        root = root_of.get(source, source)
        docs[row] = _edit(docs[source], rng, vocab)
        families.setdefault(root, [root]).append(int(row))
        root_of[int(row)] = root
    texts = [" ".join(vocab[d]) for d in docs]
    return texts, list(families.values())


def _edit(doc: np.ndarray, rng: np.random.Generator, vocab: np.ndarray) -> np.ndarray:
    out = list(doc)
    for _ in range(int(rng.integers(0, max(2, len(doc) // 7)))):
        op, at = rng.integers(0, 3), int(rng.integers(0, len(out)))
        if op == 0:
            out[at] = rng.integers(0, len(vocab))
        elif op == 1:
            out.insert(at, rng.integers(0, len(vocab)))
        elif len(out) > 10:
            del out[at]
    return np.array(out)


def shingle_set(text: str) -> set[str]:
    words = WORD.findall(text.lower())
    return {" ".join(words[i : i + NGRAM]) for i in range(max(1, len(words) - NGRAM + 1))}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


# ---- quality ---------------------------------------------------------------------------
def quality(n: int) -> dict[str, float]:
    texts, families = corpus(n)
    scheme = MinHashScheme(num_perm=NUM_PERM, ngram=NGRAM)
    index = LSHIndex(scheme, THRESHOLD)
    index.add(scheme.signatures(pl.Series(texts)))
    pairs, _ = index.pairs()
    labels = clusters(n, pairs)
    sets: dict[int, set[str]] = {}

    def exact(i: int, j: int) -> float:
        for k in (i, j):
            if k not in sets:
                sets[k] = shingle_set(texts[k])
        return jaccard(sets[i], sets[j])

    truth = [(i, j) for fam in families for i, j in combinations(sorted(fam), 2)]
    flagged = {tuple(sorted(map(int, p))) for p in pairs}
    high = [(i, j) for i, j in set(truth) | flagged if exact(i, j) >= THRESHOLD + 0.05]
    found = sum(labels[i] == labels[j] for i, j in high)
    edges = sum((i, j) in flagged for i, j in high)
    good = sum(exact(i, j) >= THRESHOLD - 0.05 for i, j in flagged)
    return {
        "docs": n,
        "pairs_true_jaccard_ge_0.85": len(high),
        "recall_same_cluster": found / max(1, len(high)),
        "recall_direct_pair": edges / max(1, len(high)),
        "flagged_pairs": len(flagged),
        "precision": good / max(1, len(flagged)),
        "bands_x_rows": f"{index.bands}x{index.rows}",
    }


# ---- speed workers (one fresh process each) ---------------------------------------------
def python_shingles(texts: list[str]) -> list[list[str]]:
    out = []
    for text in texts:
        words = WORD.findall(text.lower())
        out.append([" ".join(words[i : i + NGRAM]) for i in range(max(1, len(words) - NGRAM + 1))])
    return out


def as_frame(texts: list[str]) -> pl.DataFrame:
    """What a real run holds: a polars table, as read from Parquet (not a Python list)."""
    return pl.DataFrame({"id": [f"d{i}" for i in range(len(texts))], "text": texts})


def run_traitdose(frame: pl.DataFrame) -> int:
    config = DedupeConfig(field="text", threshold=THRESHOLD, num_perm=NUM_PERM, ngram=NGRAM)
    result = NearDedupe(config)(frame)
    return result.dropped.height


def run_naive(texts: list[str]) -> int:
    from datasketch import MinHash, MinHashLSH

    lsh, flagged = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM), 0
    for i, shingles in enumerate(python_shingles(texts)):
        m = MinHash(num_perm=NUM_PERM)
        for s in shingles:
            m.update(s.encode())
        flagged += bool(lsh.query(m))
        lsh.insert(str(i), m)
    return flagged


def run_bulk(texts: list[str]) -> int:
    from datasketch import MinHash, MinHashLSH

    lsh, flagged = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM), 0
    encoded = ([s.encode() for s in shingles] for shingles in python_shingles(texts))
    for i, m in enumerate(MinHash.generator(encoded, num_perm=NUM_PERM)):
        flagged += bool(lsh.query(m))
        lsh.insert(str(i), m)
    return flagged


def run_rensa(texts: list[str]) -> int:
    from rensa import RMinHash, RMinHashLSH

    bands, _ = optimal_param(THRESHOLD, NUM_PERM, 0.05, 0.95)  # datasketch's choice, without its import
    matrix = RMinHash.digest_matrix_from_token_sets(python_shingles(texts), num_perm=NUM_PERM, seed=1)
    lsh = RMinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM, num_bands=bands)
    return sum(lsh.insert_matrix_and_query_duplicate_flags(matrix))


def run_shingling(texts: list[str]) -> int:
    return sum(len(s) for s in python_shingles(texts))


METHODS = {
    "traitdose": run_traitdose,
    "datasketch-naive": run_naive,
    "datasketch-bulk": run_bulk,
    "rensa": run_rensa,
    "shingling": run_shingling,
}


def worker(method: str, n: int) -> None:
    texts, _ = corpus(n)
    if method == "traitdose":
        texts = as_frame(texts)  # the list is freed: the stage reads a table
    corpus_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start, cpu_start = time.perf_counter(), time.process_time()
    out = METHODS[method](texts)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {"seconds": seconds, "cpu": cpu, "peak_rss_mb": peak, "corpus_rss_mb": corpus_rss, "result": out}
    print(json.dumps(result))


def measure(method: str, n: int) -> dict[str, float] | None:
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", method, str(n)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        print(f"  {method} at {n}: failed: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def import_seconds() -> float:
    """What importing the dedupe stage costs in a fresh process that already has polars, numpy and
    pydantic (every traitdose command loads those first: tables and the recipe spec)."""
    code = (
        "import time, numpy, polars, pyarrow.compute\nfrom pydantic import BaseModel, Field\n"
        "t = time.perf_counter()\nimport curation.near_dedupe\nprint(time.perf_counter() - t)"
    )
    root = str(Path(__file__).resolve().parents[1])
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    return float(proc.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worker", nargs=2, metavar=("METHOD", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--full", action="store_true", help="also 1,000,000 documents")
    parser.add_argument("--naive-max", type=int, default=100_000, help="largest size for the naive loop")
    parser.add_argument("--quality-size", type=int, default=10_000)
    parser.add_argument("--sizes", default="10000,100000")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]))
        return

    q = quality(args.quality_size)
    print("quality (threshold 0.8, word 3-grams, 128 perm):")
    for key, value in q.items():
        print(f"  {key}: {value:.4f}" if isinstance(value, float) else f"  {key}: {value}")

    sizes = [int(s) for s in args.sizes.split(",")] + ([1_000_000] if args.full else [])
    print(
        "\nspeed (docs/s; peak RSS includes the corpus; ratio = traitdose docs/s over the method's;"
        "\ncpu s = the process's CPU time, all threads: on a busy machine the steadier figure)"
    )
    header = ("docs", "method", "seconds", "cpu s", "docs/s", "peak MB", "corpus MB", "ratio", "cpu ratio")
    print("{:>9} {:<17} {:>8} {:>7} {:>9} {:>8} {:>9} {:>7} {:>9}".format(*header))
    for n in sizes:
        rows = {}
        for method in METHODS:
            if method in ("datasketch-naive", "datasketch-bulk") and n > args.naive_max:
                continue
            rows[method] = measure(method, n)
        ours = rows.get("traitdose")
        for method, r in rows.items():
            if r is None:
                continue
            rate = n / r["seconds"]
            ratio = (n / ours["seconds"]) / rate if ours else float("nan")
            cpu_ratio = r["cpu"] / ours["cpu"] if ours else float("nan")
            print(
                f"{n:>9} {method:<17} {r['seconds']:>8.2f} {r['cpu']:>7.2f} {rate:>9.0f} "
                f"{r['peak_rss_mb']:>8.0f} "
                f"{r['corpus_rss_mb']:>9.0f} {ratio:>6.1f}x {cpu_ratio:>8.1f}x"
            )
        for method, goal in (("datasketch-naive", 30.0), ("rensa", 1.0)):
            r = rows.get(method)
            if r and ours:
                ratio, cpu_ratio = r["seconds"] / ours["seconds"], r["cpu"] / ours["cpu"]
                verdict = "meets" if ratio >= goal else "misses"
                print(
                    f"{'':>9} goal at {n}: >= {goal:.0f}x {method}: {ratio:.1f}x wall ({verdict} the goal), "
                    f"{cpu_ratio:.1f}x CPU"
                )
    small = measure("traitdose", 100)
    imports = import_seconds()
    if small:
        print(
            f"\nfixed costs: NearDedupe on 100 docs {small['seconds']:.3f} s ({small['cpu']:.3f} s CPU); "
            f"importing the stage once polars, numpy and pydantic are loaded {imports:.3f} s "
            "(goal: each <= 0.1 s)"
        )


if __name__ == "__main__":
    main()
