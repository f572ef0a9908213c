"""Vectorized shingling and MinHash signatures, and the LSH index that finds near-duplicates.

Signatures are bit-for-bit datasketch 2.x ``"affine32"`` MinHashes (``MinHash(num_perm, seed,
hashfunc=<identity>, scheme="affine32")`` updated with our 32-bit shingle hashes), but a batch of
documents is signed at once with numpy instead of one ``update()`` per shingle:

1. tokens (lower-cased ``\\w+`` words, or UTF-8 bytes for character shingles) are hashed in Rust
   by polars with fixed seeds (stable across runs; the polars version is part of the scheme);
2. n-gram hashes are rolled over the token hashes of the whole batch in ``n`` array passes;
3. the affine permutations are applied to a (shingles x num_perm) block and reduced per document
   with ``np.minimum.reduceat``.

The LSH index bands signatures with datasketch's optimal (bands, rows) for the threshold and finds
bucket collisions by sorting band keys, so no Python loop runs per document.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from datasketch.lsh import _optimal_param
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

DATASKETCH_SCHEME = "affine32"
EMPTY = np.uint32(0xFFFFFFFF)  # datasketch's "no shingle seen" value for affine32
_M64 = np.uint64(0x9E3779B97F4A7C15)  # n-gram roll multiplier (golden ratio, odd)
_FMIX64 = (np.uint64(33), np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53))
_FMIX32 = (np.uint32(16), np.uint32(0x85EBCA6B), np.uint32(13), np.uint32(0xC2B2AE35))
_SHINGLE_BLOCK = 4096  # shingles per permutation block: 4k x 128 x 4 B = 2 MiB, stays in cache
_TOKEN_SEED = 0x7D05E
_THREADS = min(4, os.cpu_count() or 1)


@dataclass(frozen=True)
class MinHashScheme:
    """Everything that makes two signatures comparable; stored with any saved index."""

    num_perm: int = 128
    seed: int = 1
    shingle: Literal["word", "char"] = "word"
    ngram: int = 3

    def __post_init__(self) -> None:
        if self.num_perm < 2:
            raise ValueError(f"num_perm must be at least 2, got {self.num_perm}")
        if self.ngram < 1:
            raise ValueError(f"ngram must be at least 1, got {self.ngram}")

    def meta(self) -> dict[str, object]:
        return {
            **asdict(self),
            "datasketch_scheme": DATASKETCH_SCHEME,
            "token_hash": f"polars-{pl.__version__}-hash-{_TOKEN_SEED}",
            "datasketch": package_version("datasketch"),
        }

    def permutations(self) -> tuple[np.ndarray, np.ndarray]:
        """datasketch's affine32 (a, b) for this seed: same draw, same order."""
        gen = np.random.RandomState(self.seed)
        a = gen.randint(0, 1 << 31, self.num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
        b = gen.randint(0, 1 << 32, self.num_perm, dtype=np.uint32)
        return a, b

    def shingles(self, texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
        """32-bit shingle hashes of every text, and offsets: text i owns ``hashes[off[i]:off[i+1]]``."""
        tokens, lengths = (_word_tokens if self.shingle == "word" else _byte_tokens)(texts)
        return _roll(tokens, lengths, self.ngram)

    def signatures(
        self, texts: pl.Series, batch: int = 4096, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """(len(texts), num_perm) uint32 signatures; a text with no shingle gets all ``EMPTY``."""
        out = np.empty((len(texts), self.num_perm), dtype=np.uint32)
        a, b = self.permutations()
        for start in range(0, len(texts), batch):
            chunk = texts.slice(start, batch)
            hashes, offsets = self.shingles(chunk)
            out[start : start + len(chunk)] = _sign(hashes, offsets, a, b)
            if progress:
                progress(len(chunk))
        return out


def fmix32(values: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer, as datasketch applies it before the permutations."""
    s1, m1, s2, m2 = _FMIX32
    values = values ^ (values >> s1)
    values = values * m1
    values = values ^ (values >> s2)
    values = values * m2
    return values ^ (values >> s1)


def _fmix64(values: np.ndarray) -> np.ndarray:
    s, m1, m2 = _FMIX64
    values = values ^ (values >> s)
    values = values * m1
    values = values ^ (values >> s)
    values = values * m2
    return values ^ (values >> s)


def _word_tokens(texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    words = texts.fill_null("").str.to_lowercase().str.extract_all(r"\w+").fill_null([])
    lengths = words.list.len().to_numpy().astype(np.int64)
    # Words are never null, so the nulls explode() makes for empty lists are exactly what to drop.
    flat = words.explode().drop_nulls()
    return flat.hash(_TOKEN_SEED).to_numpy(), lengths


_SPACES = r"\s+"


def _byte_tokens(texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """UTF-8 bytes of the lower-cased, space-collapsed text: character n-grams without a Python loop."""
    norm = texts.fill_null("").str.to_lowercase().str.replace_all(_SPACES, " ").str.strip_chars()
    arrow = pc.cast(norm.to_arrow(), pa.large_string())
    if isinstance(arrow, pa.ChunkedArray):
        arrow = arrow.combine_chunks()
    offsets = np.frombuffer(arrow.buffers()[1], dtype=np.int64)[arrow.offset : arrow.offset + len(arrow) + 1]
    data = np.frombuffer(arrow.buffers()[2], dtype=np.uint8) if arrow.buffers()[2] else np.empty(0, np.uint8)
    data = data[offsets[0] : offsets[-1]]
    # Byte values are tiny; spread them so the polynomial roll mixes well.
    return (data.astype(np.uint64) + np.uint64(1)) * np.uint64(0xC2B2AE3D27D4EB4F), np.diff(offsets)


def _roll(tokens: np.ndarray, lengths: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Hash every n-token window of every text; a text shorter than n is one shingle."""
    total = len(tokens)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    if total == 0:
        return np.empty(0, np.uint32), np.zeros(len(lengths) + 1, np.int64)
    padded = np.concatenate([tokens, np.zeros(n, np.uint64)])
    rolled = padded[:total].copy()
    with np.errstate(over="ignore"):
        for j in range(1, n):
            rolled *= _M64
            rolled += padded[j : j + total]
    # A window is valid when it ends inside its text: drop the last n-1 starts of each text.
    valid = np.ones(total, bool)
    long_ends = starts[1:][lengths >= n]
    for k in range(1, n):
        valid[long_ends - k] = False
    short = (lengths < n) & (lengths > 0)
    valid[starts[:-1][short]] = True
    valid &= _inside_short(starts, lengths, n, short, total)
    rolled = _short_windows(rolled, tokens, starts, lengths, short, n)
    hashes = (_fmix64(rolled[valid]) >> np.uint64(32)).astype(np.uint32)
    counts = np.where(lengths < n, np.minimum(lengths, 1), lengths - n + 1)
    return hashes, np.concatenate([[0], np.cumsum(counts)])


def _inside_short(
    starts: np.ndarray, lengths: np.ndarray, n: int, short: np.ndarray, total: int
) -> np.ndarray:
    """Mask out every position of a short text but its first (its one shingle)."""
    mask = np.ones(total, bool)
    for k in range(1, n - 1):
        inner = starts[:-1][short & (lengths > k)] + k
        mask[inner] = False
    return mask


def _short_windows(
    rolled: np.ndarray, tokens: np.ndarray, starts: np.ndarray, lengths: np.ndarray, short: np.ndarray, n: int
) -> np.ndarray:
    """A text shorter than n has one shingle: its tokens rolled, padded with zeros to n."""
    first = starts[:-1][short]
    if len(first) == 0:
        return rolled
    value = np.zeros(len(first), np.uint64)
    with np.errstate(over="ignore"):
        for j in range(n):
            inside = j < lengths[short]
            value = value * _M64 + np.where(
                inside, tokens[np.minimum(first + j, len(tokens) - 1)], np.uint64(0)
            )
    rolled[first] = value
    return rolled


def _sign(hashes: np.ndarray, offsets: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    counts = np.diff(offsets)
    signatures = np.full((len(counts), len(a)), EMPTY, dtype=np.uint32)
    mixed = fmix32(hashes)

    def sign_block(lo: int, hi: int) -> None:
        # Whole texts per block, so each reduceat segment lies inside one block.
        block = mixed[offsets[lo] : offsets[hi]]
        present = counts[lo:hi] > 0
        if not present.any():
            return
        permuted = np.multiply.outer(block, a)  # uint32 wraparound is datasketch's modulo 2^32
        permuted += b
        local = (offsets[lo:hi] - offsets[lo])[present]
        signatures[lo:hi][present] = np.minimum.reduceat(permuted, local, axis=0)

    # numpy releases the GIL inside ufuncs, so threads use every core.
    with ThreadPoolExecutor(_THREADS) as pool:
        list(pool.map(lambda span: sign_block(*span), _text_blocks(offsets)))
    return signatures


def _text_blocks(offsets: np.ndarray) -> Iterator[tuple[int, int]]:
    """Spans of whole texts holding about ``_SHINGLE_BLOCK`` shingles each."""
    lo, n = 0, len(offsets) - 1
    while lo < n:
        hi = int(np.searchsorted(offsets, offsets[lo] + _SHINGLE_BLOCK, side="right")) - 1
        hi = min(max(hi, lo + 1), n)
        yield lo, hi
        lo = hi


def jaccard_estimate(sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray:
    """Row-wise share of equal signature slots; 0 where either text had no shingle."""
    equal = (sig_a == sig_b).mean(axis=1)
    empty = (sig_a == EMPTY).all(axis=1) | (sig_b == EMPTY).all(axis=1)
    return np.where(empty, 0.0, equal)


# ---- the index -------------------------------------------------------------------------
class LSHIndex:
    """Banded MinHash signatures: add batches, then ask for verified near-duplicate pairs.

    This is the one piece of state a dedupe carries; a distributed run (Ray Data) shards it by
    band key. Rows are numbered in the order they were added.
    """

    def __init__(self, scheme: MinHashScheme, threshold: float, false_negative_weight: float = 0.95):
        if not 0 < threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        self.scheme = scheme
        self.threshold = threshold
        self.bands, self.rows = _optimal_param(
            threshold, scheme.num_perm, 1 - false_negative_weight, false_negative_weight
        )
        self._signatures: list[np.ndarray] = []

    def __len__(self) -> int:
        return sum(len(s) for s in self._signatures)

    def add(self, signatures: np.ndarray) -> None:
        if signatures.shape[1:] != (self.scheme.num_perm,) or signatures.dtype != np.uint32:
            raise ValueError(f"signatures must be uint32 (n, {self.scheme.num_perm}), got {signatures.shape}")
        self._signatures.append(signatures)

    @property
    def signatures(self) -> np.ndarray:
        if len(self._signatures) != 1:
            joined = np.concatenate(self._signatures) if self._signatures else np.empty((0, 0), np.uint32)
            self._signatures = [joined]
        return self._signatures[0]

    def pairs(self, rank: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Verified pairs (i, j) with estimated Jaccard >= threshold, and their similarity.

        Each band bucket pairs its members with one leader, the member of lowest ``rank``
        (default: row number); pass a rank derived from ids so the result does not depend on row order.
        """
        sigs = self.signatures
        n = len(sigs)
        rank = np.arange(n) if rank is None else rank
        nonempty = ~(sigs == EMPTY).all(axis=1) if n else np.zeros(0, bool)
        found = [_band_pairs(_band_keys(sigs, band, self.rows), rank, nonempty) for band in range(self.bands)]
        pairs = np.unique(np.concatenate(found) if found else np.empty((0, 2), np.int64), axis=0)
        sims = np.concatenate(
            [jaccard_estimate(sigs[c[:, 0]], sigs[c[:, 1]]) for c in _chunks(pairs, 1 << 16)] or [np.empty(0)]
        )
        keep = sims >= self.threshold
        return pairs[keep], sims[keep]

    def save(self, path: Path) -> None:
        """Signatures plus the scheme that made them; a reader with another scheme is refused."""
        meta = {
            "scheme": self.scheme.meta(),
            "threshold": self.threshold,
            "bands": self.bands,
            "rows": self.rows,
        }
        with Path(path).open("wb") as fh:
            np.savez_compressed(fh, signatures=self.signatures, meta=np.array(json.dumps(meta)))

    @classmethod
    def load(cls, path: Path, scheme: MinHashScheme) -> LSHIndex:
        with np.load(path) as saved:
            meta = json.loads(str(saved["meta"]))
            expected = scheme.meta()
            for key in ("num_perm", "seed", "shingle", "ngram", "datasketch_scheme", "token_hash"):
                if meta["scheme"][key] != expected[key]:
                    raise ValueError(
                        f"{path}: index built with {key}={meta['scheme'][key]!r}, "
                        f"this run uses {expected[key]!r}"
                    )
            index = cls(scheme, meta["threshold"])
            index.add(saved["signatures"])
        return index


def _band_keys(sigs: np.ndarray, band: int, rows: int) -> np.ndarray:
    part = sigs[:, band * rows : (band + 1) * rows].astype(np.uint64)
    key = np.full(len(sigs), np.uint64(band), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for column in part.T:
            key = _fmix64(key * _M64 + column)
    return key


def _band_pairs(keys: np.ndarray, rank: np.ndarray, nonempty: np.ndarray) -> np.ndarray:
    rows = np.flatnonzero(nonempty)
    order = rows[np.lexsort((rank[rows], keys[rows]))]
    sorted_keys = keys[order]
    run_start = (
        np.concatenate([[True], sorted_keys[1:] != sorted_keys[:-1]]) if len(order) else np.zeros(0, bool)
    )
    leader = order[np.maximum.accumulate(np.where(run_start, np.arange(len(order)), 0))]
    member = ~run_start
    return np.stack([leader[member], order[member]], axis=1).astype(np.int64)


def _chunks(array: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(array), size):
        yield array[start : start + size]


def clusters(n: int, pairs: np.ndarray) -> np.ndarray:
    """Connected components (union-find) of ``n`` rows joined by ``pairs``: a label per row."""
    if n == 0:
        return np.zeros(0, np.int64)
    graph = coo_matrix((np.ones(len(pairs), np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels
