"""Rows -> an exported tabular model's predictions, with no recipe and no training code.

    rows = read_rows("new_patients.csv")              # or [{"age": 61, "smoker": "yes", ...}, ...]
                                                      # (TabularPredictor.read: as the card says training read
                                                      # its table: missing texts, encoding, decimal mark)
    for rows in row_chunks("big.csv", 10_000): ...    # a large file, 10,000 rows at a time (`autotune predict`)
    predict_rows("models/tabular", rows)              # [{"label": "benign", "probability": 0.97}, ...]
                                                      # regression: [{"value": 151.2}, ...]
    model, card = load_model("models/tabular")        # the TorchScript model (on the CPU) and its card
    TabularPredictor("models/tabular").predict(rows)  # the model loaded once, for many calls (load_model, serve)
    TabularPredictor("models/tabular").predict_proba(frame)  # (N, classes) float64, columns in `.labels` order

The model directory holds `model.pt` (TorchScript: numeric float32 (N, k), categorical int64 (N, m) -> logits, or
values in the target's units: float64, float32 from a model exported before autotune kept them in float64) and
`model.json`, the card with the preprocessing (`Preprocessing.as_card`).
`encode_rows` turns rows into those two tensors exactly as training and evaluation encode a table
(`Preprocessing.encode`). A row must give every column the model reads (other keys, the target's included, are
ignored). A missing value is None, NaN, or a text that training read as missing: those of the card's
"missing_texts" and "" (`data.missing`), else those pandas' CSV reader reads as missing ("", "NA", "n/a", "nan",
"null", ...: `NA_TEXT`), so that a row gives the model the same input from a .csv file and from JSON; in a
categorical column, such a text that the column's vocabulary holds (a table read from .parquet) is that value. A
numeric column takes a number, or text that reads as one. A categorical column takes one value (text, a number or
a bool); one its vocabulary does not hold (a new customer id, a country training never saw) is encoded as the
"unknown" index, as the model's test metrics encoded it, and its prediction says so: "unseen_categories":
{column: value, ...} (`UNSEEN`, present only for such a row); a whole number matches the vocabulary's spelling of
it (5, 5.0, "5" and "5.0" alike). A number below or above every value its column held in the train split is taken,
and its prediction says so, an extrapolation: "outside_training_range": {column: value, ...} (`OUTSIDE`; a card
written before the card kept each column's "min" and "max" does not say). A missing column, a value of the wrong kind (text, inf, or a number that
standardised is beyond float32 in a numeric column, a list in a categorical one) or a row that is not a mapping is
refused: a `BadRow` (a `BadInput`: HTTP 422 in `autotune serve`) naming the row and the column; so is a row whose
output is not a number, never answered as a null prediction.
"""
from __future__ import annotations

import math
import re
import reprlib
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from pandas._libs.parsers import STR_NA_VALUES  # private: the NA strings read_csv's na_values defaults to

from autotune.errors import BadInput, UserError
from autotune.tabular.data import (DECIMAL, DECIMAL_COMMA, ENCODING, MALFORMED, UNKNOWN, Preprocessing,
                                   csv_header, table_chunks)
from autotune.model_dir import load_torchscript, read_card
from autotune.paths import expanded
from autotune.registry import close_matches
from autotune.run_options import option

__all__ = ["BadRow", "TabularPredictor", "read_rows", "row_chunks", "blank", "kept_values", "encode_rows",
           "load_model", "predict_rows", "NA_TEXT", "UNSEEN", "OUTSIDE", "CHUNK_ROWS"]

STDIN = "-"  # the rows file `read_chunks` reads from standard input (`autotune predict MODEL -`)
NA_TEXT = frozenset(STR_NA_VALUES)  # texts pandas' read_csv reads as a missing value: training's without data.missing
UNSEEN = "unseen_categories"  # a prediction's key: {column: value} of the categories the model did not see
OUTSIDE = "outside_training_range"  # a prediction's key: {column: value} of numbers beyond the train split's range
FLOAT32_MAX = float(np.finfo(np.float32).max)  # the largest standardised number the model's float32 input holds
SHOWN = reprlib.Repr()  # how a message echoes a value: its repr, cut to about 80 characters
SHOWN.maxstring = SHOWN.maxlong = SHOWN.maxother = 80
CHUNK_ROWS = 10_000  # rows of a file `autotune predict` reads, checks and predicts at a time


