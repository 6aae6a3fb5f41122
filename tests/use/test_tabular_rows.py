"""Rows -> a tabular model's inputs (`autotune.tabular.rows`), as `autotune predict`, `autotune serve` and
`autotune.load_model(...).predict` read them: one encoding with training and evaluation. A category the model did
not see is its "unknown" index, as in its test metrics, and named in the prediction; a text training read as
missing (pandas' CSV reader's, or those of `data.missing`) is missing in a row too. The models: `autotune train
--out` on small CSVs written here."""
from __future__ import annotations

import csv
import json
import io
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import autotune
from autotune.errors import BadInput, UserError
from autotune.recipes import tabular as recipe
from autotune.tabular.data import MISSING, UNKNOWN
from autotune.tabular.rows import CHUNK_ROWS, NA_TEXT, OUTSIDE, UNSEEN, BadRow, encode_rows, read_rows
from use_support import trained_table_model

GOOD = {"age": 50.0, "plan": "pro", "shop": "S1"}
DOCS = Path(__file__).resolve().parents[2] / "docs" / "using-the-model.md"


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    """shops.csv: age (some missing), plan, shop (10 shops, and 15 rows of a shop of their own) -> label."""
    rng = np.random.default_rng(0)
    n = 120
    age = rng.normal(45, 12, n).round(1)
    plan = rng.choice(["basic", "pro"], n)
    shop = rng.choice([f"S{i}" for i in range(10)], n).astype(object)
    shop[:15] = [f"N{i}" for i in range(15)]
    score = (age - 45) / 12 + 1.5 * (plan == "pro") + rng.normal(0, 0.3, n)
    age[rng.random(n) < 0.1] = np.nan
    path = tmp_path_factory.mktemp("table") / "shops.csv"
    pd.DataFrame({"age": age, "plan": plan, "shop": shop,
                  "label": np.where(score > 0, "yes", "no")}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def model_dir(table) -> Path:
    return trained_table_model(table, "shops", "{width: 8, depth: 1}", "{epochs: 2, batch_size: 32}")


@pytest.fixture(scope="module")
def card(model_dir) -> dict:
    return json.loads((model_dir / "model.json").read_text())


def test_the_model_predicts_its_own_test_rows_as_its_test_metrics_encoded_them(model_dir, card, table):
    """The held-out test split holds shops the train split does not: `predict` refused those rows (BadRow:
    unknown category) while the test metrics encoded them as "unknown"."""
    data = recipe.load_data({"dataset": "csv", "path": str(table), "target": "label"})
    rows = [read_rows(table)[i] for i in data.test.rows]
    numeric, categorical = encode_rows(card, rows)
    assert torch.equal(numeric, data.test.numeric) and torch.equal(categorical, data.test.categorical)
    shop = list(card["categories"]).index("shop")
    new = categorical[:, shop] == UNKNOWN
    assert new.any()  # the split this test is about

    predicted = autotune.load_model(model_dir).predict(rows)
    truth = [row["label"] for row in rows]
    accuracy = np.mean([p["label"] == t for p, t in zip(predicted, truth)])
    assert accuracy == pytest.approx(recipe.evaluate(str(model_dir), data)["test_accuracy"])
    for prediction, row, unseen in zip(predicted, rows, new.tolist()):
        assert prediction.get(UNSEEN) == ({"shop": row["shop"]} if unseen else None)


def test_an_unseen_category_is_encoded_as_unknown_and_named(model_dir, card):
    model = autotune.load_model(model_dir)
    rows = [GOOD, {**GOOD, "plan": "gold", "shop": "S404"}, {**GOOD, "shop": 7}]
    numeric, categorical = encode_rows(card, rows)
    assert categorical[1].tolist() == [UNKNOWN, UNKNOWN] and categorical[2, 1] == UNKNOWN
    predicted = model.predict(rows)
    assert UNSEEN not in predicted[0]
    assert predicted[1][UNSEEN] == {"plan": "gold", "shop": "S404"} and predicted[2][UNSEEN] == {"shop": "7"}
    assert model.predict(rows, top_k=2)[1][UNSEEN] == {"plan": "gold", "shop": "S404"}
    json.dumps(predicted)  # as serve and predict write it


def test_predict_says_once_on_stderr_which_rows_hold_unseen_categories(model_dir, tmp_path, cli):
    rows = [GOOD] * 5 + [{**GOOD, "plan": "gold"}, {**GOOD, "shop": "S404"}, {**GOOD, "shop": "S405"}]
    pd.DataFrame(rows).to_csv(tmp_path / "new.csv", index=False)
    code, out, err = cli("predict", model_dir, tmp_path / "new.csv")
    assert code == 0
    assert err.splitlines() == ["autotune predict: 3 of 8 rows hold categories the model did not see in training "
                                "(plan, shop); they are encoded as 'unknown', as in its test metrics"]
    records = [json.loads(line) for line in out.splitlines()]
    assert [r.get(UNSEEN) for r in records] == [None] * 5 + [{"plan": "gold"}, {"shop": "S404"}, {"shop": "S405"}]
    pd.DataFrame([GOOD]).to_csv(tmp_path / "known.csv", index=False)
    assert cli("predict", model_dir, tmp_path / "known.csv")[2] == ""


def test_a_number_beyond_the_training_rows_range_is_named_and_counted_once_with_that_range(model_dir, card, table,
                                                                                           tmp_path, cli):
    """A number below or above every value its column held in training was predicted with no word: the model
    extrapolates there, which its test metrics do not measure (next year's incomes, a sensor's new range)."""
    train = pd.read_csv(table).iloc[recipe.load_data({"dataset": "csv", "path": str(table), "target": "label"})
                                    .train.rows]
    low, high = train["age"].min(), train["age"].max()
    assert (card["scalers"]["age"]["min"], card["scalers"]["age"]["max"]) == (low, high)
    rows = [GOOD, {**GOOD, "age": low}, {**GOOD, "age": high}, {**GOOD, "age": high + 1},
            {**GOOD, "age": low - 0.5, "plan": "gold"}, {**GOOD, "age": None}]
    predicted = autotune.load_model(model_dir).predict(rows)
    assert [p.get(OUTSIDE) for p in predicted] == [None, None, None, {"age": high + 1}, {"age": low - 0.5}, None]
    assert predicted[4][UNSEEN] == {"plan": "gold"}
    pd.DataFrame(rows).to_csv(tmp_path / "new.csv", index=False)
    code, out, err = cli("predict", model_dir, tmp_path / "new.csv")
    assert code == 0 and [json.loads(line).get(OUTSIDE) for line in out.splitlines()] == [
        p.get(OUTSIDE) for p in predicted]
    n = card["samples"]["train"]  # of n values, a new one is beyond them with chance 2 / (n + 1)
    assert err.splitlines()[1] == (f"autotune predict: 2 of 6 rows (33%) hold numbers outside the range the model "
                                   f"trained on (age: {low:g} to {high:g}), where rows like its {n} training rows "
                                   f"would have such a number {2 / (n + 1):.1%} of the time; its predictions for them "
                                   "extrapolate, which its test metrics do not measure")
    older = tmp_path / "older"  # a card written before it kept the ranges
    shutil.copytree(model_dir, older)
    written = json.loads((older / "model.json").read_text())
    for scaler in written["scalers"].values():
        del scaler["min"], scaler["max"]
    (older / "model.json").write_text(json.dumps(written))
    assert all(OUTSIDE not in p for p in autotune.load_model(older).predict(rows))
    assert "outside the range" not in cli("predict", older, tmp_path / "new.csv")[2]


def test_predict_says_when_a_column_is_new_in_every_row_of_a_model_split_by_chance(model_dir, tmp_path, cli):
    """Next month's rows of a model whose date was a category: every row's date was unknown to it, and predict said
    they were encoded "as in its test metrics", whose rows, split by chance, shared their dates with training's."""
    pd.DataFrame([{**GOOD, "shop": f"S{900 + i}"} for i in range(4)]).to_csv(tmp_path / "later.csv", index=False)
    err = cli("predict", model_dir, tmp_path / "later.csv")[2]
    assert err.splitlines() == ["autotune predict: 4 of 4 rows hold categories the model did not see in training "
                                "(shop); they are encoded as 'unknown'; 'shop' is new in every row (as dates later "
                                "than its training's are), while its test rows, split by chance, shared their values "
                                "with the rows it trained on: its test metrics may promise more than these rows get; "
                                "data.order splits by time (docs/retraining.md, \"Rows ordered in time\")"]
    by_time = tmp_path / "by_time"
    shutil.copytree(model_dir, by_time)
    card = json.loads((by_time / "model.json").read_text())
    card["config"]["data"]["order"] = "shop"  # its test rows were the latest: their dates were new too
    (by_time / "model.json").write_text(json.dumps(card))
    assert cli("predict", by_time, tmp_path / "later.csv")[2].endswith("encoded as 'unknown', as in its test metrics\n")


def test_predict_refuses_a_row_it_cannot_take_and_predicts_the_others(model_dir, tmp_path, cli):
    """A nightly file of new rows with one bad cell: that row is one stderr line naming the file, the row and the
    column (exit 1), and every other row is predicted, in order, as `load_model(...).predict` predicts it. A whole
    file was refused for one cell."""
    rows = [GOOD, {**GOOD, "age": "?old"}, {**GOOD, "age": 30.0}, {**GOOD, "age": 1e308}, {**GOOD, "plan": "basic"}]
    pd.DataFrame(rows).to_csv(tmp_path / "night.csv", index=False)
    code, out, err = cli("predict", model_dir, tmp_path / "night.csv")
    assert code == 1
    first, second = err.splitlines()
    night = tmp_path / "night.csv"
    assert first == f"autotune predict: {night}: row 1, column 'age': expects a number, got the text '?old'"
    assert second.startswith(f"autotune predict: {night}: row 3, column 'age': expects a number the model can take, "
                             "got '1e+308'")
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["row"] for r in records] == [0, 2, 4]
    expected = autotune.load_model(model_dir).predict([rows[0], rows[2], rows[4]])
    assert [r["probability"] for r in records] == pytest.approx([e["probability"] for e in expected])


