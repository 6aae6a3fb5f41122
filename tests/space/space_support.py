"""A space of the tests' tiny recipe from a few lines of YAML, and the problems such a space has."""
from __future__ import annotations

from pathlib import Path

import pytest

import autotune.recipes
from autotune.errors import SpaceError
from autotune.space import Space, load_space

# train.epochs 3 by default (the budget key), train.batch_size an integer, model.head a str or mapping
RECIPE = str(Path(__file__).parent / "tiny_recipe.py")


def space(text: str) -> Space:
    """The space of `text` (YAML below its first two lines: the recipe and `data: {dataset: digits}`)."""
    return load_space(f"recipe: {RECIPE}\ndata: {{dataset: digits}}\n" + text,
                      schema_for=lambda name, base: autotune.recipes.load(name, base).SCHEMA)


def problems(text: str) -> dict[str, tuple[str, str]]:
    """key path -> (message, fix) of each problem `text` has."""
    with pytest.raises(SpaceError) as caught:
        space(text)
    return {p.path: (p.message, p.fix) for p in caught.value.problems}
