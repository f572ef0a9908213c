"""Building item rows and quarantine records, shared by every source."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from core.schema import from_rows, item_id
from recipes.sources.columns import TemplateColumns


@dataclass
class SourceOutput:
    """What a source yields: item rows, unparseable rows with reasons, and rows read."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    rows_read: int = 0
    dropped: Counter[str] = field(default_factory=Counter)  # planned rows that never came, by reason
    # The same items column by column, when the source collects them so (templates): a faster table.
    columns: TemplateColumns | None = None

    def funnel_drops(self) -> dict[str, int]:
        """The source step's drops: unparseable rows grouped by what was expected
        (``unparseable: expected …``), plus planned rows lost (e.g. ``error:<kind>``)."""
        drops = dict(self.dropped)
        for reason, count in self.reason_counts().items():
            drops[f"unparseable: {reason}"] = count
        return dict(sorted(drops.items()))

    def reason_counts(self) -> Counter[str]:
        """Unparseable rows by the kind of their reason, most common first."""
        return Counter(
            reason_kind(str(q["reason"]))
            for q in self.quarantine
            if not str(q["reason"]).startswith("error:")
        )

    def top_reasons(self, n: int = 3) -> str:
        """``"12× expected … (row 4: <full reason>); …"``: the commonest reasons with one example each."""
        examples = {}
        for q in self.quarantine:
            examples.setdefault(reason_kind(str(q["reason"])), q)
        return "; ".join(
            f"{count}× {kind} (e.g. row {examples[kind]['row']}: {examples[kind]['reason']})"
            for kind, count in self.reason_counts().most_common(n)
        )

    def table(self) -> pa.Table:
        if self.columns is None:
            return from_rows(self.rows)
        assert len(self.columns) == len(self.rows), "columns and rows of one source disagree"
        return self.columns.table()

    def release(self) -> None:
        """Let go of the rows (and columns) once :meth:`table` is built. A run keeps its items in
        the table from then on; the ~13 Python objects an item here would stay alive to the end,
        and every full pass of the cyclic collector would walk them (~0.6 s at 100k items)."""
        self.rows = []
        self.columns = None

    def reject(self, row: int, reason: str, record: Any = None) -> None:
        """Quarantine one source row: its 1-based row number, why, and what it held."""
        self.quarantine.append({"row": row, "reason": reason, "record": record})


_LINE = re.compile(r"^line \d+: ")


def reason_kind(reason: str) -> str:
    """A quarantine reason without its particulars: the line number and what was found."""
    return _LINE.sub("", reason).split(", found", 1)[0].strip()


def make_item(
    *,
    prompt: Sequence[dict[str, str]],
    chosen: str,
    rejected: str,
    domain: str,
    trait: str,
    label_source: str,
    provenance: dict[str, Any],
    pair: Sequence[str] = (),
    id: str | None = None,
) -> dict[str, Any]:
    """One item row; ``id`` when the caller has worked it out already (it is :func:`item_id`'s)."""
    return {
        "id": item_id(prompt, domain, trait, pair) if id is None else id,
        "domain": domain,
        "trait": trait,
        "prompt": list(prompt),
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
        "label_source": label_source,
        "provenance": provenance,
        "status": "accepted",
    }


def prompt_messages(user: str, system: str | None = None) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": user})
    return messages