def test_keep_carries_a_column_of_each_row_into_its_prediction_to_join_it_back(model_dir, tmp_path, cli):
    """A CRM export predicted for its customers: each prediction held the row's number only, not the customer id
    the model does not read, so the predictions could not be joined back to the customers by their id."""
    rows = [{"customer": "C-1", **GOOD}, {"customer": None, **GOOD, "age": "?old"}, {"customer": "C-3", **GOOD}]
    pd.DataFrame(rows).to_csv(tmp_path / "crm.csv", index=False)
    code, out, err = cli("predict", model_dir, tmp_path / "crm.csv", "--keep", "customer", "--keep", "plan")
    assert code == 1 and "row 1, column 'age'" in err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["kept"] for r in records] == [{"customer": "C-1", "plan": "pro"}, {"customer": "C-3", "plan": "pro"}]
    assert list(records[0])[:3] == ["file", "row", "kept"]
    pd.DataFrame([{**GOOD, "customer": None}]).to_csv(tmp_path / "none.csv", index=False)
    assert json.loads(cli("predict", model_dir, tmp_path / "none.csv", "--keep", "customer")[1])["kept"] == {
        "customer": None}
    code, out, err = cli("predict", model_dir, tmp_path / "crm.csv", "--keep", "Customer")
    assert (code, out) == (1, "")
    assert err == (f"autotune predict: {tmp_path / 'crm.csv'}: the file has no column 'Customer' (--keep); did you "
                   "mean 'customer'? its columns: customer, age, plan, shop\n")


