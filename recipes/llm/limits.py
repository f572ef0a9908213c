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
        self._requests = AsyncLimiter(requests_per_minute, 60) if requests_per_minute else None
        self._tokens = AsyncLimiter(tokens_per_minute, 60) if tokens_per_minute else None

    async def acquire(self, tokens: int) -> None:
        if self._requests is not None:
            await self._requests.acquire()
        if self._tokens is not None:
            # A request larger than a minute's budget still goes, alone, once the bucket is empty.
            await self._tokens.acquire(min(tokens, self._tokens.max_rate))
