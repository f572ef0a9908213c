"""Decontamination: drop items that overlap a benchmark the model will be evaluated on.

Two tests, both on normalized text (lower case, punctuation ignored):

- long n-gram overlap: the item contains a run of ``ngram`` (13) words of a benchmark text, or
  ``short_ngram`` (8) words of a text under ``short_below`` words; a text shorter than that must
  appear whole. This catches verbatim and re-punctuated copies.
- shingle containment: the share of a benchmark text's informative character 5-grams found in
  one stretch of the item (at most 1.5x the benchmark text's length) reaches ``containment``;
  this catches light edits (a word inserted or dropped).
  It is computed exactly with a hash join rather than estimated from MinHash sketches: benchmarks
  are small, and exact beats an estimate. A prefix filter (each text's 5-grams rarest in the item
  batch) leaves only the few (item, text) pairs that can reach the threshold to be counted.
  5-grams that occur in more than 2% of the benchmark's texts ("what ", "s the") are ignored on
  both sides: they say nothing about which text matched.

Motivation: UltraFeedback shipped TruthfulQA prompts and had to be re-released cleaned.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from core.io import read_columns
from curation.config import Benchmark, DecontamConfig
from curation.shingles import Tokens, byte_tokens, word_tokens, words
from curation.shingles import shingles as shingle_hashes
from curation.stage import StageResult, drop_rows
from curation.text import texts

CHAR_NGRAM = 5
COMMON_SHARE = 0.02  # a 5-gram in more than this share of benchmark texts is not informative
# Containment needs this many informative 5-grams: on shorter texts ("Nothing will happen", "Are you
# a human?") a few shared 5-grams are chance, and the whole-text n-gram test covers verbatim copies.
MIN_INFORMATIVE = 8
ITEM_BATCH = 4096
PREFIX_SHARE = 0.5  # of a text's 5-grams found in a batch, the rarest there, in its prefix


@dataclass
class BenchmarkIndex:
    """Hashed n-grams and 5-gram shingles of one benchmark's texts."""

    name: str
    texts: list[str]
    ngrams: dict[int, pl.DataFrame]  # n → (hash, text, pos)
    shingles: pl.DataFrame  # (hash, text) over informative 5-grams
    sizes: pl.DataFrame  # (text, size): informative 5-grams per text

    @cached_property
    def _words(self) -> list[list[str]]:
        """Each benchmark text's normalized words, as the n-gram hashes saw them."""
        return _normalized(pl.Series(self.texts, dtype=pl.String), joined=False)

    @classmethod
    def build(cls, name: str, bench_texts: list[str], config: DecontamConfig) -> BenchmarkIndex:
        series = pl.Series(bench_texts, dtype=pl.String)
        n_words = words(series).list.len().to_numpy()
        sizes = np.where(n_words >= config.short_below, config.ngram, np.minimum(config.short_ngram, n_words))
        ngrams: dict[int, pl.DataFrame] = {}
        for n in np.unique(sizes[n_words >= config.min_words]):
            rows = np.flatnonzero((sizes == n) & (n_words >= config.min_words))
            hashes, offsets = shingle_hashes(series.gather(rows), "word", int(n))
            counts = np.diff(offsets)
            ngrams[int(n)] = pl.DataFrame(
                {
                    "hash": hashes,
                    "text": np.repeat(rows, counts),
                    "pos": np.arange(len(hashes)) - np.repeat(offsets[:-1], counts),
                }
            ).unique("hash", keep="first", maintain_order=True)
        eligible = pl.Series(np.flatnonzero(n_words >= config.min_words))
        shingles = _shingle_frame(series.gather(eligible), eligible.to_numpy())
        frequency = shingles.group_by("hash").len()
        limit = max(2, int(COMMON_SHARE * len(bench_texts)))
        informative = shingles.join(frequency.filter(pl.col("len") <= limit).select("hash"), on="hash")
        size = informative.group_by("text").len("size").filter(pl.col("size") >= MIN_INFORMATIVE)
        return cls(name, bench_texts, ngrams, informative.join(size.select("text"), on="text"), size)

    def match(
        self,
        items: pl.Series,
        config: DecontamConfig,
        words: Tokens | None = None,
        chars: Tokens | None = None,
    ) -> pl.DataFrame:
        """(row, text, kind, span, score) for each item row that overlaps; one row per item at most.

        ``words``/``chars``: the items' tokens when the caller has them (one tokenization serves
        every window size and every benchmark).
        """
        words = words if words is not None else word_tokens(items)
        found = [self._ngram_hits(items, n, words) for n in sorted(self.ngrams, reverse=True)]
        found.append(self._containment_hits(items, config.containment, chars))
        hits = (
            pl.concat([f for f in found if f.height], how="vertical_relaxed")
            if any(f.height for f in found)
            else _no_hits()
        )
        return hits.unique("row", keep="first", maintain_order=True).sort("row")

    def _ngram_hits(self, items: pl.Series, n: int, words: Tokens) -> pl.DataFrame:
        hashes, offsets = words.windows(n)
        rows = np.repeat(np.arange(len(items)), np.diff(offsets))
        hits = pl.DataFrame({"hash": hashes, "row": rows}).join(self.ngrams[n], on="hash")
        if hits.height == 0:  # the usual case: nothing to check against the item's words
            return _no_hits()
        # Window hashes are 32-bit: among millions of item windows a few collide with a benchmark
        # n-gram by chance (one fish-and-gills item matched a corrigibility prompt at 100k). A hit
        # counts only when the benchmark's words really occur in the item.
        spans = [" ".join(self._words[t][p : p + n]) for t, p in zip(hits["text"], hits["pos"], strict=True)]
        found = _normalized(items.gather(hits["row"]))
        real = [f" {span} " in f" {text} " for span, text in zip(spans, found, strict=True)]
        return (
            hits.with_columns(span=pl.Series(spans, dtype=pl.String))
            .filter(pl.Series(real, dtype=pl.Boolean))
            .unique("row", keep="first", maintain_order=True)
            .select("row", "text", kind=pl.lit(f"{n}-gram"), span="span", score=pl.lit(1.0))
        )

    def _containment_hits(self, items: pl.Series, threshold: float, chars: Tokens | None) -> pl.DataFrame:
        """Benchmark texts whose informative 5-grams the item holds, close together.

        The shared 5-grams must fall inside one stretch of the item at most 1.5x the benchmark
        text's length: a long prompt holds many 5-grams, and a short benchmark text's few
        informative ones can all turn up in it, scattered, by chance.
        """
        if self.shingles.height == 0:
            return _no_hits()
        hashes, offsets = (chars if chars is not None else byte_tokens(items)).windows(CHAR_NGRAM)
        counts = np.diff(offsets)
        windows = pl.DataFrame(
            {
                "hash": hashes,
                "row": np.repeat(np.arange(len(items)), counts),
                "pos": np.arange(len(hashes)) - np.repeat(offsets[:-1], counts),
            }
        )
        pairs = self._candidates(windows, threshold)
        if pairs.height == 0:  # the usual case: every join below would scan the batch for nothing
            return _no_hits()
        wanted = pairs.join(self.shingles, on="text")
        held = windows.select("row", "hash").join(wanted.select("row", "hash").unique(), on=["row", "hash"])
        candidates = (
            wanted.join(held.unique(), on=["row", "hash"])
            .group_by("row", "text")
            .agg(shared=pl.len())
            .join(self.sizes, on="text")
            .filter(pl.col("shared") / pl.col("size") >= threshold)
        )
        positions = (
            candidates.select("row", "text")
            .join(self.shingles, on="text")
            .join(windows, on=["row", "hash"])
            .group_by("row", "text")
            .agg(pos=pl.col("pos").sort())
        )
        candidates = candidates.join(positions, on=["row", "text"])
        scores = [
            _window_count(np.asarray(pos), int(1.5 * len(self.texts[text]))) / size
            for pos, text, size in candidates.select("pos", "text", "size").iter_rows()
        ]
        hits = (
            candidates.with_columns(score=pl.Series(scores, dtype=pl.Float64))
            .filter(pl.col("score") >= threshold)
            .sort(["row", "score", "text"], descending=[False, True, False])
            .unique("row", keep="first", maintain_order=True)
        )
        return hits.select(
            "row",
            "text",
            kind=pl.lit("containment"),
            span=pl.col("text").map_elements(lambda t: self.texts[t], return_dtype=pl.String),
            score="score",
        )

    def _candidates(self, windows: pl.DataFrame, threshold: float) -> pl.DataFrame:
        """(row, text) pairs that may reach ``threshold``: a superset of the pairs that do, found
        without joining every window of the batch to every benchmark text that shares it.

        ``need`` is the fewest shared 5-grams whose share reaches ``threshold``. A text whose
        5-grams occur ``present < need`` times anywhere in the batch is out. For the rest, a prefix
        filter: an item missing more than ``present - need`` of the present 5-grams cannot pass, so
        it holds at least ``cut - (present - need)`` of any ``cut`` of them; taking the ones rarest in
        the batch keeps that join small (a few pairs per thousand items).
        """
        frequency = windows.group_by("hash").len("frequency")
        present = self.shingles.join(frequency, on="hash")
        texts = present.group_by("text").len("present").join(self.sizes, on="text").sort("text")
        size, found = texts["size"].to_numpy(), texts["present"].to_numpy()
        need = np.ceil(threshold * size).astype(np.int64)
        # The float share decides, as in the filter that reads it: the fewest k with k/size >= t.
        need = np.where((need - 1) / size >= threshold, need - 1, need)
        need = np.where(need / size < threshold, need + 1, need)
        cut = np.maximum(np.ceil(PREFIX_SHARE * found).astype(np.int64), found - need + 1)
        limits = texts.select("text", _cut=pl.Series(cut), _least=pl.Series(cut - (found - need)))
        limits = limits.filter(pl.Series(found >= need))
        prefix = (
            present.join(limits, on="text")
            .sort("frequency", "hash", "text")
            .filter(pl.int_range(pl.len()).over("text") < pl.col("_cut"))
            .select("hash", "text", "_least")
        )
        return (
            windows.select("row", "hash")
            .join(prefix.select(pl.col("hash").unique()), on="hash")
            .unique()
            .join(prefix, on="hash")
            .group_by("row", "text")
            .agg(n=pl.len(), least=pl.col("_least").first())
            .filter(pl.col("n") >= pl.col("least"))
            .select("row", "text")
        )