def test_a_line_of_separators_only_is_no_row_to_predict(model_dir, tmp_path, cli, caplog):
    """Excel writes ',,,' lines below the data where cells there were formatted: predict printed a prediction for
    each ({"row": 5, "label": "yes", "probability": 0.51}), as if a customer with every value missing were one."""
    rows = [GOOD, {**GOOD, "age": 30.0}, GOOD]
    text = pd.DataFrame(rows).to_csv(index=False, lineterminator="\r\n")
    (tmp_path / "excel.csv").write_text(text + ",,\r\n" * 4)  # age,plan,shop: 3 empty values
    code, out, err = cli("predict", model_dir, tmp_path / "excel.csv")
    assert code == 0 and [json.loads(line)["row"] for line in out.splitlines()] == [0, 1, 2]
    assert f"{tmp_path / 'excel.csv'}: 4 rows hold no value, not predicted (rows 3, 4, 5, 6: lines of separators " \
           "only, as a spreadsheet writes below its data)" in caplog.text + err
    assert autotune.load_model(model_dir).predict([{"age": None, "plan": None, "shop": None}])  # asked for: predicted


def test_predict_reads_a_large_file_a_chunk_of_rows_at_a_time(model_dir, tmp_path):
    """A file of new rows is read, checked and predicted CHUNK_ROWS rows at a time (`autotune predict` held a file's
    every row as a dict: 1.5 GB at 300,000 rows of 16 columns, 2.9 GB at 900,000, and printed nothing until all
    were predicted). A refused row of a later chunk is named by its row in the file. A line of more values than
    the header names is refused in its place, and the rows after it are predicted with their numbers (a whole
    300,000-row file was refused for one such line, and after the first chunks a reading by chunks would have
    stopped there)."""
    n = 2 * CHUNK_ROWS + 5
    rows = pd.DataFrame({"age": np.arange(n) % 60 + 20.0, "plan": np.where(np.arange(n) % 3, "pro", "basic"),
                         "shop": "S1"}).astype({"age": object})
    bad = CHUNK_ROWS + 7
    rows.loc[bad, "age"] = "?old"
    path = tmp_path / "large.csv"
    rows.to_csv(path, index=False)
    records = list(recipe.predict(str(model_dir), [str(path)]))
    refused = [r for r in records if isinstance(r, BadInput)]
    assert [str(r) for r in refused] == [f"row {bad}, column 'age': expects a number, got the text '?old'"]
    predicted = [r for r in records if not isinstance(r, BadInput)]
    assert [r["row"] for r in predicted] == [i for i in range(n) if i != bad]
    expected = autotune.load_model(model_dir).predict(rows.drop(index=bad).iloc[-50:])
    assert [r["probability"] for r in predicted[-50:]] == [round(e["probability"], 6) for e in expected]

    long, short = 2 * CHUNK_ROWS + 2, CHUNK_ROWS + 3  # a short line in a chunk the C parser gave, before the long
    lines = path.read_text().splitlines(keepends=True)
    lines[long + 1] = "33,pro,S1,extra\n"  # four values under three names
    lines[short + 1] = "33,pro\n"  # two
    lines[long + 3] = "34\n"  # one, read by the Python parser after the long line
    path.write_text("".join(lines))
    again = list(recipe.predict(str(model_dir), [str(path)]))
    assert [str(r) for r in again if isinstance(r, BadInput)] == [
        f"row {short}: is a line of 2 values, where the header names 3 columns; repair or re-export it (its other "
        "rows are read)",
        f"row {bad}, column 'age': expects a number, got the text '?old'",
        f"row {long}: is a line of 4 values, where the header names 3 columns; repair or re-export it (its other "
        "rows are read)",
        f"row {long + 2}: is a line of 1 value, where the header names 3 columns; repair or re-export it (its "
        "other rows are read)"]
    assert [r for r in again if not isinstance(r, BadInput)] == [r for r in predicted
                                                                 if r["row"] not in (long, short, long + 2)]