class BadRow(BadInput):
    """A row the model cannot take: `row` is its index, `column` the column at fault (None: the row itself)."""

    def __init__(self, row: int, column: str | None, problem: str) -> None:
        where = f"row {row}" + (f", column {column!r}" if column is not None else "")
        super().__init__(f"{where}: {problem}", 422)
        self.row, self.column = row, column


def read_rows(path: str | Path, missing: Sequence[str] | None = None, encoding: str = ENCODING,
              decimal: str = DECIMAL) -> list[dict[str, Any]]:
    """The rows of a .csv or .parquet file, as dicts of column -> value (a missing value is NaN; in a CSV file, a
    cell holding one of the texts `missing` or nothing, None: pandas' default texts; a CSV file is text in
    `encoding`, with `decimal` as its decimal mark). A file without a header (empty) or without rows is a
    BadInput: a model cannot predict nothing; so is a line of more or fewer values than the header names (a
    BadRow)."""
    return _first_refused(next(row_chunks(path, None, missing, encoding, decimal)))


def row_chunks(path: str | Path, rows: int | None, missing: Sequence[str] | None = None, encoding: str = ENCODING,
               decimal: str = DECIMAL, numeric: Sequence[str] = ()) -> Iterator[list[dict[str, Any] | BadRow]]:
    """`read_rows`, `rows` rows at a time (None: all at once): a large file's rows are never all held in memory
    (`table_chunks`). A CSV line of more or fewer values than its header names is a BadRow in its place, and the
    rows after it are read. The cells of the `numeric` columns that pandas left as text are read with `decimal`
    (`_decimal_read`)."""
    chunks = table_chunks(path, rows, what="rows file", missing=missing, encoding=encoding, decimal=decimal,
                          malformed=True)
    first = next(chunks)
    if first.columns.empty:
        raise BadInput("empty file: no header line and no rows; give a table whose first line names the columns")
    if first.empty:
        raise BadInput(f"no rows: the file holds only its header ({', '.join(map(str, first.columns))})")
    start = 0
    for table in chain([first], chunks):
        yield [_decimal_read(_unless_malformed(row, number, len(table.columns)), number, numeric, decimal)
               for number, row in enumerate(table.to_dict("records"), start)]
        start += len(table)


@contextmanager
def _spooled(path: str | Path) -> Iterator[str | Path]:
    """`path`, or for `-` (STDIN) a temporary copy of standard input: a table is read more than once (its header,
    then its rows), and a pipe only once. A .parquet file when it starts as one (`PAR1`), else a .csv file; an
    error names it as `'-' (standard input)`."""
    if str(path) != STDIN:
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="autotune-stdin-") as folder:
        head = sys.stdin.buffer.read(4)
        file = Path(folder, "stdin.parquet" if head == b"PAR1" else "stdin.csv")
        with file.open("wb") as copy:
            copy.write(head)
            shutil.copyfileobj(sys.stdin.buffer, copy)
        try:
            yield file
        except UserError as err:
            err.args = (str(err).replace(repr(str(file)), f"{STDIN!r} (standard input)"),)
            raise


def _unless_malformed(row: dict[str, Any], number: int, width: int) -> dict[str, Any] | BadRow:
    """`row`, or the BadRow of a line of more or fewer values than the header's `width` names (`MALFORMED`)."""
    first = next(iter(row.values()), None)
    if not (isinstance(first, str) and first.startswith(MALFORMED)):
        return row
    values = first[len(MALFORMED):]
    return BadRow(number, None, f"is a line of {values} value{'' if values == '1' else 's'}, where the header names "
                                f"{width} columns; repair or re-export it (its other rows are read)")


def _decimal_read(row: dict[str, Any] | BadRow, number: int, numeric: Sequence[str], decimal: str
                  ) -> dict[str, Any] | BadRow:
    """`row` (the row `number`) of a CSV file whose decimal mark is `decimal`, not '.': the texts of its `numeric`
    columns read as numbers as training read them ("3,5": 3.5), where pandas left the column as text because one
    cell was no such number; a BadRow for a number holding a '.', a thousands separator or a decimal point, which
    training did not read as a number either (`_point_fix`). Other texts are kept, for the row's check to refuse."""
    if decimal == DECIMAL or isinstance(row, BadRow):
        return row
    read = dict(row)
    for column in numeric:
        text = row.get(column)
        if not isinstance(text, str):
            continue
        if "." in text and re.fullmatch(r"\s*[-+]?[\d.,]*\d[\d.,]*\s*", text):
            return BadRow(number, column, f"expects a number with the decimal mark {decimal!r} (data.decimal, as "
                                          f"training read its table), got the text {_shown(text)}: "
                                          f"{_point_fix(text.strip(), decimal)}")
        try:
            read[column] = float(text.replace(decimal, "."))
        except ValueError:
            pass
    return read


