"""What a served model and a report show or touch beyond their job: GET /model's public card (the whole card only
with `full_card`), an image mode the model cannot take (a 415, not a 500), and the files `autotune report` may
replace in a folder it did not fill. In-process apps (Starlette's TestClient), no Ray, tiny models."""
from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from use_support import served, trained_table_model

from autotune.errors import UserError
from autotune.report.page import REPORT_HEAD, _earlier_figures
from autotune.serve import PUBLIC_CARD, create_app

pytest.importorskip("httpx")
from starlette.testclient import TestClient  # noqa: E402  (needs httpx)

HIDDEN = ("run_dir", "base_dir", "config", "versions", "top_trials", "scalers", "sources", "data_fingerprint")


@pytest.fixture(scope="module")
def table_model(tmp_path_factory) -> Path:
    """A tabular model `autotune train --out` exports from 40 rows: age (numeric), colour (categorical)."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("table") / "people.csv"
    pd.DataFrame({"age": rng.normal(45, 12, 40).round(1), "colour": rng.choice(["red", "blue"], 40),
                  "label": rng.choice(["yes", "no"], 40)}).to_csv(path, index=False)
    return trained_table_model(path, "people", "{width: 4, depth: 1}", "{epochs: 1, batch_size: 16}")


@pytest.fixture(scope="module")
def customer_model(tmp_path_factory) -> Path:
    """A tabular model trained on 40 rows of invented customers: age, colour, and an e-mail address in 3 rows of 4
    (a missing one in the others)."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("customers") / "customers.csv"
    pd.DataFrame({"age": rng.normal(45, 12, 40).round(1), "colour": rng.choice(["red", "blue"], 40),
                  "email": [f"person{i}@example.org" if i % 4 else None for i in range(40)],
                  "label": rng.choice(["yes", "no"], 40)}).to_csv(path, index=False)
    return trained_table_model(path, "customers", "{width: 4, depth: 1}", "{epochs: 1, batch_size: 16}")


@pytest.fixture(scope="module")
def grey_model(tmp_path_factory) -> Path:
    """A hand-made image model folder: a linear layer on 1x8x8 grey images, two labels."""
    folder = tmp_path_factory.mktemp("grey")
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated, as the recipes' export says
        torch.jit.trace(net, torch.zeros(1, 1, 8, 8)).save(str(folder / "model.pt"))
    card = {"name": "grey", "recipe": "image_classification", "version": "v1", "labels": ["a", "b"],
            "input_shape": [1, 8, 8], "run_dir": str(folder.resolve())}
    (folder / "model.json").write_text(json.dumps(card))
    return folder


