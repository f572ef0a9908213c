"""Shingling: texts → hashed tokens → hashed n-gram windows, in bulk, with no Python loop per text.

One module for every stage that compares texts by their n-grams (MinHash near-dedupe, response
similarity in routing, decontamination), so a text is tokenized one way everywhere and the tokens
of a batch can be rolled into several window sizes without tokenizing again:

1. :func:`word_tokens` (lower-cased ``\\w+`` words, hashed in Rust by polars with a fixed seed;
   the polars version is part of the scheme) or :func:`byte_tokens` (UTF-8 bytes of the
   lower-cased, space-collapsed text) give a :class:`Tokens`: flat uint64 hashes plus lengths;
2. :meth:`Tokens.windows` rolls n-gram hashes over the whole batch in ``n`` array passes and
   returns 32-bit window hashes with offsets: text ``i`` owns ``hashes[off[i]:off[i+1]]``. A text
   shorter than ``n`` (but not empty) is one window: its tokens padded with zeros.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

M64 = np.uint64(0x9E3779B97F4A7C15)  # n-gram roll multiplier (golden ratio, odd)
_FMIX64 = (np.uint64(33), np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53))
TOKEN_SEED = 0x7D05E
_SPACES = r"\s+"


@dataclass(frozen=True)
class Tokens:
    """Hashed tokens of a batch of texts: text ``i`` owns ``hashes[starts[i]:starts[i] + lengths[i]]``."""

    hashes: np.ndarray  # uint64
    lengths: np.ndarray  # int64, one per text
    # windows already rolled, by n: several benchmarks ask for the same sizes of the same batch
    _rolled: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, compare=False, repr=False)

    def windows(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """32-bit hashes of every n-token window, and per-text offsets into them."""
        if n not in self._rolled:
            self._rolled[n] = roll(self.hashes, self.lengths, n)
        return self._rolled[n]


def tokens(texts: pl.Series, kind: Literal["word", "char"]) -> Tokens:
    return word_tokens(texts) if kind == "word" else byte_tokens(texts)


def shingles(texts: pl.Series, kind: Literal["word", "char"], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every n-gram of every text, and offsets (see :meth:`Tokens.windows`)."""
    return tokens(texts, kind).windows(n)


def fmix64(values: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer: spreads rolled n-gram values over all bits (a new array)."""
    s, m1, m2 = _FMIX64
    values = values ^ (values >> s)
    # In place from here: one temporary instead of one per step on arrays of millions of n-grams.
    values *= m1
    values ^= values >> s
    values *= m2
    values ^= values >> s
    return values


def words(texts: pl.Series) -> pl.Series:
    """Each text's lower-cased ``\\w+`` words: the tokens :func:`word_tokens` hashes."""
    return texts.fill_null("").str.to_lowercase().str.extract_all(r"\w+").fill_null([])


def word_tokens(texts: pl.Series) -> Tokens:
    lists = words(texts)
    lengths = lists.list.len().to_numpy().astype(np.int64)
    # Words are never null, so the nulls explode() makes for empty lists are exactly what to drop.
    flat = lists.explode().drop_nulls()
    return Tokens(flat.hash(TOKEN_SEED).to_numpy(), lengths)


def byte_tokens(texts: pl.Series) -> Tokens:
    """UTF-8 bytes of the lower-cased, space-collapsed text: character n-grams without a Python loop."""
    norm = texts.fill_null("").str.to_lowercase().str.replace_all(_SPACES, " ").str.strip_chars()
    arrow = pc.cast(norm.to_arrow(), pa.large_string())
    if isinstance(arrow, pa.ChunkedArray):
        arrow = arrow.combine_chunks()
    offsets = np.frombuffer(arrow.buffers()[1], dtype=np.int64)[arrow.offset : arrow.offset + len(arrow) + 1]
    data = np.frombuffer(arrow.buffers()[2], dtype=np.uint8) if arrow.buffers()[2] else np.empty(0, np.uint8)
    data = data[offsets[0] : offsets[-1]]
    # Byte values are tiny; spread them so the polynomial roll mixes well.
    return Tokens((data.astype(np.uint64) + np.uint64(1)) * np.uint64(0xC2B2AE3D27D4EB4F), np.diff(offsets))


def roll(tokens: np.ndarray, lengths: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Hash every n-token window of every text; a text shorter than n is one shingle."""
    total = len(tokens)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    if total == 0:
        return np.empty(0, np.uint32), np.zeros(len(lengths) + 1, np.int64)
    padded = np.concatenate([tokens, np.zeros(n, np.uint64)])
    rolled = padded[:total].copy()
    with np.errstate(over="ignore"):
        for j in range(1, n):
            rolled *= M64
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
    mixed = fmix64(rolled[valid])
    mixed >>= np.uint64(32)
    hashes = mixed.astype(np.uint32)
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
            value = value * M64 + np.where(
                inside, tokens[np.minimum(first + j, len(tokens) - 1)], np.uint64(0)
            )
    rolled[first] = value
    return rolled
