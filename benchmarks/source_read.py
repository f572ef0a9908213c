"""Reading source files row by row (one bad row never sinks the file) vs polars' own readers.

The source readers (``recipes/sources/readers.py``) parse CSV with the ``csv`` module and
JSONL line by line so that a bad line is quarantined, not fatal. The baseline, measured in
the same run on the same files, is ``pl.read_csv(infer_schema=False)`` and
``pl.read_ndjson``, which stop at the first bad line. The ratio is what per-row safety costs.

    python benchmarks/source_read.py               # 100k rows
    python benchmarks/source_read.py --rows 20000
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl

from recipes.sources.readers import read_file


def write_files(folder: Path, rows: int) -> tuple[Path, Path]:
    records = [
        {
            "question": f"Would you accept change number {n} to your rules?\n\nChoices:\n (A) Yes\n (B) No",
            "answer_matching_behavior": " (A)",
            "answer_not_matching_behavior": " (B)",
        }
        for n in range(rows)
    ]
    jsonl = folder / "set.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in records))
    table = folder / "set.csv"
    with table.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    return table, jsonl


def best_of(fn: Callable[[], pl.DataFrame], repeat: int = 3) -> tuple[float, int]:
    times, height = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        height = fn().height
        times.append(time.perf_counter() - started)
    return min(times), height


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        table, jsonl = write_files(Path(tmp), args.rows)
        cases = {
            "csv": (lambda: read_file(str(table)), lambda: pl.read_csv(table, infer_schema=False)),
            "jsonl": (lambda: read_file(str(jsonl)), lambda: pl.read_ndjson(jsonl)),
        }
        for name, (ours, baseline) in cases.items():
            mine, rows = best_of(ours)
            base, base_rows = best_of(baseline)
            assert rows == base_rows == args.rows
            print(
                f"{name:5} {args.rows:,} rows: row-safe reader {mine:.3f} s ({rows / mine:,.0f} rows/s), "
                f"polars {base:.3f} s, ratio {mine / base:.1f}x"
            )


if __name__ == "__main__":
    main()
