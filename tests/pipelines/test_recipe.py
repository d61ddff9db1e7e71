from __future__ import annotations

import pytest

from msrgb_bench.errors import RecipeError, UnknownNameError
from msrgb_bench.pipelines.recipe import list_recipes, load_recipe


def _minimal() -> dict:
    return {
        "name": "custom",
        "classes": ["A", "B"],
        "teacher": {"sources": ["synthetic-ms"], "size": 32},
        "student": {"sources": ["synthetic-rgb"], "size": 32},
        "class_map": {"synthetic-ms": {"A": "A", "B": "B"}, "synthetic-rgb": {"A": "A", "B": None}},
        "splits": {"train": 0.5, "val": 0.25, "test": 0.25},
    }


def test_shipped_recipes_load() -> None:
    names = list_recipes()
    assert "demo" in names
    demo = load_recipe("demo")
    assert demo.classes[0] == "AnnualCrop" and len(demo.classes) == 10
    assert demo.teacher.sources == ("synthetic-ms",)
    assert demo.class_map["synthetic-rgb"]["River"] == "River"  # "identity" expanded
    assert demo.splits == {"train": 0.6, "val": 0.2, "test": 0.2}


def test_unknown_recipe_name_lists_known() -> None:
    with pytest.raises(UnknownNameError, match="demo"):
        load_recipe("no-such-recipe")


def test_minimal_recipe_file(recipe_file) -> None:
    recipe = load_recipe(recipe_file(_minimal()))
    assert recipe.class_map["synthetic-rgb"] == {"A": "A", "B": None}
    assert recipe.sources == ("synthetic-ms", "synthetic-rgb")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(colour="red"), "unknown recipe key 'colour'"),
        (lambda d: d["teacher"].update(bandz=[1]), "unknown key 'teacher.bandz'"),
        (lambda d: d.pop("splits"), "missing required key 'splits'"),
        (lambda d: d.update(splits={"train": 0.5, "val": 0.5, "test": 0.5}), "sum to 1"),
        (lambda d: d["class_map"]["synthetic-ms"].update(A="Z"), "maps to unknown class 'Z'"),
        (lambda d: d["class_map"].pop("synthetic-rgb"), "no entry for source 'synthetic-rgb'"),
        (lambda d: d["teacher"].update(size=0), "positive integer"),
    ],
)
def test_bad_recipes_name_file_and_key(recipe_file, change, message) -> None:
    data = _minimal()
    change(data)
    path = recipe_file(data)
    with pytest.raises(RecipeError, match=message) as info:
        load_recipe(path)
    assert str(path) in str(info.value)
