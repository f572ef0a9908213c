"""Random draws made exactly as :class:`random.Random` makes them, minus its call chain.

The generator draws ~12 times per item; ``Random.choice`` spends most of its time in
``_randbelow`` and the calls around it. These helpers consume the same ``getrandbits``
stream (``choice(rng, s) == rng.choice(s)``, ``below(rng, n) == rng.randrange(n)``, and
``shuffle(rng, x)`` orders ``x`` as ``rng.shuffle(x)`` does, for the same state), so
generated items stay byte-identical; ``tests/test_templates.py`` checks that against the
running Python's ``random``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def below(rng: random.Random, n: int) -> int:
    """``rng.randrange(n)`` for ``n > 0``: rejection sampling on ``n.bit_length()`` bits."""
    if n <= 0:
        raise ValueError("empty range for randrange()")
    bits = rng.getrandbits
    k = n.bit_length()
    r = bits(k)
    while r >= n:
        r = bits(k)
    return r


def choice(rng: random.Random, seq: Sequence[T]) -> T:
    """``rng.choice(seq)``."""
    if not seq:
        raise IndexError("Cannot choose from an empty sequence")
    return seq[below(rng, len(seq))]


def shuffle(rng: random.Random, items: list[T]) -> None:
    """``rng.shuffle(items)`` in place: Fisher-Yates from the end, one ``below`` per position."""
    for i in range(len(items) - 1, 0, -1):
        j = below(rng, i + 1)
        items[i], items[j] = items[j], items[i]


class Pools:
    """Named pools drawn together, one value each, in their order (``{name: rng.choice(values)}``)."""

    def __init__(self, pools: dict[str, list[str]]) -> None:
        empty = [name for name, values in pools.items() if not values]
        if empty:
            raise IndexError(f"Cannot choose from an empty sequence (pool {empty[0]!r})")
        self._pools = [
            (name, values, len(values), len(values).bit_length()) for name, values in pools.items()
        ]

    def draw(self, rng: random.Random, out: dict[str, str] | None = None) -> dict[str, str]:
        """One value per pool, set into ``out`` (a new dict by default) over what it holds."""
        bits = rng.getrandbits
        out = {} if out is None else out
        for name, values, n, k in self._pools:
            r = bits(k)
            while r >= n:
                r = bits(k)
            out[name] = values[r]
        return out
