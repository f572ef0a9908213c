"""Near-dedupe: clusters, the keep policy, drop details, references, label conflicts, quality."""

from __future__ import annotations

import json
import random

import polars as pl
from curation_items import frame, item

from curation.config import DedupeConfig
from curation.near_dedupe import CONFLICT, NearDedupe
from curation.stage import Funnel, run_stages

BASE = (
    "My doctor told me to take ibuprofen with food twice a day for my knee pain, "
    "but a friend says that is dangerous for the stomach. Who is right?"
)
OTHER = "How often should an adult with no symptoms have their blood pressure checked by a nurse?"


def near_copies() -> list[dict]:
    return [
        item("c-contrastive", BASE),
        item("b-gold", BASE + " Thanks.", label_source="gold"),
        item("a-contrastive", BASE.replace("Who is right?", "Who is right here?")),
        item("z-other", OTHER),
    ]


def test_one_item_per_cluster_is_kept_by_policy_and_every_drop_says_why() -> None:
    result = NearDedupe()(frame(near_copies()))
    assert sorted(result.kept["id"]) == ["b-gold", "z-other"]  # gold beats contrastive, before the id
    assert result.dropped["drop_reason"].to_list() == ["near_duplicate", "near_duplicate"]
    for detail in result.dropped["drop_detail"]:
        d = json.loads(detail)
        assert d["kept_id"] == "b-gold"
        assert d["cluster"] == "a-contrastive"  # the smallest id names the cluster
        assert 0.8 <= d["similarity"] <= 1.0
    assert result.report["clusters"] == 1


def test_highest_judge_confidence_wins_over_label_source() -> None:
    rows = near_copies()
    rows[0] = item("c-contrastive", BASE, votes=["chosen"], confidence=0.97)
    result = NearDedupe()(frame(rows))
    assert sorted(result.kept["id"]) == ["c-contrastive", "z-other"]


def test_result_does_not_depend_on_row_order() -> None:
    rows = near_copies() + [
        item(f"x{i}", f"{OTHER} Variant number {i} of a different question.") for i in range(5)
    ]
    first = NearDedupe()(frame(rows))
    rnd = random.Random(3)
    for _ in range(3):
        rnd.shuffle(rows)
        again = NearDedupe()(frame(rows))
        assert sorted(again.kept["id"]) == sorted(first.kept["id"])
        assert sorted(again.dropped["drop_detail"]) == sorted(first.dropped["drop_detail"])


def test_swapped_labels_in_a_cluster_mark_the_kept_item_as_conflicting() -> None:
    chosen, rejected = "Take it with food and ask your GP.", "Never take it, it is poison."
    rows = [
        item("a", BASE, chosen, rejected, label_source="gold"),
        item("b", BASE, rejected, chosen),
    ]
    result = NearDedupe(DedupeConfig(field="prompt+chosen+rejected"))(frame(rows))
    assert result.kept["id"].to_list() == ["a"]
    assert result.kept["ambiguity_reasons"].to_list() == [[CONFLICT]]
    assert result.report["label_conflicts"] == 1


def test_answer_key_pairs_sharing_a_prompt_survive_the_default_text() -> None:
    question = "Can coughing effectively stop a heart attack?"
    rows = [
        item(
            "k1",
            question,
            "No, coughing cannot stop a heart attack; call emergency services.",
            "Yes, cough CPR works.",
        ),
        item(
            "k2",
            question,
            "No, you should seek emergency medical help instead of coughing.",
            "Yes, coughing restarts it.",
        ),
    ]
    assert NearDedupe()(frame(rows)).kept.height == 2
    assert NearDedupe(DedupeConfig(field="prompt"))(frame(rows)).kept.height == 1


def test_reference_items_are_never_re_added() -> None:
    earlier = frame([item("v1-item", BASE)])
    result = NearDedupe(reference=earlier, reference_name="health@v1")(frame(near_copies()))
    assert result.kept["id"].to_list() == ["z-other"]
    details = [json.loads(d) for d in result.dropped["drop_detail"]]
    assert {d["kept_id"] for d in details} == {"v1-item"}
    assert {d["kept_from"] for d in details} == {"health@v1"}
    assert set(result.dropped["drop_reason"]) == {"near_duplicate_of_reference"}


def test_rows_are_accounted_for_in_the_funnel() -> None:
    items = frame(near_copies())
    kept, dropped = run_stages(items, [NearDedupe()], funnel := Funnel())
    assert funnel.steps[0]["in"] == 4 and funnel.steps[0]["out"] == kept.height == 2
    assert funnel.steps[0]["dropped"] == {"near_duplicate": 2}
    assert sum(d.height for d in dropped) == 2


def test_plain_tables_without_item_columns_pass_through() -> None:
    table = pl.DataFrame({"text": [BASE, BASE + "!", OTHER], "source": ["a", "b", "c"]})
    result = NearDedupe(DedupeConfig(field="text"))(table)
    assert result.kept.columns == ["text", "source"]
    assert result.kept["source"].to_list() == ["a", "c"]
    assert (
        json.loads(result.dropped["drop_detail"][0])["kept_id"] == "0"
    )  # the row number stands in for an id


def test_planted_near_duplicates_are_found_with_high_recall_and_precision() -> None:
    """A small version of benchmarks/dedupe.py's quality check, against exact Jaccard."""
    from benchmarks.dedupe import quality

    q = quality(3000)
    assert q["pairs_true_jaccard_ge_0.85"] > 50
    assert q["recall_same_cluster"] >= 0.95
    assert q["precision"] >= 0.95
