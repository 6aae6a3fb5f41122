"""The tabular recipe on tables at the edges of what it expects: dates from Parquet predicted on, whole-number
targets of few values read as regression, class names alike but for spaces, case or Unicode form, a validation
split of one target value or of one class (a test split of one class too: its ROC AUC is undefined), and an
integer identifier."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from autotune.api import load_space
from autotune.errors import UserError
from autotune.preflight import check_metrics_reported
from autotune.recipes import tabular as recipe
from autotune.tabular.data import UNKNOWN, Preprocessing
from autotune.tabular.rows import encode_rows, read_rows


def load(frame: pd.DataFrame, tmp_path, target: str = "y", suffix: str = "csv", **data):
    path = tmp_path / f"t.{suffix}"
    frame.to_parquet(path) if suffix == "parquet" else frame.to_csv(path, index=False)
    return recipe.load_data({"dataset": "csv", "path": str(path), "target": target, **data}), path


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]


# ------------------------------------------------------------------------------ A: dates at predict time
@pytest.mark.parametrize("times", [
    pd.date_range("2024-01-01", periods=4, freq="D"),  # every value midnight: pandas writes dates only
    pd.date_range("2024-01-01", periods=4, freq="6h"),  # some not: pandas writes each with its time
])
def test_a_parquet_date_column_predicts_its_own_training_rows_as_seen(times, tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"when": times.repeat(10), "x": rng.normal(size=40), "y": ["a", "b"] * 20})
    data, path = load(frame, tmp_path, suffix="parquet")
    card = data.preprocessing.as_card()
    _, categorical = encode_rows(card, read_rows(path))
    assert "when" in card["categories"] and not (categorical == UNKNOWN).any()


@pytest.mark.parametrize("value, vocabulary, code", [
    ("2024-01-01 00:00:00", ("2024-01-01",), 2),
    ("2024-01-01", ("2024-01-01 00:00:00",), 2),
    ("2024-01-01 06:00:00", ("2024-01-01",), UNKNOWN),  # another time of that day: not the same value
    ("5.0", ("5",), 2),
])
def test_a_category_is_found_however_training_wrote_it(value, vocabulary, code):
    prep = Preprocessing(task="regression", target="y", numeric=(), mean=(), std=(), median=(), indicators=(),
                         categories={"c": vocabulary})
    assert prep.encode(pd.DataFrame({"c": pd.Series([value], dtype=object)}))[1].tolist() == [[code]]


# ------------------------------------------------------------------------------ B: whole numbers as regression
@pytest.mark.parametrize("high, rows, warned", [
    (30, 300, True),  # 30 values, 10 rows each: may be classes
    (30, 100, False),  # about 3 rows a value: a quantity
    (500, 3000, False),  # more values than CLASS_VALUES
])
def test_whole_numbers_of_few_values_read_as_regression_warn_that_they_may_be_classes(high, rows, warned, tmp_path,
                                                                                      caplog):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=rows), "label": np.arange(rows) % high + 1})
    data, _ = load(frame, tmp_path, target="label")
    assert data.preprocessing.task == "regression"
    line = f"data.task auto reads 'label' ({high} distinct whole numbers in {rows} rows) as regression"
    assert (line in caplog.text) == warned, caplog.text
    assert ("if they are classes, set data.task: classification" in caplog.text) == warned


# ------------------------------------------------------------------------------ C: class names alike
def test_class_names_alike_but_for_spaces_case_or_unicode_form_are_named(tmp_path, caplog):
    names = ["yes", " yes", "Yes", "no", "caf\u00e9", "cafe\u0301"]
    frame = pd.DataFrame({"x": np.arange(60) % 7, "y": names * 10})
    data, _ = load(frame, tmp_path, suffix="parquet")
    assert len(data.labels) == 6
    (line,) = [w for w in warnings_of(caplog) if "differ only by" in w]
    assert "' yes', 'Yes', 'yes'" in line and "'cafe\u0301' (decomposed: NFD), 'caf\u00e9'" in line and "'no'" not in line


def test_turkish_class_names_alike_but_for_case_are_named(tmp_path, caplog):
    """Python folds Turkish 'İ' to 'i' and a combining dot, and 'ı', the lower case of Turkish 'I', stays apart: the
    classes 'TÜRKİYE' and 'Türkiye', 'KIZ' and 'kız' trained apart without a word."""
    frame = pd.DataFrame({"x": np.arange(60) % 7, "y": ["TÜRKİYE", "Türkiye", "KIZ", "kız", "erkek"] * 12})
    load(frame, tmp_path)
    (line,) = [w for w in warnings_of(caplog) if "differ only by" in w]
    assert "('KIZ', 'kız'; 'TÜRKİYE', 'Türkiye')" in line and "erkek" not in line


def test_distinct_class_names_warn_of_nothing_alike(tmp_path, caplog):
    load(pd.DataFrame({"x": np.arange(60) % 7, "y": ["yes", "no", "maybe"] * 20}), tmp_path)
    assert "differ only by" not in caplog.text


# ------------------------------------------------------------------------------ D: a constant validation target
def test_a_validation_split_of_one_target_value_warns_that_val_r2_is_undefined(tmp_path, caplog):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=80), "y": np.r_[rng.normal(size=40), np.full(40, 3.0)]})
    for seed in range(40):
        caplog.clear()
        data, _ = load(frame, tmp_path, split_seed=seed)
        if len(set(data.val.y.tolist())) == 1:
            break
    else:
        pytest.fail("no seed gave a validation split of one value")
    (line,) = [w for w in warnings_of(caplog) if "the validation split's target" in w]
    assert f"holds one value (3 in its {len(data.val)} rows): val_r2 is undefined there" in line
    assert "val_rmse and val_mae are not (search.metric: val_rmse ranks trials)" in line


def test_a_varied_validation_target_warns_of_nothing_constant(tmp_path, caplog):
    rng = np.random.default_rng(0)
    load(pd.DataFrame({"x": rng.normal(size=80), "y": rng.normal(size=80)}), tmp_path)
    assert "target holds one value" not in caplog.text


# ------------------------------------------------------------------------------ E: a validation split of one class
def rare_ones_split(tmp_path, caplog, wanted: Callable[[Any], bool]) -> Any:
    """A table of 1000 rows, 8 of class 1, loaded with the first split seed whose data is `wanted` (the warnings of
    that load in `caplog`)."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=1000), "y": (np.arange(1000) % 125 == 0).astype(int)})
    for seed in range(40):
        caplog.clear()
        data, _ = load(frame, tmp_path, split_seed=seed)
        if wanted(data):
            return data
    pytest.fail("no split seed gave the split wanted")


