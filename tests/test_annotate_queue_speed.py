"""What the annotation server's speed work must not change: progress read from counters and
indexes equals a count over the whole queue; a write blocked by another process's lock
waits off the event loop instead of failing; static assets are cacheable, pages are not."""

from __future__ import annotations

import random
import sqlite3
import threading

import httpx
import pytest
from annotate_support import live_server, make_item, make_store, rows, screen_choice

from annotation.queue import OPEN_POOL, Queue, QueueError, Response
from annotation.sync import sync_routed
from core.schema import from_rows

LABELS = ("chosen", "rejected", "tie", "both_bad")


def scanned_progress(q: Queue, who: str) -> dict[str, int]:
    """Progress the slow way: every item read."""
    items, complete, slots, filled = rows(
        q.path, "SELECT COUNT(*), SUM(filled >= k), SUM(k), SUM(MIN(filled, k)) FROM items"
    )[0]
    mine = rows(q.path, f"SELECT COUNT(*) FROM responses WHERE annotator = '{who}'")[0][0]
    left = rows(q.path, f"SELECT COUNT(*) FROM items i WHERE {OPEN_POOL.replace(':who', repr(who))}")[0][0]
    return {
        "items": items,
        "complete": complete,
        "slots": slots,
        "filled": filled,
        "mine": mine,
        "left_for_me": left,
    }


def test_progress_from_counters_equals_a_full_scan(tmp_path):
    store = make_store(tmp_path / "s", routed=12, accepted=0)
    q = Queue.for_dataset(store, "demo", seed=3)
    sync_routed(q, store, "demo", k=2)
    q.add_items(
        from_rows([make_item(n, status="routed") for n in range(50, 56)]), kind="audit", source="demo@v1", k=3
    )
    people = ["ann", "bob", "cy", "dee"]
    for name in people:
        q.add_annotator(name)
    rng = random.Random(0)
    for _ in range(60):
        who = rng.choice(people)
        task = q.next_task(who)
        if task is None:
            continue
        if rng.random() < 0.2:
            q.skip(who, task.item_id)
        else:
            q.submit(who, task.item_id, screen_choice(rng.choice(LABELS), task.swapped))
        for name in people:
            assert q.progress(name) == scanned_progress(q, name)
    assert q.progress("ann")["filled"] > 0 and any(q.progress(n)["left_for_me"] for n in people)


def slow_next(q: Queue, who: str) -> str | None:
    """The item ``next_task`` must hand out, found the slow way: the walk from the queue's head."""
    mine = rows(q.path, f"SELECT item_id FROM assignments WHERE annotator = '{who}' AND state = 'open'")
    if mine:
        return mine[0][0]
    found = rows(
        q.path,
        f"""SELECT i.id FROM items i WHERE {OPEN_POOL.replace(":who", repr(who))}
        AND i.filled + (SELECT COUNT(*) FROM assignments a WHERE a.item_id = i.id AND a.state = 'open') < i.k
        ORDER BY i.seq LIMIT 1""",
    )
    return found[0][0] if found else None


def test_cursors_and_counters_agree_with_the_slow_walk_and_a_full_scan(tmp_path):
    """Answers, skips, labels from Argilla, items added later and stale releases, interleaved:
    every annotator's next item and progress equal what a walk of the whole queue finds."""
    store = make_store(tmp_path / "s", routed=15, accepted=0)
    q = Queue.for_dataset(store, "demo", seed=5, stale_after_s=3600)
    sync_routed(q, store, "demo", k=2)
    people = ["ann", "bob", "cy"]
    for name in people:
        q.add_annotator(name)
    rng = random.Random(1)
    extra = 100
    for step in range(150):
        who = rng.choice(people)
        expected = slow_next(q, who)
        task = q.next_task(who)
        assert (task.item_id if task else None) == expected, step
        roll = rng.random()
        if task is not None and roll < 0.2:
            q.skip(who, task.item_id)
        elif task is not None and roll < 0.8:
            q.submit(who, task.item_id, "A")
        elif roll < 0.9:  # a label from Argilla, by someone without a token, or a skipper
            item = rng.choice([i["id"] for i in q.items()])
            q.record_external([Response(item, rng.choice(["dan", who]), "tie", None, [], "", "argilla")])
        elif step % 3 == 0:
            q.add_items(from_rows([make_item(extra)]), kind="audit", source="demo@v1", k=1)
            extra += 1
        if roll > 0.95:  # everyone's open task goes stale
            with sqlite3.connect(q.path) as db:
                db.execute("UPDATE assignments SET assigned = 0 WHERE state = 'open'")
        for name in [*people, "dan"]:
            assert q.progress(name) == scanned_progress(q, name), (step, name)