def _point_fix(text: str, decimal: str) -> str:
    """What the '.' of `text`, a number, may be, and how to write it with the decimal mark `decimal` and no
    thousands separator."""
    whole, point = text.replace(".", ""), text.replace(".", decimal)
    grouped = re.fullmatch(rf"[-+]?\d{{1,3}}(\.\d{{3}})+({re.escape(decimal)}\d*)?", text)
    if grouped and (decimal in text or text.count(".") > 1):
        return f"its '.' separates thousands: write it {whole!r}, without them"
    if grouped:
        return f"is its '.' a thousands separator or a decimal point? write it {whole!r} or {point!r}"
    if text.count(".") == 1 and decimal not in text:
        return f"its '.' is a decimal point: write it {point!r}"
    return f"write it with {decimal!r} before its decimals and no thousands separator"


def kept_values(rows: Sequence[Mapping[str, Any] | BadRow], columns: Sequence[str]) -> list[dict[str, Any]]:
    """Each row's values of `columns` as JSON writes them (a missing value: None; a NumPy number: Python's), to
    carry beside its prediction (`autotune predict --keep`); {} for a BadRow. A BadInput naming the columns that
    the rows (a chunk of a file: the columns of its first row that is not a BadRow) lack."""
    first = next((row for row in rows if isinstance(row, Mapping)), {})
    lacking = [column for column in columns if first and column not in first]
    if lacking:
        hint = close_matches(lacking[0], list(first))
        mean = f"did you mean {hint[0]!r}? " if hint else ""
        raise BadInput(f"the file has no column {', '.join(map(repr, lacking))} (--keep); {mean}its columns: "
                       f"{', '.join(map(str, first))}")
    return [{column: _json_value(row[column]) for column in columns} if isinstance(row, Mapping) else {}
            for row in rows]


def _json_value(value: Any) -> Any:
    """A cell as JSON writes it: None where it is missing, a NumPy number as Python's, a text as it is, anything
    else (a Parquet file's timestamp) as its text."""
    if _null(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value if isinstance(value, (str, int, float, bool)) else str(value)


def blank(row: Mapping[str, Any] | BadRow) -> bool:
    """Whether a row read from a file holds no value at all (a line of separators only, which a spreadsheet writes
    below its data when cells there were formatted): no row to predict."""
    return isinstance(row, Mapping) and all(_null(value) for value in row.values())


def _null(value: Any) -> bool:
    """None, NaN, NaT or pd.NA."""
    kind = type(value)
    if kind is float:  # the cells of a file's numeric column: asked first, pandas' isna costs a microsecond a cell
        return value != value
    if kind is str:
        return False
    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))


def _read_as_missing(preprocessing: Preprocessing) -> frozenset[str]:
    """The texts training read as missing: those of data.missing and "", else pandas' (`NA_TEXT`)."""
    return NA_TEXT if preprocessing.missing is None else frozenset(("", *preprocessing.missing))


def _missing(value: Any, texts: frozenset[str]) -> bool:
    """A null, or one of the texts `texts` that training read as missing ("", "NA", "nan", ...)."""
    return _null(value) or (isinstance(value, str) and value in texts)


def _shown(value: Any) -> str:
    """`value` as a message echoes it: its repr, cut to about 80 characters (`SHOWN`)."""
    try:
        return SHOWN.repr(value)
    except ValueError:  # an int of more digits than Python turns into text (sys.get_int_max_str_digits)
        return f"a whole number of about {int(value.bit_length() * math.log10(2)) + 1} digits"


