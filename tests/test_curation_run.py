"""The curation stages inside `traitdose run`: the recipe's curation block, routing, references."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from curation_items import TRUTHFULQA

from core.store import Store
from recipes.outcome import NoItemsError
from recipes.runner import run_recipe
from recipes.spec import RecipeError, parse_recipe

pytestmark = pytest.mark.skipif(not TRUTHFULQA.is_file(), reason=f"public data not found at {TRUTHFULQA}")

RECIPE = f"""
name: tqa
domain: health
trait: truthfulness
source:
  kind: answer_key
  path: {TRUTHFULQA}
  question: Question
  correct: Correct Answers
  incorrect: Incorrect Answers
  where: {{Category: [Health, Nutrition]}}
"""


def recipe(tmp_path: Path, curation: str = ""):
    path = tmp_path / "tqa.yaml"
    path.write_text(RECIPE + curation)
    return parse_recipe(path.read_text(), path)


def test_default_curation_runs_filter_dedupe_and_routing(tmp_path: Path) -> None:
    result = run_recipe(recipe(tmp_path), Store(tmp_path / "store"))
    stages = [s["stage"] for s in result.funnel]
    assert stages == ["source", "filter", "exact_dedupe", "near_dedupe", "route", "accept"]
    near = next(s for s in result.funnel if s["stage"] == "near_dedupe")
    assert near["report"]["scheme"]["datasketch_scheme"] == "affine32"
    dropped = pl.from_arrow(result.version.side("dropped"))
    assert set(dropped["drop_stage"]) <= {"filter", "exact_dedupe", "near_dedupe"}
    assert all(
        json.loads(d)["kept_id"] for d in dropped.filter(pl.col("drop_stage") == "near_dedupe")["drop_detail"]
    )
    accept = result.funnel[-1]
    routed = result.version.side("routed").num_rows
    assert accept["in"] - accept["out"] == routed == accept["dropped"].get("routed", 0)


def test_decontaminating_against_the_source_benchmark_removes_everything(tmp_path: Path) -> None:
    block = f"""
curation:
  decontam:
    benchmarks:
      - {{path: {TRUTHFULQA}, columns: [Question], name: truthfulqa}}
"""
    # every item dropped: the run says so in one line and writes no version
    with pytest.raises(NoItemsError, match=r"no item survived curation: .*decontam \(contaminated: \d+\)"):
        run_recipe(recipe(tmp_path, block), Store(tmp_path / "store"))
    assert Store(tmp_path / "store").datasets() == []


def test_route_threshold_zero_routes_every_item_to_annotation(tmp_path: Path) -> None:
    result = run_recipe(recipe(tmp_path, "curation: {route: {route_threshold: 0.0}}"), Store(tmp_path / "s"))
    assert result.version.manifest["rows"] == {"train": 0, "test": 0}
    assert result.version.side("routed").num_rows == result.funnel[-1]["in"]


def test_a_second_version_never_re_adds_what_the_first_holds(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    first = run_recipe(recipe(tmp_path), store)
    with pytest.raises(NoItemsError, match=r"near_dedupe \(.*near_duplicate_of_reference: \d+"):
        run_recipe(recipe(tmp_path, "curation: {dedupe: {against: [previous]}}"), store)
    assert store.versions("tqa") == [first.version]  # nothing new: latest is still the first


def test_unknown_curation_keys_name_the_file_line_and_field(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"tqa.yaml:\d+: curation.dedupe.treshold: unknown key 'treshold'"):
        recipe(tmp_path, "curation:\n  dedupe:\n    treshold: 0.9\n")


def test_benchmark_paths_resolve_against_the_recipe_folder(tmp_path: Path) -> None:
    (tmp_path / "bench.csv").write_text("question\nWhat is the capital of France?\n")
    loaded = recipe(tmp_path, "curation: {decontam: {benchmarks: [{path: bench.csv, columns: [question]}]}}")
    assert loaded.curation.decontam.benchmarks[0].path == str((tmp_path / "bench.csv").resolve())
    with pytest.raises(RecipeError, match="file not found: missing.csv"):
        recipe(tmp_path, "curation: {decontam: {benchmarks: [{path: missing.csv, columns: [q]}]}}")
