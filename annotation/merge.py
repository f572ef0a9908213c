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
from dataclasses import dataclass
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
_STORE_KEYS = {
    "dataset",
    "parent",
    "recipe_hash",
    "created",
    "rows",
    "side_rows",
    "files",
    "funnel",
    "version",
}


class NothingToMerge(QueueError):
    """No item of the base version has a settled human label: no new version to write."""


@dataclass
class MergeResult:
    version: Version
    summary: dict[str, Any]  # the manifest's "annotation" block


def merge(store: Store, queue: Queue, base: Version) -> MergeResult:
    grouped = by_item(queue.responses())
    k_of = {row["id"]: row["k"] for row in queue.items()}

    def decide(item: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
        responses = grouped.get(item["id"], [])
        if not responses:
            return None, None
        label = resolve([r.label for r in responses], k_of.get(item["id"], len(responses)))
        return label, _annotation(responses, label)

    counts: Counter[str] = Counter()
    splits: dict[str, list[dict[str, Any]]] = {s: [] for s in base.splits}
    dropped: list[dict[str, Any]] = []
    still_routed: list[dict[str, Any]] = []

    for item in base.side("routed").to_pylist():
        label, note = decide(item)
        if label is None:
            still_routed.append({**item, "annotation": note})
            counts["unresolved"] += 1
            continue
        counts["both_bad" if label == "both_bad" else "tie" if label == "tie" else "resolved"] += 1
        _place(_relabel(item, label, note), label, splits, dropped)

    audited: list[str | None] = []
    for split in base.splits:
        for item in base.table(split).to_pylist():
            label, note = decide(item) if item.get("annotation") is None else (None, None)
            if note is None:  # never audited, or merged before: leave it alone
                splits[split].append(item)
                continue
            audited.append(label)
            if label is None:
                splits[split].append(item)
                continue
            _place(_relabel(item, label, note), label, splits, dropped)

    in_base = {i["id"] for rows in splits.values() for i in rows} | {i["id"] for i in still_routed}
    in_base |= {i["id"] for i in dropped}
    scored = [r for rs in grouped.values() for r in rs if r.item_id in in_base]
    settled = counts["resolved"] + counts["both_bad"] + counts["tie"] + sum(a is not None for a in audited)
    if not settled:
        raise NothingToMerge(
            f"nothing to merge into {base.ref}: {len({r.item_id for r in scored})} item(s) have labels, "
            "none has a majority yet (see `traitdose annotate status`)"
        )
    summary = _summary(scored, counts, audited)

    funnel = Funnel(list(base.manifest.get("funnel", [])))
    entered = counts["resolved"] + counts["both_bad"] + counts["tie"] + counts["unresolved"]
    funnel.add(
        STAGE,
        entered,
        counts["resolved"],
        {DROP_REASONS[k]: counts[k] for k in ("both_bad", "tie") if counts[k]},
        unresolved=counts["unresolved"],
    )
    side = {
        "dropped": pa.concat_tables(
            [base.side("dropped").cast(DROPPED_SCHEMA), pa.Table.from_pylist(dropped, schema=DROPPED_SCHEMA)]
        ),
        "routed": from_rows(still_routed),
    }
    meta = {k: v for k, v in base.manifest.items() if k not in _STORE_KEYS and k != "annotation"}
    recipe = base.path / "recipe.yaml"
    version = store.write_version(
        base.dataset,
        {name: from_rows(rows) for name, rows in splits.items()},
        parent=base.ref,
        recipe_hash=base.manifest.get("recipe_hash"),
        funnel=funnel.steps,
        side=side,
        files={"recipe.yaml": recipe.read_text()} if recipe.exists() else None,
        meta={**meta, "annotation": summary},
    )
    return MergeResult(version, summary)


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
