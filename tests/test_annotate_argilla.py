"""The Argilla bridge: settings and records built with the real SDK classes, offline,
and the mapping checked both ways; a live round trip when ARGILLA_API_URL is set."""

from __future__ import annotations

import os
import uuid

import pytest
from annotate_support import make_store

from annotation.queue import FLAGS, Queue
from annotation.sync import sync_routed

rg = pytest.importorskip("argilla", reason="needs the argilla extra")
from annotation import argilla_bridge as bridge  # noqa: E402


@pytest.fixture
def offline(monkeypatch):
    """Argilla's client calls GET /api/v1/me on creation (even for a field); stub only that."""
    from argilla._api._client import APIClient

    monkeypatch.setenv("ARGILLA_API_KEY", "offline-dummy")
    monkeypatch.setattr(APIClient, "_validate_connection", lambda self: None)
    monkeypatch.setattr(rg.Argilla, "_default_client", None)  # restored after the test
    return bridge.connect("http://127.0.0.1:9")  # nothing listens there; nothing is sent


@pytest.fixture
def queue(tmp_path):
    store = make_store(tmp_path / "store", routed=4, accepted=0)
    q = Queue.for_dataset(store, "demo")
    sync_routed(q, store, "demo", k=3)
    return q


def test_settings(offline):
    settings = bridge.build_settings(k=3)
    assert [f.name for f in settings.fields] == ["prompt", "response_a", "response_b"]
    assert all(isinstance(f, rg.ChatField) for f in settings.fields)
    questions = {q.name: q for q in settings.questions}
    assert isinstance(questions["preference"], rg.LabelQuestion)
    assert questions["preference"].labels == ["A", "B", "tie", "both_bad"]
    assert isinstance(questions["flags"], rg.MultiLabelQuestion)
    assert questions["flags"].labels == list(FLAGS) and questions["flags"].required is False
    assert isinstance(questions["note"], rg.TextQuestion)
    assert {m.name for m in settings.metadata} == {"domain", "trait", "ambiguity", "a_is"}
    assert settings.distribution.min_submitted == 3


def test_records_round_trip(offline, queue):
    items = [row["item"] for row in queue.items()]
    records = [bridge.to_record(item) for item in items]
    orders = {bridge.swapped_for(item["id"]) for item in items}
    assert orders == {True, False}, "the fixture should exercise both A/B orders"
    for item, record in zip(items, records, strict=True):
        swapped = bridge.swapped_for(item["id"])
        assert record.id == item["id"]
        assert record.metadata["domain"] == "health" and record.metadata["ambiguity"] == pytest.approx(0.6)
        a = record.fields["response_a"][0]["content"]
        assert a == (item["rejected"] if swapped else item["chosen"])[0]["content"]
        assert record.fields["prompt"] == item["prompt"]

    ann, bob = uuid.uuid4(), uuid.uuid4()
    record = records[0]
    record.responses.add(rg.Response("preference", "A", user_id=ann, status="submitted"))
    record.responses.add(rg.Response("flags", ["sycophantic"], user_id=ann, status="submitted"))
    record.responses.add(rg.Response("note", "A flatters", user_id=ann, status="submitted"))
    record.responses.add(rg.Response("preference", "both_bad", user_id=bob, status="submitted"))
    record.responses.add(rg.Response("preference", "B", user_id=uuid.uuid4(), status="draft"))
    got = bridge.from_record(record, {str(ann): "ann"})
    a_label = "rejected" if bridge.swapped_for(record.id) else "chosen"
    assert [(r.annotator, r.label, r.flags, r.note, r.origin) for r in got] == [
        ("ann", a_label, ["sycophantic"], "A flatters", "argilla"),
        (str(bob), "both_bad", [], "", "argilla"),
    ]
    assert queue.record_external(got) == 2
    assert queue.record_external(got) == 0, "pulling twice adds nothing"
    assert sorted(r.label for r in queue.responses()) == sorted([a_label, "both_bad"])


def test_missing_api_key_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("ARGILLA_API_KEY", raising=False)
    with pytest.raises(PermissionError, match="ARGILLA_API_KEY"):
        bridge.connect("http://127.0.0.1:1")


@pytest.mark.skipif(
    not os.environ.get("ARGILLA_API_URL"),
    reason="live Argilla test: set ARGILLA_API_URL (and ARGILLA_API_KEY)",
)
def test_live_round_trip(queue):
    client = bridge.connect(os.environ["ARGILLA_API_URL"])
    name = f"traitdose-test-{uuid.uuid4().hex[:8]}"
    workspace = os.environ.get("ARGILLA_WORKSPACE", "argilla")
    try:
        assert bridge.push(queue, client, name=name, workspace=workspace, k=1) == 4
        dataset = client.datasets(name, workspace=workspace)
        me = client.me
        records = list(dataset.records)
        for record in records:
            record.responses.add(rg.Response("preference", "A", user_id=me.id, status="submitted"))
        dataset.records.log(records)
        assert bridge.pull(queue, client, name=name, workspace=workspace) == 4
        assert {r.annotator for r in queue.responses()} == {me.username}
    finally:
        found = client.datasets(name, workspace=workspace)
        if found is not None:
            found.delete()
