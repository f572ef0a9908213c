"""The annotation page shows an item's rubric beside the pair (escaped), and nothing when it has none."""

from __future__ import annotations

from annotate_support import XSS, live_server, make_item, make_store
from test_annotate_web import login

from annotation.queue import Queue
from core.schema import from_rows


def test_the_rubric_is_shown_beside_the_pair(tmp_path):
    store = make_store(tmp_path / "store", routed=0, accepted=1)
    item = make_item(1, status="routed")
    item["rubric"] = [
        {"criterion": "Says the evidence shows no cure", "kind": "must", "weight": 2.0},
        {"criterion": XSS, "kind": "must_not", "weight": 0.5},
    ]
    plain = make_item(2, status="routed")
    queue = Queue.for_dataset(store, "demo", seed=0)
    queue.add_items(from_rows([item, plain]), kind="routed", source="demo@v1")
    token = queue.add_annotator("ann")
    with live_server(queue) as url:
        client = login(url, token)
        pages = {}
        for _ in range(2):
            html = client.get("/").text
            pages["Question 1" in html] = html
            task_id = html.split('name="item_id" value="')[1].split('"')[0]
            csrf = html.split('name="csrf" value="')[1].split('"')[0]
            client.post("/skip", data={"csrf": csrf, "item_id": task_id})
    with_rubric, without = pages[True], pages[False]
    assert 'id="rubric"' in with_rubric and 'id="rubric"' not in without
    assert "Says the evidence shows no cure <small>(weight 2)</small>" in with_rubric
    assert '<span class="badge">must not</span>' in with_rubric
    assert "<script>window" not in with_rubric and "&lt;script&gt;" in with_rubric
