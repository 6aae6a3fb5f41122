"""The tabular recipe on messy tables: `data.drop`, `data.key`, `data.missing`, the warnings for columns that look like
no feature, a dominant class and a count read as classes, CSVs separated by semicolons or tabs, the balanced
accuracy and the class weights of an imbalanced table."""
from __future__ import annotations

import functools
import logging
import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import balanced_accuracy_score, f1_score, log_loss, roc_auc_score
from sklearn.utils.class_weight import compute_class_weight, compute_sample_weight

from autotune.api import _DataLoads, _check_before_ray, load_space
from autotune.errors import SpaceError, UserError
from autotune.preflight import check_metrics_reported
from autotune.recipes import tabular as recipe
from autotune.tabular.data import Preprocessing, csv_header
from test_train import Recorder  # a report as the engine's
from autotune.tabular.rows import BadRow, read_rows, row_chunks
from autotune.training import balanced_accuracy, class_counts, class_weights, macro_f1, roc_auc

N = 60


def table(seed: int = 0, n: int = N) -> pd.DataFrame:
    """Two plain features and a balanced yes/no target."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n).round(3)
    return pd.DataFrame({"x": x, "colour": rng.choice(["red", "blue"], n), "y": np.where(x > 0, "yes", "no")})


def load(frame: pd.DataFrame, tmp_path, target: str = "y", index: bool = False, **data):
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=index)
    return recipe.load_data({"dataset": "csv", "path": str(path), "target": target, **data})


def columns(data) -> set[str]:
    return {*data.preprocessing.numeric, *data.preprocessing.categories}


# ------------------------------------------------------------------------------------------- data.drop, warnings
def test_a_clean_table_warns_of_nothing(tmp_path, caplog):
    x = np.arange(600) / 100 - 3  # no row repeats another
    load(table(n=600).assign(x=x, y=np.where(x > 0, "yes", "no")), tmp_path)  # about 60 validation rows: enough
    assert caplog.text == ""


@pytest.mark.parametrize("rows, warned", [(N, True), (600, False)])
def test_a_validation_split_too_small_to_rank_trials_is_a_warning(rows, warned, tmp_path, caplog):
    """A table of 60 rows validated each trial on about 6 of them, where one row moves val_accuracy by 17 points,
    and nothing said the search's best was then a draw among near-equal trials."""
    data = load(table(n=rows), tmp_path)
    val = len(data.val.y)
    lines = [r.getMessage() for r in caplog.records if "the validation split holds" in r.getMessage()]
    assert lines == ([f"data.path {str(tmp_path / 't.csv')!r}: the validation split holds {val} rows: each moves "
                      f"val_accuracy by {100 / val:.1f} points, so trials that differ by fewer rows are ranked by "
                      "chance and the best trial may have been lucky; raise data.val_fraction (the search compares "
                      "trials on the validation split only) or add rows"] if warned else [])


@pytest.mark.parametrize("change, index, column, words", [
    (lambda f: f.sort_values("y"), True, "Unnamed: 0", "has no name in the header: a saved index"),
    (lambda f: f.assign(one=7), False, "one", "holds one value only (7)"),
    (lambda f: f.assign(customer=[f"c{i:04d}" for i in range(N)]), False, "customer",
     "holds 60 distinct values in 60 rows, like an identifier"),
    (lambda f: f.assign(notes=[f"called about invoice {i % 40}, no answer" for i in range(N)]), False, "notes",
     "holds texts of 6.0 words on average, 40 distinct in 60 rows, like free text (notes, comments, addresses)"),
])
def test_a_column_that_looks_like_no_feature_is_named_with_its_data_drop(change, index, column, words, tmp_path,
                                                                         caplog):
    data = load(change(table()), tmp_path, index=index)
    assert column in columns(data)  # still read: the warning says how to leave it out
    (line,) = [r.getMessage() for r in caplog.records if column in r.getMessage()]
    assert words in line and line.endswith(f"leave it out with data.drop: [{column!r}]")
    caplog.clear()
    assert column not in columns(load(change(table()), tmp_path, index=index, drop=[column]))
    assert column not in caplog.text


@pytest.mark.parametrize("text, column", [
    ("x,colour,y,gap\n" + "".join(f"{i},red,{'ab'[i % 2]},\n" for i in range(N)), "gap"),
    ("".join(f"{i},red,{'ab'[i % 2]},\n" for i in range(-1, N)).replace("-1,red,b,", "x,colour,y,", 1),
     "Unnamed: 3"),  # trailing commas, the header's too
])
def test_a_column_without_values_is_left_out_with_a_warning(text, column, tmp_path, caplog):
    """Nothing can be learned from it, and a model that read it would want it in every row it predicts."""
    path = tmp_path / "t.csv"
    path.write_text(text)
    data = recipe.load_data({"dataset": "csv", "path": str(path), "target": "y"})
    assert columns(data) == {"x", "colour"}
    assert f"column {column!r} holds no value" in caplog.text and f"data.drop: [{column!r}]" in caplog.text


def test_the_card_withholds_the_values_of_identifiers_and_free_text_not_of_categories(tmp_path):
    """A column of an e-mail address in most rows, or of free-text notes, lists its training rows' values in the
    card: GET /model and the MLflow input example leave those columns' values out (`withheld_categories`)."""
    frame = table().assign(email=[f"p{i}@example.org" if i % 3 else None for i in range(N)],
                           notes=[f"called about invoice {i % 40}, no answer" for i in range(N)])
    card = load(frame, tmp_path).preprocessing.as_card()
    assert card["withheld_categories"] == ["email", "notes"] and card["categories"]["colour"] == ["blue", "red"]
    assert Preprocessing.from_card(card).withheld == ("email", "notes")


