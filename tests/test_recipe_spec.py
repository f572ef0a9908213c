from __future__ import annotations

from pathlib import Path

import pytest

from recipes.spec import RecipeError, builtin_recipes, load_recipe
from tests.conftest import write_recipe

BASE = "name: r\ndomain: health\n"


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(RecipeError) as err:
        load_recipe(write_recipe(tmp_path, text))
    return str(err.value)


def test_bad_yaml_names_file_and_line(tmp_path):
    message = error_of(tmp_path, "name: r\ndomain: [health\n")
    assert "recipe.yaml:3" in message and "invalid YAML" in message


def test_unknown_key_is_an_error_not_ignored(tmp_path):
    message = error_of(tmp_path, BASE + "trait: truthfulness\ncolour: red\n")
    assert message.endswith("recipe.yaml:4: colour: unknown key 'colour'")


def test_unknown_trait_names_index_and_known_traits(tmp_path):
    message = error_of(tmp_path, BASE + "traits: [truthfulness, honesty2]\n")
    assert "traits[1]: unknown trait 'honesty2'; known: truthfulness, corrigibility" in message


def test_wrong_type_names_the_field(tmp_path):
    message = error_of(tmp_path, BASE + "trait: truthfulness\ntest_fraction: lots\n")
    assert "recipe.yaml:4: test_fraction:" in message


def test_missing_source_file_names_the_field_path(tmp_path):
    text = BASE + (
        "trait: truthfulness\nsource:\n  kind: answer_key\n  path: nope.csv\n"
        "  question: Q\n  correct: C\n  incorrect: I\n"
    )
    message = error_of(tmp_path, text)
    assert "recipe.yaml:6: source.path: file not found: nope.csv" in message


def test_unknown_source_kind(tmp_path):
    message = error_of(tmp_path, BASE + "trait: truthfulness\nsource:\n  kind: scrape\n  path: x.csv\n")
    assert "source: unknown kind 'scrape'" in message


def test_missing_trait_and_domain_without_bank(tmp_path):
    assert "missing 'trait'" in error_of(tmp_path, BASE)
    message = error_of(tmp_path, "name: r\ndomain: astrology\ntrait: truthfulness\n")
    assert "no built-in template bank" in message


def test_relative_paths_resolve_against_the_recipe_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "qa.csv").write_text("Q,C,I\nq?,yes,no\n")
    text = BASE + (
        "trait: truthfulness\nsource:\n  kind: answer_key\n  path: qa.csv\n"
        "  question: Q\n  correct: C\n  incorrect: I\n"
    )
    recipe = load_recipe(write_recipe(tmp_path / "sub", text))
    assert recipe.source.path == str((tmp_path / "sub" / "qa.csv").resolve())


def test_every_builtin_recipe_loads_with_both_traits():
    recipes = builtin_recipes()
    assert {"health", "science", "education", "law", "engineering", "finance"} <= set(recipes)
    for path in recipes.values():
        recipe = load_recipe(path)
        assert recipe.trait_list == ["truthfulness", "corrigibility"]
