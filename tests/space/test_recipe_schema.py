"""`autotune.recipes.load_schema`: every command reads a recipe's SCHEMA by importing the recipe; the shipped
recipes import torch (and pandas, timm) only inside their functions, so that import is instant."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import autotune.recipes
from autotune.errors import UserError

# In a fresh interpreter: each shipped recipe's SCHEMA through load_schema, then which heavy modules that imported.
_PROBE = """\
import json, sys
import autotune.recipes as recipes

schemas = {name: recipes.load_schema(name) for name in recipes.available()}
same = all(schemas[name] is recipes.load(name).SCHEMA and isinstance(recipes.load(name), recipes.Recipe)
           for name in schemas)
heavy = [m for m in ("torch", "timm", "ray", "pandas", "sklearn") if m in sys.modules]
print(json.dumps({"recipes": sorted(schemas), "same": same, "heavy": heavy}))
"""


def test_the_shipped_recipes_import_without_torch():
    result = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found == {"recipes": ["image_classification", "tabular"], "same": True, "heavy": []}


RECIPE = '''\
from autotune.space.schema import Field, Schema, Section

SCHEMA = Schema(train=Section(epochs=Field(int, default={default}, low=1)))


def train(config, report, *, data=None, checkpoint=None): ...
'''


def test_the_schema_is_the_imported_recipes(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # a cached .pyc must not stand in for the edited file
    (tmp_path / "mine.py").write_text(RECIPE.format(default="3"))
    schema = autotune.recipes.load_schema("mine.py", tmp_path)
    module = autotune.recipes.load("mine.py", tmp_path)
    assert schema is module.SCHEMA and isinstance(module, autotune.recipes.Recipe)
    assert schema.sections["train"].fields["epochs"].default == 3
    assert autotune.recipes.load("mine.py", tmp_path) is module  # the same file: not run again
    (tmp_path / "mine.py").write_text(RECIPE.format(default="5"))  # edited between two searches of one process
    assert autotune.recipes.load_schema("mine.py", tmp_path).sections["train"].fields["epochs"].default == 5


@pytest.mark.parametrize("text, error", [
    (RECIPE.format(default="3").replace("def train(", "def trains("), "lacks train"),
    (RECIPE.format(default="UNDEFINED"), r"broken\.py:3: NameError: name 'UNDEFINED' is not defined"),
    ("import numpy\nimport no_such_module_here\n", r"broken\.py:2: ModuleNotFoundError: No module named"),
    ("SCHEMA = (\n", r"broken\.py:1: SyntaxError: '\(' was never closed"),
    ("SCHEMA = {}\ndef train(config, report, *, data=None, checkpoint=None): ...\n",
     "SCHEMA is a dict, not an autotune.space.Schema"),
])
def test_a_broken_recipe_is_one_line_naming_its_file_and_line(tmp_path, text, error):
    (tmp_path / "broken.py").write_text(text)
    with pytest.raises(UserError, match=error):
        autotune.recipes.load_schema("broken.py", tmp_path)


def test_unknown_recipes_are_named():
    with pytest.raises(UserError, match="did you mean 'image_classification'"):
        autotune.recipes.load_schema("image_clasification")
    with pytest.raises(UserError, match="does not exist"):
        autotune.recipes.load_schema("nowhere.py", "/nonexistent")