def test_drop_leaves_a_column_out_and_moves_no_row(tmp_path):
    """A dropped column still counts in each row's key: dropping it keeps the split (and the card lists no ids)."""
    frame = table().assign(customer=[f"c{i:04d}" for i in range(N)])
    full, dropped = load(frame, tmp_path), load(frame, tmp_path, drop=["customer"])
    assert "customer" in full.preprocessing.categories and columns(dropped) == {"x", "colour"}
    assert all(np.array_equal(a.rows, b.rows) for a, b in zip((full.train, full.val, full.test),
                                                              (dropped.train, dropped.val, dropped.test)))
    assert dropped.fingerprint != full.fingerprint  # a retrain notices what it learns from changed


@pytest.mark.parametrize("data, message", [
    ({"drop": ["colur"]}, r"has no column 'colur' \(data.drop\); did you mean 'colour'\? its columns: x, colour, y"),
    ({"drop": ["zzz"]}, r"has no column 'zzz' \(data.drop\); its columns: x, colour, y$"),
    ({"drop": ["yy"]}, r"has no column 'yy' \(data.drop\); its columns: x, colour, y$"),  # not the target, y
    ({"key": ["xx"]}, r"has no column 'xx' \(data.key\); did you mean 'x'\?"),
    ({"drop": "colour"}, r"data.drop is a list of column names, not 'colour'; write data.drop: \[colour\]"),
    ({"drop": ["y"]}, r"data.drop names the target 'y' \(data.target\)"),
    ({"drop": ["x", "colour"]}, "no column besides the target 'y' once data.drop and the columns without values are"),
])
def test_bad_drop_and_key_are_one_line_naming_the_columns(data, message, tmp_path):
    with pytest.raises(UserError, match=message):
        load(table(), tmp_path, **data)


def test_a_missing_column_of_a_wide_table_counts_the_columns_not_named(tmp_path):
    """A table of 201 columns without the data.target named listed 20 columns and "...", not how many more."""
    frame = pd.DataFrame({f"f{i}": [0.5, 1.5] * 10 for i in range(200)}).assign(y=["a", "b"] * 10)
    with pytest.raises(UserError, match=r"has no column 'target' \(data.target\); its columns: f0, f1, .*, f19 and "
                                        r"181 more$"):
        load(frame, tmp_path, target="target")


def test_the_space_takes_drop_and_key_as_lists():
    space = load_space("name: t\nrecipe: tabular\ndata: {dataset: csv, path: t.csv, target: y, drop: [id, "
                       "'Unnamed: 0'], key: [id]}\n")
    assert space.config({})["data"]["drop"] == ["id", "Unnamed: 0"] and space.config({})["data"]["key"] == ["id"]
    with pytest.raises(SpaceError, match="data.drop.*expected a list"):
        load_space("name: t\nrecipe: tabular\ndata: {dataset: csv, path: t.csv, target: y, drop: 3}\n")


def test_numbers_with_stray_text_are_one_warning_not_an_identifier_too(tmp_path, caplog):
    frame = table().assign(weight=lambda f: f["x"].astype(str).where(f.index != 3, "?"))
    load(frame, tmp_path)
    assert [r.getMessage().split("column 'weight' ")[1][:30] for r in caplog.records
            if "'weight'" in r.getMessage()] == ["holds 59 numbers and 1 cells o"]


@pytest.mark.parametrize("task, fix", [
    ("auto", "to leave its row out; or set data.task: classification if its values are classes"),
    ("regression", "to leave its row out"),
])
def test_a_text_cell_in_a_target_of_numbers_is_named_with_the_fix(task, fix, tmp_path):
    """One "61,20" among the numbers of a regression target: `auto` read each number as a class (the train split
    holds no row of classes '104.01', ...), regression said the column is not numeric (str)."""
    frame = table().assign(value=lambda f: (f["x"] * 20 + 60).round(2).astype(object).where(f.index != 7, "61,20"))
    with pytest.raises(UserError, match=r"column 'value' \(data.target\) holds numbers and 1 cells of text \(row 7 "
                                        r"'61,20'; row 0 is the first after the header\): write each as a number, or "
                                        rf"name its text in data.missing {fix}$"):
        load(frame.drop(columns="y"), tmp_path, target="value", task=task)
    with pytest.raises(UserError, match="the train split holds no row of classes"):  # classes, as data.task says
        load(frame.drop(columns="y"), tmp_path, target="value", task="classification")