def _number(value: Any, row: int, column: str, texts: frozenset[str], scaler: tuple[float, float]) -> float:
    """A numeric column's value as a float (NaN: missing, or one of `texts`); a BadRow for one that its `scaler`
    (the train split's mean and std) takes beyond float32, where the model's input would be infinite."""
    if _missing(value, texts):
        return math.nan
    if type(value) is float:  # a file's numeric cell
        number = value
    elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
        try:
            number = float(value)
        except OverflowError:  # a whole number beyond float64 (JSON has no limit on its digits): refused as inf
            number = math.inf if value > 0 else -math.inf
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise BadRow(row, column, f"expects a number, got the text {_shown(value)}{_comma_hint(value)}") from None
    else:
        raise BadRow(row, column, f"expects a number, got {type(value).__name__} {_shown(value)}")
    if math.isinf(number):
        raise BadRow(row, column, f"expects a finite number, got {_shown(value)} (null for a missing value)")
    mean, std = scaler
    if not abs((number - mean) / std) <= FLOAT32_MAX:
        raise BadRow(row, column, f"expects a number the model can take, got {_shown(value)}: standardised with the "
                                  f"training rows' mean {mean:.6g} and std {std:.6g} it is beyond float32 "
                                  f"(±{FLOAT32_MAX:.3g}); send the value in the column's units, or null for a "
                                  "missing value")
    return number


def _comma_hint(text: str) -> str:
    """How to write `text`, a number with a decimal comma ("13,05"), as the model reads it; "" for other texts."""
    if not re.fullmatch(DECIMAL_COMMA, text.strip()):
        return ""
    return f" (a decimal comma: write it {text.strip().replace(',', '.')!r}, with a decimal point)"


def _category(value: Any, row: int, column: str, known: Sequence[str], texts: frozenset[str]) -> str | None:
    """A categorical column's value as text, looked up in its vocabulary `known` as evaluation does (None:
    missing, or one of `texts` that `known` does not hold); a value the vocabulary does not hold is kept, to be
    encoded as UNKNOWN."""
    if _null(value) or (_missing(value, texts) and value not in known):  # a vocabulary read from .parquet may hold "NA"
        return None
    if not pd.api.types.is_scalar(value):
        raise BadRow(row, column, f"expects one value (text, a number or a bool), got {type(value).__name__} "
                                  f"{_shown(value)}")
    return str(value)  # a whole number is found in `known` however it is written (`Preprocessing.encode`)


def _checked(row: Any, index: int, preprocessing: Preprocessing, texts: frozenset[str]) -> dict[str, Any]:
    """The values of one row that the model reads, checked and converted (`texts`: those read as missing); BadRow
    at the first problem."""
    if not isinstance(row, Mapping):
        raise BadRow(index, None, f"is a {type(row).__name__}; each row is a mapping of column names to values")
    for column in preprocessing.columns:
        if column not in row:
            raise BadRow(index, column, f"is missing; every row needs {', '.join(preprocessing.columns)} (null for a "
                                        "missing value)")
    values: dict[str, Any] = {c: _number(row[c], index, c, texts, scaler) for c, scaler
                              in zip(preprocessing.numeric, zip(preprocessing.mean, preprocessing.std))}
    values.update({c: _category(row[c], index, c, known, texts) for c, known in preprocessing.categories.items()})
    return values


def _each_checked(preprocessing: Preprocessing, rows: Sequence[Any], first: int = 0
                  ) -> list[dict[str, Any] | BadRow]:
    """Each row's values that the model reads (`_checked`), or its BadRow (naming it by its number, from `first`)."""
    texts = _read_as_missing(preprocessing)
    checked: list[dict[str, Any] | BadRow] = []
    for i, row in enumerate(rows, first):
        if isinstance(row, BadRow):  # a line the file's reader refused (`row_chunks`)
            checked.append(row)
            continue
        try:
            checked.append(_checked(row, i, preprocessing, texts))
        except BadRow as err:
            checked.append(err)
    return checked


def _first_refused(checked: Sequence[dict[str, Any] | BadRow]) -> list[dict[str, Any]]:
    """`checked` (`_each_checked`) where every row was taken; else the first row's BadRow is raised."""
    refused = next((c for c in checked if isinstance(c, BadRow)), None)
    if refused is not None:
        raise refused
    return list(checked)  # type: ignore[arg-type]