def test_the_lines_are_counted_in_step_with_the_chunks_not_ahead_of_them(tmp_path, monkeypatch):
    """The check for short lines reads the file beside pandas, a chunk's lines at a time: reading ahead to the next
    short line (or to the end of a file without one) delayed the first chunk's predictions by a whole pass."""
    import autotune.tabular.data as data

    path = tmp_path / "rows.csv"
    path.write_text("age,plan,shop\n" + "50,pro,S1\n" * 95 + "51,pro\n" + "52,pro,S1\n" * 4)
    read = []
    reader = data.csv.reader
    monkeypatch.setattr(data.csv, "reader", lambda *a, **k: (read.append(line) or line for line in reader(*a, **k)))
    chunks = data.table_chunks(path, 10, what="rows file", malformed=True)
    assert len(next(chunks)) == 10 and len(read) <= 12  # the header and the chunk's lines (one ahead at most)
    rest = list(chunks)
    assert [str(v) for v in rest[-1].iloc[:, 0]][5:6] == [f"{data.MALFORMED}2"]


def test_a_parquet_file_is_read_a_record_batch_at_a_time(model_dir, tmp_path, monkeypatch):
    """As a CSV file is: a Parquet file was read whole before its rows were predicted a chunk at a time (900,000
    rows of 16 columns: 1,180 MB against 976 MB for the same rows as CSV; now 1,012 MB)."""
    rows = pd.DataFrame([GOOD] * 25 + [{**GOOD, "plan": "basic", "age": None}] * 5)
    rows.to_parquet(tmp_path / "new.parquet", row_group_size=10)
    model = autotune.load_model(model_dir)
    whole = model.read(tmp_path / "new.parquet")
    monkeypatch.setattr(pd, "read_parquet", lambda *args, **kwargs: pytest.fail("the file was read whole"))
    chunks = list(model.read_chunks(tmp_path / "new.parquet", 8))
    assert max(map(len, chunks)) <= 8 and len(chunks) >= 4
    read = [row for chunk in chunks for row in chunk]
    assert model.predict(read) == model.predict(whole) and len(read) == 30


def test_a_line_of_more_values_than_the_header_names_is_its_row_s_bad_row(model_dir, tmp_path):
    (tmp_path / "short.csv").write_text("age,plan,shop\n50,pro,S1\n51,pro,S1,oops\n52,basic,S2\n")
    model = autotune.load_model(model_dir)
    with pytest.raises(BadRow, match=r"^row 1: is a line of 4 values, where the header names 3 columns"):
        model.read(tmp_path / "short.csv")
    (first, bad, last), = model.read_chunks(tmp_path / "short.csv")
    assert isinstance(bad, BadRow)
    clean = [{"age": 50, "plan": "pro", "shop": "S1"}, {"age": 52, "plan": "basic", "shop": "S2"}]
    assert model.predict([first, last]) == model.predict(clean)  # the line's column of numbers read as text: alike


def test_a_first_line_of_more_values_than_the_header_names_is_its_row_s_bad_row(model_dir, tmp_path):
    """pandas took such a first line's extra value for a saved index and shifted every row: predict stopped at the
    file with `ValueError: invalid literal for int() with base 10: 'CUST-70004'`, a cell of another row. A file
    whose lines all hold one more value than the header (an index saved without its name) is still read so."""
    (tmp_path / "first.csv").write_text("age,plan,shop\n50,pro,S1,oops\n51,pro,S1\n52,basic,S2\n")
    (tmp_path / "index.csv").write_text("age,plan,shop\n0,51,pro,S1\n1,52,basic,S2\n")
    model = autotune.load_model(model_dir)
    (bad, *rows), = model.read_chunks(tmp_path / "first.csv")
    assert str(bad) == ("row 0: is a line of 4 values, where the header names 3 columns; repair or re-export it (its "
                        "other rows are read)")
    clean = [{"age": 51, "plan": "pro", "shop": "S1"}, {"age": 52, "plan": "basic", "shop": "S2"}]
    assert model.predict(rows) == model.predict(clean) == model.predict(model.read(tmp_path / "index.csv"))


