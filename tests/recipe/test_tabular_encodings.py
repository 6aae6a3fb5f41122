"""The tabular recipe on CSV files as Western-European spreadsheets export them: Latin-1 / cp1252 text
(`data.encoding`), a decimal comma (`data.decimal`) in a file separated by semicolons with a byte-order mark, both
recorded in the model card and used by `autotune predict`; and predict's probabilities rounded as the image
recipe's."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from autotune.errors import UserError
from autotune.recipes import tabular as recipe
from autotune.tabular.data import Preprocessing, read_table
from test_train import Recorder  # a report as the engine's

BOM = b"\xef\xbb\xbf"
PLACES = ["Genève", "Zürich", "Orléans"]
UTF8_FINGERPRINT = "495e2c92d51930ea58b1c2510b0cd43c0732709c8981b8bd90728a23673c17aa"  # before data.encoding existed


def places(rows: int = 40) -> str:
    """An accented column name and accented categories, a number and a yes/no target."""
    lines = [f"{PLACES[i % 3]},{i % 7},{'oui' if i % 2 else 'non'}" for i in range(rows)]
    return "\n".join(["région,x,y", *lines]) + "\n"


def french(rows: int = 40, target: str = "y") -> bytes:
    """As French Excel saves a CSV (UTF-8): a byte-order mark, semicolons, decimal commas."""
    lines = [f"{PLACES[i % 3]};{1000 + 37.13 * i:.2f};{'oui' if i % 2 else 'non'}".replace(".", ",")
             for i in range(rows)]
    return BOM + "\n".join([f"ville;revenu €;{target}", *lines]).encode() + b"\n"


def write(path: Path, content: bytes) -> str:
    path.write_bytes(content)
    return str(path)


def load(path: str, **data):
    return recipe.load_data({"dataset": "csv", "path": path, "target": "y", **data})


def exported(data, out: Path) -> Path:
    """A model of `data` after one epoch, exported as the engine exports one (model.pt and its card)."""
    recorder = Recorder(out / "checkpoint")
    recipe.train({"model": {"width": 4, "depth": 1}, "train": {"epochs": 1}}, recorder, data=data)
    card = recipe.export(str(recorder.keep), data, str(out / "model"))
    (out / "model" / "model.json").write_text(json.dumps({**card, "recipe": "tabular"}))
    return out / "model"


# ---------------------------------------------------------------------------------------------- data.encoding
def test_a_latin1_file_is_refused_with_its_byte_and_the_fix_then_read_with_data_encoding(tmp_path):
    path = write(tmp_path / "table latin1.csv", places().encode("latin-1"))
    with pytest.raises(UserError) as refused:
        load(path)
    assert str(refused.value) == (
        f"cannot read data.path {path!r} as utf-8 text: byte 1 (line 1) is 0xe9, which utf-8 does not decode; save "
        "it as UTF-8, or set data.encoding (e.g. cp1252 for a file Excel saved on Windows)")
    for encoding in ("latin-1", "cp1252"):
        data = load(path, encoding=encoding)
        assert data.preprocessing.categories == {"région": ("Genève", "Orléans", "Zürich")}
        card = data.preprocessing.as_card()
        assert card["encoding"] == encoding and Preprocessing.from_card(card) == data.preprocessing


def test_the_byte_named_is_its_offset_in_the_file_not_in_pandas_block(tmp_path):
    """pandas decodes in blocks, and its error's position is within one: the message counts from the file's
    start, past a block of 1 MiB."""
    path = write(tmp_path / "long.csv", b"x\n" + b"1\n" * 600_000 + b"\xe9\n")
    with pytest.raises(UserError, match=r"as utf-8 text: byte 1200002 \(line 600002\) is 0xe9, which utf-8 does "
                                        r"not decode;"):
        read_table(path)


def test_the_fingerprint_of_a_utf8_file_is_unchanged_and_the_same_table_in_latin1_is_the_same_data(tmp_path):
    plain = load(write(tmp_path / "u.csv", places().encode()))
    assert plain.fingerprint == UTF8_FINGERPRINT  # models trained before data.encoding existed are the same data
    assert load(write(tmp_path / "bom.csv", BOM + places().encode())).fingerprint == UTF8_FINGERPRINT
    latin = load(write(tmp_path / "l.csv", places().encode("cp1252")), encoding="cp1252")
    assert latin.fingerprint == UTF8_FINGERPRINT and latin.preprocessing.encoding == "cp1252"
    assert plain.preprocessing.as_card()["encoding"] == "utf-8"
    old_card = {k: v for k, v in plain.preprocessing.as_card().items() if k not in ("encoding", "decimal")}
    assert Preprocessing.from_card(old_card) == plain.preprocessing  # a card from before reads as UTF-8, "."


@pytest.mark.parametrize("data, message", [
    ("{dataset: csv, path: t.csv, target: y, encoding: latin-99}",
     r"t.yaml:3: data.encoding: must be a text encoding Python knows, not 'latin-99'; use the file's encoding: "
     r"utf-8, or cp1252 for a file Excel saved on Windows"),
    ("{dataset: csv, path: t.csv, target: y, encoding: base64}", r"data.encoding: must be a text encoding"),
    ("{dataset: wine, encoding: cp1252}", r"data.encoding: is read with dataset: csv only, not wine"),
    ("{dataset: wine, decimal: ','}", r"data.decimal: is read with dataset: csv only, not wine"),
    ("{dataset: csv, path: t.csv, target: y, decimal: ';'}", r"data.decimal: must be one of \., ,"),
])
def test_a_bad_data_encoding_or_decimal_is_a_located_problem_of_autotune_check(data, message, tmp_path, cli):
    (tmp_path / "t.csv").write_text("x,y\n1,a\n")
    space = tmp_path / "t.yaml"
    space.write_text(f"name: t\nrecipe: tabular\ndata: {data}\n")
    code, _, err = cli("check", space)
    problems = [line for line in err.splitlines() if line.startswith("  ")]
    assert code == 2 and len(problems) == 1 and re.search(message, problems[0]), err


def test_a_bad_encoding_through_the_python_api_is_one_line(tmp_path):
    path = write(tmp_path / "t.csv", places().encode())
    with pytest.raises(UserError, match=r"^cannot read data.path .*: data.encoding 'latin-99': unknown encoding: "
                                        r"latin-99; set it to a text encoding, e.g. utf-8 or cp1252$"):
        load(path, encoding="latin-99")
    with pytest.raises(UserError, match="^data.encoding is read with dataset: csv only, not wine"):
        recipe.load_data({"dataset": "wine", "encoding": "cp1252"})


# ----------------------------------------------------------------------------------------------- data.decimal
def test_decimal_commas_warn_once_with_data_decimal_instead_of_the_identifier_advice(tmp_path, caplog):
    path = write(tmp_path / "fr.csv", french(rows=600))  # about 60 validation rows: no warning of a small split
    data = load(path)
    assert "revenu €" in data.preprocessing.categories  # read as text: the warning says how to read it as numbers
    (line,) = [r.getMessage() for r in caplog.records if "revenu" in r.getMessage()]
    assert line == (f"data.path {path!r}: column 'revenu €' holds numbers written with a decimal comma ('1000,00', "
                    "'1037,13', '1074,26', ...): read as text, the model takes them as categories; set "
                    'data.decimal: "," to read them as numbers')
    caplog.clear()
    data = load(path, decimal=",")
    assert data.preprocessing.numeric == ("revenu €",) and set(data.preprocessing.categories) == {"ville"}
    assert data.preprocessing.as_card()["decimal"] == "," and caplog.text == ""


def test_a_target_of_decimal_commas_says_data_decimal_not_plain_numbers(tmp_path):
    path = write(tmp_path / "fr.csv", french(target="y").replace(b";oui", b";1,5").replace(b";non", b";2,25"))
    with pytest.raises(UserError, match=r"\(data.target\) holds numbers written with a decimal comma \('2,25', "
                                        r"'1,5', '2,25', \.\.\.\), so it reads as text, not as numbers: set "
                                        r'data.decimal: "," to read them as numbers; or set data.task: '
                                        r"classification if its values are classes$"):
        load(path)
    assert load(path, decimal=",").preprocessing.task == "regression"


# ------------------------------------------------------------------------------------------------------ predict
def test_predict_reads_rows_as_the_card_says_and_rounds_probabilities(tmp_path, cli):
    """A model of a French cp1252 table reads the French rows to predict alike (its card's encoding and decimal
    mark) and prints probabilities rounded to 6 digits, as the image recipe's predict; the Python API's are as
    computed."""
    table = french().replace(BOM, b"").decode().encode("cp1252")
    model = exported(load(write(tmp_path / "fr.csv", table), encoding="cp1252", decimal=","), tmp_path)
    card = json.loads((model / "model.json").read_text())
    assert (card["encoding"], card["decimal"], card["columns"]["numeric"]) == ("cp1252", ",", ["revenu €"])
    code, out, err = cli("predict", model, tmp_path / "fr.csv")
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(records) == 40 and not [  # the test split's rows may lie beyond the training range
        line for line in err.splitlines() if "outside the range the model trained on" not in line]
    assert all(record["probability"] == round(record["probability"], 6) for record in records)
    code, out, _ = cli("predict", model, tmp_path / "fr.csv", "--top-k", "2")
    assert code == 0 and all(t["probability"] == round(t["probability"], 6) for line in out.splitlines()
                             for t in json.loads(line)["top_k"])
    predictor = recipe.load_model(str(model))
    unrounded = predictor.predict(predictor.read(tmp_path / "fr.csv"))
    assert any(p["probability"] != round(p["probability"], 6) for p in unrounded)  # the Python API: floats as are


def test_a_number_with_a_point_in_a_decimal_comma_file_is_refused_with_both_readings(tmp_path, cli):
    """A cell "1.234" among decimal commas, in rows to predict of a model whose card says decimal ',': pandas read
    the column as text, so "1.234" was taken as 1.234 (a decimal point) without a word, where it may be 1234 (a
    thousands separator), and the file's own "1000,50" was refused with "write it '1000.50', with a decimal point".
    The decimal commas are read as training read them; a number holding a '.' is refused, with its fix."""
    model = exported(load(write(tmp_path / "fr.csv", french()), decimal=","), tmp_path)
    rows = write(tmp_path / "new.csv", "ville;revenu €\nGenève;1000,50\nZürich;1.234\nOrléans;1.234,5\n".encode())
    code, out, err = cli("predict", model, rows)
    assert code == 1 and [json.loads(line)["row"] for line in out.splitlines()] == [0]
    assert ("row 1, column 'revenu €': expects a number with the decimal mark ',' (data.decimal, as training read "
            "its table), got the text '1.234': is its '.' a thousands separator or a decimal point? write it '1234' "
            "or '1,234'") in err
    assert "row 2, column 'revenu €'" in err and "'1.234,5': its '.' separates thousands: write it '1234,5'" in err


def test_a_model_of_a_utf8_table_names_the_byte_of_a_latin1_rows_file_and_its_encoding(tmp_path, cli):
    model = exported(load(write(tmp_path / "u.csv", places().encode())), tmp_path)
    rows = write(tmp_path / "latin1.csv", places().encode("latin-1"))
    code, out, err = cli("predict", model, rows)
    assert code == 1 and out == "" and (f"cannot read rows file {rows!r} as utf-8 text: byte 1 (line 1) is 0xe9, "
                                        "which utf-8 does not decode; the model reads files as utf-8 text, the data.encoding of "
                                        "its training table: save the file as utf-8") in err


@pytest.mark.parametrize("mark, codec", [(BOM, "utf-8"), (b"\xff\xfe", "utf-16-le")])
def test_a_file_with_a_byte_order_mark_is_read_in_its_encoding_whatever_the_card_says(mark, codec, tmp_path, cli):
    """A model of an Excel export saved on Windows (cp1252), given next month's export saved as "CSV UTF-8" (with a
    byte-order mark): its header read as cp1252 named 'ï»¿région', and predict said the file had no column
    'région' though it does; its cells would have been read as 'GenÃ¨ve', a category the model never saw."""
    model = exported(load(write(tmp_path / "w.csv", places().encode("cp1252")), encoding="cp1252"), tmp_path)
    rows = write(tmp_path / "utf8.csv", mark + places().encode(codec))
    code, out, err = cli("predict", model, rows)
    assert (code, err) == (0, "")
    expected = recipe.load_model(str(model)).predict(recipe.load_model(str(model)).read(tmp_path / "w.csv"))
    assert [json.loads(line)["probability"] for line in out.splitlines()] == pytest.approx(
        [p["probability"] for p in expected], abs=1e-6)
    assert load(rows, encoding="cp1252").fingerprint == load(str(tmp_path / "w.csv"), encoding="cp1252").fingerprint
