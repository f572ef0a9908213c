"""Which failed calls are retried, how long to wait, and what a final failure is called.

Retried: 429, 408/409, 5xx, timeouts and connection errors, with exponential backoff and
jitter, honouring ``Retry-After`` (and ``retry-after-ms``) when the server sends one.
Not retried: 400/422 (the request itself is wrong) and 401/403/404 (fatal for the run).
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable

import openai
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_base, wait_exponential_jitter

MAX_RETRY_AFTER = 300.0  # seconds; a larger hint is a server bug, not a plan


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, openai.APIConnectionError):  # APITimeoutError included
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    return False


def is_fatal(exc: BaseException) -> bool:
    """A bad key, a forbidden endpoint or an unknown model: no item can succeed."""
    return isinstance(exc, openai.APIStatusError) and exc.status_code in (401, 403, 404)


def error_kind(exc: BaseException) -> str:
    """The ``error:<kind>`` a failed call leaves on its item."""
    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "connection"
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code == 429:
            return "rate_limited"
        if exc.status_code >= 500:
            return "server"
        return f"http_{exc.status_code}"
    return type(exc).__name__


def retry_after(exc: BaseException | None) -> float | None:
    """Seconds the server asked us to wait, from ``retry-after-ms`` or ``Retry-After``."""
    if not isinstance(exc, openai.APIStatusError):
        return None
    headers = exc.response.headers
    try:
        if "retry-after-ms" in headers:
            return min(float(headers["retry-after-ms"]) / 1000, MAX_RETRY_AFTER)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            seconds = float(value)
        except ValueError:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        return min(max(seconds, 0.0), MAX_RETRY_AFTER)
    except (TypeError, ValueError):
        return None


class wait_retry_after(wait_base):  # noqa: N801 (tenacity's naming)
    """The server's ``Retry-After`` when it gave one, else ``fallback``."""

    def __init__(self, fallback: wait_base):
        self.fallback = fallback

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        hinted = retry_after(exc)
        return hinted if hinted is not None else self.fallback(retry_state)


def retrying(
    *,
    max_retries: int,
    backoff: float,
    max_backoff: float,
    give_up_early: Callable[[BaseException], bool],
    on_retry: Callable[[RetryCallState], None],
) -> AsyncRetrying:
    """Retry policy; ``give_up_early(exc)`` stops after a second try (a dead endpoint), budget unspent."""

    def stop(state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        spent = stop_after_attempt(max_retries + 1)(state)
        return spent or (exc is not None and state.attempt_number >= 2 and give_up_early(exc))

    return AsyncRetrying(
        stop=stop,
        wait=wait_retry_after(wait_exponential_jitter(multiplier=backoff, max=max_backoff, jitter=backoff)),
        retry=retry_if_exception(is_retryable),
        before_sleep=on_retry,
        reraise=True,
    )
