from __future__ import annotations

from pathlib import Path

import pytest

from recipes.runner import _meta
from recipes.spec import RecipeError, builtin_recipes, parse_recipe


def test_recipe_sets_labels_per_item():
    path = builtin_recipes()["health"]
    text = path.read_text() + "\nannotation:\n  k: 3\n"
    recipe = parse_recipe(text, path)
    assert recipe.annotation.k == 3
    assert _meta(recipe, 0, recipe.trait_list)["annotation_k"] == 3
    plain = parse_recipe(path.read_text(), path)
    assert "annotation_k" not in _meta(plain, 0, plain.trait_list)


def test_bad_k_names_the_field(tmp_path):
    path = builtin_recipes()["health"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(path.read_text() + "\nannotation:\n  k: 0\n")
    with pytest.raises(RecipeError, match=r"annotation\.k"):
        parse_recipe(bad.read_text(), Path(bad))