def test_a_line_of_fewer_values_than_the_header_names_is_its_row_s_bad_row(model_dir, tmp_path):
    """A line cut short (a truncated export, a field lost) was predicted from the values it has, the rest imputed as
    missing (pandas reads them so), with no word: a prediction of a row nobody wrote. It is refused in its place,
    as a line of more values is; an empty value written as such (`52,,S2`) is a missing value, predicted; a quoted
    value holding the separator or a line break is one value."""
    (tmp_path / "cut.csv").write_text('age,plan,shop\n50,pro,S1\n51,pro\n\n52,,S2\n53,"pro,\nplus",S1\n54\n')
    model = autotune.load_model(model_dir)
    with pytest.raises(BadRow, match=r"^row 1: is a line of 2 values, where the header names 3 columns"):
        model.read(tmp_path / "cut.csv")
    (first, cut, empty, quoted, alone), = model.read_chunks(tmp_path / "cut.csv")
    assert [str(cut), str(alone)] == [
        f"row {n}: is a line of {k}, where the header names 3 columns; repair or re-export it (its other rows are "
        "read)" for n, k in ((1, "2 values"), (4, "1 value"))]
    assert (first["age"], quoted["plan"]) == (50, "pro,\nplus") and pd.isna(empty["plan"])
    assert len(model.predict([first, empty, quoted])) == 3


def test_a_file_whose_header_names_a_column_twice_is_refused(model_dir, tmp_path, cli):
    """An export of a join ("age" from two tables): pandas reads the second "age" as "age.1", and the model read
    the first whichever held the ages it was trained on, with no word (the prediction changed from one file to the
    other). The file is refused, naming the column; a column the model does not read may repeat."""
    (tmp_path / "join.csv").write_text("age,plan,age,shop,note,note\n99,pro,50,S1,a,b\n")
    code, out, err = cli("predict", model_dir, tmp_path / "join.csv")
    assert (code, out) == (1, "")
    assert err.splitlines() == [f"autotune predict: {tmp_path / 'join.csv'}: the header names column 'age' more than "
                                "once, and the model reads one column of each name; rename or drop the others"]
    with pytest.raises(BadInput, match="names column 'age' more than once"):
        autotune.load_model(model_dir).read(tmp_path / "join.csv")
    (tmp_path / "notes.csv").write_text("age,plan,shop,note,note\n50,pro,S1,a,b\n")
    assert cli("predict", model_dir, tmp_path / "notes.csv")[0] == 0


def test_a_pipe_is_named_as_such_not_as_missing(model_dir, tmp_path, cli):
    """A table is read twice (its header, then its rows), so a pipe given by its path is refused; it said "it does
    not exist" of a pipe that did."""
    os.mkfifo(tmp_path / "rows.csv")
    code, out, err = cli("predict", model_dir, tmp_path / "rows.csv")
    assert (code, out) == (1, "")
    why = ("(standard input, a pipe or a device is read once, and a table is read twice: its header, then its rows; "
           "save the rows to a file); give the path of a .csv or .parquet file")
    assert err.splitlines() == [f"autotune predict: {tmp_path / 'rows.csv'}: rows file "
                                f"'{tmp_path / 'rows.csv'}' cannot be read {why}"]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_rows_piped_to_standard_input_are_predicted_as_from_their_file(model_dir, tmp_path, cli, monkeypatch,
                                                                       suffix):
    """`cat rows.csv | autotune predict MODEL -` (as images are piped in) was refused: a table is read twice, a
    pipe once. Standard input is copied to a temporary file first, CSV or Parquet (by its first bytes)."""
    rows = pd.DataFrame([GOOD, {**GOOD, "plan": "basic", "age": 61.0}])
    path = tmp_path / f"rows{suffix}"
    rows.to_csv(path, index=False) if suffix == ".csv" else rows.to_parquet(path)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(path.read_bytes())))
    code, out, err = cli("predict", model_dir, "-")
    assert (code, err) == (0, "")
    from_file = cli("predict", model_dir, path)[1]
    assert out == from_file.replace(json.dumps(str(path)), '"-"') and len(out.splitlines()) == 2


def test_rows_on_standard_input_that_cannot_be_read_are_named_as_standard_input(model_dir, cli, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b'age,plan,shop\n50,"pro,S1\n')))
    code, out, err = cli("predict", model_dir, "-")
    assert (code, out) == (1, "")
    assert err.startswith("autotune predict: -: cannot read rows file '-' (standard input) as csv: ParserError")