def _encoded(preprocessing: Preprocessing, checked: Sequence[dict[str, Any]]
             ) -> tuple[torch.Tensor, torch.Tensor, list[dict[str, dict[str, Any]]]]:
    """The model's two inputs for the `checked` rows (`Preprocessing.encode`) and, per row, what its prediction
    says of its values: UNSEEN, {column: value} of its categories that the model did not see (encoded as UNKNOWN),
    and OUTSIDE, of its numbers beyond the range of the train split (`_outside`), each only where it has some."""
    frame = pd.DataFrame({
        **{c: np.array([r[c] for r in checked], dtype=np.float64) for c in preprocessing.numeric},
        **{c: pd.Series([r[c] for r in checked], dtype=object) for c in preprocessing.categories},
    }, index=range(len(checked)))
    numeric, categorical = preprocessing.encode(frame)
    columns = list(preprocessing.categories)
    notes: list[dict[str, dict[str, Any]]] = [{} for _ in checked]
    for i, j in zip(*np.nonzero(categorical.numpy() == UNKNOWN)):
        notes[i].setdefault(UNSEEN, {})[columns[j]] = checked[i][columns[j]]
    for i, column in _outside(preprocessing, frame):
        notes[i].setdefault(OUTSIDE, {})[column] = checked[i][column]
    return numeric, categorical, notes


def _outside(preprocessing: Preprocessing, frame: pd.DataFrame) -> list[tuple[int, str]]:
    """(row, column) of each number of `frame` below or above every value its column held in the train split (the
    card's "min" and "max"): a prediction there extrapolates. None for a card without them."""
    if not preprocessing.low:
        return []
    low = np.array([-np.inf if v is None else v for v in preprocessing.low])
    high = np.array([np.inf if v is None else v for v in preprocessing.high])
    values = frame[list(preprocessing.numeric)].to_numpy(np.float64, na_value=np.nan)
    rows, columns = np.nonzero((values < low) | (values > high))  # NaN, a missing value: neither
    return [(int(i), preprocessing.numeric[j]) for i, j in zip(rows, columns)]


