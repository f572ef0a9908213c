"""Client-side limits: requests and tokens per minute (leaky buckets from ``aiolimiter``)."""

from __future__ import annotations

from aiolimiter import AsyncLimiter


def estimate_tokens(messages: list[dict[str, str]], max_tokens: int) -> int:
    """Tokens a request may use before we know: ~4 characters a token, plus the completion cap."""
    return sum(len(m["content"]) for m in messages) // 4 + max_tokens


class RateLimits:
    """Waits until a request fits under requests/minute and tokens/minute (either may be unset).

    Built inside the running event loop; one instance per loop.
    """

    def __init__(self, requests_per_minute: float | None, tokens_per_minute: float | None):
        # Short buckets (a 60 s bucket would let a whole minute's budget out in the first
        # second): requests drip at rpm/60 a second; tokens may burst one 10 s share.
        self._requests = _bucket(requests_per_minute, window=1.0) if requests_per_minute else None
        self._tokens = _bucket(tokens_per_minute, window=10.0) if tokens_per_minute else None

    async def acquire(self, tokens: int) -> None:
        if self._requests is not None:
            await self._requests.acquire()
        if self._tokens is not None:
            # A request larger than a minute's budget still goes, alone, once the bucket is empty.
            await self._tokens.acquire(min(tokens, self._tokens.max_rate))


def _bucket(per_minute: float, window: float) -> AsyncLimiter:
    """``per_minute`` as a bucket refilled over ``window`` seconds (longer when under 1 per window)."""
    window = max(window, 60 / per_minute)
    return AsyncLimiter(per_minute * window / 60, window)