def strings(value: object) -> list[str]:
    """Every text in a JSON value, keys included."""
    if isinstance(value, dict):
        return [*value, *(s for v in value.values() for s in strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return [value] if isinstance(value, str) else []


def test_the_model_card_served_by_default_holds_no_local_path_and_no_history(table_model):
    card = json.loads((table_model / "model.json").read_text())
    with TestClient(create_app(table_model)) as client:
        public = client.get("/model").json()
    assert set(public) <= set(PUBLIC_CARD) and not set(public) & set(HIDDEN)
    assert not [text for text in strings(public) if text.startswith("/") or str(table_model.parent) in text]
    assert public["name"] == "people" and public["version"] == card["version"] and public["task"] == "classification"
    assert public["labels"] == ["no", "yes"] and public["test_metrics"] == card["test_metrics"]
    assert public["columns"] == {"numeric": ["age"], "categorical": ["colour"]}
    assert public["categories"] == {"colour": ["blue", "red"]} and public["created"] == card["created"]


def test_the_served_card_withholds_the_values_of_a_column_of_a_value_per_row(customer_model):
    card = json.loads((customer_model / "model.json").read_text())
    assert "person1@example.org" in card["categories"]["email"] and card["withheld_categories"] == ["email"]
    with TestClient(create_app(customer_model)) as client, \
            TestClient(create_app(customer_model, full_card=True)) as full:
        public, whole = client.get("/model").json(), full.get("/model").json()
    assert public["categories"] == {"colour": ["blue", "red"]} and public["withheld_categories"] == ["email"]
    assert public["columns"]["categorical"] == ["colour", "email"]  # a row still gives it
    assert not [text for text in strings(public) if "@example.org" in text]
    assert whole["categories"]["email"] == card["categories"]["email"]  # `--full-card`: the operator's choice


def test_the_mlflow_input_example_holds_no_value_of_a_column_of_a_value_per_row(customer_model):
    from autotune.tabular.exported import input_example

    example = input_example(customer_model).iloc[0].to_dict()
    assert example["email"] == "" and example["colour"] == "blue"


def test_full_card_serves_the_whole_card_and_the_same_predictions(table_model):
    rows = {"rows": [{"age": 50, "colour": "red"}, {"age": None, "colour": "green"}]}
    with TestClient(create_app(table_model, full_card=True)) as full, TestClient(create_app(table_model)) as public:
        answer = full.get("/model")
        assert answer.json() == json.loads((table_model / "model.json").read_text())
        assert answer.headers["x-model-version"] == answer.json()["version"]
        assert full.post("/predict", json=rows).json() == public.post("/predict", json=rows).json()


def lab_tiff() -> bytes:
    buffer = io.BytesIO()
    Image.new("LAB", (8, 8), (128, 140, 120)).save(buffer, "TIFF")
    return buffer.getvalue()


def test_an_image_mode_the_model_cannot_take_is_a_415_naming_it(grey_model):
    with TestClient(create_app(grey_model), raise_server_exceptions=False) as client:
        answer = client.post("/predict", files={"file": ("lab.tif", lab_tiff(), "image/tiff")})
        public = client.get("/model").json()
    assert answer.status_code == 415, answer.text
    assert answer.json() == {"detail": "lab.tif: an image of mode LAB cannot be converted to L, the mode the model "
                                       "takes; save it as RGB or greyscale"}
    assert public == {"name": "grey", "version": "v1", "labels": ["a", "b"], "input_shape": [1, 8, 8]}


def test_predict_names_an_image_mode_the_model_cannot_take_in_one_line(grey_model, tmp_path, cli):
    (tmp_path / "lab.tif").write_bytes(lab_tiff())
    code, out, err = cli("predict", grey_model, tmp_path / "lab.tif")
    assert (code, out) == (1, "")
    assert err == (f"autotune predict: {tmp_path / 'lab.tif'}: an image of mode LAB cannot be converted to L, the "
                   "mode the model takes; save it as RGB or greyscale\n")


def test_a_report_removes_only_the_figures_an_earlier_report_links(tmp_path):
    assert _earlier_figures(tmp_path) == []  # an empty folder
    (tmp_path / "pareto.png").write_bytes(b"mine")
    (tmp_path / "history.png").write_bytes(b"mine")
    with pytest.raises(UserError, match=r"holds history.png, pareto.png, which no autotune report there links"):
        _earlier_figures(tmp_path)
    (tmp_path / "report.html").write_text(f"{REPORT_HEAD}x</title><a href='history.png'>history.png</a>")
    with pytest.raises(UserError, match=r"holds pareto.png, which no autotune report"):
        _earlier_figures(tmp_path)
    (tmp_path / "pareto.png").unlink()
    assert _earlier_figures(tmp_path) == ["history.png"]
    assert (tmp_path / "history.png").read_bytes() == b"mine"  # listed, not removed: write_report removes them


def test_a_report_html_autotune_did_not_write_is_not_overwritten(tmp_path):
    (tmp_path / "report.html").write_text("<html>my own report</html>")
    with pytest.raises(UserError, match=r"report.html is not a page autotune report wrote, and it is not overwritten"):
        _earlier_figures(tmp_path)
    assert (tmp_path / "report.html").read_text() == "<html>my own report</html>"


def test_serve_full_card_answers_the_whole_card(table_model, tmp_path):
    """`autotune serve --full-card`: the whole card, as the model folder holds it."""
    with served(table_model, tmp_path / "server.log", "--full-card") as client:
        assert client.get("/model").json() == json.loads((table_model / "model.json").read_text())


def test_a_loaded_tabular_model_shows_what_it_is(table_model):
    """A notebook shows `autotune.load_model(...)`: its folder, task, target and columns, not an object address."""
    import autotune

    model = autotune.load_model(table_model)
    assert repr(model) == (f"TabularPredictor({str(table_model)!r}: classification of 'label' from 2 columns "
                           "(age, colour))")