def _window_count(positions: np.ndarray, width: int) -> int:
    """The most positions inside any window of ``width`` (positions sorted)."""
    ends = np.searchsorted(positions, positions + width, side="left")
    return int((ends - np.arange(len(positions))).max()) if len(positions) else 0


def _shingle_frame(series: pl.Series, ids: np.ndarray, column: str = "text") -> pl.DataFrame:
    hashes, offsets = shingle_hashes(series, "char", CHAR_NGRAM)
    return pl.DataFrame({"hash": hashes, column: np.repeat(ids, np.diff(offsets))}).unique()


def _normalized(texts: pl.Series, joined: bool = True) -> list:
    """Each text's words as :func:`word_tokens` hashes them, joined by spaces (or as lists)."""
    lists = words(texts)
    return (lists.list.join(" ") if joined else lists).to_list()


def _no_hits() -> pl.DataFrame:
    return pl.DataFrame(
        schema={"row": pl.Int64, "text": pl.Int64, "kind": pl.String, "span": pl.String, "score": pl.Float64}
    )


def _absent(benchmark: Benchmark) -> bool:
    """An optional benchmark file that is not there: skipped, and said so in the report."""
    return benchmark.optional and not benchmark.path.startswith("hf:") and not Path(benchmark.path).exists()


def _stamp(benchmark: Benchmark) -> tuple[int, int] | None:
    """A local file's modification time and size: a changed file is read again."""
    if benchmark.path.startswith("hf:"):
        return None
    stat = Path(benchmark.path).stat()
    return stat.st_mtime_ns, stat.st_size


