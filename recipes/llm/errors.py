"""What LLM steps report: per-item failures, run-stopping failures, and usage.

Kept apart from ``client`` so the runner can name these without importing the ``openai``
SDK (over a second to import), which template-only runs never need.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from core.errors import LLMFatalError  # noqa: F401  (re-exported: the run-stopping failure)


class LLMError(Exception):
    """One item's call failed for good; ``kind`` becomes its ``error:<kind>`` drop reason."""

    def __init__(self, kind: str, detail: str = ""):
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


@dataclass
class Usage:
    calls: int = 0  # requests answered (retries of one call count once each time they are answered)
    cache_hits: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    bad_outputs: int = 0  # replies that failed to parse and were asked again
    errors: Counter[str] = field(default_factory=Counter)  # items failed, by kind

    def as_dict(self, cost: Any = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "calls": self.calls,
            "cache_hits": self.cache_hits,
            "retries": self.retries,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "bad_outputs": self.bad_outputs,
            "errors": dict(sorted(self.errors.items())),
        }
        if cost is not None:
            out["cost_usd"] = round(
                self.prompt_tokens * cost.prompt_per_million / 1e6
                + self.completion_tokens * cost.completion_per_million / 1e6,
                6,
            )
        return out
