"""Argilla bridge (extra ``argilla``): push the queue to an Argilla 2 dataset, pull
submitted responses back into the same queue, so ``status`` and ``merge`` work the same
whichever UI people used.

The A/B order is randomized per record (reproducibly, from the item id) and kept in a
metadata property annotators do not see, so a pulled "A" maps back to chosen or rejected.
Creating an Argilla client (and even a field) calls the server, so import this module
only when you mean to talk to one; the mapping functions need no server once the
connection check is out of the way (the tests patch it).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from typing import Any

import argilla as rg

from annotation.queue import FLAGS, Queue, QueueError, Response, choice_to_label
from core.errors import AuthError
from core.traits import TRAITS

PREFERENCE = {"A": "A is better", "B": "B is better", "tie": "Tie", "both_bad": "Both bad"}
API_KEY_ENV = "ARGILLA_API_KEY"


def swapped_for(item_id: str) -> bool:
    """Whether response A shows the item's rejected response (stable per item)."""
    return hashlib.sha256(item_id.encode()).digest()[0] % 2 == 1


def build_settings(k: int) -> rg.Settings:
    guidelines = "Pick the response that better shows the trait.\n\n" + "\n\n".join(
        f"**{name}**: {text}" for name, text in TRAITS.items()
    )
    return rg.Settings(
        guidelines=guidelines,
        fields=[
            rg.ChatField(name="prompt", title="Conversation"),
            rg.ChatField(name="response_a", title="Response A"),
            rg.ChatField(name="response_b", title="Response B"),
        ],
        questions=[
            rg.LabelQuestion(
                name="preference", title="Which response better shows the trait?", labels=PREFERENCE
            ),
            rg.MultiLabelQuestion(name="flags", title="Flags", labels=FLAGS, required=False),
            rg.TextQuestion(name="note", title="Note", required=False),
        ],
        metadata=[
            rg.TermsMetadataProperty(name="domain"),
            rg.TermsMetadataProperty(name="trait"),
            rg.FloatMetadataProperty(name="ambiguity", min=0.0, max=1.0),
            rg.TermsMetadataProperty(name="a_is", visible_for_annotators=False),
        ],
        distribution=rg.TaskDistribution(min_submitted=k),
    )


def to_record(item: dict[str, Any]) -> rg.Record:
    """A queued item (the item row) → an Argilla record in its A/B order."""
    swapped = swapped_for(item["id"])
    a, b = (item["rejected"], item["chosen"]) if swapped else (item["chosen"], item["rejected"])
    metadata: dict[str, Any] = {
        "domain": item["domain"],
        "trait": item["trait"],
        "a_is": "rejected" if swapped else "chosen",
    }
    if item.get("ambiguity") is not None:
        metadata["ambiguity"] = float(item["ambiguity"])
    return rg.Record(
        id=item["id"],
        fields={"prompt": _chat(item["prompt"]), "response_a": _chat(a), "response_b": _chat(b)},
        metadata=metadata,
    )


def _chat(messages: Iterable[dict[str, str]]) -> list[dict[str, str]]:
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def from_record(record: rg.Record, usernames: dict[str, str]) -> list[Response]:
    """Submitted answers on one record → queue responses (one per user who submitted a
    preference). ``usernames`` maps Argilla user ids to names; unknown ids keep the id."""
    swapped = (record.metadata or {}).get("a_is") == "rejected"
    by_user: dict[str, dict[str, Any]] = {}
    for response in record.responses:
        if str(getattr(response.status, "value", response.status)) != "submitted":
            continue
        by_user.setdefault(str(response.user_id), {})[response.question_name] = response.value
    out = []
    for user_id, answers in by_user.items():
        if "preference" not in answers:
            continue
        try:
            label = choice_to_label(answers["preference"], swapped)
        except QueueError as exc:
            raise QueueError(f"Argilla record {record.id}: {exc}") from exc
        out.append(
            Response(
                item_id=str(record.id),
                annotator=usernames.get(user_id, user_id),
                label=label,
                swapped=swapped,
                flags=list(answers.get("flags") or []),
                note=str(answers.get("note") or ""),
                origin="argilla",
            )
        )
    return out


def connect(api_url: str, api_key: str | None = None) -> rg.Argilla:
    key = api_key or os.environ.get(API_KEY_ENV)
    if not key:
        raise AuthError(f"no Argilla API key: set {API_KEY_ENV}")
    return rg.Argilla(api_url=api_url, api_key=key)


def push(queue: Queue, client: rg.Argilla, *, name: str, workspace: str, k: int) -> int:
    """Create the Argilla dataset ``name`` (or reuse it) and log every queued item."""
    dataset = client.datasets(name, workspace=workspace)
    if dataset is None:
        dataset = rg.Dataset(name=name, workspace=workspace, settings=build_settings(k), client=client)
        dataset.create()
    records = [to_record(row["item"]) for row in queue.items()]
    if records:
        dataset.records.log(records)
    return len(records)


def pull(queue: Queue, client: rg.Argilla, *, name: str, workspace: str) -> int:
    """Read submitted responses of dataset ``name`` into the queue; returns how many were new."""
    dataset = client.datasets(name, workspace=workspace)
    if dataset is None:
        raise QueueError(f"no Argilla dataset {name!r} in workspace {workspace!r}")
    usernames = {str(u.id): u.username for u in client.users}
    responses = [r for record in dataset.records(with_responses=True) for r in from_record(record, usernames)]
    return queue.record_external(responses)
