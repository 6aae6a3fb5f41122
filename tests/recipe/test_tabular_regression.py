"""The tabular recipe on regression tables that mislead: a target far from zero (float32 holds 123456789 to a
multiple of 8), an infinite target or feature, and money written as text."""
from __future__ import annotations

import json
import logging
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from autotune.errors import UserError
from autotune.recipes import tabular as recipe
from autotune.tabular.rows import TabularPredictor, predict_rows, read_rows
from test_train import Recorder

OFFSET = 123_456_789


def readings(n: int = 160) -> pd.DataFrame:
    """A target of OFFSET plus a few units (std about 7.7) that follows from its columns."""
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, n)
    kind = rng.choice(["a", "b"], n)
    delta = 7 * x + 3 * (kind == "a") + rng.normal(0, 0.5, n)
    return pd.DataFrame({"x": x.round(3), "kind": kind, "reading": (OFFSET + delta).round(3)})


def load(path: Path, target: str, **data):
    return recipe.load_data({"dataset": "csv", "path": str(path), "target": target, **data})


@pytest.fixture(scope="module")
def offset(tmp_path_factory):
    """(the CSV, its data, the exported model's folder) of `readings`, trained 15 epochs."""
    folder = tmp_path_factory.mktemp("offset")
    readings().to_csv(folder / "offset.csv", index=False)
    data = load(folder / "offset.csv", "reading")
    cfg = {"model": {"width": 32, "depth": 2, "dropout": 0.0}, "train": {"epochs": 15, "batch_size": 32},
           "optimizer": {"lr": 1e-2}}
    recipe.train(cfg, Recorder(folder / "checkpoint"), data=data)
    card = recipe.export(str(folder / "checkpoint"), data, str(folder / "model"))
    (folder / "model" / "model.json").write_text(json.dumps(card))
    return folder / "offset.csv", data, folder / "model"


def test_a_target_far_from_zero_keeps_its_units_in_float64(offset):
    csv, data, model = offset
    frame = pd.read_csv(csv)
    assert data.test.y.dtype == torch.float64
    assert data.test.y.numpy().tolist() == frame["reading"].to_numpy()[data.test.rows].tolist()  # not rounded to 8s
    values = [p["value"] for p in predict_rows(model, read_rows(csv))]
    assert all(type(v) is float for v in values)
    assert len(set(values)) > 50  # float32 gave 4 distinct values, 8 apart
    truth = frame["reading"].to_numpy()[data.test.rows]
    predicted = np.array(values)[data.test.rows]
    scores = recipe.evaluate(str(model), data)
    assert scores["test_rmse"] == pytest.approx(math.sqrt(np.mean((predicted - truth) ** 2)), rel=1e-6)
    assert scores["test_mae"] == pytest.approx(np.mean(np.abs(predicted - truth)), rel=1e-6)  # in its units too
    assert scores["test_rmse"] < 3  # the target's std is about 7.7


def test_serve_answers_the_float64_value(offset):
    from fastapi.testclient import TestClient

    from autotune.tabular.serving import create_app

    csv, _, model = offset
    row = read_rows(csv)[0]
    response = TestClient(create_app(model)).post("/predict", json={"rows": [{"x": row["x"], "kind": row["kind"]}]})
    assert response.status_code == 200
    assert response.json()["predictions"][0]["value"] == predict_rows(model, [row])[0]["value"]


