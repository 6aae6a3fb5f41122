"""`${env:VAR}`: a value is typed only when the whole text is one plain YAML number, boolean or null; any other
text (a `#`, quotes, the empty text) stays exactly as given."""
from __future__ import annotations

from pathlib import Path

import pytest

import autotune.recipes
from autotune.errors import SpaceError
from autotune.space import Space, load_space
from autotune.space._tree import _scalar

RECIPE = str(Path(__file__).parent / "tiny_recipe.py")
VAR = "AUTOTUNE_TEST_ENV_VALUE"


def space(text: str) -> Space:
    return load_space(f"recipe: {RECIPE}\n" + text,
                      schema_for=lambda name, base: autotune.recipes.load(name, base).SCHEMA)


@pytest.mark.parametrize("text, value", [
    ("3", 3), ("1e-3", 0.001), ("true", True), ("null", None), ("0x10", 16),
    ("/data/odd dir/wine #1.csv", "/data/odd dir/wine #1.csv"), ("3 # epochs", "3 # epochs"), ("'3'", "'3'"),
    ("[1, 2]", "[1, 2]"), ("a: b", "a: b"), ("!!int 3", "!!int 3"), (" 3", " 3"), ("", ""), ("~", "~"),
])
def test_an_environment_value_is_typed_only_when_it_is_one_plain_scalar(text, value):
    assert _scalar(text) == value and type(_scalar(text)) is type(value)


def test_a_hash_in_an_environment_path_is_kept(monkeypatch):
    monkeypatch.setenv(VAR, "/data/odd dir/wine #1.csv")
    s = space(f"data: {{dataset: digits, root: '${{env:{VAR},data/wine.csv}}'}}\n")
    assert s.config({})["data"]["root"] == "/data/odd dir/wine #1.csv"


def test_an_empty_environment_value_is_the_empty_text(monkeypatch):
    monkeypatch.setenv(VAR, "")
    s = space(f"data: {{dataset: digits}}\ntrain: {{note: '${{env:{VAR}}}'}}\n")
    assert s.config({})["train"]["note"] == ""


def test_an_empty_environment_value_fails_the_keys_own_check(monkeypatch):
    monkeypatch.setenv(VAR, "")
    with pytest.raises(SpaceError) as caught:
        space(f"data: {{dataset: digits}}\ntrain: {{epochs: '${{env:{VAR},5}}'}}\n")
    [problem] = caught.value.problems
    assert problem.path == "train.epochs" and "the interpolation gives ''" in problem.message


def test_inside_a_longer_string_an_environment_value_is_its_text(monkeypatch):
    monkeypatch.setenv(VAR, "010")
    s = space(f"data: {{dataset: digits, root: '/data/${{env:{VAR}}}/x'}}\n")
    assert s.config({})["data"]["root"] == "/data/010/x"
