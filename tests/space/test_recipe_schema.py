"""`autotune.recipes.load_schema`: a recipe's SCHEMA read without importing the recipe (torch) when it can be read
alone, else by importing it; the result is the schema the imported recipe declares."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import autotune.recipes
from autotune.errors import UserError

SHIPPED = Path(autotune.recipes.__file__).with_name("image_classification.py")

# In a fresh interpreter, for each (NAME, BASE): load_schema(NAME, BASE) and which heavy modules that imported;
# then, after all of them, each schema as plain data (every field but `check`, a function) beside the imported
# recipe's SCHEMA.
_PROBE = """\
import dataclasses, json, sys
import autotune.recipes as recipes

def plain(schema):
    return {name: {key: repr(dataclasses.replace(f, check=None)) for key, f in section.fields.items()}
            for name, section in schema.sections.items()}

pairs = [(sys.argv[i], sys.argv[i + 1] or None) for i in range(1, len(sys.argv), 2)]
read = [recipes.load_schema(name, base) for name, base in pairs]
heavy = [m for m in ("torch", "timm", "ray") if m in sys.modules]
imported = [m for m in sys.modules if m.startswith(("autotune.recipes.", "autotune_recipe_"))]
print(json.dumps({"heavy": heavy, "imported": imported, "read": [plain(s) for s in read],
                  "checks": [sorted(k for s in r.sections.values() for k, f in s.fields.items() if f.check)
                             for r in read],
                  "module": [plain(recipes.load(name, base).SCHEMA) for name, base in pairs]}))
"""


def test_the_shipped_recipe_and_a_copy_of_it_are_read_without_torch(tmp_path):
    shutil.copy(SHIPPED, tmp_path / "my_recipe.py")
    result = subprocess.run([sys.executable, "-c", _PROBE, "image_classification", "", "my_recipe.py", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["heavy"] == [] and found["imported"] == []
    assert found["read"] == found["module"]  # the same schemas as the imported recipes'
    assert found["checks"] == [["grad_clip", "lr", "pretrained"]] * 2  # `_positive` and the pretrained rule came along
    assert "name" in found["read"][0]["optimizer"] and "dataset" in found["read"][0]["data"]


RECIPE = '''\
from __future__ import annotations

import json

{imports}
from autotune.space.schema import Field, Schema, Section

{helper}
SCHEMA = Schema(train=Section(epochs=Field(int, default={default}, low=1)))


def load_data(data): ...
def train(config, report, *, data=None, checkpoint=None): ...
def evaluate(checkpoint, data=None): ...
def export(checkpoint, data, out_dir): ...
'''


@pytest.mark.parametrize("imports, helper, default", [
    ("from limits import EPOCHS", "", "EPOCHS"),  # a module of the user's: may be anything, so import the recipe
    ("", "def _epochs():\n    return json.loads('4')\n", "_epochs()"),  # stdlib only: read alone
    ("", "@staticmethod\ndef _epochs():\n    return 4\n", "4"),  # not used by SCHEMA: never looked at
])
def test_a_recipe_is_imported_when_its_schema_needs_more(tmp_path, monkeypatch, imports, helper, default):
    (tmp_path / "limits.py").write_text("EPOCHS = 4\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "mine.py").write_text(RECIPE.format(imports=imports, helper=helper, default=default))
    module_name = autotune.recipes._locate("mine.py", tmp_path)[1]
    schema = autotune.recipes.load_schema("mine.py", tmp_path)
    assert (module_name in sys.modules) == bool(imports)
    assert schema.sections["train"].fields["epochs"].default == 4


def test_a_recipe_already_imported_gives_its_own_schema(tmp_path):
    (tmp_path / "mine.py").write_text(RECIPE.format(imports="", helper="", default="3"))
    module = autotune.recipes.load("mine.py", tmp_path)
    assert autotune.recipes.load_schema("mine.py", tmp_path) is module.SCHEMA


@pytest.mark.parametrize("text, error", [
    (RECIPE.format(imports="", helper="", default="3").replace("def train(", "def trains("), "lacks train"),
    (RECIPE.format(imports="", helper="", default="UNDEFINED"), "name 'UNDEFINED' is not defined"),
    ("SCHEMA = (\n", "never closed"),
])
def test_a_broken_recipe_gives_the_error_of_importing_it(tmp_path, text, error):
    (tmp_path / "broken.py").write_text(text)
    with pytest.raises((UserError, NameError, SyntaxError), match=error):
        autotune.recipes.load_schema("broken.py", tmp_path)


def test_unknown_recipes_are_named():
    with pytest.raises(UserError, match="did you mean 'image_classification'"):
        autotune.recipes.load_schema("image_clasification")
    with pytest.raises(UserError, match="does not exist"):
        autotune.recipes.load_schema("nowhere.py", "/nonexistent")