def test_a_text_the_csv_reader_reads_as_missing_is_missing_in_a_row(card, tmp_path):
    """"", "NA", "n/a", "nan", "null", ... in a numeric or a categorical column: the row from JSON gets the input
    the same row gets from a CSV file (missing), as training read its table. "" in a numeric column was refused,
    "NA" in a categorical one refused as an unknown category."""
    texts = sorted(NA_TEXT)
    with open(tmp_path / "na.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["age", "plan", "shop"])
        writer.writerows([text, text, "S1"] for text in texts)
    from_csv = read_rows(tmp_path / "na.csv")
    assert all(math.isnan(row["age"]) and math.isnan(row["plan"]) for row in from_csv)  # pandas' own reading
    from_json = [{"age": text, "plan": text, "shop": "S1"} for text in texts]
    null = [{"age": None, "plan": None, "shop": "S1"}] * len(texts)
    for encoded in zip(encode_rows(card, from_json), encode_rows(card, from_csv), encode_rows(card, null)):
        assert torch.equal(encoded[0], encoded[1]) and torch.equal(encoded[0], encoded[2])
    assert encode_rows(card, from_json)[1][:, 0].tolist() == [MISSING] * len(texts)


def test_a_missing_text_that_the_vocabulary_holds_is_that_value(card):
    """A table read from .parquet keeps "NA" as a value: a row's "NA" is then that value, as evaluation encodes it."""
    holding = {**card, "categories": {**card["categories"], "plan": ["NA", "basic", "pro"]}}
    _, categorical = encode_rows(holding, [{**GOOD, "plan": "NA"}, {**GOOD, "plan": None}])
    assert categorical[:, 0].tolist() == [2, MISSING]


@pytest.mark.parametrize("known", [["1", "5", "10"], ["1.0", "5.0", "10.0"]])
def test_a_whole_number_finds_its_category_however_it_is_written(known, card):
    """A stray text made `visits` categorical, with the vocabulary ['0.0', '1.0', ...]: a client's 5 and "5" were
    unseen, only 5.0 and "5.0" matched (and only 5.0 matched a vocabulary ['5', ...])."""
    holding = {**card, "categories": {**card["categories"], "shop": known}}
    written = [5, 5.0, "5", "5.0", np.int64(5), np.float64(5.0)]
    _, categorical = encode_rows(holding, [{**GOOD, "shop": value} for value in written])
    assert categorical[:, 1].tolist() == [known.index(known[1]) + 2] * len(written)
    _, categorical = encode_rows(holding, [{**GOOD, "shop": value} for value in (5.5, "05", " 5", "5.00", True)])
    assert categorical[:, 1].tolist() == [UNKNOWN] * 5


@pytest.mark.parametrize("known", [["False", "True"], ["FALSE", "TRUE"]])
def test_a_truth_value_finds_its_category_however_a_spreadsheet_wrote_it(known, card):
    """A CRM export's Premium column of TRUE and FALSE is read by pandas as bools (categories 'False', 'True'): the
    same row sent to serve as JSON with the export's text "TRUE" was an unseen category, where the CSV file's row
    was 'True'. A text column of them (one that also holds another text) keeps its spelling: JSON's true finds it."""
    holding = {**card, "categories": {**card["categories"], "plan": known}}
    written = [True, "True", "TRUE", "true", np.bool_(True)]
    _, categorical = encode_rows(holding, [{**GOOD, "plan": value} for value in written])
    assert categorical[:, 0].tolist() == [3] * len(written)
    _, categorical = encode_rows(holding, [{**GOOD, "plan": value} for value in ("yes", "T", 1, "tRUE")])
    assert categorical[:, 0].tolist() == [UNKNOWN] * 4


def test_a_row_whose_output_is_not_a_number_is_refused_never_answered_null(model_dir):
    """A number far from the training values, yet within float32, can overflow inside the model: its output was a
    null prediction (HTTP 200, probability null)."""
    predictor = autotune.load_model(model_dir)
    predictor.model = lambda numeric, categorical: torch.full((len(numeric), 2), math.nan)
    with pytest.raises(BadRow, match=r"^row 0: the model's output for it is not a number \('age' is .* standard "
                                     "deviations from the training rows' mean\); send values in the range"):
        predictor.predict([{**GOOD, "age": 1e30}, GOOD])


def test_predict_proba_gives_scikit_learns_probability_matrix_in_the_order_of_labels(model_dir, table):
    """A notebook's `model.predict_proba(X_test)[:, 1]` (roc_auc_score, a threshold of one's own) was an
    AttributeError: the probabilities were dicts of the top label, the others only through top_k."""
    model = autotune.load_model(model_dir)
    frame = pd.read_csv(table).head(20)
    probabilities = model.predict_proba(frame)
    assert probabilities.shape == (20, 2) and probabilities.dtype == np.float64 and model.labels == ["no", "yes"]
    assert np.allclose(probabilities.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    for row, prediction in zip(probabilities, model.predict(frame)):
        assert model.labels[int(row.argmax())] == prediction["label"]
        assert row.max() == pytest.approx(prediction["probability"], abs=1e-6)
    assert model.predict_proba([]).shape == (0, 2)
    with pytest.raises(BadRow, match="row 1, column 'age': expects a number"):
        model.predict_proba([GOOD, {**GOOD, "age": "old"}])
    model.model = lambda numeric, categorical: torch.full((len(numeric), 2), math.nan)
    with pytest.raises(BadRow, match="^row 0: the model's output for it is not a number"):
        model.predict_proba([GOOD])
    model.card = {**model.card, "task": "regression"}
    with pytest.raises(UserError, match="predict_proba gives a classifier's probabilities; this model predicts a "
                                        "value .*: use predict"):
        model.predict_proba([GOOD])


def test_a_row_of_a_later_chunk_whose_output_is_not_a_number_is_named_by_its_row_in_the_file(model_dir):
    """`autotune predict` predicts a file a chunk at a time, each chunk's rows without those it refused: a row
    whose output is not a number is named by its number in the file, not its place among the rows predicted."""
    predictor = autotune.load_model(model_dir)
    predictor.model = lambda numeric, categorical: torch.where(numeric[:, :1] > 1e6, math.nan, 0.0).expand(-1, 2)
    results = predictor.predict_each([{**GOOD, "age": "?"}, GOOD, {**GOOD, "age": 1e30}], first=100)
    assert [type(r).__name__ for r in results] == ["BadRow", "dict", "BadRow"]
    assert [results[0].row, results[2].row] == [100, 102]
    assert str(results[2]).startswith("row 102: the model's output for it is not a number")


@pytest.mark.parametrize("row, column, message", [
    ({"plan": "pro", "shop": "S1"}, "age", "is missing; every row needs age, plan, shop"),
    ({**GOOD, "age": "old"}, "age", "expects a number, got the text 'old'"),
    ({**GOOD, "age": " "}, "age", "expects a number, got the text ' '$"),
    ({**GOOD, "age": "13,05"}, "age", r"expects a number, got the text '13,05' \(a decimal comma: write it '13.05', "
                                      r"with a decimal point\)"),
    ({**GOOD, "age": "inf"}, "age", "expects a finite number, got 'inf'"),
    ({**GOOD, "age": math.inf}, "age", "expects a finite number, got inf"),
    ({**GOOD, "age": 1e308}, "age", r"expects a number the model can take, got 1e\+308: standardised with the "
                                    r"training rows' mean .* it is beyond float32"),
    ({**GOOD, "age": "-1e300"}, "age", "expects a number the model can take, got '-1e300'"),
    ({**GOOD, "plan": ["pro"]}, "plan", r"expects one value \(text, a number or a bool\), got list \['pro'\]"),
    ({**GOOD, "shop": {"id": 1}}, "shop", "expects one value .*, got dict"),
    (["pro", 50.0], None, "row 1: is a list; each row is a mapping"),
])
def test_a_row_the_model_cannot_take_is_refused_naming_the_row_and_the_column(row, column, message, card):
    with pytest.raises(BadRow, match=message) as refused:
        encode_rows(card, [GOOD, row])
    assert (refused.value.row, refused.value.column) == (1, column)


# ---------------------------------------------------------------------------------------------- data.missing
@pytest.fixture(scope="module")
def regions_model(tmp_path_factory) -> Path:
    """A model of regions.csv read with data.missing: ["", "?"]: region ("NA": North America, or "EU") and weight
    (numbers, "?" in every 7th row) -> label."""
    rng = np.random.default_rng(0)
    n = 60
    region = rng.choice(["NA", "EU"], n)
    weight = rng.normal(70, 10, n).round(1).astype(object)
    weight[::7] = "?"
    path = tmp_path_factory.mktemp("regions") / "regions.csv"
    pd.DataFrame({"region": region, "weight": weight, "label": np.where(region == "NA", "yes", "no")}).to_csv(
        path, index=False)
    return trained_table_model(path, "regions", "{width: 8, depth: 1}", "{epochs: 2, batch_size: 32}",
                               missing=["", "?"])


def test_rows_are_read_with_the_missing_texts_training_read_its_table_with(regions_model, tmp_path):
    """The card records data.missing; a JSON row (load_model().predict, serve) and a CSV file of new rows (predict)
    read "NA" as the region the model knows (no unseen category) and "?" as a missing weight, as training did: both
    were missing with pandas' texts."""
    model = autotune.load_model(regions_model)
    known = model.card["categories"]["region"]
    assert model.card["missing_texts"] == ["", "?"] and known == ["EU", "NA"]
    rows = [{"region": "NA", "weight": "?"}, {"region": "EU", "weight": 71.5}, {"region": "", "weight": ""}]
    numeric, categorical = encode_rows(model.card, rows)
    assert categorical[:, 0].tolist() == [2 + known.index("NA"), 2 + known.index("EU"), MISSING]
    assert numeric[:, 1].tolist() == [1.0, 0.0, 1.0]  # the weight's missing indicator
    predicted = model.predict(rows)
    assert all(UNSEEN not in prediction for prediction in predicted)

    (tmp_path / "new.csv").write_text("region,weight\nNA,?\nEU,71.5\n,\n")
    from_csv = model.read(tmp_path / "new.csv")
    assert from_csv[0]["region"] == "NA" and math.isnan(from_csv[0]["weight"])
    assert all(torch.equal(a, b) for a, b in zip(encode_rows(model.card, from_csv), (numeric, categorical)))
    records = list(recipe.predict(str(regions_model), [str(tmp_path / "new.csv")]))  # autotune predict
    assert [{k: v for k, v in r.items() if k not in ("file", "row")} for r in records] == list(map(recipe.rounded,
                                                                                                  predicted[:2]))
    # the third line, `,`, holds no value: no row to predict (test_a_line_of_separators_only_is_no_row_to_predict)
    with pytest.raises(BadRow, match="expects a number, got the text 'NA'"):  # not one of the card's texts
        encode_rows(model.card, [{"region": "EU", "weight": "NA"}])


def test_a_card_without_missing_texts_reads_rows_with_pandas_texts(model_dir, card, tmp_path):
    """A model trained without data.missing, or before it existed: "NA" is missing in a file and in a JSON row."""
    assert "missing_texts" not in card
    (tmp_path / "new.csv").write_text("age,plan,shop\nNA,NA,S1\n")
    from_csv = autotune.load_model(model_dir).read(tmp_path / "new.csv")
    assert math.isnan(from_csv[0]["age"]) and math.isnan(from_csv[0]["plan"])
    from_json = [{"age": "NA", "plan": "NA", "shop": "S1"}]
    for a, b in zip(encode_rows(card, from_csv), encode_rows(card, from_json)):
        assert torch.equal(a, b)
    assert encode_rows(card, from_json)[1][0, 0] == MISSING


@pytest.fixture(scope="module")
def codes_model(tmp_path_factory) -> Path:
    """A model of codes.csv: age, member (TRUE or FALSE: a bool column) and store (codes, most of them whole
    numbers: a text column) -> label."""
    rng = np.random.default_rng(0)
    n = 120
    columns = {"age": rng.normal(45, 12, n).round(1), "member": rng.choice(["TRUE", "FALSE"], n),
               "store": rng.choice(["5", "7", "X1"], n), "label": rng.choice(["yes", "no"], n)}
    path = tmp_path_factory.mktemp("codes") / "codes.csv"
    pd.DataFrame(columns).to_csv(path, index=False)
    return trained_table_model(path, "codes", "{width: 8, depth: 1}", "{epochs: 2, batch_size: 32}")


def docs_encoding() -> str:
    """The Python block of docs/using-the-model.md that encodes a table's rows for model.pt without autotune."""
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    return next(block for block in blocks if "def encode(rows)" in block)


@pytest.mark.parametrize("model, lines", [
    ("model_dir", "age,plan,shop,label\n61.5,pro,S1,yes\n,basic,N3,no\nNA,gold,S404,no\n45,NA,7,yes\n"),
    ("regions_model", "region,weight\nNA,?\nEU,71.5\n?,70\n,\n"),
    ("codes_model", "\ufeffage,member,store\n50,true,5.0\n40,FALSE,7\n,True,X1\n30,,9\n1e3,TRUE,\n"),
])
def test_the_docs_encode_rows_for_model_pt_without_autotune_as_predict_does(model, lines, request, tmp_path):
    """A service without autotune had model.pt and a card whose `inputs` named autotune.tabular.rows.encode_rows:
    no page said how rows become its two tensors (the median of a missing number, the missing indicators, the
    category indices). The docs' code, run where autotune cannot be imported, gives model.pt the inputs of
    `autotune predict` and its probabilities, to the last digit, from the card alone."""
    folder = request.getfixturevalue(model)
    rows_file = tmp_path / "new_rows.csv"
    rows_file.write_text(lines, encoding="utf-8")  # the codes' file opens with a byte-order mark, as Excel writes
    saved = tmp_path / "encoded.npz"
    code = docs_encoding().replace('"models/tabular"', repr(str(folder))).replace('"new_rows.csv"', repr(str(rows_file)))
    script = ("import sys\nsys.modules['autotune'] = None  # as where autotune is not installed\n" + code +
              f"np.savez({str(saved)!r}, *encode(rows), probabilities.numpy(), np.array(sorted(PANDAS_NA)))\n")
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path, timeout=120)
    numeric, categorical, probabilities, pandas_na = np.load(saved).values()
    predictor = autotune.load_model(folder)
    assert "Without autotune" in predictor.card["inputs"]
    expected = encode_rows(predictor.card, predictor.read(rows_file))
    assert np.array_equal(numeric, expected[0].numpy()) and np.array_equal(categorical, expected[1].numpy())
    predicted = predictor.predict(predictor.read(rows_file))
    assert probabilities.max(axis=1).tolist() == [p["probability"] for p in predicted]
    assert set(pandas_na) == NA_TEXT
