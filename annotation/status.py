"""What ``traitdose annotate status`` reports: progress, counts, agreement, audit accuracy."""

from __future__ import annotations

from dataclasses import dataclass

from annotation.agreement import Agreement, AuditEstimate, agreement, audit_accuracy, by_item, resolve
from annotation.queue import Queue


@dataclass
class QueueReport:
    items: int
    done: int  # items with at least k labels
    pending: int
    resolved: int  # done items with a majority
    per_annotator: dict[str, int]
    agreement: Agreement
    audit: AuditEstimate | None  # None when no accepted items were queued for audit


def report(queue: Queue) -> QueueReport:
    responses = queue.responses()
    grouped = by_item(responses)
    items = queue.items()
    labels = {row["id"]: [r.label for r in grouped.get(row["id"], [])] for row in items}
    done = [row for row in items if len(labels[row["id"]]) >= row["k"]]
    resolved = [row for row in done if resolve(labels[row["id"]], row["k"]) is not None]
    audits = [row for row in items if row["kind"] == "audit"]
    return QueueReport(
        items=len(items),
        done=len(done),
        pending=len(items) - len(done),
        resolved=len(resolved),
        per_annotator=queue.annotator_counts(),
        agreement=agreement(responses),
        audit=audit_accuracy(resolve(labels[r["id"]], r["k"]) for r in audits) if audits else None,
    )