def test_values_that_differ_only_by_case_or_spaces_are_a_warning(tmp_path, caplog):
    frame = table().assign(region=["North", "South", "north", " North ", "East"] * (N // 5))
    load(frame, tmp_path)
    warned = [r.getMessage().split(": ", 1)[1] for r in caplog.records]
    assert [w for w in warned if not w.startswith("the validation split holds")] == [
        "column 'region' holds values that differ only by case or surrounding spaces ('North', 'north', ' North '): "
        "the model learns them as separate categories; write each value alike in the file"]


# ------------------------------------------------------------------------------------------------- data.key
def _splits(data) -> dict[int, int]:
    return {int(row): i for i, split in enumerate((data.train, data.val, data.test)) for row in split.rows}


def test_a_key_keeps_every_row_in_its_split_when_a_column_is_added(tmp_path):
    frame = table(n=200).assign(id=[f"r{i}" for i in range(200)])
    wider = frame.assign(extra=np.arange(200) % 7)
    assert _splits(load(frame, tmp_path, drop=["id"])) != _splits(load(wider, tmp_path, drop=["id"]))  # every column
    keyed = load(frame, tmp_path, drop=["id"], key=["id"])
    assert _splits(keyed) == _splits(load(wider, tmp_path, drop=["id"], key=["id"]))
    edited = frame.assign(x=frame["x"].where(frame.index != 5, 9.0))  # a value outside the key: the same split
    again = load(edited, tmp_path, drop=["id"], key=["id"])
    assert _splits(again) == _splits(keyed) and again.fingerprint != keyed.fingerprint  # but not the same data


def test_rows_that_share_a_key_stay_together_with_a_warning(tmp_path, caplog):
    frame = table(n=120).assign(customer=[f"c{i // 4}" for i in range(120)])  # 4 rows per customer
    data = load(frame, tmp_path, drop=["customer"], key=["customer"])
    where = _splits(data)
    assert all(len({where[r] for r in range(c * 4, c * 4 + 4)}) == 1 for c in range(30))
    assert "90 of 120 rows repeat the data.key values (customer) of an earlier row" in caplog.text


# ----------------------------------------------------------------------------------------------- data.order
def dated(n: int = 120) -> pd.DataFrame:
    """A table of one row a day, in a shuffled order: its dates decide the split, not its rows' places."""
    days = pd.date_range("2025-01-01", periods=n, freq="D").strftime("%Y-%m-%d")
    return table(n=n).assign(date=days).sample(frac=1.0, random_state=0)


def _dates(data, frame: pd.DataFrame, split: str) -> pd.Series:
    return frame.reset_index(drop=True)["date"].iloc[getattr(data, split).rows]


def test_order_splits_by_time_the_latest_rows_for_validation_and_test(tmp_path):
    """A split by chance holds validation and test rows of every month; time-ordered rows are validated on the
    future: the latest 10 % test, the 20 % before them validation."""
    frame = dated()
    data = load(frame, tmp_path, order="date", val_fraction=0.2, test_fraction=0.1)
    again = load(frame, tmp_path, order="date", val_fraction=0.2, test_fraction=0.1, split_seed=7)
    train, val, test = (_dates(data, frame, s) for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (84, 24, 12)
    assert train.max() < val.min() and val.max() < test.min() == "2025-04-19"
    assert _splits(again) == _splits(data)  # no seed draws it
    assert data.describe().endswith("; split by date: train 2025-01-01 to 2025-03-25, val 2025-03-26 to 2025-04-18, "
                                    "test 2025-04-19 to 2025-04-30")
    assert "split by" not in load(frame, tmp_path).describe()


def test_a_date_column_split_by_is_not_told_to_be_split_by(tmp_path, caplog):
    load(dated(), tmp_path)
    (told,) = [r.getMessage() for r in caplog.records if "holds dates" in r.getMessage()]
    caplog.clear()
    load(dated(), tmp_path, order="date")
    (line,) = [r.getMessage() for r in caplog.records if "holds dates" in r.getMessage()]
    assert told.endswith("data.order: 'date'") and line.endswith("leave it out with data.drop: ['date']")


def test_rows_of_one_date_share_a_split_and_numbers_order_too(tmp_path):
    frame = table(n=120).assign(month=np.arange(120) // 10 + 1)  # 12 months of 10 rows
    data = load(frame, tmp_path, order="month", val_fraction=0.15, test_fraction=0.15)
    months = [set(frame["month"].iloc[s.rows]) for s in (data.train, data.val, data.test)]
    assert months == [set(range(1, 9)), {9, 10}, {11, 12}]  # 20 rows each held out: months are not cut


@pytest.mark.parametrize("change, message", [
    ({"date": ["2025-01-01", "soon", None]},
     r"column 'date' \(data.order\) holds 2 cells that are no date, time or number \(row 1 'soon', row 2 nan; row "
     r"0 is the first after the header\): each row's place in time decides its split; fill them in, or leave those "
     r"rows out of the file"),
    ({}, r"has no column 'day' \(data.order\); its columns: x, colour, y, date"),
])
def test_a_row_without_a_time_or_an_unknown_order_column_is_one_line(change, message, tmp_path):
    frame = dated(30).reset_index(drop=True)
    frame.loc[:2, "date"] = change.get("date", frame.loc[:2, "date"])
    with pytest.raises(UserError, match=message):
        load(frame, tmp_path, order="date" if change else "day")


@pytest.mark.parametrize("searched, warned", [
    ("split_seed: {choice: [0, 1, 2]}", "data.split_seed decides which samples validate"),
    ("val_fraction: {uniform: [0.1, 0.3]}, order: date", "data.val_fraction decides which samples validate"),
    ("encoding: {choice: [utf-8, latin-1]}", None),  # loads each trial's own data, but splits it alike
])
def test_a_searched_split_setting_is_warned_to_rank_trials_on_different_validation_rows(searched, warned, tmp_path,
                                                                                      caplog):
    """A search of data.split_seed gave each trial its own validation rows, and the best trial may only have drawn
    the easiest ones: the warning said only that each trial loads its own data."""
    dated(60).to_csv(tmp_path / "t.csv", index=False)
    space = load_space(f"name: t\nrecipe: tabular\nsearch: {{trials: 2}}\n"
                       f"data: {{dataset: csv, path: {tmp_path / 't.csv'}, target: y, {searched}}}\n")
    with caplog.at_level(logging.WARNING, logger="autotune"):
        _check_before_ray(space, recipe, _DataLoads(space, recipe), None, "--address", export=False)
    (line,) = [r.getMessage() for r in caplog.records if "is searched: each trial loads its own data" in r.getMessage()]
    key = warned.split()[0] if warned else ""
    assert (warned in line and line.endswith(f"set {key} once, and search the model and its training")
            if warned else line.endswith("each trial loads its own data"))


@pytest.mark.parametrize("fractions, message", [
    ({"test_fraction": 0.0}, r"data.test_fraction=0.0 leaves no test rows \(108 train / 12 val / 0 test of 120 rows\): "
                             r"set it above 0: the share of the rows, the latest by date, held out there$"),
    ({"val_fraction": 0.001}, r"data.val_fraction=0.001 leaves no val rows \(108 train / 0 val / 12 test of 120 "
                              r"rows\): raise it: the rows of one date share a split, and the latest ones are the test "
                              r"split$"),
])
def test_an_empty_split_by_time_says_how_to_fill_it(fractions, message, tmp_path):
    with pytest.raises(UserError, match=message):
        load(dated(), tmp_path, order="date", **fractions)


def test_order_with_a_key_is_a_problem_of_the_space():
    with pytest.raises(SpaceError, match=r"data.key: decides a split drawn by chance, but data.order \('date'\) "
                                         r"splits the rows by time; remove data.key"):
        load_space("name: t\nrecipe: tabular\ndata: {dataset: csv, path: t.csv, target: y, order: date, "
                   "key: [store]}\n")


# ------------------------------------------------------------------------------------------ the other warnings
def test_a_dominant_class_is_named_with_the_balanced_metric(tmp_path, caplog):
    frame = table(n=200)
    frame["y"] = np.where(np.arange(200) % 14 == 0, "yes", "no")  # 7 % yes
    load(frame, tmp_path)
    (line,) = [r.getMessage() for r in caplog.records if "training rows" in r.getMessage()]
    assert "class 'no' is 9" in line and "accuracy rewards always predicting it" in line
    assert "search.metric: val_balanced_accuracy" in line


@pytest.mark.parametrize("values, task, warned", [
    (np.arange(N) % 14, "auto", True),
    (np.arange(N) % 14, "classification", False),  # asked for
    (np.arange(N) % 10, "auto", False),
])
def test_a_count_read_as_many_classes_is_a_warning(values, task, warned, tmp_path, caplog):
    load(table().assign(y=values), tmp_path, task=task)
    line = "data.task auto reads the whole numbers of 'y' as classification with 14 classes; if they count a quantity"
    assert (line in caplog.text) == warned and ("data.task: regression" in caplog.text) == warned


# ---------------------------------------------------------------------------------------------- data.missing
def regions() -> pd.DataFrame:
    """table() with a region ("NA": North America, or "EU") and a weight: numbers, the text "?" in row 3."""
    return table().assign(region=np.where(np.arange(N) % 2, "NA", "EU"),
                          weight=lambda f: f["x"].abs().astype(str).where(f.index != 3, "?"))


def test_without_data_missing_pandas_texts_are_missing_as_before(tmp_path):
    """"NA" is no region, "?" makes the weights text (categories), and the card records no texts."""
    data = load(regions(), tmp_path)
    assert data.preprocessing.categories["region"] == ("EU",) and "?" in data.preprocessing.categories["weight"]
    assert "missing_texts" not in data.preprocessing.as_card()


@pytest.mark.parametrize("sep", [",", ";"])
def test_data_missing_replaces_pandas_texts(sep, tmp_path, caplog):
    """missing: ["", "?"]: "NA" is a region, "?" a missing weight (row 3, a training row), read with commas and
    read again with another separator; the card records the texts."""
    path = tmp_path / "t.csv"
    regions().to_csv(path, sep=sep, index=False)
    data = recipe.load_data({"dataset": "csv", "path": str(path), "target": "y", "missing": ["", "?"]})
    prep = data.preprocessing
    assert prep.categories["region"] == ("EU", "NA") and prep.numeric == ("x", "weight")
    assert prep.indicators == ("weight",) and data.train.numeric[list(data.train.rows).index(3), 2] == 1
    assert "cells of text" not in caplog.text
    assert prep.as_card()["missing_texts"] == ["", "?"] and Preprocessing.from_card(prep.as_card()) == prep


def test_the_fingerprint_changes_where_data_missing_reads_the_table_otherwise_and_a_retrain_sees_it(tmp_path):
    """The fingerprint is of the table as read: another data.missing that reads a cell otherwise changes it, one
    that reads it alike does not; `--if-data-changed` loads the data of the current model's config with the space's
    data.missing, and compares its fingerprint with the model's."""
    fingerprints = [load(regions(), tmp_path, missing=m).fingerprint for m in (None, ["", "?"], ["", "?", "-"])]
    assert fingerprints[0] != fingerprints[1] == fingerprints[2]  # no cell holds "-"
    regions().to_csv(tmp_path / "r.csv", index=False)

    def space(missing: str):
        return load_space(f"name: t\nrecipe: tabular\ndata: {{dataset: csv, path: {tmp_path / 'r.csv'}, target: y"
                          f"{missing}}}\n")

    before, after = space(""), space(", missing: ['', '?']")
    model = before.config({})  # the current model's, trained before data.missing was set
    assert _DataLoads(before, recipe).get(model).fingerprint == fingerprints[0]
    assert _DataLoads(after, recipe).get(model).fingerprint == fingerprints[1]


@pytest.mark.parametrize("data, message", [
    ("{dataset: wine, missing: ['?']}",
     r"data.missing: is read with dataset: csv only, not wine; remove it, or set data.dataset: csv"),
    ("{dataset: csv, path: t.csv, target: y, missing: ['', 1]}",
     r"data.missing: must list texts only, got 1; quote it: '1'"),
    ("{dataset: csv, path: t.csv, target: y, missing: '?'}", r"data.missing: expected a list"),
])
def test_a_bad_data_missing_is_a_problem_of_the_space(data, message):
    """Refused with the space, before any data is read (and before Ray starts)."""
    with pytest.raises(SpaceError, match=message):
        load_space(f"name: t\nrecipe: tabular\ndata: {data}\n")


@pytest.mark.parametrize("data, message", [
    ({"missing": ["", 1]}, r"^data.missing holds 1, which is not a text; quote it: '1'$"),
    ({"missing": "?"}, r"^data.missing is a list of texts, not '\?'"),
])
def test_a_bad_data_missing_is_one_line_when_loaded(data, message, tmp_path):
    with pytest.raises(UserError, match=message):
        load(table(), tmp_path, **data)
    with pytest.raises(UserError, match="^data.missing is read with dataset: csv only, not wine; remove it, or set "
                                        "data.dataset: csv$"):
        recipe.load_data({"dataset": "wine", "missing": ["?"]})


def test_data_missing_does_not_apply_to_parquet(tmp_path, caplog):
    """A Parquet file's nulls are its missing values (as pandas' read_parquet takes no na_values): a warning."""
    path = tmp_path / "t.parquet"
    regions().to_parquet(path)
    plain = recipe.load_data({"dataset": "csv", "path": str(path), "target": "y"})
    given = recipe.load_data({"dataset": "csv", "path": str(path), "target": "y", "missing": ["", "?"]})
    assert given.preprocessing == plain.preprocessing and given.fingerprint == plain.fingerprint
    assert "NA" in given.preprocessing.categories["region"]
    assert "data.missing applies to CSV files only" in caplog.text


# ---------------------------------------------------------------------------------------------- separators
@pytest.mark.parametrize("sep", [";", "\t"])
def test_a_csv_separated_by_semicolons_or_tabs_reads_as_by_commas(sep, tmp_path):
    commas = load(table(), tmp_path)
    path = tmp_path / "other.csv"
    table().to_csv(path, sep=sep, index=False)
    data = recipe.load_data({"dataset": "csv", "path": str(path), "target": "y"})
    assert data.preprocessing == commas.preprocessing and data.fingerprint == commas.fingerprint
    assert set(read_rows(path)[0]) == {"x", "colour", "y"}  # rows to predict, too


def test_a_semicolon_csv_whose_texts_hold_commas_reads_by_its_header(tmp_path):
    """The header line alone decides the separator: a quoted text holding a comma (and a newline) in a row of a
    file separated by semicolons failed the whole file ("Expected 1 fields in line 5, saw 2"), in training and in
    `autotune predict` alike."""
    notes = table().assign(note=lambda f: np.where(f.index % 7 == 3, 'big, "red"\nand round', "plain"))
    path = tmp_path / "notes.csv"
    notes.to_csv(path, sep=";", index=False)
    data = recipe.load_data({"dataset": "csv", "path": str(path), "target": "y", "drop": ["note"]})
    commas = load(notes, tmp_path, drop=["note"])
    assert data.preprocessing == commas.preprocessing and data.fingerprint == commas.fingerprint
    assert read_rows(path)[3]["note"] == 'big, "red"\nand round'


@pytest.mark.parametrize("sep, bom", [(";", b""), (",", b"\xef\xbb\xbf"), ("\t", b"")])
def test_a_first_line_naming_the_separator_is_read_as_excel_reads_it(sep, bom, tmp_path):
    """An export made for Excel starts with `sep=;`: the table read as the columns 'sep=' and 'Unnamed: 1', and
    the error said it had no column 'y' (data.target). Its rows to predict keep their numbers, and a line of fewer
    values than the header names is still found in its place."""
    commas = load(table(), tmp_path)
    path = tmp_path / "excel.csv"
    path.write_bytes(bom + f"sep={sep}\r\n".encode() + table().to_csv(sep=sep, index=False).encode())
    data = recipe.load_data({"dataset": "csv", "path": str(path), "target": "y"})
    assert data.preprocessing == commas.preprocessing and data.fingerprint == commas.fingerprint
    assert csv_header(path) == ["x", "colour", "y"]
    path.write_text(f"sep={sep}\nx{sep}colour{sep}y\n1.5{sep}red{sep}yes\n2.5{sep}blue\n")
    first, short = next(row_chunks(path, None))
    assert first == {"x": 1.5, "colour": "red", "y": "yes"} and isinstance(short, BadRow) and short.row == 1


# --------------------------------------------------------------------------------------- balanced accuracy
@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
@pytest.mark.parametrize("ours, theirs", [(balanced_accuracy, balanced_accuracy_score),
                                          (macro_f1, functools.partial(f1_score, average="macro"))])
@pytest.mark.parametrize("seed", range(4))
def test_the_class_metrics_are_scikit_learn_s(ours, theirs, seed):
    rng = np.random.default_rng(seed)
    y = rng.choice([0, 1, 3], size=50, p=[0.8, 0.15, 0.05])  # class 2 absent, and predicted now and then
    predicted = np.where(rng.random(50) < 0.7, y, rng.integers(0, 4, 50))
    predicted, y = torch.from_numpy(predicted), torch.from_numpy(y)
    measured = ours(class_counts(predicted, y, 4))
    assert measured == pytest.approx(theirs(y.numpy(), predicted.numpy()))
    in_batches = sum(class_counts(predicted[i:i + 7], y[i:i + 7], 4) for i in range(0, 50, 7))  # as images add up
    assert ours(in_batches) == measured


def test_the_balanced_accuracy_of_always_predicting_one_class_is_one_over_the_classes():
    y = torch.from_numpy(np.random.default_rng(0).choice([0, 1, 3], size=50, p=[0.8, 0.15, 0.05]))
    assert balanced_accuracy(class_counts(torch.zeros(50, dtype=torch.int64), y, 4)) == pytest.approx(1 / 3)


@pytest.mark.filterwarnings("ignore:Precision is ill-defined")
def test_macro_f1_of_always_predicting_the_common_class_is_scikit_learn_s():
    y = torch.tensor([0] * 97 + [1] * 3)
    always = torch.zeros(100, dtype=torch.int64)
    assert macro_f1(class_counts(always, y, 2)) == pytest.approx(f1_score(y.numpy(), always.numpy(), average="macro"))
    assert macro_f1(class_counts(always, y, 2)) == pytest.approx(0.97 / 1.97)


@pytest.mark.parametrize("classes", [2, 4])
def test_roc_auc_is_scikit_learn_s(classes):
    rng = np.random.default_rng(classes)
    y = torch.from_numpy(rng.integers(0, classes, 60))
    probabilities = torch.softmax(torch.from_numpy(rng.normal(size=(60, classes))) + 2 * F.one_hot(y), 1)
    expected = (roc_auc_score(y.numpy(), probabilities[:, 1].numpy()) if classes == 2 else
                roc_auc_score(y.numpy(), probabilities.numpy(), multi_class="ovr", average="macro"))
    assert roc_auc(probabilities, y) == pytest.approx(expected)
    assert 0.5 < expected < 1


def test_roc_auc_leaves_out_a_class_without_samples_and_is_nan_for_one_class():
    y = torch.tensor([0, 0, 1, 1, 3, 3])  # class 2 absent: the mean of the other classes' AUCs
    probabilities = torch.softmax(torch.tensor([[2.0, 0, 0, 0], [0, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 1],
                                                [0, 0, 0, 2], [0, 0, 1, 0]]), 1)
    each = [roc_auc_score(y.numpy() == c, probabilities[:, c].numpy()) for c in (0, 1, 3)]
    assert roc_auc(probabilities, y) == pytest.approx(sum(each) / 3)
    assert math.isnan(roc_auc(probabilities, torch.zeros(6, dtype=torch.int64)))


def test_roc_auc_is_a_python_float_that_a_weights_only_checkpoint_reads_back(tmp_path, monkeypatch):
    import sklearn.metrics  # an older scikit-learn (1.3) returns a NumPy float
    monkeypatch.setattr(sklearn.metrics, "roc_auc_score", lambda *args, **kwargs: np.float64(0.75))
    value = roc_auc(torch.tensor([[0.9, 0.1], [0.2, 0.8]]), torch.tensor([0, 1]))
    torch.save({"metrics": {"val_roc_auc": value}}, tmp_path / "checkpoint.pt")
    assert type(value) is float
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True) == {"metrics": {"val_roc_auc": 0.75}}


def test_a_constant_prediction_has_roc_auc_one_half():
    y = torch.tensor([0] * 97 + [1] * 3)
    assert roc_auc(torch.tensor([[0.9, 0.1]]).repeat(100, 1), y) == 0.5


@pytest.mark.parametrize("metric", ["val_balanced_accuracy", "val_f1_macro", "val_roc_auc"])
def test_the_class_metrics_are_reported_and_searchable_for_classification_only(metric, tmp_path):
    data = load(table(), tmp_path)
    assert metric in recipe.reported({}, data)
    space = load_space(f"name: t\nrecipe: tabular\nsearch: {{metric: {metric}, mode: max}}\n")
    check_metrics_reported(space, recipe, data)
    assert space.test_twin() == (metric.replace("val_", "test_", 1), "max")
    regression = load(table().assign(y=np.linspace(0, 1, N)), tmp_path)
    with pytest.raises(UserError, match=f"'{metric}' is not reported"):
        check_metrics_reported(space, recipe, regression)


# ------------------------------------------------------------------------------------------- class weights
def test_balanced_class_weights_are_scikit_learn_s_and_weigh_the_loss_as_its_sample_weights():
    y = torch.tensor([0] * 12 + [1] * 3 + [2] * 5)
    weights = class_weights(y, 3)
    assert weights.tolist() == pytest.approx(compute_class_weight("balanced", classes=np.arange(3), y=y.numpy()))
    assert class_weights(y, 4)[3] == 0  # a class without rows (loading refuses one in the train split)
    logits = torch.randn(20, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    prep = Preprocessing(task="classification", target="y", numeric=(), mean=(), std=(), median=(), indicators=(),
                         categories={}, labels=("a", "b", "c"))
    sklearn_loss = log_loss(y.numpy(), logits.softmax(1).numpy(), sample_weight=compute_sample_weight("balanced", y))
    assert recipe._loss(logits, y, prep, weights.double()).item() == pytest.approx(sklearn_loss, rel=1e-6)
    assert recipe._loss(logits, y, prep).item() == pytest.approx(log_loss(y.numpy(), logits.softmax(1).numpy()))


def rare(n: int = 500, seed: int = 0) -> pd.DataFrame:
    """Two features; the class `rare` (about 5 % of the rows) lies a little off the common one."""
    rng = np.random.default_rng(seed)
    is_rare = rng.random(n) < 0.05
    a, b = rng.normal(size=n) + 1.5 * is_rare, rng.normal(size=n) + 1.5 * is_rare
    return pd.DataFrame({"a": a.round(3), "b": b.round(3), "y": np.where(is_rare, "rare", "common")})


def test_a_balanced_model_finds_more_of_a_rare_class(tmp_path):
    """Unweighted, the model always predicts the common class here (balanced accuracy 0.5); balanced, 0.88 (12 rare
    rows of 184 in the validation split)."""
    data = load(rare(), tmp_path, val_fraction=0.4)
    cfg = {"model": {"width": 16, "depth": 1}, "train": {"epochs": 20, "batch_size": 32}, "optimizer": {"lr": 1e-2}}
    last = {}
    for weight in ("none", "balanced"):
        rec = Recorder(tmp_path / weight)
        recipe.train({**cfg, "train": {**cfg["train"], "class_weight": weight}}, rec, data=data)
        last[weight] = rec.metrics[-1]
    assert last["none"]["val_balanced_accuracy"] == 0.5
    assert last["balanced"]["val_balanced_accuracy"] > 0.8, last
    assert last["balanced"]["val_loss"] > last["none"]["val_loss"]  # unweighted: it favours none


def test_class_weight_on_a_regression_table_that_task_auto_found_is_ignored_with_a_warning(tmp_path, caplog):
    data = load(table().assign(y=np.linspace(0, 1, N)), tmp_path)
    runs = {}
    for weight in ("none", "balanced"):
        rec = Recorder(tmp_path / weight)
        recipe.train({"train": {"epochs": 1, "class_weight": weight}}, rec, data=data)
        runs[weight] = {k: v for k, v in rec.metrics[-1].items() if k not in ("epoch_seconds", "samples_per_second")}
    assert runs["balanced"] == runs["none"]
    assert "train.class_weight: balanced is ignored: the table is regression (data.task auto)" in caplog.text


@pytest.mark.parametrize("lines, message", [
    ("data: {task: regression}\ntrain: {class_weight: balanced}",
     r"train.class_weight: weighs the classes of a classification table, but data.task is regression; remove it, or "
     r"set train.class_weight: none"),
    ("data: {dataset: diabetes}\ntrain: {class_weight: {choice: [none, balanced]}}",
     r"train.class_weight: weighs the classes of a classification table, but data.dataset diabetes is a regression "
     r"table"),
    ("train: {class_weight: weighted}", r"train.class_weight: must be one of none, balanced \(got 'weighted'\)"),
    ("model: {batch_norm: {choice: [false, true]}}\ntrain: {batch_size: {choice: [1, 32]}}",
     r"train.batch_size: is 1, but model.batch_norm needs batches of at least 2 rows \(it normalises by the batch's "
     r"mean and variance\) \(when .*\); raise train.batch_size \(e.g. 32\), or set model.batch_norm: false"),
    ("train: {category_dropout: 0.7}", r"train.category_dropout: must be within \[0.0, 0.5\] \(got 0.7\)"),
    ("train: {category_dropout: -0.1}", r"train.category_dropout: must be within \[0.0, 0.5\] \(got -0.1\)"),
])
def test_bad_class_weight_and_category_dropout_are_problems_of_the_space(lines, message):
    """Refused with the space, with their key path, before any data is read (and before Ray starts)."""
    with pytest.raises(SpaceError, match=message):
        load_space(f"name: t\nrecipe: tabular\n{lines}\n")


def test_class_weight_and_category_dropout_are_searchable():
    space = load_space("name: t\nrecipe: tabular\nsearch: {metric: val_balanced_accuracy, mode: max}\n"
                       "train: {class_weight: {choice: [none, balanced]}, category_dropout: {uniform: [0.0, 0.2]}}\n")
    assert {p.name for p in space.params} == {"train.class_weight", "train.category_dropout"}
    defaults = recipe.SCHEMA.sections["train"].defaults()
    assert defaults["class_weight"] == "none" and defaults["category_dropout"] == recipe.CATEGORY_DROPOUT


def test_the_column_checks_parse_each_distinct_text_once_and_leave_numbers_as_numbers(monkeypatch, caplog):
    """The checks of a table of 2,000,000 rows took 39 s of its 72 s load: each column of numbers was written out as
    text before the check found it numeric, and each cell of a text column was parsed as a number, though a column
    repeats a few values."""
    from autotune.tabular import data

    n = 3000
    frame = pd.DataFrame({"x": np.linspace(0, 1, n), "colour": ["red", "blue", "green"] * (n // 3),
                          "weight": [str(i % 10) for i in range(n - 1)] + ["?"], "y": ["yes", "no"] * (n // 2)})
    parsed, as_text = [], []
    to_numeric, astype = pd.to_numeric, pd.Series.astype
    monkeypatch.setattr(pd, "to_numeric", lambda values, **kw: parsed.append(len(values)) or to_numeric(values, **kw))
    monkeypatch.setattr(pd.Series, "astype", lambda self, dtype, *a, **kw: (
        as_text.append(self.name) if dtype is str and data._numeric(self) else None) or astype(self, dtype, *a, **kw))
    data._warn_columns(frame, "y", "t.csv")
    assert max(parsed) <= 11 and as_text == []
    assert "column 'weight' holds 2999 numbers and 1 cells of text ('?')" in caplog.text


def test_a_load_of_the_data_that_takes_long_is_told_while_it_runs(tmp_path, monkeypatch, caplog):
    """`autotune run` on a CSV of 2,000,000 rows printed nothing for 53 s, while the table loaded: its first line
    came after the load. A load still running after LOAD_NOTICE_S says so; a quick one says nothing more."""
    import time

    import autotune.api

    path = tmp_path / "t.csv"
    table().to_csv(path, index=False)
    space = load_space(f"name: t\nrecipe: tabular\ndata: {{dataset: csv, path: {path}, target: y}}\n")
    load_data = recipe.load_data
    monkeypatch.setattr(recipe, "load_data", lambda data: time.sleep(1.0) or load_data(data))
    monkeypatch.setattr(autotune.api, "LOAD_NOTICE_S", 0.2)
    with caplog.at_level(logging.INFO, logger="autotune"):
        _DataLoads(space, recipe).get(None)
        told = [r.getMessage() for r in caplog.records if r.getMessage().startswith("loading the data")]
        assert told == ["loading the data: 0 s so far (it is read once, before the first trial starts)"]
        caplog.clear()
        loaded = _DataLoads(space, recipe, "to test the exported model on its held-out split").get(None)  # export
        told = [r.getMessage() for r in caplog.records if r.getMessage().startswith("loading the data")]
        assert told == ["loading the data: 0 s so far (to test the exported model on its held-out split)"]
        monkeypatch.setattr(recipe, "load_data", lambda data: loaded)  # at once: a busy machine reads a CSV slowly
        caplog.clear()
        _DataLoads(space, recipe).get(None)
        time.sleep(0.4)
    assert not [r for r in caplog.records if r.getMessage().startswith("loading the data")]


@pytest.mark.parametrize("offset, warned", [(2**63, True), (-(2**62), True), (2**40, False)])
def test_whole_numbers_that_float64_cannot_tell_apart_are_a_warning(offset, warned, tmp_path, caplog):
    """A column of 2**63 + 0 .. 2**63 + 59 (pandas reads it as uint64) was standardised as float64, where its values
    are one number: the model got a constant column, and nothing was said."""
    values = [offset + i for i in range(N)]
    load(table().assign(counter=values), tmp_path)
    line = (f"column 'counter' holds {N} distinct whole numbers ({offset}..{offset + N - 1}), which the model, "
            "reading numbers as float64, tells apart as 1 only")
    assert (line in caplog.text) == warned, caplog.text


def test_the_target_and_decimal_comma_checks_read_each_distinct_text_once(monkeypatch):
    """The check for a target of formatted numbers ("$352,000") parsed each of 2,000,000 'yes' and 'no' as a number
    (6 s of the load), and the check for decimal commas matched every cell of each text column; they read each
    distinct text once, weighed by its cells."""
    from pandas.core.strings.accessor import StringMethods

    from autotune.tabular import data

    n = 3000
    target = pd.Series(["yes", "no", "maybe"] * (n // 3), name="y")
    sizes = []
    to_numeric, fullmatch = pd.to_numeric, StringMethods.fullmatch
    monkeypatch.setattr(pd, "to_numeric", lambda values, **kw: sizes.append(len(values)) or to_numeric(values, **kw))
    monkeypatch.setattr(StringMethods, "fullmatch", lambda self, *a, **kw: sizes.append(len(self._data)) or
                        fullmatch(self, *a, **kw))
    data._check_formatted_target(target, "auto", "t.csv")
    assert not data._decimal_commas(pd.Series(["1,5"] * 89 + ["x"] * 11))  # 89 % of the cells: too few
    assert data._decimal_commas(pd.Series(["1,5"] * 90 + [" 12 "] * 5 + ["x"] * 5))  # 95 %
    assert max(sizes) <= 3
    with pytest.raises(UserError, match=r"holds numbers written as text \('\$100,000', '\$101,000', '\$102,000', "
                                        r"\.\.\.: 60 distinct values in 120 rows\)"):
        data._check_formatted_target(pd.Series([f"${p:,}" for p in range(100_000, 160_000, 1000)] * 2, name="p"),
                                     "auto", "t.csv")


# ------------------------------------------------------------------------------------------ misread columns, leaks
def _formatted_rows(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    revenue = rng.lognormal(8, 1, n)
    days = pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 900, n), unit="D")
    return table(n=n).assign(
        revenue=[f"${v:,.2f}" for v in revenue],  # a value per row: it read as an identifier, to be dropped
        discount=[f"{d}%" for d in rng.integers(0, 40, n)],  # 40 values: categories, and nothing was said
        signup=[d.strftime("%Y-%m-%d") if i % 3 else d.strftime("%d/%m/%Y") for i, d in enumerate(days)],
        contact=[(d + pd.Timedelta(minutes=int(m))).strftime("%m/%d/%Y %I:%M %p")
                 for d, m in zip(days, rng.integers(0, 1440, n))])


@pytest.mark.parametrize("column, words", [
    ("revenue", "holds numbers written as text ('$2,088.27'"),
    ("discount", "holds numbers written as text ("),
    ("signup", "holds dates ("),
    ("contact", "holds dates ("),
])
def test_formatted_numbers_and_dates_are_named_with_their_fix_not_as_identifiers(column, words, tmp_path, caplog):
    """A CRM export's '$2,088.27' and '12%' columns and its dates were read as categories: the revenue and the
    timestamps were called identifiers, to be left out, and the percentages and dates were not named at all."""
    frame = _formatted_rows()
    frame.loc[0, "revenue"] = "$2,088.27"
    data = load(frame, tmp_path)
    assert column in data.preprocessing.categories
    (line,) = [r.getMessage() for r in caplog.records if f"'{column}'" in r.getMessage()]
    assert f"column {column!r} {words}" in line and "identifier" not in line
    fix = ("write them as plain numbers in the file (no currency sign, thousands separator, space or %) to read them "
           "as numbers" if words.startswith("holds numbers") else
           f"write what matters of them as numbers in the file (days since, month, weekday), or leave it out with "
           f"data.drop: [{column!r}]. Rows ordered in time are best validated on the latest ones, as the model will "
           f"meet new rows: data.order: {column!r}")
    assert line.endswith(fix)


@pytest.mark.parametrize("change, column, words", [
    (lambda f: f.assign(status=f["y"].map({"yes": "churned", "no": "kept"})), "status",
     "gives the target 'y' away: each of its 2 values goes with a single value of 'y' in every row"),
    (lambda f: f.assign(reason=np.where(f["y"] == "yes", ["price", "support", "moved"] * (len(f) // 3), None)),
     "reason", "gives the target 'y' away: each of its 4 values goes with a single value of 'y' in every row"),
    (lambda f: f.assign(y=f["x"] * 100 + 7, cents=f["x"] * 10000 + 700).drop(columns="colour"), "cents",
     "moves with the target 'y' (correlation 1.0000)"),
])
def test_a_column_that_gives_the_target_away_is_named_with_its_data_drop(change, column, words, tmp_path, caplog):
    """A copy of the target ('Churn Status' beside 'Churned'), a reason filled in for churned rows only, or the
    target in other units scored a validation accuracy of 1.0, and nothing said why."""
    load(change(table(n=600)), tmp_path)
    (line,) = [r.getMessage() for r in caplog.records if f"'{column}'" in r.getMessage()]
    assert f"column {column!r} {words}: a copy of the target" in line
    assert line.endswith(f"leave it out with data.drop: [{column!r}]")


def test_a_header_that_names_a_column_twice_is_refused_when_the_table_loads(tmp_path):
    """A CRM export with two 'Notes' columns trained as 'Notes' and 'Notes.1' without a word, and then predict
    refused every export of the same shape ('the header names column 'Notes' more than once'). Empty header cells
    (trailing commas) may repeat: pandas names them 'Unnamed: 3', 'Unnamed: 4'."""
    path = tmp_path / "t.csv"
    frame = table()
    path.write_text("x,notes,notes,y\n" + "".join(f"{x},a,b,{y}\n" for x, y in zip(frame["x"], frame["y"])))
    with pytest.raises(UserError, match=rf"^data.path {str(path)!r}: its header names column 'notes' 2 times \(pandas "
                                        r"reads the second as 'notes.1'\), and predict would refuse every file of new "
                                        r"rows like it, .*; give each column a name of its own in the file$"):
        recipe.load_data({"dataset": "csv", "path": str(path), "target": "y"})
    path.write_text("x,y,,\n" + "".join(f"{x},{y},,\n" for x, y in zip(frame["x"], frame["y"])))
    assert columns(recipe.load_data({"dataset": "csv", "path": str(path), "target": "y"})) == {"x"}