class Float32InTargetUnits(torch.nn.Module):
    """model.pt as autotune exported it before float64 targets: values in the target's units, in float32."""

    def __init__(self, net: torch.nn.Module, mean: float, std: float) -> None:
        super().__init__()
        self.net, self.mean, self.std = net, mean, std

    def forward(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        return self.net(numeric, categorical)[:, 0] * self.std + self.mean


def test_a_model_exported_in_float32_still_loads_predicts_and_is_scored(offset, tmp_path):
    csv, data, model = offset
    old = tmp_path / "old"
    old.mkdir()
    (old / "model.json").write_text((model / "model.json").read_text())
    prep = data.preprocessing
    net = recipe.make_model({"width": 32, "depth": 2, "dropout": 0.0}, prep)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated
        current = torch.jit.load(str(model / "model.pt"))
        net.load_state_dict({k.removeprefix("net."): v for k, v in current.state_dict().items()})
        scripted = torch.jit.script(Float32InTargetUnits(net.eval(), prep.target_mean, prep.target_std))
    scripted.save(str(old / "model.pt"))
    values = [p["value"] for p in TabularPredictor(old).predict(read_rows(csv)[:5])]
    assert all(type(v) is float and abs(v - OFFSET) < 100 for v in values)
    assert recipe.evaluate(str(old), data)["test_rmse"] < 10  # its values rounded to multiples of 8


# ------------------------------------------------------------------------------------------------ refused
def _write(tmp_path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(tmp_path / "t.csv", index=False)
    return tmp_path / "t.csv"


def test_an_infinite_target_is_refused_in_one_line_naming_column_and_row(tmp_path):
    frame = readings(30).rename(columns={"reading": "price"})
    frame.loc[[3, 17], "price"] = [np.inf, -np.inf]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(UserError) as caught:
            load(_write(tmp_path, frame), "price")
    assert str(caught.value).endswith("column 'price' (data.target) holds 2 infinite values (row 3 inf, row 17 -inf; "
                                      "row 0 is the first after the header): write each as a finite number, or leave "
                                      "its cell empty to leave its row out")


def test_an_infinite_feature_is_read_as_missing_with_a_warning_naming_column_and_row(tmp_path, caplog):
    frame = readings(30)
    frame.loc[4, "x"] = np.inf
    with caplog.at_level(logging.WARNING, logger="autotune"):
        data = load(_write(tmp_path, frame), "reading")
    assert "column 'x' holds 1 infinite values (row 4 inf; row 0 is the first after the header): the model reads " \
           "them as missing values" in caplog.text
    assert len(data.train) + len(data.val) + len(data.test) == 30



def test_an_infinite_feature_takes_the_train_median_in_every_split_and_moves_no_statistic(tmp_path):
    """Infinite cells of a feature are missing values: the train split's mean, std and median leave them out (an
    infinite mean made every value of the column the same input), and in every split they take that median and
    their missing indicator, as an empty cell does (an infinite input made the trial's metrics NaN)."""
    frame = readings(60)
    frame.loc[range(0, 60, 5), "x"] = [np.inf, -np.inf] * 6
    data = load(_write(tmp_path, frame), "reading")
    prep = data.preprocessing
    finite = frame.loc[data.train.rows, "x"].replace([np.inf, -np.inf], np.nan)
    assert prep.indicators == ("x",)
    assert (prep.mean[0], prep.std[0], prep.median[0]) == pytest.approx(
        (finite.mean(), finite.std(ddof=0), finite.median()), rel=1e-9)
    column = prep.numeric.index("x")
    for split in (data.train, data.val, data.test):
        gaps = np.isinf(frame.loc[split.rows, "x"].to_numpy())
        assert torch.isfinite(split.numeric).all()
        assert split.numeric[gaps, column].tolist() == pytest.approx([(prep.median[0] - prep.mean[0]) / prep.std[0]]
                                                                     * int(gaps.sum()))
        assert split.numeric[:, len(prep.numeric)].tolist() == gaps.astype(float).tolist()  # the indicator

def money(n: int = 60) -> pd.DataFrame:
    prices = np.arange(100, 100 + n) * 1000
    return pd.DataFrame({"rooms": np.arange(n) % 5, "price": [f"${p:,}" for p in prices]})


@pytest.mark.parametrize("task", ["auto", "regression"])
def test_money_written_as_text_is_refused_saying_how_to_write_it(task, tmp_path):
    with pytest.raises(UserError) as caught:
        load(_write(tmp_path, money()), "price", task=task)
    message = str(caught.value)
    assert "column 'price' (data.target) holds numbers written as text ('$100,000', '$101,000', '$102,000', ...: " \
           "60 distinct values in 60 rows)" in message
    assert "write them as plain numbers ('$100,000' as 100000: no currency sign, thousands separator, space or %) " \
           "and set data.task: regression" in message
    assert "\n" not in message


def test_money_as_classes_is_taken_when_the_task_says_classification(tmp_path):
    frame = pd.DataFrame({"rooms": np.arange(60), "band": ["$100,000", "$200,000"] * 30})
    assert load(_write(tmp_path, frame), "band", task="classification").labels == ["$100,000", "$200,000"]


def test_a_class_without_training_rows_says_how_many_classes_the_target_was_read_as(tmp_path):
    frame = pd.DataFrame({"rooms": np.arange(60), "code": [f"c{i // 2}" for i in range(60)]})
    with pytest.raises(UserError, match=r"data.target is read as 30 classes, about 2.0 rows each: if its values are "
                                        "quantities, write them as plain numbers and set data.task: regression$"):
        load(_write(tmp_path, frame), "code")
