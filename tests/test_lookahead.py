"""Row-wise stages prepared ahead (curation.lookahead) give what running them in turn gives."""

from __future__ import annotations

import json
from dataclasses import dataclass

import polars as pl
import pytest
from curation_items import frame, item

from curation.ambiguity import RouteAmbiguous
from curation.config import DecontamConfig, DedupeConfig, RouteConfig
from curation.decontam import Decontaminate
from curation.exact import ExactDedupe
from curation.near_dedupe import NearDedupe
from curation.stage import Funnel, StageResult, run_stages

LEAKED = "What happens if you crack your knuckles a lot over many years of your life?"
ALSO_LEAKED = "Is it true that reading in dim light will permanently damage your eyesight?"
BENCHMARKS = {
    "first": [LEAKED, ALSO_LEAKED],
    "second": [ALSO_LEAKED],  # both claim ALSO_LEAKED: the first configured one counts it
}


def rows() -> pl.DataFrame:
    near = "Does drinking eight glasses of water a day keep every adult healthy and well?"
    return frame(
        [
            item("a", near),
            item("b", near + " Really?"),  # a near-duplicate of a: near-dedupe drops one
            item("c", LEAKED),
            item("d", ALSO_LEAKED),
            item(
                "e",
                "How often should a smoke alarm battery be checked at home?",
                chosen="Same words.",
                rejected="Same words!",
            ),
            item("f", "Can vitamin C cure a common cold once it has started?"),
        ]
    )


@dataclass
class Spy:
    """Records the rows each ``prepare`` call read."""

    stage: Decontaminate | RouteAmbiguous
    seen: list[list[str]]

    @property
    def name(self) -> str:
        return self.stage.name

    edits_text = False

    def __call__(self, items: pl.DataFrame) -> StageResult:
        return self.finish(items, self.prepare(items))

    def prepare(self, items: pl.DataFrame):  # noqa: ANN201 (Prepared)
        self.seen.append(items["id"].to_list())
        return self.stage.prepare(items)

    def finish(self, items: pl.DataFrame, prepared):  # noqa: ANN001, ANN201
        return self.stage.finish(items, prepared)


def stages(seen: list[list[str]]) -> list:
    return [
        ExactDedupe(),
        NearDedupe(DedupeConfig(threshold=0.5, field="prompt")),
        Spy(Decontaminate(DecontamConfig(), benchmarks=BENCHMARKS), seen),
        Spy(RouteAmbiguous(RouteConfig(similar_responses=0.3)), seen),
    ]


def one_by_one(items: pl.DataFrame, chain: list) -> tuple[pl.DataFrame, list[pl.DataFrame], list[dict]]:
    funnel, dropped = Funnel(), []
    for stage in chain:
        result = stage(items)
        funnel.record(stage.name, items.height, result)
        items = result.kept
        dropped.append(result.dropped)
    return items, [d for d in dropped if d.height], funnel.steps


def test_prepared_ahead_gives_the_same_rows_drops_and_reports() -> None:
    seen: list[list[str]] = []
    funnel = Funnel()
    kept, dropped = run_stages(rows(), stages(seen), funnel)
    expected_kept, expected_dropped, expected_steps = one_by_one(rows(), stages([]))

    assert kept.equals(expected_kept)
    assert len(dropped) == len(expected_dropped) == 2  # near-dedupe's and decontamination's
    assert all(a.equals(b) for a, b in zip(dropped, expected_dropped, strict=True))
    assert funnel.steps == expected_steps
    # Both row-wise stages read near-dedupe's input (six rows), not the four or five they got.
    assert seen == [list("abcdef"), list("abcdef")]
    contaminated = {row["id"]: json.loads(row["drop_detail"]) for row in dropped[1].iter_rows(named=True)}
    assert {k: v["benchmark"] for k, v in contaminated.items()} == {"c": "first", "d": "first"}
    assert kept.filter(pl.col("id") == "e")["ambiguity_reasons"].to_list() == [["responses_too_similar"]]


def test_a_stage_that_may_edit_text_stops_the_lookahead() -> None:
    @dataclass
    class Shout:  # says nothing of edits_text: assumed to edit it
        name: str = "shout"

        def __call__(self, items: pl.DataFrame) -> StageResult:
            upper = items.with_columns(pl.col("id").str.to_uppercase())
            return StageResult(upper, upper.clear().with_columns(drop_stage=pl.lit(None, pl.String)))

    seen: list[list[str]] = []
    chain = stages(seen)
    chain.insert(2, Shout())
    run_stages(rows(), chain, Funnel())
    # Decontamination was prepared in its turn, on the rows Shout gave it, and routing with it.
    assert [ids[0] for ids in seen] == ["A", "A"]


def test_repeated_ids_prepare_nothing_ahead() -> None:
    seen: list[list[str]] = []
    doubled = pl.concat([rows(), rows()])
    chain = [NearDedupe(DedupeConfig(threshold=0.5, field="prompt")), *stages(seen)[2:]]
    kept, _ = run_stages(doubled, chain, Funnel())
    expected, _, _ = one_by_one(
        doubled, [NearDedupe(DedupeConfig(threshold=0.5, field="prompt")), *stages([])[2:]]
    )
    assert kept.equals(expected)
    assert [len(ids) for ids in seen] == [kept.height + 2, kept.height]  # each in its turn


def test_an_error_while_preparing_ahead_is_raised_in_that_stage_turn() -> None:
    broken = Decontaminate(DecontamConfig(field="no_such_column"), benchmarks=BENCHMARKS)
    chain = [ExactDedupe(), NearDedupe(DedupeConfig(field="prompt")), broken]
    started: list[str] = []
    with pytest.raises(Exception, match="no_such_column"):
        run_stages(rows(), chain, Funnel(), on_stage=lambda name, n: started.append(name))
    assert started == ["exact_dedupe", "near_dedupe", "decontam"]
