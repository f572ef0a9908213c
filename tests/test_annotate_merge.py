from __future__ import annotations

import json

import pytest
from annotate_support import label_all, make_store

from annotation.audit import select_for_audit
from annotation.merge import NothingToMerge, merge
from annotation.queue import Queue
from annotation.sync import sync_routed


@pytest.fixture
def setup(tmp_path):
    store = make_store(tmp_path / "store", routed=4, accepted=5)
    queue = Queue.for_dataset(store, "demo", seed=3)
    sync_routed(queue, store, "demo")
    for name in ("ann", "bob"):
        queue.add_annotator(name)
    routed = store.resolve("demo@v1").side("routed").to_pylist()
    return store, queue, routed


def test_merge_writes_a_child_version_with_human_labels(setup):
    store, queue, routed = setup
    # items in queue order: agree keep, agree swap, agree both bad, split vote
    label_all(
        queue,
        {
            "ann": ["chosen", "rejected", "both_bad", "chosen"],
            "bob": ["chosen", "rejected", "both_bad", "rejected"],
        },
    )
    result = merge(store, queue, store.resolve("demo@v1"))
    v2 = result.version
    assert v2.ref == "demo@v2" and v2.manifest["parent"] == "demo@v1"

    train = {row["id"]: row for row in v2.table("train").to_pylist()}
    assert len(train) == 5 + 2
    kept, swapped, bad, split = routed
    assert train[kept["id"]]["chosen"] == kept["chosen"]
    assert train[swapped["id"]]["chosen"] == swapped["rejected"]
    assert train[swapped["id"]]["rejected"] == swapped["chosen"]
    for row in (train[kept["id"]], train[swapped["id"]]):
        assert (row["label_source"], row["status"]) == ("human", "accepted")
        assert row["annotation"]["annotators"] == ["ann", "bob"]
    assert train[swapped["id"]]["annotation"]["labels"] == ["rejected", "rejected"]
    assert train[swapped["id"]]["annotation"]["resolution"] == "swapped"
    assert train[kept["id"]]["annotation"]["resolution"] == "kept"

    dropped = v2.side("dropped").to_pylist()
    assert [(d["id"], d["drop_stage"], d["drop_reason"]) for d in dropped] == [
        (bad["id"], "annotation", "both_bad")
    ]
    assert json.loads(dropped[0]["drop_detail"]) == {"labels": ["both_bad", "both_bad"]}
    still = v2.side("routed").to_pylist()
    assert [s["id"] for s in still] == [split["id"]]
    assert still[0]["status"] == "routed" and still[0]["annotation"]["resolution"] == "unresolved"

    meta = v2.manifest["annotation"]
    assert {k: meta[k] for k in ("items", "annotators", "resolved", "unresolved", "both_bad")} == {
        "items": 4,
        "annotators": 2,
        "resolved": 2,
        "unresolved": 1,
        "both_bad": 1,
    }
    # ann: c r b c / bob: c r b r → p_o = 3/4, p_e = (2*1 + 1*2 + 1*1)/16
    assert meta["cohen_kappa"]["ann|bob"] == pytest.approx((3 / 4 - 5 / 16) / (1 - 5 / 16))
    assert isinstance(meta["krippendorff_alpha"], float)
    step = v2.manifest["funnel"][-1]
    assert step == {"stage": "annotation", "in": 4, "out": 2, "dropped": {"both_bad": 1}, "unresolved": 1}
    assert v2.manifest["rows"] == {"train": 7, "test": 0}


def test_merging_again_changes_nothing_already_merged(setup):
    store, queue, routed = setup
    label_all(queue, {"ann": ["rejected"], "bob": ["rejected"]})
    v2 = merge(store, queue, store.resolve("demo@v1")).version
    with pytest.raises(NothingToMerge):
        merge(store, queue, v2)
    label_all(queue, {"ann": ["chosen"], "bob": ["chosen"]})  # the next routed item settles
    v3 = merge(store, queue, v2).version
    assert v3.manifest["annotation"]["resolved"] == 1
    assert v3.manifest["parent"] == "demo@v2"
    before = {r["id"]: r["chosen"] for r in v2.table().to_pylist()}
    after = {r["id"]: r["chosen"] for r in v3.table().to_pylist()}
    assert {i: after[i] for i in before} == before, "a swapped item must not be swapped back"
    assert after[routed[0]["id"]] == routed[0]["rejected"]


def test_audited_accepted_items_are_relabelled_and_estimated(setup):
    store, queue, _ = setup
    v1 = store.resolve("demo@v1")
    audit = select_for_audit(v1, sample=2, seed=0)
    queue.add_items(audit, kind="audit", source=v1.ref, k=1)
    # four routed items first (k=2), then the two audit items (k=1)
    label_all(queue, {"ann": ["tie", "tie", "tie", "tie", "chosen", "rejected"], "bob": ["tie"] * 4})
    v2 = merge(store, queue, v1).version
    meta = v2.manifest["annotation"]
    assert meta["audit"]["items"] == 2 and meta["audit"]["agreed"] == 1
    assert meta["audit"]["accuracy"] == 0.5
    assert 0 < meta["audit"]["ci95"][0] < 0.5 < meta["audit"]["ci95"][1] < 1
    assert meta["ties"] == 4
    assert {d["drop_reason"] for d in v2.side("dropped").to_pylist()} == {"human_tie"}
    by_id = {r["id"]: r for r in v2.table().to_pylist()}
    first, second = audit.to_pylist()
    assert by_id[first["id"]]["label_source"] == "human"
    assert by_id[second["id"]]["chosen"] == second["rejected"]


def test_nothing_settled_writes_no_version(setup):
    store, queue, _ = setup
    with pytest.raises(NothingToMerge, match="0 item"):
        merge(store, queue, store.resolve("demo@v1"))
    label_all(queue, {"ann": ["chosen"], "bob": ["rejected"]})  # a split vote settles nothing
    with pytest.raises(NothingToMerge, match="1 item"):
        merge(store, queue, store.resolve("demo@v1"))
    assert [v.name for v in store.versions("demo")] == ["v1"]
