from __future__ import annotations

import pytest
from annotate_support import make_item, make_store, rows, screen_choice

from annotation.audit import select_for_audit
from annotation.queue import Queue, QueueError, choice_to_label
from annotation.sync import sync_routed
from core.schema import from_rows


@pytest.fixture
def store(tmp_path):
    return make_store(tmp_path / "store", routed=3, accepted=5)


@pytest.fixture
def queue(store):
    q = Queue.for_dataset(store, "demo", seed=7)
    sync_routed(q, store, "demo")
    for name in ("ann", "bob", "cy"):
        q.add_annotator(name)
    return q


def test_routed_items_enter_the_queue_once_per_version(store, queue):
    assert [row["kind"] for row in queue.items()] == ["routed"] * 3
    assert sync_routed(queue, store, "demo") == 0
    assert {row["k"] for row in queue.items()} == {2}
    assert rows(queue.path, "PRAGMA journal_mode")[0][0] == "wal"


def test_k_comes_from_the_manifest(tmp_path):
    store = make_store(tmp_path / "s", routed=2, meta={"annotation_k": 3})
    q = Queue.for_dataset(store, "demo")
    assert sync_routed(q, store, "demo") == 2
    assert {row["k"] for row in q.items()} == {3}


def test_each_item_gets_k_labels_from_distinct_annotators(queue):
    seen: dict[str, list[str]] = {"ann": [], "bob": [], "cy": []}
    for _ in range(10):  # more turns than there is work
        for name in seen:
            task = queue.next_task(name)
            if task is not None:
                assert task.item_id not in seen[name], "an annotator saw an item twice"
                seen[name].append(task.item_id)
                queue.submit(name, task.item_id, "A")
    per_item = rows(
        queue.path, "SELECT item_id, COUNT(*), COUNT(DISTINCT annotator) FROM responses GROUP BY item_id"
    )
    assert len(per_item) == 3
    assert all(n == 2 and distinct == 2 for _, n, distinct in per_item)
    assert queue.progress("ann")["left_for_me"] == 0
    assert queue.progress() | {} == {"items": 3, "complete": 3, "slots": 6, "filled": 6}


def test_open_slots_are_not_handed_out_twice(queue):
    a, b, c = (queue.next_task(n) for n in ("ann", "bob", "cy"))
    # two slots on the first item: ann and bob get it, cy gets the next one
    assert a.item_id == b.item_id != c.item_id
    assert queue.next_task("ann").item_id == a.item_id, "an open task is shown again until answered"


def test_stale_assignments_are_released(store):
    q = Queue.for_dataset(store, "demo", stale_after_s=0)
    sync_routed(q, store, "demo", k=1)
    for name in ("ann", "bob"):
        q.add_annotator(name)
    first = q.next_task("ann")
    again = q.next_task("bob")  # ann's assignment is already stale (0 s), so its slot is free
    assert again.item_id == first.item_id
    assert rows(
        q.path, f"SELECT state FROM assignments WHERE annotator = 'ann' AND item_id = '{first.item_id}'"
    ) == [("released",)]
    assert q.submit("ann", first.item_id, "A") is True  # late work is still kept


def test_submit_maps_the_screen_order_back_to_item_labels(queue):
    assert choice_to_label("A", swapped=False) == "chosen"
    assert choice_to_label("A", swapped=True) == "rejected"
    assert choice_to_label("B", swapped=True) == "chosen"
    assert choice_to_label("both_bad", swapped=True) == "both_bad"
    task = queue.next_task("ann")
    queue.submit(
        "ann", task.item_id, screen_choice("rejected", task.swapped), flags=["falsehood"], note=" hm "
    )
    (response,) = queue.responses()
    assert (response.label, response.swapped, response.flags, response.note) == (
        "rejected",
        task.swapped,
        ["falsehood"],
        "hm",
    )
    assert rows(queue.path, "SELECT swapped FROM responses")[0][0] == int(task.swapped)


def test_resubmit_and_bad_input(queue):
    task = queue.next_task("ann")
    assert queue.submit("ann", task.item_id, "A") is True
    assert queue.submit("ann", task.item_id, "B") is False
    assert rows(queue.path, "SELECT label FROM responses") == [(choice_to_label("A", task.swapped),)]
    with pytest.raises(QueueError, match="not assigned"):
        queue.submit("bob", task.item_id, "A")
    with pytest.raises(QueueError, match="choice must be one of"):
        queue.submit("bob", queue.next_task("bob").item_id, "C")
    with pytest.raises(QueueError, match="unknown flag 'rude'"):
        queue.submit("bob", queue.next_task("bob").item_id, "A", flags=["rude"])
    with pytest.raises(QueueError, match="unknown annotator 'zed'"):
        queue.next_task("zed")


def test_skip_hands_the_item_to_someone_else(queue):
    task = queue.next_task("ann")
    queue.skip("ann", task.item_id)
    assert queue.next_task("ann").item_id != task.item_id
    assert queue.next_task("bob").item_id == task.item_id
    with pytest.raises(QueueError, match="not assigned"):
        queue.submit("ann", task.item_id, "A")


def test_tokens_are_stored_hashed_and_reissued(queue):
    token = queue.add_annotator("dee")
    assert queue.annotator_for_token(token) == "dee"
    stored = rows(queue.path, "SELECT token_hash FROM annotators WHERE name = 'dee'")[0][0]
    assert token not in stored and len(stored) == 64
    new = queue.add_annotator("dee")
    with pytest.raises(PermissionError):
        queue.annotator_for_token(token)
    assert queue.annotator_for_token(new) == "dee"


def test_audit_selection(store):
    v1 = store.resolve("demo@v1")
    picked = select_for_audit(v1, sample=3, seed=1)
    assert picked.num_rows == 3
    assert set(picked.column("status").to_pylist()) == {"accepted"}
    assert select_for_audit(v1, sample=3, seed=1).column("id").to_pylist() == picked.column("id").to_pylist()
    assert select_for_audit(v1, where="domain = 'law'").num_rows == 0
    assert select_for_audit(v1, where="domain = 'health' AND ambiguity < 0.5").num_rows == 5
    with pytest.raises(ValueError, match="--where 'nope = 1'"):
        select_for_audit(v1, where="nope = 1")
    with pytest.raises(ValueError, match="give --sample N or --where"):
        select_for_audit(v1)


def test_items_already_queued_are_kept_as_they_are(queue):
    item = make_item(1000, status="routed")
    assert queue.add_items(from_rows([item]), kind="audit", source="demo@v9") == 0
    assert {row["kind"] for row in queue.items()} == {"routed"}


def test_sessions_expire_and_close(queue, monkeypatch):
    token = queue.add_annotator("eve")
    name, session, csrf = queue.open_session(token)
    assert queue.session(session) == ("eve", csrf)
    monkeypatch.setattr("annotation.auth.SESSION_TTL_S", -1)
    with pytest.raises(PermissionError):
        queue.session(session)
    monkeypatch.undo()
    queue.close_session(session)
    with pytest.raises(PermissionError):
        queue.session(session)