def test_a_validation_split_of_one_class_says_no_metric_ranks_and_gives_no_balanced_advice(tmp_path, caplog):
    data = rare_ones_split(tmp_path, caplog, lambda data: set(data.val.y.tolist()) == {0})
    warned = warnings_of(caplog)
    (line,) = [w for w in warned if "the validation split" in w]
    assert "holds no row of class '1'" in line and "it holds class '0' only" in line
    assert "no classification metric there can rank trials on the others" in line and "data.val_fraction" in line
    assert "val_roc_auc is undefined" in line
    assert not any("1/2" in w or "search.metric: val_balanced_accuracy" in w for w in warned), warned
    space = load_space("name: t\nrecipe: tabular\nsearch: {metric: val_roc_auc, mode: max}\n")
    with pytest.raises(UserError, match="'val_roc_auc' is not reported by recipe 'tabular' for this data"):
        check_metrics_reported(space, recipe, data)  # before Ray: every trial's val_roc_auc would be NaN


def test_a_test_split_of_one_class_says_its_roc_auc_is_undefined_and_the_metric_is_nan(tmp_path, caplog):
    data = rare_ones_split(tmp_path, caplog,
                           lambda data: set(data.test.y.tolist()) == {0} and len(set(data.val.y.tolist())) == 2)
    (line,) = [w for w in warnings_of(caplog) if "the test split" in w]
    assert "holds no row of class '1'" in line and "test_roc_auc is undefined there (NaN)" in line
    model = recipe.make_model(recipe.with_defaults({})["model"], data.preprocessing)
    measured = recipe._measure(model, data.test, data.preprocessing)
    assert np.isnan(measured["roc_auc"]) and 0 <= measured["f1_macro"] <= 1
    assert 0 <= recipe._measure(model, data.val, data.preprocessing)["roc_auc"] <= 1


# ------------------------------------------------------------------------------ F: an integer identifier
@pytest.mark.parametrize("ids, warned", [
    (np.arange(100000, 100060), True),  # unique and consecutive
    (np.random.default_rng(1).permutation(np.arange(100, 160)), True),  # shuffled, still a counter
    (np.arange(60) * 7, False),  # unique but spread: could be a quantity
    (np.arange(60) % 20, False),  # repeated values
])
def test_an_integer_identifier_is_named_with_data_drop(ids, warned, tmp_path, caplog):
    rng = np.random.default_rng(0)
    x = rng.normal(size=60)
    load(pd.DataFrame({"customer_id": ids, "x": x, "y": np.where(x > 0, "yes", "no")}), tmp_path)
    lines = [w for w in warnings_of(caplog) if "'customer_id'" in w]
    assert bool(lines) == warned, caplog.text
    if warned:
        assert "distinct whole numbers in 60 rows, nearly consecutive" in lines[0]
        assert lines[0].endswith("data.drop: ['customer_id']")


# ------------------------------------------------------------------------------ G: numbers too large to standardise
@pytest.mark.parametrize("target, fix", [
    ("big", "the model predicts it in those units"),
    ("y", "or leave it out with data.drop: ['big']"),
])
def test_a_column_too_large_to_standardise_is_refused_by_name(target, fix, tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=60), "big": rng.uniform(1, 9, 60) * 1e160, "y": rng.normal(size=60)})
    with pytest.raises(UserError, match="column 'big'.* holds numbers too large to standardise") as err:
        load(frame, tmp_path, target=target)
    assert fix in str(err.value) and ("(data.target)" in str(err.value)) == (target == "big")


def test_large_but_standardisable_numbers_are_taken(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"big": rng.uniform(1, 9, 60) * 1e150, "y": rng.normal(size=60) * 1e150})
    data, _ = load(frame, tmp_path)
    assert torch.isfinite(data.train.numeric).all()