@lru_cache(maxsize=8)
def _file_index(
    label: str, path: str, columns: tuple[str, ...], split: str, stamp: object, sizes: tuple[int, ...]
) -> BenchmarkIndex:
    """A benchmark file's index, built once per process: every built-in recipe names the same two
    sets, and reading and shingling them cost ~0.4 s a recipe. Indexes are never modified."""
    ngram, short_ngram, short_below, min_words = sizes
    config = DecontamConfig(
        ngram=ngram, short_ngram=short_ngram, short_below=short_below, min_words=min_words
    )
    texts = load_benchmark(Benchmark(path=path, columns=list(columns), name=label, split=split))
    return BenchmarkIndex.build(label, texts, config)


def load_benchmark(benchmark: Benchmark) -> list[str]:
    frame = read_columns(benchmark.path, benchmark.columns, benchmark.split)
    values = frame.select(pl.concat_list(pl.all().cast(pl.String))).to_series().explode().drop_nulls()
    return values.filter(values.str.strip_chars() != "").unique(maintain_order=True).to_list()


@dataclass
class Decontaminate:
    config: DecontamConfig = field(default_factory=DecontamConfig)
    benchmarks: dict[str, list[str]] | None = None  # name → texts; default: load config.benchmarks
    progress: Callable[[int], None] | None = None
    name: str = "decontam"
    indexes: list[BenchmarkIndex] | None = None  # built once and shipped (the Ray engine); default: build

    def build_indexes(self) -> list[BenchmarkIndex]:
        if self.benchmarks is not None:
            return [BenchmarkIndex.build(name, bench, self.config) for name, bench in self.benchmarks.items()]
        c = self.config
        sizes = (c.ngram, c.short_ngram, c.short_below, c.min_words)
        return [
            _file_index(b.label, b.path, tuple(b.columns), b.split, _stamp(b), sizes)
            for b in c.benchmarks
            if not _absent(b)
        ]

    def __call__(self, items: pl.DataFrame) -> StageResult:
        indexes = self.indexes if self.indexes is not None else self.build_indexes()
        skipped = [] if self.benchmarks is not None else self._skipped()
        item_texts = texts(items, self.config.field)
        reason = np.full(items.height, None, dtype=object)
        detail = np.full(items.height, "{}", dtype=object)
        report = []
        for index, found in zip(indexes, self._hits(indexes, item_texts), strict=True):
            # A row an earlier benchmark claimed counts for that one only.
            free = np.array([reason[r] is None for r in found["row"].to_list()], dtype=bool)
            hits = found.filter(pl.Series(free, dtype=pl.Boolean))
            for row, kind, span, score, text in hits.select(
                "row", "kind", "span", "score", "text"
            ).iter_rows():
                reason[row] = "contaminated"
                detail[row] = json.dumps(
                    {
                        "benchmark": index.name,
                        "match": kind,
                        "span": span,
                        "score": round(score, 3),
                        "text": index.texts[text],
                    }
                )
            ids = items["id"] if "id" in items.columns else pl.Series(np.arange(items.height).astype(str))
            report.append(
                {
                    "name": index.name,
                    "checked": items.height,
                    "removed": hits.height,
                    "examples": [
                        {"id": str(ids[row]), "span": span}
                        for row, span in hits.head(self.config.examples).select("row", "span").iter_rows()
                    ],
                }
            )
        report += skipped
        marked = items.with_columns(
            _reason=pl.Series(reason.tolist(), dtype=pl.String),
            _detail=pl.Series(detail.tolist(), dtype=pl.String),
        )
        result = drop_rows(
            marked, pl.col("_reason").is_not_null(), self.name, pl.col("_reason"), pl.col("_detail")
        )
        result.kept = result.kept.drop("_reason", "_detail")
        result.dropped = result.dropped.drop("_reason", "_detail")
        result.report = {"benchmarks": report}
        return result

    def _skipped(self) -> list[dict[str, Any]]:
        """A report line for each optional benchmark that is absent (the built-in recipes' shared sets)."""
        return [
            {"name": f"{b.label} (skipped: {b.path} not found)", "checked": 0, "removed": 0, "examples": []}
            for b in self.config.benchmarks
            if _absent(b)
        ]

    def _hits(self, indexes: list[BenchmarkIndex], item_texts: pl.Series) -> list[pl.DataFrame]:
        """Every benchmark's matches, in item batches so memory stays bounded; each batch is
        tokenized once, for all benchmarks and window sizes. Batches are independent and mostly
        polars and numpy work, which releases the GIL: two threads keep both cores busy."""

        def batch_hits(start: int) -> list[pl.DataFrame]:
            batch = item_texts.slice(start, ITEM_BATCH)
            words, chars = word_tokens(batch), byte_tokens(batch)
            return [
                index.match(batch, self.config, words, chars).with_columns(pl.col("row") + start)
                for index in indexes
            ]

        starts = range(0, len(item_texts), ITEM_BATCH)
        parts: list[list[pl.DataFrame]] = [[] for _ in indexes]
        with ThreadPoolExecutor(2) as pool:
            for start, found in zip(starts, pool.map(batch_hits, starts), strict=True):
                for part, hits in zip(parts, found, strict=True):
                    part.append(hits)
                if self.progress:
                    self.progress(min(ITEM_BATCH, len(item_texts) - start))
        return [pl.concat(found) if found else _no_hits() for found in parts]
