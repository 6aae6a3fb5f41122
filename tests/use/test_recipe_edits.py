"""A recipe of one's own edited while the models it exported stay in use: what predict, serve and load_model say of a
model the edited code cannot read (no Ray, no torch)."""
from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

import pytest

import autotune
import autotune.cli
from autotune.errors import UserError

RECIPE = """\
from pathlib import Path

from autotune.space.schema import Field, Schema, Section

SCHEMA = Schema(fit=Section(steps=Field(int, default=2, low=1)), budget="fit.steps", metrics={"val_mse": "min"})


def train(config, report, *, data=None, checkpoint=None):
    report({"val_mse": 1.0}, None)


def predict(model_dir, files):
    scale = {READ}
    for file in files:
        yield {"file": file, "value": scale}


def load_model(model_dir):
    return {READ}
"""
OLD = 'float((Path(model_dir) / "scale.txt").read_text())'  # what the export of the model wrote
NEW = 'float((Path(model_dir) / "calibration.txt").read_text())'  # what the edited export writes, and predict reads


def _exported(tmp_path: Path) -> Path:
    """A model folder exported by the recipe's first code (its card records the file's SHA-256, as an export does)."""
    recipe = tmp_path / "mine.py"
    recipe.write_text(RECIPE.replace("{READ}", OLD))
    model = tmp_path / "model"
    model.mkdir()
    (model / "scale.txt").write_text("2.0")
    (model / "model.json").write_text(json.dumps({
        "name": "series", "version": "v1", "recipe": "mine.py", "base_dir": str(tmp_path),
        "sources": {"recipe": hashlib.sha256(recipe.read_bytes()).hexdigest()}}))
    return model


def test_a_model_the_edited_recipe_cannot_read_is_one_line_that_names_the_edit(tmp_path, cli):
    """predict() of an edited recipe that reads a file the model's export did not write ended `autotune predict` in a
    traceback, and nothing said that the recipe had changed since the model was exported."""
    model = _exported(tmp_path)
    assert cli("predict", model, tmp_path / "x.npy")[0] == 0
    (tmp_path / "mine.py").write_text(RECIPE.replace("{READ}", NEW))
    code, out, err = cli("predict", model, tmp_path / "x.npy")
    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "recipe function 'predict' (mine.py, line 13) failed: FileNotFoundError" in err
    assert "calibration.txt" in err and "since this model was exported: the recipe file was edited" in err
    with pytest.raises(UserError, match=r"recipe function 'load_model' \(mine.py, line 19\) failed: "
                                        r"FileNotFoundError.*the recipe file was edited"):
        autotune.load_model(model)


def test_a_recipe_that_fails_on_a_model_it_exported_does_not_blame_an_edit(tmp_path, cli):
    """The same failure with the recipe as it was at the export: one line, without a word of edits."""
    model = _exported(tmp_path)
    (model / "scale.txt").unlink()
    code, _, err = cli("predict", model, tmp_path / "x.npy")
    assert code == 2 and "failed: FileNotFoundError" in err and "edited" not in err


def test_serve_of_a_model_the_edited_recipe_cannot_read_names_the_edit(tmp_path):
    pytest.importorskip("fastapi")
    from autotune.serve import create_app

    model = _exported(tmp_path)
    (tmp_path / "mine.py").write_text(RECIPE.replace("{READ}", NEW) + textwrap.dedent("""

        def serve(model_dir):
            return load_model(model_dir)
    """))
    with pytest.raises(UserError, match=r"recipe function 'serve' .*the recipe file was edited"):
        create_app(model)


def test_training_a_model_again_after_a_key_was_renamed_names_the_card_and_the_edit(tmp_path, cli):
    """`autotune train MODEL_DIR` of a model whose recipe renamed a key since said `<dict>: fit.steps: unknown key`:
    neither the card's file nor that the recipe had changed under the card."""
    model = _exported(tmp_path)
    card = json.loads((model / "model.json").read_text())
    (model / "model.json").write_text(json.dumps({**card, "config": {"fit": {"steps": 2}}}))
    assert cli("train", model)[0] == 0
    recipe = tmp_path / "mine.py"
    recipe.write_text(recipe.read_text().replace("steps=Field", "epochs=Field").replace('"fit.steps"', '"fit.epochs"'))
    code, _, err = cli("train", model)
    assert code == 2 and "<dict>" not in err
    assert f"the configuration in {model / 'model.json'} does not fit its recipe {recipe}; since the model was " \
           "exported: the recipe file was edited:" in err
    assert f"  {model / 'model.json'}: fit.steps: unknown key" in err
    assert f"`autotune ls recipes {recipe}` lists them" in err
