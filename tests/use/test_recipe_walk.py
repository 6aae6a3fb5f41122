"""A third recipe, for 1-D series, written from docs/recipes.md alone: what its author met, each in a tiny recipe file
that the test writes (no Ray, no torch)."""
from __future__ import annotations

import inspect
import json
import re
import textwrap
from pathlib import Path

import pytest

import autotune.cli
from autotune.errors import MissingMetric, UserError
from autotune.recipes import written
from autotune.space.schema import Field, Schema, Section

DOC = (Path(__file__).parents[2] / "docs" / "recipes.md").read_text()
SERVE_EXAMPLE = re.search(r"^```python\n(def serve\(.*?)^```", DOC, flags=re.S | re.M).group(1)

HEAD = """\
from __future__ import annotations

from autotune.errors import BadInput
from autotune.space.schema import Field, Schema, Section

SCHEMA = Schema(fit=Section(steps=Field(int, default=2, low=1)), budget="fit.steps", metrics={"val_mse": "min"})
"""


def _recipe(tmp_path: Path, body: str, tail: str = "") -> Path:
    """The series recipe (HEAD, `body`, then `tail` as it is), a space for it and a model folder whose card names
    it."""
    (tmp_path / "series_recipe.py").write_text(HEAD + textwrap.dedent(body) + tail)
    (tmp_path / "space.yaml").write_text("name: series\nrecipe: series_recipe.py\n")
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.json").write_text(json.dumps({"name": "series", "version": "v1",
                                                  "recipe": str(tmp_path / "series_recipe.py")}))
    return tmp_path


def _client(model_dir: Path):
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from autotune.serve import create_app

    return TestClient(create_app(model_dir))


def test_the_documented_serve_answers_in_a_recipe_with_postponed_annotations(tmp_path):
    """`from __future__ import annotations` made `request: Request` (Request imported inside serve(), as the doc's
    example does) the text 'Request', which FastAPI looked up in the module's globals only: every POST /predict was
    a 422 "query parameter request: Field required"."""
    body = """
        def train(config, report, *, data=None, checkpoint=None):
            report({"val_mse": 1.0}, None)


        class Model:
            card = {"name": "series", "version": "v1"}

            def predict(self, rows):
                return [{"value": 2.0 * row["x"]} for row in rows]


        def load_model(model_dir):
            return Model()


    """
    folder = _recipe(tmp_path, body, SERVE_EXAMPLE)
    answer = _client(folder / "model").post("/predict", json={"rows": [{"x": 1.5}]})
    assert (answer.status_code, answer.json()) == (200, {"predictions": [{"value": 3.0}]})


def test_an_app_whose_annotations_name_nothing_is_refused_before_it_listens(tmp_path):
    """An app built without `model_app` (a bare FastAPI()) keeps FastAPI's reading: a parameter it cannot resolve is
    named, with the fix, when the app is built (`autotune serve`: one line, exit 2), not at every request."""
    folder = _recipe(tmp_path, """
        def train(config, report, *, data=None, checkpoint=None):
            report({"val_mse": 1.0}, None)


        def serve(model_dir):
            from fastapi import FastAPI, Request

            app = FastAPI()

            @app.post("/predict")
            async def predict_series(request: Request) -> dict:
                return {}

            return app
    """)
    with pytest.raises(UserError, match=r"\(POST /predict: request: 'Request'\).*import those names at the top"):
        _client(folder / "model")


@pytest.mark.parametrize("checkpoint, kind", [({"net": {"w": [1.0]}}, "dict"), ([1, 2], "list"), (3, "int")])
def test_a_checkpoint_that_is_no_function_folder_or_none_is_refused_in_one_line(checkpoint, kind):
    """`report(metrics, {'net': net.state_dict()})` failed with os.fspath's `expected str, bytes or os.PathLike
    object, not dict`."""
    with pytest.raises(MissingMetric, match=rf"^report\(metrics, checkpoint\): checkpoint must be a function "
                                            rf"save\(directory\), a folder, or None \(got {kind}\)"):
        with written(checkpoint):
            pass


def test_train_names_a_state_dict_checkpoint_as_the_mistake(tmp_path, monkeypatch, capsys):
    folder = _recipe(tmp_path, """
        def train(config, report, *, data=None, checkpoint=None):
            report({"val_mse": 1.0}, {"net": {"w": [1.0]}})
    """)
    monkeypatch.chdir(folder)
    assert autotune.cli.main(["train", "space.yaml"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("autotune train: error: report(metrics, checkpoint): checkpoint must be a function "
                          "save(directory), a folder, or None (got dict)") and err.count("\n") == 1


def test_train_warns_when_the_searched_metric_was_never_a_number(tmp_path, monkeypatch, capsys):
    folder = _recipe(tmp_path, """
        def train(config, report, *, data=None, checkpoint=None):
            for _ in range(config["fit"]["steps"]):
                report({"val_mse": float("nan")}, None)
    """)
    monkeypatch.chdir(folder)
    assert autotune.cli.main(["train", "space.yaml"]) == 0
    captured = capsys.readouterr()
    assert "val_mse nan" in captured.out
    assert "warning: no report held a finite value of 'val_mse', the searched metric (search.metric): each of the " \
           "2 reports gave NaN or an infinity" in captured.err


def test_train_does_not_warn_when_some_report_held_a_number(tmp_path, monkeypatch, capsys):
    folder = _recipe(tmp_path, """
        def train(config, report, *, data=None, checkpoint=None):
            report({"val_mse": float("nan")}, None)
            report({"val_mse": 0.5}, None)
    """)
    monkeypatch.chdir(folder)
    assert autotune.cli.main(["train", "space.yaml"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_a_raised_bad_input_names_its_file(tmp_path, capsys):
    """A BadInput that predict() raises (instead of yielding it) ends the command; its message was printed without
    the file it names."""
    folder = _recipe(tmp_path, """
        def train(config, report, *, data=None, checkpoint=None):
            report({"val_mse": 1.0}, None)


        def predict(model_dir, files):
            raise BadInput("expected series of 64 steps, got 3", source=files[0])
    """)
    (folder / "short.npy").write_bytes(b"")
    assert autotune.cli.main(["predict", str(folder / "model"), str(folder / "short.npy")]) == 2
    assert capsys.readouterr().err == (f"autotune predict: error: {folder / 'short.npy'}: expected series of 64 "
                                       "steps, got 3\n")


@pytest.mark.parametrize("cls", [Field, Section, Schema])
def test_every_argument_of_field_section_and_schema_is_documented(cls):
    """`Field(path=True)` was documented nowhere: a recipe without it kept a relative data path in the card, and
    `autotune train MODEL_DIR` run from another directory could not find the data."""
    part = DOC.split("### The arguments of `Field`, `Section` and `Schema`")[1].split("\n## ")[0]
    arguments = [name for name, parameter in inspect.signature(cls).parameters.items()
                 if parameter.kind is not inspect.Parameter.VAR_KEYWORD]
    assert arguments and [name for name in arguments if f"`{name}`" not in part] == []


@pytest.mark.parametrize("command", ["predict", "serve"])
def test_the_help_of_predict_and_serve_covers_a_recipe_of_ones_own(command, capsys):
    """Their help spoke of images and tables only."""
    with pytest.raises(SystemExit):
        autotune.cli.main([command, "--help"])
    assert "another recipe's" in " ".join(capsys.readouterr().out.split())