def encode_rows(card: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(numeric float32 (N, k), categorical int64 (N, m)): the inputs of the model of `card` for `rows`, encoded
    as training and evaluation encode a table (`Preprocessing.encode`; a category it did not see: UNKNOWN).
    BadRow for a missing column or a value of the wrong kind."""
    preprocessing = Preprocessing.from_card(card)
    numeric, categorical, _ = _encoded(preprocessing, _first_refused(_each_checked(preprocessing, rows)))
    return numeric, categorical


def load_model(model_dir: str | Path) -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
    """The exported model (on the CPU) and its card."""
    folder = expanded(model_dir)
    card = read_card(folder)
    if "columns" not in card or "task" not in card:
        raise UserError(f"{folder}/model.json describes no table columns: the model is not one of the tabular recipe")
    return load_torchscript(folder / "model.pt").eval(), card


class TabularPredictor:
    """The exported tabular model in `model_dir`, loaded once (`autotune.load_model` gives it): `predict(rows)`
    for each batch of rows, `card` its model card."""

    def __init__(self, model_dir: str | Path) -> None:
        self.model, self.card = load_model(model_dir)
        self.directory = model_dir  # the folder it was loaded from, for its repr
        self.preprocessing = Preprocessing.from_card(self.card)  # once, not per batch of rows
        self.labels: list[str] = list(self.card.get("labels") or [])  # a classifier's, in predict_proba's order

    def __repr__(self) -> str:
        prep = self.preprocessing
        columns = ", ".join(prep.columns[:5]) + (", ..." if len(prep.columns) > 5 else "")
        return (f"TabularPredictor({str(self.directory)!r}: {prep.task} of {self.card.get('target', '?')!r} from "
                f"{len(prep.columns)} columns ({columns}))")

    def read(self, path: str | Path) -> list[dict[str, Any]]:
        """The rows of a .csv or .parquet file of new rows, read as training read its table (`read_rows` with the
        card's missing texts, encoding and decimal mark); a BadInput where the file lacks a column the model reads,
        a BadRow for its first line of more or fewer values than the header names."""
        return _first_refused(next(self.read_chunks(path, None)))

    def read_chunks(self, path: str | Path, rows: int | None = CHUNK_ROWS
                    ) -> Iterator[list[dict[str, Any] | BadRow]]:
        """`read`, `rows` rows at a time (None: all at once), as `autotune predict` reads a file: its memory does
        not grow with the file. A line of more or fewer values than the header names is a BadRow in its place.
        `-` (STDIN): the rows piped in, CSV or Parquet."""
        prep = self.preprocessing
        with _spooled(path) as file:
            chunks = row_chunks(file, rows, prep.missing, prep.encoding, prep.decimal, prep.numeric)
            first = next(chunks)
            self._check_columns(file, next((row for row in first if isinstance(row, Mapping)), {}))
            yield from chain([first], chunks)

    def _check_columns(self, path: str | Path, row: Mapping[str, Any]) -> None:
        """A BadInput where the file (`row`: its first row that is not malformed; {} when none is) lacks a column
        the model reads, or where its header names one twice: pandas reads the second as `name.1`, and the model
        would read the first, whichever of the two holds the values it was trained on."""
        needed = self.preprocessing.columns
        lacking = [column for column in needed if column not in row]
        if lacking and row:
            raise BadInput(f"the file has no column {', '.join(map(repr, lacking))}; every row needs "
                           f"{', '.join(needed)} (an empty cell for a missing value)")
        if Path(path).suffix.lower() != ".csv":
            return
        header = csv_header(path, self.preprocessing.encoding)
        twice = [column for column in needed if header.count(column) > 1]
        if twice:
            raise BadInput(f"the header names column {', '.join(map(repr, twice))} more than once, and the model "
                           "reads one column of each name; rename or drop the others")

    def predict(self, rows: Sequence[Mapping[str, Any]] | Mapping[str, Any] | Any,
                top_k: int | None = None) -> list[dict[str, Any]]:
        """One prediction per row: {"label", "probability"} (classification: the most probable class and its
        probability) or {"value"} (regression, in the target's units), and UNSEEN ("unseen_categories": {column:
        value}) where the row holds categories the model did not see in training (encoded as "unknown", as in its
        test metrics), and OUTSIDE ("outside_training_range": {column: value}) where it holds numbers beyond the
        range of the train split. BadRow for a row it cannot take. `rows`: a list of mappings (column -> value), one mapping or
        pandas Series (one row), or a pandas DataFrame (its rows; NaN: missing).
        `top_k` (a classifier only): each prediction also lists its k most probable labels, as "top_k":
        [{"label", "probability"}, ...]."""
        self.check_top_k(top_k)
        checked = _first_refused(_each_checked(self.preprocessing, _as_rows(rows)))
        return _first_refused(self._predicted(checked, range(len(checked)), top_k))

    def predict_proba(self, rows: Sequence[Mapping[str, Any]] | Mapping[str, Any] | Any) -> np.ndarray:
        """scikit-learn's `predict_proba`: a classifier's probabilities, float64 (N, classes), each row summing to
        1, columns in the order of `labels` (the class names as text: '0' and '1' for a 0/1 target). `rows` as
        `predict` takes them; BadRow for a row it cannot take, UserError for a regression model."""
        if self.card["task"] == "regression":
            raise UserError(f"predict_proba gives a classifier's probabilities; this model predicts a value "
                            f"(regression of {self.card.get('target')!r}): use predict")
        checked = _first_refused(_each_checked(self.preprocessing, _as_rows(rows)))
        out, numeric, _ = self._outputs(checked)
        if out is None:
            return np.empty((0, len(self.labels)))
        refused = _not_finite(out)
        if refused:
            raise _not_a_number(refused[0], numeric[refused[0]], self.preprocessing)
        return torch.softmax(out.double(), dim=1).numpy()

    def predict_each(self, rows: Sequence[Mapping[str, Any]], top_k: int | None = None, first: int = 0
                     ) -> list[dict[str, Any] | BadRow]:
        """As `predict`, but a row it cannot take is its BadRow, in its place, and every other row is predicted (a
        file of new rows: `autotune predict`). `first`: the number a BadRow gives the first row (a chunk of a file
        that starts at that row)."""
        self.check_top_k(top_k)
        checked = _each_checked(self.preprocessing, rows, first)
        taken = [i for i, values in enumerate(checked) if not isinstance(values, BadRow)]
        results: list[dict[str, Any] | BadRow] = list(checked)
        predicted = self._predicted([checked[i] for i in taken], [first + i for i in taken], top_k)
        for i, result in zip(taken, predicted):  # type: ignore[arg-type]
            results[i] = result
        return results

    def _predicted(self, checked: Sequence[dict[str, Any]], rows: Sequence[int], top_k: int | None
                   ) -> list[dict[str, Any] | BadRow]:
        """The prediction of each `checked` row (`rows`: their numbers in the caller's rows), with UNSEEN where it
        holds a category the model did not see, or a BadRow where the model's output for it is not a number."""
        out, numeric, notes = self._outputs(checked)
        if out is None:
            return []
        records: list[dict[str, Any] | BadRow] = list(self._records(out, top_k))
        for record, said in zip(records, notes):
            record.update(said)  # type: ignore[union-attr]
        for k in _not_finite(out):
            records[k] = _not_a_number(rows[k], numeric[k], self.preprocessing)
        return records

    def _outputs(self, checked: Sequence[dict[str, Any]]
                 ) -> tuple[torch.Tensor | None, torch.Tensor, list[dict[str, dict[str, Any]]]]:
        """The model's output for the `checked` rows (None for no rows), their encoded numbers, and what each one's
        prediction says of its values (`_encoded`)."""
        numeric, categorical, notes = _encoded(self.preprocessing, checked)
        if not len(numeric):
            return None, numeric, notes
        with torch.no_grad():
            return self.model(numeric, categorical), numeric, notes

    def _records(self, out: torch.Tensor, top_k: int | None) -> list[dict[str, Any]]:
        """The model's output for each row as its prediction: {"value"}, {"label", "probability"} (and "top_k")."""
        if self.card["task"] == "regression":
            return [{"value": float(v)} for v in out.tolist()]
        probabilities = torch.softmax(out.float(), dim=1)
        labels = self.card["labels"]
        if top_k is None:
            probability, index = probabilities.max(dim=1)
            return [{"label": labels[i], "probability": float(p)} for i, p in zip(index.tolist(), probability.tolist())]
        records = []
        for row in probabilities.numpy():
            top = [{"label": labels[i], "probability": float(row[i])} for i in np.argsort(-row, kind="stable")[:top_k]]
            records.append({"label": top[0]["label"], "probability": top[0]["probability"], "top_k": top})
        return records

    def check_top_k(self, top_k: int | None, given_as: str | None = None) -> None:
        """A UserError unless `top_k` is None, or a count >= 1 for a classifier. `given_as` names top_k in the
        message (default: `autotune predict`'s --top-k on the command line, else the keyword top_k)."""
        if top_k is None:
            return
        if self.card["task"] == "regression":
            raise UserError(f"top_k lists a classifier's most probable labels; this model predicts a value "
                            f"(regression of {self.card.get('target')!r}): drop {given_as or option('top_k')}")
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise UserError(f"top_k must be a whole number >= 1, got {top_k!r}")


def _as_rows(rows: Sequence[Mapping[str, Any]] | Mapping[str, Any] | Any) -> Sequence[Any]:
    """`predict`'s rows as a list: one mapping or pandas Series is one row, a DataFrame its rows."""
    if isinstance(rows, Mapping):
        return [rows]
    if hasattr(rows, "to_dict") and hasattr(rows, "index") and not hasattr(rows, "columns"):  # a Series
        return [rows.to_dict()]  # one row of a DataFrame, as df.iloc[0] gives it
    if hasattr(rows, "to_dict") and hasattr(rows, "columns"):  # a DataFrame, as a notebook holds a table
        return rows.to_dict("records")
    return rows


def _not_finite(out: torch.Tensor) -> list[int]:
    """The rows whose output is not finite (a null prediction): a number far from the training values, yet within
    float32, can overflow inside the model."""
    return (~torch.isfinite(out.reshape(len(out), -1))).any(1).nonzero().flatten().tolist()


def _not_a_number(row: int, numeric: torch.Tensor, preprocessing: Preprocessing) -> BadRow:
    """The BadRow of row `row`, whose output is not a number: it names the row's number farthest from the training
    rows' (`numeric`: its encoded inputs)."""
    width, farthest = len(preprocessing.numeric), ""
    if width:
        j = int(numeric[:width].abs().argmax())
        farthest = (f" ({preprocessing.numeric[j]!r} is {float(numeric[j]):.3g} standard deviations from the "
                    "training rows' mean)")
    return BadRow(row, None, f"the model's output for it is not a number{farthest}; send values in the range of the "
                             "training rows, or null for a missing value")


def predict_rows(model_dir: str | Path, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One prediction per row of the model in `model_dir` (`TabularPredictor.predict`)."""
    return TabularPredictor(model_dir).predict(rows)