def test_a_queue_file_from_before_the_standing_table_gets_it_right(tmp_path):
    store = make_store(tmp_path / "s", routed=6, accepted=0)
    q = Queue.for_dataset(store, "demo", seed=1)
    sync_routed(q, store, "demo")
    for name in ("ann", "bob"):
        q.add_annotator(name)
    for _ in range(3):
        q.submit("ann", q.next_task("ann").item_id, "A")
    q.skip("bob", q.next_task("bob").item_id)
    q.submit("bob", q.next_task("bob").item_id, "B")
    triggers = ["standing_annotator_added", "standing_response", "standing_skip", "standing_item_filled"]
    with sqlite3.connect(q.path) as db:  # the file as older versions left it
        db.executescript("".join(f"DROP TRIGGER {t};" for t in triggers) + "DROP TABLE standing;")
    reopened = Queue(q.path)
    for name in ("ann", "bob"):
        assert reopened.progress(name) == scanned_progress(reopened, name)
        expected = slow_next(reopened, name)
        assert expected is not None and reopened.next_task(name).item_id == expected


def test_a_queue_file_from_before_the_counters_gets_them_right(tmp_path):
    store = make_store(tmp_path / "s", routed=5, accepted=0)
    q = Queue.for_dataset(store, "demo", seed=1)
    sync_routed(q, store, "demo")
    q.add_annotator("ann")
    task = q.next_task("ann")
    q.submit("ann", task.item_id, "A")
    with sqlite3.connect(q.path) as db:  # the file as older versions left it
        db.executescript(
            "DROP TRIGGER totals_item_added; DROP TRIGGER totals_item_filled; DROP TABLE totals;"
        )
        db.execute("UPDATE items SET filled = 2 WHERE id != ?", (task.item_id,))
    reopened = Queue(q.path)
    assert reopened.progress("ann") == scanned_progress(reopened, "ann")
    assert reopened.progress()["complete"] == 4


def test_a_write_blocked_by_another_process_waits_off_the_event_loop(tmp_path):
    store = make_store(tmp_path / "s", routed=3, accepted=0)
    q = Queue.for_dataset(store, "demo", seed=1)
    sync_routed(q, store, "demo")
    token = q.add_annotator("ann")
    auth = {"Authorization": f"Bearer {token}"}
    other = sqlite3.connect(q.path, isolation_level=None)  # another process's writer
    with live_server(q) as url, httpx.Client(base_url=url, headers=auth, timeout=10) as client:
        task = client.get("/api/next").json()
        other.execute("BEGIN IMMEDIATE")
        answers: list[httpx.Response] = []
        body = {"item_id": task["item_id"], "choice": "A"}
        submit = threading.Thread(target=lambda: answers.append(client.post("/api/submit", json=body)))
        submit.start()
        submit.join(0.3)
        assert submit.is_alive()  # waiting for the lock...
        # ...and not on the event loop: other requests are still answered meanwhile
        with httpx.Client(base_url=url, headers=auth, timeout=5) as second:
            assert second.get("/api/status").json()["mine"] == 0
        other.execute("COMMIT")
        submit.join(10)
    other.close()
    assert answers[0].status_code == 200 and answers[0].json()["recorded"] is True
    assert [r.annotator for r in q.responses()] == ["ann"]


def test_static_assets_are_cached_by_content_and_pages_are_not(tmp_path):
    store = make_store(tmp_path / "s", routed=1, accepted=0)
    q = Queue.for_dataset(store, "demo")
    sync_routed(q, store, "demo")
    token = q.add_annotator("ann")
    with live_server(q) as url, httpx.Client(base_url=url) as client:
        login = client.get("/login")
        assert login.headers["cache-control"] == "no-store"
        link = login.text.split('src="', 1)[1].split('"', 1)[0]
        assert link.startswith("/static/annotate.js?v=")
        js = client.get(link)
        assert js.status_code == 200 and "max-age" in js.headers["cache-control"]
        again = client.get(link, headers={"If-None-Match": js.headers["etag"]})
        assert again.status_code == 304
        api = client.get("/api/status", headers={"Authorization": f"Bearer {token}"})
        assert api.headers["cache-control"] == "no-store"


def test_bad_input_still_gets_its_one_line_error(tmp_path):
    store = make_store(tmp_path / "s", routed=1, accepted=0)
    q = Queue.for_dataset(store, "demo")
    sync_routed(q, store, "demo")
    token = q.add_annotator("ann")
    with live_server(q) as url, httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as c:
        bad = c.post("/api/submit", json={"item_id": "nope", "choice": "A"})
        assert bad.status_code == 400 and "not assigned" in bad.json()["detail"]
        assert c.post("/api/submit", json={"item_id": "x", "choice": "C"}).status_code == 422
    with pytest.raises(QueueError, match="nope"):
        q.submit("ann", "nope", "A")
