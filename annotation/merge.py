"""Merge human labels into a new version of the dataset.

The new version's parent is the version the routed items came from. It holds the
parent's accepted items plus every routed item people resolved (``label_source =
human``; chosen and rejected swapped when people preferred the constructed rejected
response; the ``annotation`` struct filled). Items people judged "both bad" (or a tie:
no preference to teach) go to the ``dropped`` side table with that reason; items
without a majority stay in the ``routed`` side table. Audited accepted items are
relabelled the same way, once.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from annotation.agreement import TIE_RULE, agreement, audit_accuracy, by_item, resolve
from annotation.queue import Queue, Response
from core.errors import QueueError
from core.schema import DROPPED_SCHEMA, from_rows
from core.store import Store, Version
from curation.stage import Funnel

STAGE = "annotation"
DROP_REASONS = {"both_bad": "both_bad", "tie": "human_tie"}


class NothingToMerge(QueueError):
    """No item of the base version has a settled human label: no new version to write."""


@dataclass
class MergeResult:
    version: Version
    summary: dict[str, Any]  # the manifest's "annotation" block


@dataclass
class Decisions:
    """Where each item of the base version goes once the human labels are counted."""

    splits: dict[str, list[dict[str, Any]]]
    dropped: list[dict[str, Any]] = field(default_factory=list)
    still_routed: list[dict[str, Any]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)  # resolved, both_bad, tie, unresolved
    audited: list[str | None] = field(default_factory=list)  # the label of each audited accepted item

    @property
    def settled(self) -> int:
        routed = self.counts["resolved"] + self.counts["both_bad"] + self.counts["tie"]
        return routed + sum(a is not None for a in self.audited)

    def ids(self) -> set[str]:
        rows = [*(i for items in self.splits.values() for i in items), *self.still_routed, *self.dropped]
        return {i["id"] for i in rows}


def merge(store: Store, queue: Queue, base: Version) -> MergeResult:
    """Resolve ``base``'s labelled items by majority and write the result as a new version."""
    grouped = by_item(queue.responses())
    decisions = decide(base, grouped, {row["id"]: row["k"] for row in queue.items()})
    scored = [r for rs in grouped.values() for r in rs if r.item_id in decisions.ids()]
    if not decisions.settled:
        raise NothingToMerge(
            f"nothing to merge into {base.ref}: {len({r.item_id for r in scored})} item(s) have labels, "
            "none has a majority yet (see `traitdose annotate status`)"
        )
    summary = _summary(scored, decisions.counts, decisions.audited)
    return MergeResult(_write(store, base, decisions, summary), summary)


def decide(base: Version, grouped: dict[str, list[Response]], k_of: dict[str, int]) -> Decisions:
    """Relabel the routed items (and audited accepted ones) that have a majority; place the rest."""

    def verdict(item: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
        responses = grouped.get(item["id"], [])
        if not responses:
            return None, None
        label = resolve([r.label for r in responses], k_of.get(item["id"], len(responses)))
        return label, _annotation(responses, label)

    out = Decisions(splits={s: [] for s in base.splits})
    for item in base.side("routed").to_pylist():
        label, note = verdict(item)
        if label is None:
            out.still_routed.append({**item, "annotation": note})
            out.counts["unresolved"] += 1
            continue
        out.counts["both_bad" if label == "both_bad" else "tie" if label == "tie" else "resolved"] += 1
        _place(_relabel(item, label, note), label, out.splits, out.dropped)
    for split in base.splits:
        for item in base.table(split).to_pylist():
            label, note = verdict(item) if item.get("annotation") is None else (None, None)
            if note is None:  # never audited, or merged before: leave it alone
                out.splits[split].append(item)
                continue
            out.audited.append(label)
            if label is None:
                out.splits[split].append(item)
                continue
            _place(_relabel(item, label, note), label, out.splits, out.dropped)
    return out


def _write(store: Store, base: Version, decisions: Decisions, summary: dict[str, Any]) -> Version:
    """The new version: the parent's recipe-level manifest keys, its funnel plus this step."""
    counts = decisions.counts
    funnel = Funnel(list(base.manifest.funnel))
    funnel.add(
        STAGE,
        counts["resolved"] + counts["both_bad"] + counts["tie"] + counts["unresolved"],
        counts["resolved"],
        {DROP_REASONS[k]: counts[k] for k in ("both_bad", "tie") if counts[k]},
        unresolved=counts["unresolved"],
    )
    base_dropped = base.side("dropped").cast(DROPPED_SCHEMA)
    side = {
        "dropped": pa.concat_tables(
            [base_dropped, pa.Table.from_pylist(decisions.dropped, schema=DROPPED_SCHEMA)]
        ),
        "routed": from_rows(decisions.still_routed),
    }
    recipe = base.path / "recipe.yaml"
    return store.write_version(
        base.dataset,
        {name: from_rows(rows) for name, rows in decisions.splits.items()},
        parent=base.ref,
        recipe_hash=base.manifest.recipe_hash,
        funnel=funnel.steps,
        side=side,
        files={"recipe.yaml": recipe.read_text()} if recipe.exists() else None,
        meta={**base.manifest.carried(), "annotation": summary},
    )


def _annotation(responses: list[Response], label: str | None) -> dict[str, Any]:
    return {
        "labels": [r.label for r in responses],
        "annotators": [r.annotator for r in responses],
        "flags": sorted({f for r in responses for f in r.flags}),
        "notes": [r.note for r in responses if r.note],
        "resolution": {None: "unresolved", "chosen": "kept", "rejected": "swapped"}.get(label, label),
    }


def _relabel(item: dict[str, Any], label: str, note: dict[str, Any] | None) -> dict[str, Any]:
    out = {**item, "label_source": "human", "status": "accepted", "annotation": note}
    if label == "rejected":
        out["chosen"], out["rejected"] = item["rejected"], item["chosen"]
    return out


def _place(
    item: dict[str, Any], label: str, splits: dict[str, list[dict[str, Any]]], dropped: list[dict[str, Any]]
) -> None:
    if label in DROP_REASONS:
        detail = json.dumps({"labels": item["annotation"]["labels"]}, sort_keys=True)
        dropped.append(
            {**item, "drop_stage": STAGE, "drop_reason": DROP_REASONS[label], "drop_detail": detail}
        )
        return
    split = item.get("split") or "train"
    splits.setdefault(split, []).append({**item, "split": split})


def _summary(responses: list[Response], counts: Counter[str], audited: list[str | None]) -> dict[str, Any]:
    agreed = agreement(responses)
    summary: dict[str, Any] = {
        "items": len({r.item_id for r in responses}),
        "annotators": len({r.annotator for r in responses}),
        "krippendorff_alpha": agreed.krippendorff_alpha,
        "cohen_kappa": agreed.cohen_kappa,
        "resolved": counts["resolved"],
        "unresolved": counts["unresolved"],
        "both_bad": counts["both_bad"],
        "ties": counts["tie"],
        "tie_rule": TIE_RULE,
    }
    if audited:
        est = audit_accuracy(audited)
        summary["audit"] = {
            "items": len(audited),
            "resolved": est.resolved,
            "agreed": est.agreed,
            "accuracy": est.accuracy,
            "ci95": [est.low, est.high],
        }
    return summary
