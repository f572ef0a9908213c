"""The engine seam without Ray: which engine a run uses, and that the choice is not in the recipe hash."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from curation.engine import EngineSpec, LocalEngine, choose_engine, open_engine
from curation.exact import ExactDedupe
from curation.stage import Funnel
from recipes.spec import load_recipe, parse_recipe


def test_the_command_line_beats_the_environment_which_beats_the_recipe(monkeypatch) -> None:
    monkeypatch.delenv("TRAITDOSE_ENGINE", raising=False)
    assert choose_engine() == "local"
    assert choose_engine(recipe="ray") == "ray"
    monkeypatch.setenv("TRAITDOSE_ENGINE", "local")
    assert choose_engine(recipe="ray") == "local"
    assert choose_engine("ray", recipe="local") == "ray"


def test_an_unknown_engine_is_refused_naming_where_it_came_from(monkeypatch) -> None:
    monkeypatch.setenv("TRAITDOSE_ENGINE", "spark")
    with pytest.raises(ValueError, match="TRAITDOSE_ENGINE 'spark'.*local, ray"):
        choose_engine()
    with pytest.raises(ValueError, match="--engine 'dask'"):
        choose_engine("dask")


def test_the_engine_in_a_recipe_does_not_change_its_hash(tmp_path: Path) -> None:
    base = load_recipe("health")
    text = base.to_yaml().replace("curation:\n", "curation:\n  engine: ray\n", 1)
    on_ray = parse_recipe(text, tmp_path / "health.yaml")
    assert on_ray.curation.engine == "ray"
    assert on_ray.content_hash() == parse_recipe(base.to_yaml(), tmp_path / "health.yaml").content_hash()


def test_the_local_engine_runs_the_stages_in_this_process() -> None:
    items = pl.DataFrame({"id": ["a", "b", "a"], "prompt": ["x", "y", "z"]})
    funnel = Funnel()
    with open_engine(EngineSpec()) as engine:
        assert isinstance(engine, LocalEngine) and engine.partitions is None
        kept, dropped = engine.run(items, [ExactDedupe()], funnel)
    assert kept["prompt"].to_list() == ["x", "y"] and dropped[0]["prompt"].to_list() == ["z"]
    assert funnel.steps[0]["dropped"] == {"exact_duplicate": 1} and "engine" not in funnel.steps[0]
