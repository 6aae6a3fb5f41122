"""Tables read, split by each row's values and a seed (`autotune.splits`), and encoded as tensors with the train
split's statistics.

    data = load("csv", path="houses.parquet", target="price")     # or "wine", "breast_cancer", "diabetes"
    for numeric, categorical, y in data.train.batches(64, generator=g):
        ...                         # float32 inputs, int64 category codes, targets (int64 classes, float64 values)

Numeric columns are standardised with the train split's mean and std; a missing value takes the train split's
median, and a column that misses values in the train split gets a missing-indicator input (1: missing). Every other
column (text, category, bool) is categorical: a value is an index into the train split's vocabulary of that column,
after two reserved indices, MISSING and UNKNOWN (a value the train split does not hold). `Preprocessing` is all of
it; the model card holds it (`as_card`), so that `autotune.tabular.rows` encodes a row exactly as training did.

A CSV file is read with pandas' default texts for a missing value ("", "NA", "N/A", "null", "nan", ...), or with
those of `missing` (and "") instead: `missing=["", "?"]` keeps "NA" as a value (North America, not applicable). The
model card records them (`Preprocessing.missing`), so that rows to predict are read alike. A Parquet file's nulls are
its missing values: `missing` does not apply to it (as pandas' `na_values` does not apply to `read_parquet`).
A CSV file is text in `encoding` (UTF-8, with or without a byte-order mark, by default; cp1252 for one Excel saved
on Windows) with `decimal` between a number's whole and fractional parts ("." or ","; a column of numbers written
with a decimal comma is read as text, with a warning that says so); the card records both too.

The columns of `drop`, and those without any value, are no inputs; a row's split follows from its values in the
columns of `key` (every column of the file by default, dropped ones too). Loading warns of what often misleads a
model or its metrics: columns that look like no feature (an unnamed index, one value, an identifier, free text, a
counter), a column that gives the target away (a leak), numbers written as text ("$1,234.50", "12%") and dates, read
as categories, values or class names that differ only by case or spaces, infinite numbers, a dominant class, a count
read as many classes, few whole numbers read as a quantity, a validation split of one class or of one target value.
A column of numbers too large to standardise (its std overflows float64) is refused.

The tables it knows by name are in `autotune.tabular.catalog`.
"""
from __future__ import annotations

import codecs
import csv
import hashlib
import json
import logging
import re
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import chain, islice
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from autotune.errors import UnknownNameError, UserError
from autotune.paths import expanded
from autotune.registry import close_matches
from autotune.splits import (
    absent_classes, alike_classes, combined, dominant_class, empty_split_hint, few_to_rank, ordered, positions,
    spelled, text_keys,
)
from autotune.tabular.catalog import DATASET_NAMES, MAX_CLASSES
from autotune.training import batch_indices

__all__ = ["MISSING", "UNKNOWN", "Preprocessing", "Split", "Data", "load",
           "read_table", "table_chunks", "csv_header", "MALFORMED", "infer_task", "labels_of", "row_keys",
           "identifier_like", "withheld_columns"]

log = logging.getLogger("autotune")

MISSING, UNKNOWN = 0, 1  # the reserved indices of every categorical column; its known values follow, from 2
SEPARATORS = (";", "\t", "|")  # what a CSV file may hold between values besides commas
MALFORMED = "\x00malformed line of "  # a first value, then a count: a line of more or fewer values than its header
MANY_CLASSES = 10  # a target read as more classes: a warning (whole numbers), a note (a class without train rows)
ID_SHARE = 0.9  # a text column with distinct values in this share of its rows or more: an identifier
ID_ROWS = 20  # ... of at least this many rows
FREE_TEXT_WORDS, FREE_TEXT_SHARE = 4, 0.5  # a text column of this many words a cell on average, distinct values in
# this share of its rows or more (and ID_ROWS rows): free text (notes, comments, addresses)
NUMBER_MARKS = r"[\s$€£¥₹%,]"  # what a spreadsheet's formatted number holds besides one: currency, %, separators
FORMATTED_SHARE = 0.9  # a text target whose values read as numbers without NUMBER_MARKS in this share: numbers
ENCODING, DECIMAL = "utf-8", "."  # how a CSV file is read by default (data.encoding, data.decimal)
DECIMAL_COMMA = r"[-+]?\d+,\d+"  # a number as a spreadsheet in a decimal-comma locale writes it: 3269,59
DECIMAL_FIX = 'data.decimal: ","'  # what reads such numbers
CLASS_ROWS, CLASS_VALUES = 5, 100  # whole numbers read as regression with this many rows per distinct value or more,
# and at most this many values: a warning that they may be classes (a quantity has about one value per row, or many)
DATE, MIDNIGHT = r"\d{4}-\d\d-\d\d", " 00:00:00"  # a datetime as pandas writes it: a date, and its time of day
BOOL_TEXTS = (("True", "TRUE", "true"), ("False", "FALSE", "false"))  # what pandas' CSV reader reads as a bool
DATE_TEXT = (r"(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})"  # a date as a spreadsheet writes it,
             r"([ T]\d{1,2}:\d\d(:\d\d(\.\d+)?)?\s*([AaPp][Mm])?(Z|[+-]\d\d:?\d\d)?)?")  # and its time of day


def _numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def _whole(column: pd.Series) -> bool:
    """Whether every value of a numeric column is a whole number."""
    return bool(np.all(np.mod(column.to_numpy(np.float64), 1) == 0))


# ------------------------------------------------------------------------------------------------ the table
def read_table(path: str | Path, what: str = "data.path", missing: Sequence[str] | None = None,
               encoding: str = ENCODING, decimal: str = DECIMAL) -> pd.DataFrame:
    """A .csv or .parquet file as a DataFrame (an empty file: no rows); a UserError naming `what` and the file
    when it does not exist or cannot be read. A CSV cell holding one of the texts `missing`, or nothing, is missing
    (None: pandas' default texts); a CSV file is text in `encoding` whose numbers have `decimal` as their decimal
    mark; a Parquet file has its own nulls and types."""
    return next(table_chunks(path, None, what, missing, encoding, decimal))


def table_chunks(path: str | Path, rows: int | None, what: str = "data.path", missing: Sequence[str] | None = None,
                 encoding: str = ENCODING, decimal: str = DECIMAL, malformed: bool = False) -> Iterator[pd.DataFrame]:
    """`read_table`'s table `rows` rows at a time (None: whole), so that a large file of new rows is never held
    whole in memory as rows: at least one DataFrame (an empty file: no columns; a header alone: no rows). A CSV
    file is parsed as it is read, a Parquet file a record batch at a time. A damaged part of the file is a
    UserError where it is reached, after the chunks before it. With `malformed`, a CSV line of more values than
    the header names is a row of its own, marked (`MALFORMED`), rather than a UserError: the rows after it are
    read, and keep their numbers; so is a line of fewer values, which pandas reads with the rest missing."""
    file = expanded(path)
    if not file.is_file():
        raise UserError(f"{what} {str(path)!r} cannot be read ({_not_a_file(path, file)}); give the path of a .csv "
                        "or .parquet file")
    suffix = file.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise UserError(f"{what} {str(path)!r} is not a .csv or .parquet file; convert it to one of those")
    options = {**_na_options(missing), "encoding": _marked_encoding(file, encoding), "decimal": decimal}
    try:
        if suffix == ".parquet":
            yield from _parquet_chunks(file, rows)
        else:
            yield from _csv_chunks(file, options, rows, malformed)
    except pd.errors.EmptyDataError:
        yield pd.DataFrame()
    except LookupError as err:  # an encoding Python does not know, or not a text encoding ("base64")
        raise UserError(f"cannot read {what} {str(path)!r}: data.encoding {encoding!r}: {err}; set it to a text "
                        "encoding, e.g. utf-8 or cp1252") from None
    except UnicodeDecodeError as err:
        raise UserError(f"cannot read {what} {str(path)!r} as {encoding} text: {_undecodable(file, err)}; "
                        f"{_encoding_fix(what, encoding)}") from None
    except Exception as err:  # pandas and pyarrow raise many kinds on a damaged file
        reason = (str(err).strip().splitlines() or [""])[0]
        raise UserError(f"cannot read {what} {str(path)!r} as {suffix[1:]}: {type(err).__name__}: {reason}; "
                        "repair or re-export the file") from None


def _not_a_file(path: str | Path, file: Path) -> str:
    """Why `path` (`file`, expanded), which is not a regular file, cannot be read as a table."""
    if file.is_dir():
        return "it is a folder"
    if str(path) == "-" or file.exists():  # `-`, /dev/stdin: a table is read more than once (its header first)
        return ("standard input, a pipe or a device is read once, and a table is read twice: its header, then its "
                "rows; save the rows to a file")
    return "it does not exist"


def csv_header(path: str | Path, encoding: str = ENCODING) -> list[str]:
    """The names the header line of a CSV file (one `table_chunks` reads) gives, as written: pandas' reader renames
    a name given twice (`age`, `age.1`)."""
    file = expanded(path)
    encoding = _marked_encoding(file, encoding)
    line = pd.read_csv(file, header=None, nrows=1, dtype=str, keep_default_na=False, encoding=encoding,
                       **_dialect(file, {"encoding": encoding}))
    return line.iloc[0].tolist()


BYTE_ORDER_MARKS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def _marked_encoding(file: Path, encoding: str) -> str:
    """The encoding of a text file that starts with a byte-order mark (Excel's "CSV UTF-8" writes one), which says
    what the file is whatever `encoding` says: a table read as cp1252 and a new export saved as UTF-8 gave
    'TempÃ©rature' for 'Température'. `encoding` for a file without one (or not a file)."""
    try:
        with file.open("rb") as stream:
            head = stream.read(3)
    except OSError:
        return encoding
    return next((marked for mark, marked in BYTE_ORDER_MARKS if head.startswith(mark)), encoding)


def _parquet_chunks(file: Path, rows: int | None) -> Iterator[pd.DataFrame]:
    """A Parquet file, `rows` rows at a time (None: whole), as pyarrow reads its record batches (the types
    pd.read_parquet gives them); a file of no rows, whole."""
    if rows is not None:
        import pyarrow.parquet

        batches = pyarrow.parquet.ParquetFile(file).iter_batches(batch_size=rows)
        first = next(batches, None)
        if first is not None:
            yield from (batch.to_pandas() for batch in chain([first], batches))
            return
    yield pd.read_parquet(file)


def _undecodable(file: Path, err: UnicodeDecodeError) -> str:
    """Where the first byte of `file` that its encoding does not decode is: its offset (from 0) and its line. The
    offset pandas reports is within the block it was decoding, so the file is decoded again block by block (the
    last, empty, ends it: a character cut short at the end)."""
    decoder = codecs.getincrementaldecoder(err.encoding)()
    offset, lines = 0, 1
    with file.open("rb") as stream:
        for block in chain(iter(lambda: stream.read(1 << 20), b""), [b""]):
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as found:
                start = offset - len(decoder.getstate()[0]) + found.start  # the bytes it held back come first
                lines += block[:max(0, start - offset)].count(b"\n")
                return (f"byte {start} (line {lines}) is 0x{found.object[found.start]:02x}, which {err.encoding} "
                        "does not decode")
            offset, lines = offset + len(block), lines + block.count(b"\n")
    return f"{err.reason} ({err.encoding})"


def _encoding_fix(what: str, encoding: str) -> str:
    """How to read a file that is not text in `encoding`: its table's (data.path), or rows for a model."""
    if what == "data.path":
        return "save it as UTF-8, or set data.encoding (e.g. cp1252 for a file Excel saved on Windows)"
    return (f"the model reads files as {encoding} text, the data.encoding of its training table: save the file "
            f"as {encoding}")


def _na_options(missing: Sequence[str] | None) -> dict[str, Any]:
    """read_csv's options for the texts `missing` (and "") to be missing, instead of its default ones (None)."""
    return {} if missing is None else {"keep_default_na": False, "na_values": ["", *missing]}


def _csv_chunks(file: Path, options: dict[str, Any], rows: int | None, malformed: bool) -> Iterator[pd.DataFrame]:
    """A CSV file with commas between values, or with semicolons, tabs or bars (`_separator`; spreadsheets in many
    locales write `;`), `rows` rows at a time (None: whole). `options`: its missing texts (`_na_options`),
    encoding and decimal mark. `malformed`: where pandas' C parser meets a line of more values than the header
    names, the file is read again by its Python parser, which marks that line (`_marked`), from the first row not
    yet given; a line of fewer values (which pandas fills with missing values) is marked too (`_ShortLines`), and
    so is a first line of one more value than the next (`_ShortLines.long_first_line`)."""
    options = {**options, **_dialect(file, options)}
    if options["sep"] != ",":
        log.info("%s: read with %r between values (its header holds no comma)", file, options["sep"])
    width = len(pd.read_csv(file, nrows=0, **options).columns) if malformed else 0
    short = _ShortLines(file, options, width) if malformed else None
    if short and short.long_first_line():
        options = {**options, "index_col": False}  # its values cut to the header's, and marked by `short`
        short.cut = True
    given = 0
    try:
        for chunk in _parsed(file, options, rows):
            yield short.marked(chunk) if short else chunk
            given += len(chunk)
    except pd.errors.ParserError:
        if not short:
            raise
        marking = {**options, "engine": "python", "on_bad_lines": _marked(width)}
        for chunk in _parsed(file, marking, rows):
            unseen = chunk.iloc[max(0, given - int(chunk.index[0])):] if len(chunk) else chunk
            if len(unseen) or not given:
                yield short.marked(unseen)


# pandas before 3 reads a CSV's decimals with a fast parser of its own by default, not always to the number written
# (a third of NumPy's normal draws came back one unit in the last place off): a row's split key, so its split, then
# changed with the pandas version. "round_trip" reads them as Python does, as pandas 3 does by default (and warns of
# the option); its C parser only.
_EXACT_DECIMALS = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}


def _parsed(file: Path, options: dict[str, Any], rows: int | None) -> Iterator[pd.DataFrame]:
    """pd.read_csv of `file` with `options` (and `_EXACT_DECIMALS` for the C parser), `rows` rows at a time (None:
    whole). With `index_col` False, pandas' warning that it cut a line to the header's columns is silenced:
    `_ShortLines` marks that line."""
    if options.get("engine") != "python":
        options = {**_EXACT_DECIMALS, **options}
    with warnings.catch_warnings():
        if options.get("index_col") is False:
            warnings.filterwarnings("ignore", "Length of header", pd.errors.ParserWarning)
        reader = pd.read_csv(file, **options) if rows is None else pd.read_csv(file, chunksize=rows, **options)
    if rows is None:
        yield reader
        return
    with reader:
        while True:
            with warnings.catch_warnings():
                if options.get("index_col") is False:
                    warnings.filterwarnings("ignore", "Length of header", pd.errors.ParserWarning)
                chunk = next(reader, None)
            if chunk is None:
                return
            yield chunk


class _ShortLines:
    """The rows of a CSV file whose line holds fewer values than its header names (pandas reads the values missing
    from the line as missing cells), or more (a first line, which `index_col=False` cuts), read by Python's csv
    module in step with pandas' chunks (a chunk's rows, then the next chunk's): `marked(chunk)` marks those of a
    chunk as `_marked` marks a line of more values."""

    def __init__(self, file: Path, options: dict[str, Any], width: int) -> None:
        self.width = width
        self.cut = False  # whether pandas cuts a line of more values (index_col=False), rather than reading an index
        counts = self._read(file, options)
        self._head = list(islice(counts, 2))  # the first two rows' counts, read ahead for `long_first_line`
        self._counts = chain(self._head, counts)
        self._row = 0  # the next row `_counts` gives

    @staticmethod
    def _read(file: Path, options: dict[str, Any]) -> Iterator[int]:
        """How many values each row's line holds, in order (rows as pandas numbers them: blank lines skipped). A
        line the csv module cannot read ends the counts: pandas says what is wrong with it."""
        try:
            with open(file, newline="", encoding=options["encoding"]) as f:
                lines = (values for values in csv.reader(f, delimiter=options["sep"]) if values)
                for _ in range(1 + options.get("skiprows", 0)):  # the header, after a line `sep=;`
                    next(lines, None)
                for values in lines:
                    yield len(values)
        except (csv.Error, UnicodeDecodeError):
            return

    def long_first_line(self) -> bool:
        """Whether the first row's line holds one value more than the header names, and the next line does not:
        pandas then takes the first column for the rows' index (as for a file saved with an index whose header
        lacks its name) and shifts every row's values, where that line alone is malformed."""
        return len(self._head) == 2 and self._head[0] == self.width + 1 != self._head[1]

    def marked(self, chunk: pd.DataFrame) -> pd.DataFrame:
        """`chunk` with its short lines' rows marked (`MALFORMED` and their count of values, in its first column)."""
        end = int(chunk.index[-1]) + 1 if len(chunk) else 0
        marks = {}
        for values in islice(self._counts, max(end - self._row, 0)):  # the counts of the chunk's rows, no further
            if (values < self.width or self.cut and values > self.width) and self._row in chunk.index:
                marks[self._row] = f"{MALFORMED}{values}"
            self._row += 1
        if not marks:
            return chunk
        first = chunk.columns[0]
        chunk = chunk.astype({first: object})  # a copy: the marks are text
        chunk.loc[list(marks), first] = list(marks.values())
        return chunk


def _marked(width: int) -> Callable[[list[str]], list[str]]:
    """read_csv's `on_bad_lines` for a file whose header names `width` columns: a line of more values is a row of
    its own, whose first value is MALFORMED followed by the number of values the line held, the others empty."""
    return lambda values: [f"{MALFORMED}{len(values)}", *[""] * (width - 1)]


def _dialect(file: Path, options: dict[str, Any]) -> dict[str, Any]:
    """read_csv's `sep` for `file`: the separator a first line such as `sep=;` names (which Excel reads as an
    instruction, and some exports for it start with), then `skiprows` past that line; else `_separator`'s."""
    with file.open("rb") as stream:
        first = stream.readline(16)
    named = re.fullmatch(rb"(?:\xef\xbb\xbf)?sep=([,;\t|])\r?\n", first)
    if named:
        return {"sep": named.group(1).decode(), "skiprows": 1}
    return {"sep": _separator(file, options)}


def _separator(file: Path, options: dict[str, Any]) -> str:
    """What `file` holds between values: a comma, or the one of SEPARATORS its header line holds when that line
    reads as one column. The header alone decides: a row below it may hold a comma inside a quoted text or a
    number with a decimal comma, which reading the whole file with commas would fail on."""
    columns = pd.read_csv(file, nrows=0, **options).columns
    if len(columns) != 1:
        return ","
    header = str(columns[0])
    separator = max(SEPARATORS, key=header.count)
    return separator if separator in header else ","


def _bundled(name: str) -> pd.DataFrame:
    """scikit-learn's bundled table `name` with its target in the column `target` (class names, when it has them)."""
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, f"load_{name}")(as_frame=True)
    frame = bunch.frame
    if "target_names" in bunch:
        frame["target"] = pd.Categorical.from_codes(bunch.target, list(bunch.target_names))
    return frame


def _table(dataset: str, path: str | None, target: str | None, texts: tuple[str, ...] | None,
           encoding: str = ENCODING, decimal: str = DECIMAL) -> tuple[pd.DataFrame, str, str]:
    """(the table, how messages name it, the target column) of `data.dataset`, a CSV file read with `texts`
    (`data.missing`) as its missing values, as `encoding` text with `decimal` as its decimal mark."""
    if dataset not in DATASET_NAMES:
        hint = close_matches(dataset, DATASET_NAMES)
        fix = f"did you mean {hint[0]!r}?" if hint else f"use one of {', '.join(DATASET_NAMES)}"
        raise UnknownNameError(f"unknown tabular dataset {dataset!r}; {fix}")
    if dataset != "csv":
        given = {"data.path": path is not None, "data.missing": texts is not None,
                 "data.encoding": encoding != ENCODING, "data.decimal": decimal != DECIMAL}
        key = next((key for key, is_set in given.items() if is_set), None)
        if key is not None:
            raise UserError(f"{key} is read with dataset: csv only, not {dataset}; remove it, or set "
                            "data.dataset: csv")
        return _bundled(dataset), f"dataset {dataset!r}", target or "target"
    if path is None or target is None:
        missing = "data.path (the .csv or .parquet file)" if path is None else "data.target (the column to predict)"
        raise UserError(f"dataset: csv needs {missing}")
    return read_table(path, missing=texts, encoding=encoding, decimal=decimal), f"data.path {str(path)!r}", target


def _check_columns(frame: pd.DataFrame, target: str, source: str) -> None:
    """The table has rows and the target column."""
    if len(frame) == 0:
        raise UserError(f"{source} holds no rows; give a table with a header line and at least one row per split")
    if target not in frame.columns:
        raise UserError(_no_column(frame, target, "data.target", source))


def _check_repeated_names(path: str | None, encoding: str, source: str) -> None:
    """A UserError where the header of a CSV file names a column more than once: pandas reads the second as
    'name.1', which the model would read as a column of its own, and predict refuses a file of new rows whose
    header names a column the model reads more than once (every export of the same shape)."""
    if path is None or expanded(path).suffix.lower() != ".csv":
        return
    header = csv_header(path, encoding)
    repeated = next((name for name in header if name and header.count(name) > 1), None)  # "": 'Unnamed: 3'
    if repeated is not None:
        raise UserError(f"{source}: its header names column {repeated!r} {header.count(repeated)} times (pandas "
                        f"reads the second as '{repeated}.1'), and predict would refuse every file of new rows like "
                        "it, as the model reads one column of each name; give each column a name of its own in the "
                        "file")


def _no_column(frame: pd.DataFrame, name: Any, key: str, source: str, unlike: str | None = None) -> str:
    """The error for a column `key` names that the table does not have: the closest name (never `unlike`, a column
    `key` cannot name), and its columns."""
    columns = [str(c) for c in frame.columns]
    hint = close_matches(str(name), [c for c in columns if c != unlike])
    shown = ", ".join(columns[:20]) + (f" and {len(columns) - 20} more" if len(columns) > 20 else "")
    fix = f"did you mean {hint[0]!r}? its columns: {shown}" if hint else f"its columns: {shown}"
    return f"{source} has no column {name!r} ({key}); {fix}"


def _named(frame: pd.DataFrame, names: list[Any] | None, key: str, target: str, source: str) -> list[str]:
    """The columns that `data.drop` or `data.key` (`key`) names, each one the table has; drop cannot name the
    target."""
    if names is None:
        return []
    if not isinstance(names, (list, tuple)):
        raise UserError(f"{key} is a list of column names, not {names!r}; write {key}: [{names}]")
    columns = {str(c): c for c in frame.columns}
    for name in names:
        if str(name) not in columns:  # data.drop: [Churn] is not the target Churned, which drop cannot name
            raise UserError(_no_column(frame, name, key, source, unlike=target if key == "data.drop" else None))
    if key == "data.drop" and target in map(str, names):
        raise UserError(f"{key} names the target {target!r} (data.target); remove it from {key}")
    return list(dict.fromkeys(columns[str(name)] for name in names))


def _missing_texts(missing: list[Any] | None, path: str | None) -> tuple[str, ...] | None:
    """The texts of `data.missing`, checked; None where it is unset, or where `path` is a Parquet file, whose
    nulls are its missing values (a warning says so)."""
    if missing is None:
        return None
    if not isinstance(missing, (list, tuple)):
        raise UserError(f"data.missing is a list of texts, not {missing!r}; write data.missing: [{missing!r}]")
    wrong = [item for item in missing if not isinstance(item, str)]
    if wrong:
        raise UserError(f"data.missing holds {wrong[0]!r}, which is not a text; quote it: {str(wrong[0])!r}")
    if path is not None and Path(path).suffix.lower() == ".parquet":
        log.warning("data.missing applies to CSV files only: %s holds typed nulls, which are its missing values; "
                    "remove data.missing to silence this warning", path)
        return None
    return tuple(missing)


def _labelled(frame: pd.DataFrame, target: str, source: str) -> pd.DataFrame:
    """The rows whose target is known (the others are left out, with a warning that counts them)."""
    known = frame[target].notna()
    if not known.any():
        raise UserError(f"{source}: column {target!r} (data.target) holds no value; pick the column to predict")
    if not known.all():
        log.warning("%s: left out %d of %d rows whose %r is missing; fill them in or drop them to silence this "
                    "warning", source, int((~known).sum()), len(frame), target)
    return frame[known]


def _task(target: pd.Series, task: str, source: str) -> str:
    """`data.task`, or the task `auto` picks, with a warning when it takes whole numbers for many classes, or whole
    numbers of few values for regression (CLASS_ROWS, CLASS_VALUES: they may be classes); a UserError for a target
    of infinite values, stray text or formatted numbers."""
    _check_finite_target(target, source)
    _check_stray_target(target, task, source)
    _check_formatted_target(target, task, source)
    if task != "auto":
        return task
    task = infer_task(target)
    classes = target.nunique()
    if task == "classification" and _numeric(target) and classes > MANY_CLASSES:
        log.warning("%s: data.task auto reads the whole numbers of %r as classification with %d classes; if they "
                    "count a quantity, data.task: regression treats them as one", source, target.name, classes)
    elif task == "regression" and _whole(target) and classes <= CLASS_VALUES and len(target) >= CLASS_ROWS * classes:
        log.warning("%s: data.task auto reads %r (%d distinct whole numbers in %d rows) as regression; if they are "
                    "classes, set data.task: classification", source, target.name, classes, len(target))
    return task


def _check_stray_target(target: pd.Series, task: str, source: str) -> None:
    """A UserError naming the cells of text of a target of numbers (`_stray_cells`), unless data.task is
    classification: they make it text, so `auto` reads each number as a class and regression refuses it."""
    stray = _stray_cells(target) if task != "classification" else target.iloc[:0]
    if not len(stray):
        return
    classes = "; or set data.task: classification if its values are classes" if task == "auto" else ""
    raise UserError(f"{source}: column {target.name!r} (data.target) holds numbers and {len(stray)} cells of text "
                    f"({_cells(stray)}): write each as a number, or name its text in data.missing to leave its row "
                    f"out{classes}")


def _cells(cells: pd.Series) -> str:
    """The first five of `cells` (index: the row) for a message: "row 3 'x', row 9 inf and 2 more; row 0 ..."."""
    shown = ", ".join(f"row {_plain(row)} {_plain(value)!r}" for row, value in cells.iloc[:5].items())
    more = f" and {len(cells) - 5} more" if len(cells) > 5 else ""
    return f"{shown}{more}; row 0 is the first after the header"


def _check_finite_target(target: pd.Series, source: str) -> None:
    """A UserError naming the infinite cells of a target of numbers: no class name, mean or loss comes of them."""
    infinite = _infinite(target)
    if len(infinite):
        raise UserError(f"{source}: column {target.name!r} (data.target) holds {len(infinite)} infinite values "
                        f"({_cells(infinite)}): write each as a finite number, or leave its cell empty to leave its "
                        "row out")


def _infinite(column: pd.Series) -> pd.Series:
    """The cells of a column of numbers that hold inf or -inf (none of any other column)."""
    if not _numeric(column):
        return column.iloc[:0]
    return column[np.isinf(column.to_numpy(np.float64, na_value=np.nan))]


def _check_formatted_target(target: pd.Series, task: str, source: str) -> None:
    """A UserError for a text target of numbers written as a spreadsheet formats them ("$352,000", "12 %"), unless
    data.task is classification: `auto` would read each as a class, and regression refuses text."""
    if task == "classification" or _numeric(target):
        return
    if _decimal_commas(target):
        classes = "; or set data.task: classification if its values are classes" if task == "auto" else ""
        raise UserError(f"{source}: column {target.name!r} (data.target) holds numbers written with a decimal comma "
                        f"({_examples(target)}), so it reads as text, not as numbers: set {DECIMAL_FIX} to read "
                        f"them as numbers{classes}")
    formatted = _formatted(target)
    if formatted is None:
        return
    shown, example, number = formatted
    classes = "; or set data.task: classification if its values are classes" if task == "auto" else ""
    raise UserError(f"{source}: column {target.name!r} (data.target) holds numbers written as text "
                    f"({shown}, ...: {target.nunique()} distinct values in {len(target)} rows), so it reads as text, "
                    f"not as numbers: write them as plain numbers ({example!r} as {number:.15g}: no currency sign, "
                    f"thousands separator, space or %) and set data.task: regression{classes}")


def _formatted(column: pd.Series) -> tuple[str, str, float] | None:
    """(three of its texts for a message, one of them, the number it writes) of a text column of numbers written as
    a spreadsheet formats them ("$352,000", "12 %"): FORMATTED_SHARE of its cells or more are numbers once
    NUMBER_MARKS are taken out, and some are not numbers with them in; None for any other column."""
    if _numeric(column) or pd.api.types.is_bool_dtype(column):
        return None
    cells = column.dropna().astype(str).value_counts(sort=False)  # each distinct text once, in the order of its row
    text = cells.index.to_series(index=range(len(cells)))
    plain = pd.to_numeric(text.str.replace(NUMBER_MARKS, "", regex=True), errors="coerce")
    formatted = plain.notna() & pd.to_numeric(text, errors="coerce").isna()
    if cells.to_numpy()[plain.notna().to_numpy()].sum() < FORMATTED_SHARE * cells.sum() or not formatted.any():
        return None
    example = formatted.idxmax()
    return ", ".join(map(repr, text[formatted].iloc[:3])), text[example], float(plain[example])


def _dates(column: pd.Series) -> str | None:
    """Three of the values of a column of dates or timestamps, for a message: a datetime column, or text of which
    FORMATTED_SHARE of the cells or more are written as dates ("2024-03-05", "05/03/2024 14:20", in any order of
    day, month and year); None for any other column."""
    if pd.api.types.is_datetime64_any_dtype(column):
        return _examples(column)
    if _numeric(column) or pd.api.types.is_bool_dtype(column):
        return None
    cells = column.dropna().astype(str).value_counts(sort=False)  # each distinct text once, with its cells
    dates = cells.index.to_series().str.strip().str.fullmatch(DATE_TEXT).to_numpy(bool)
    return _examples(column) if len(cells) and cells.to_numpy()[dates].sum() >= FORMATTED_SHARE * cells.sum() else None


def _decimal_commas(column: pd.Series) -> bool:
    """Whether a text column holds numbers written with a decimal comma ("3269,59"), with whole numbers ("12") in
    at most all but FORMATTED_SHARE of its values: `data.decimal: ","` reads it as numbers."""
    if _numeric(column) or pd.api.types.is_bool_dtype(column):
        return False
    cells = column.dropna().astype(str).value_counts(sort=False)  # each distinct text once, with its cells
    text = cells.index.to_series().str.strip()
    commas = text.str.fullmatch(DECIMAL_COMMA).to_numpy(bool)
    numbers = cells.to_numpy()[commas | text.str.fullmatch(r"[-+]?\d+").to_numpy(bool)].sum()
    return bool(commas.any()) and bool(numbers >= FORMATTED_SHARE * cells.sum())


def _examples(column: pd.Series) -> str:
    """Three of a column's values, for a message: '3269,59', '12,5', '880,01', ..."""
    return ", ".join(map(repr, column.dropna().astype(str).iloc[:3])) + ", ..."


def infer_task(target: pd.Series) -> str:
    """The task `task: auto` picks for a target column (TASK_RULE says which)."""
    if not _numeric(target):
        return "classification"
    return "classification" if _whole(target) and target.nunique() <= MAX_CLASSES else "regression"


def _check_target(column: pd.Series, task: str, source: str) -> None:
    """A regression target is numeric; every target holds at least two values."""
    if task == "regression" and not _numeric(column):
        raise UserError(f"{source}: data.task is regression but column {column.name!r} is not numeric "
                        f"({column.dtype}); set data.task: classification, or auto")
    values = column.unique()
    if len(values) < 2:
        what = "one class" if task == "classification" else "one value"
        raise UserError(f"{source}: column {column.name!r} (data.target) holds {what} only "
                        f"({_plain(values[0])!r}); a model needs at least two: pick another data.target, or add rows "
                        "with other values")


def _plain(value: Any) -> Any:
    """A NumPy scalar as Python's (2, not np.int64(2), in a message)."""
    return value.item() if isinstance(value, np.generic) else value


def _class_names(column: pd.Series) -> pd.Series:
    """A classification target's values as class names: text, whole numbers without a decimal point."""
    return column.astype(np.int64).astype(str) if _numeric(column) and _whole(column) else column.astype(str)


def labels_of(column: pd.Series) -> tuple[str, ...]:
    """The class names of a target column, in order: a categorical column's own, numbers ascending, else text's."""
    names = _class_names(column)
    if isinstance(column.dtype, pd.CategoricalDtype):
        key = column.cat.codes.to_numpy()
    else:
        key = column.to_numpy() if _numeric(column) else names.to_numpy()
    return tuple(pd.unique(names.to_numpy()[np.argsort(key, kind="stable")]))


# ------------------------------------------------------------------------------------------------ the split
def row_keys(frame: pd.DataFrame, columns: list[str] | None = None) -> np.ndarray:
    """Each row's split key (`autotune.splits`) from its values in `columns` (None: every column; `data.key`),
    column by column in name order. The row's position and the order of the columns do not count."""
    keys = np.zeros(len(frame), dtype=np.uint64)
    for name in sorted(frame.columns if columns is None else columns, key=str):
        keys = combined(combined(keys, text_keys([str(name)])), _value_keys(frame[name]))
    return keys


def _value_keys(column: pd.Series) -> np.ndarray:
    """Each value's key, the same however pandas read its column: a number as a float (3, 3.0 and the text "3"
    alike, so a numeric column that gains a missing value, or a stray text cell that makes it text, keeps its
    rows' keys), anything else as its text, a missing value as missing."""
    def hashed(values: pd.Series) -> np.ndarray:
        return pd.util.hash_pandas_object(values, index=False).to_numpy(np.uint64, copy=True)

    if _numeric(column):
        return hashed(column.astype(np.float64))
    text = column.astype("string")
    keys = hashed(text)
    codes, values = pd.factorize(text)  # each distinct text parsed once: a column repeats its categories
    parsed_values = pd.to_numeric(pd.Series(values, dtype="string"), errors="coerce").astype(np.float64)
    numbers = np.append(parsed_values.to_numpy(), np.nan)[codes]  # a missing value's code, -1: the NaN appended
    parsed = ~np.isnan(numbers)
    if parsed.any():
        keys[parsed] = hashed(pd.Series(numbers[parsed]))
    return keys


def _order_times(frame: pd.DataFrame, order: str | None, target: str, source: str) -> np.ndarray | None:
    """The sortable times of the `data.order` column (numbers as they are, else dates and times as pandas reads
    them, in UTC), by which the rows are split; None without it. A UserError names a cell without a time."""
    if order is None:
        return None
    if not isinstance(order, str):
        raise UserError(f"data.order is the name of one column, not {order!r}; write data.order: date")
    (name,) = _named(frame, [order], "data.order", target, source)
    if name == target:
        raise UserError(f"data.order names the target {target!r} (data.target); name the column of the rows' dates")
    column = frame[name]
    if _numeric(column):
        times = column.astype(np.float64)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas warns of each format it guesses
            times = pd.to_datetime(column.astype("string"), errors="coerce", utc=True, format="mixed")
    unplaced = column[times.isna().to_numpy()]
    if len(unplaced):
        raise UserError(f"{source}: column {name!r} (data.order) holds {len(unplaced)} cells that are no date, time "
                        f"or number ({_cells(unplaced)}): each row's place in time decides its split; fill them in, "
                        "or leave those rows out of the file")
    if _numeric(column):
        return times.to_numpy(np.float64)
    return np.asarray(times.dt.tz_convert(None), dtype="datetime64[ns]").astype(np.int64)


def _spans(column: pd.Series | None, times: np.ndarray | None, split: tuple[np.ndarray, ...]) -> str:
    """Each split's first and last value of the data.order `column` ("split by date: train 2024-01-01 to ..."), so
    that a split by time can be seen; "" without one (`times` None)."""
    if times is None:
        return ""
    shown = [f"{name} {_plain(column.iloc[rows[np.argmin(times[rows])]])} to "
             f"{_plain(column.iloc[rows[np.argmax(times[rows])]])}"
             for name, rows in zip(("train", "val", "test"), split) if len(rows)]
    return f"split by {column.name}: " + ", ".join(shown)


def _check_sizes(source: str, n: int, sizes: tuple[int, int, int], val_fraction: float, test_fraction: float,
                 order: str | None = None) -> None:
    """Every split holds rows; else say which fraction to raise."""
    shown = f"{sizes[0]} train / {sizes[1]} val / {sizes[2]} test of {n} rows"
    if sizes[0] == 0:
        raise UserError(f"{source} leaves no training rows (val_fraction={val_fraction}, test_fraction="
                        f"{test_fraction}, {n} rows): lower the fractions or add rows")
    for size, key, fraction in ((sizes[1], "val_fraction", val_fraction), (sizes[2], "test_fraction", test_fraction)):
        if size == 0:
            hint = empty_split_hint(fraction, n, "rows") if not order else (
                f"raise it: the rows of one {order} share a split, and the latest ones are the test split"
                if fraction > 0 else f"set it above 0: the share of the rows, the latest by {order}, held out there")
            raise UserError(f"data.{key}={fraction} leaves no {key.split('_')[0]} rows ({shown}): {hint}")


def _warn_repeats(keys: np.ndarray, source: str, key: list[str] | None) -> None:
    """A warning for rows that repeat an earlier one (or its `data.key` values): each set is kept in one split."""
    repeats = len(keys) - len(np.unique(keys))
    if repeats and key is None:
        log.warning("%s: %d of %d rows repeat an earlier row; identical rows are kept in one split, so that no test "
                    "row is also a training row", source, repeats, len(keys))
    elif repeats:
        log.warning("%s: %d of %d rows repeat the data.key values (%s) of an earlier row; rows of one key are kept "
                    "in one split", source, repeats, len(keys), ", ".join(map(str, key)))


def _features(frame: pd.DataFrame, target: str, dropped: list[str], source: str) -> pd.DataFrame:
    """The table without the columns of `data.drop` and those that hold no value (a warning names each: there is
    nothing to learn from them, and a model that read them would want them in every row it predicts)."""
    empty = [c for c in frame.columns if c != target and c not in dropped and frame[c].isna().all()]
    for name in empty:
        log.warning("%s: column %r holds no value%s: left out; data.drop: [%r] says so and silences this", source,
                    name, f" ({UNNAMED_WHY})" if _unnamed(name) else "", name)
    kept = frame.drop(columns=[*dropped, *empty])
    if len(kept.columns) == 1:
        left = " once data.drop and the columns without values are left out" if dropped or empty else ""
        raise UserError(f"{source} has no column besides the target {target!r}{left}: nothing to learn from")
    return kept


UNNAMED_WHY = ("no name in the header: a saved index, as pandas' to_csv writes one without index=False, or "
               "trailing commas")


def _unnamed(name: Any) -> bool:
    """Whether pandas named the column, its header cell being empty (`Unnamed: 3`)."""
    return str(name).startswith("Unnamed: ") and str(name)[9:].isdigit()


def _warn_columns(frame: pd.DataFrame, target: str, source: str, order: str | None = None) -> None:
    """A warning for each feature column of numbers with a few cells of text (`_stray_cells`: pandas reads the whole
    column as text, so the model takes it as categories), for each with infinite numbers (read as missing values),
    for each of whole numbers too large for float64 to tell apart (`_blurred`),
    for each of values that differ only by case or spaces (`_variants`: separate categories), for each that gives
    the target away (`_leak`), and for each of formatted numbers or dates (`_misread`) or else that looks like no
    feature (`_doubt`), with its fix; one warning, instead, for the columns of numbers written with a decimal comma
    (`_warn_decimal_commas`). `order`: the data.order column, if any."""
    commas = _warn_decimal_commas(frame, target, source)
    for name in frame.columns:
        if name == target or name in commas:
            continue
        column = frame[name]
        stray = _stray_cells(column)
        if len(stray):
            shown = ", ".join(map(repr, pd.unique(stray.to_numpy())[:3]))
            log.warning("%s: column %r holds %d numbers and %d cells of text (%s): it is read as text, so the model "
                        "takes it as categories; leave those cells empty (a missing value), or name their text in "
                        "data.missing, to read it as numbers",
                        source, name, column.notna().sum() - len(stray), len(stray), shown)
        infinite = _infinite(column)
        if len(infinite):
            log.warning("%s: column %r holds %d infinite values (%s): the model reads them as missing values, and "
                        "predict and serve refuse them; leave those cells empty to silence this warning", source,
                        name, len(infinite), _cells(infinite))
        blurred = _blurred(column)
        if blurred:
            log.warning("%s: column %r holds %d distinct whole numbers (%s..%s), which the model, reading numbers as "
                        "float64, tells apart as %d only: beyond 2**53 (about 9.0e15) float64 steps by more than 1; "
                        "subtract an offset from them in the file, or leave it out with data.drop: [%r]", source, name,
                        *blurred, name)
        variants = _variants(column)
        if variants:
            log.warning("%s: column %r holds values that differ only by case or surrounding spaces (%s): the model "
                        "learns them as separate categories; write each value alike in the file", source, name,
                        ", ".join(map(repr, variants)))
        leak = _leak(column, frame[target])
        if leak:
            log.warning("%s: column %r %s; leave it out with data.drop: [%r]", source, name, leak, name)
        misread = None if len(stray) else _misread(column, order)
        if misread:
            log.warning("%s: column %r %s", source, name, misread)
        doubt = None if misread else _doubt(name, column, numbers=bool(len(stray)))
        if doubt:
            log.warning("%s: column %r %s; leave it out with data.drop: [%r]", source, name, doubt, name)


def _blurred(column: pd.Series) -> tuple[int, Any, Any, int] | None:
    """(distinct values, lowest, highest, distinct as float64) of a column of whole numbers that float64, the
    model's numbers, tells fewer of apart (2**63 + 1 .. 2**63 + 1000 are one float64); None for any other column."""
    if not pd.api.types.is_integer_dtype(column):
        return None
    values = column.dropna()
    if not len(values) or max(abs(int(values.min())), abs(int(values.max()))) <= 2**53:
        return None
    distinct, floats = values.nunique(), values.astype(np.float64).nunique()
    return (distinct, _plain(values.min()), _plain(values.max()), floats) if floats < distinct else None


def _warn_decimal_commas(frame: pd.DataFrame, target: str, source: str) -> list[Any]:
    """The feature columns of numbers written with a decimal comma (`_decimal_commas`), named in one warning with
    its fix: read as text, each would be categories, one per value."""
    commas = [name for name in frame.columns if name != target and _decimal_commas(frame[name])]
    if commas:
        which = f"column {commas[0]!r} holds" if len(commas) == 1 else f"columns {', '.join(map(repr, commas))} hold"
        log.warning("%s: %s numbers written with a decimal comma (%s): read as text, the model takes them as "
                    "categories; set %s to read them as numbers", source, which, _examples(frame[commas[0]]),
                    DECIMAL_FIX)
    return commas


def _variants(column: pd.Series) -> list[str]:
    """An example of a text column's values that differ only by case or surrounding spaces ("North", "north",
    " North "): the spellings of the first such value; none where no two values differ only so."""
    if _numeric(column) or pd.api.types.is_bool_dtype(column):
        return []
    values = pd.Series(pd.unique(column.dropna().astype(str)))
    forms = values.str.strip().str.casefold()
    alike = values[forms.duplicated(keep=False)]
    return alike[forms[alike.index] == forms[alike.index[0]]].tolist() if len(alike) else []


def _misread(column: pd.Series, order: str | None = None) -> str | None:
    """Why a text (or datetime) column is not read as what it holds: numbers written as a spreadsheet formats them
    (`_formatted`), or dates (`_dates`), which the model would take as categories, each new value unknown; with
    the fix (and data.order, unless `order` splits the rows by time already). None for any other column."""
    formatted = _formatted(column)
    if formatted is not None:
        return (f"holds numbers written as text ({formatted[0]}, ...): the model takes each value as a category, "
                "and one that training did not see as unknown; write them as plain numbers in the file (no currency "
                "sign, thousands separator, space or %) to read them as numbers")
    dates = _dates(column)
    if dates is not None:
        return (f"holds dates ({dates}): the model takes each date as a category, and one that training did not see "
                "(every later date) as unknown; write what matters of them as numbers in the file (days since, "
                f"month, weekday), or leave it out with data.drop: [{column.name!r}]"
                + ("" if order else ". Rows ordered in time are best validated on the latest ones, as the model will "
                   f"meet new rows: data.order: {column.name!r}"))
    return None


def _leak(column: pd.Series, target: pd.Series) -> str | None:
    """Why a feature column gives the target away: each of its values goes with one target value in every row, and
    they repeat (`_pure`: in the first LEAK_SAMPLE rows, then in all), or its numbers move with the target's (a
    correlation of LEAK_CORRELATION or more). Such a column is a copy of the target, or written once the target was
    known (a cancellation reason filled in for churned customers only), and new rows will not hold it. None for
    any other column."""
    if len(column) < ID_ROWS:
        return None
    correlation = _correlation(column, target) if _numeric(column) and _numeric(target) else 0.0
    if abs(correlation) >= LEAK_CORRELATION:
        return f"moves with the target {target.name!r} (correlation {correlation:.4f}): {LEAK_WHY}"
    if not (_pure(column.iloc[:LEAK_SAMPLE], target.iloc[:LEAK_SAMPLE]) and _pure(column, target)):
        return None
    return (f"gives the target {target.name!r} away: each of its {column.nunique(dropna=False)} values goes with a "
            f"single value of {target.name!r} in every row: {LEAK_WHY}")


LEAK_CORRELATION = 0.999  # a numeric column that moves with a numeric target this closely: a leak
LEAK_SAMPLE = 1000  # the rows a column is first checked on: most fail there, without a pass over a large table
LEAK_WHY = ("a copy of the target, or a value written once the target was known, which new rows will not hold, so "
            "the validation and test scores will not hold on them either")


def _correlation(column: pd.Series, target: pd.Series) -> float:
    """The Pearson correlation of two columns of numbers over the rows where both are finite (0.0 where it is
    undefined: a constant column, or numbers too large to square)."""
    x, y = (np.asarray(c.to_numpy(np.float64, na_value=np.nan)) for c in (column, target))
    finite = np.isfinite(x) & np.isfinite(y)
    if finite.sum() < 2:
        return 0.0
    with np.errstate(all="ignore"):
        correlation = np.corrcoef(x[finite], y[finite])[0, 1]
    return float(correlation) if np.isfinite(correlation) else 0.0


def _pure(column: pd.Series, target: pd.Series) -> bool:
    """Whether each value of `column` (a missing one too) goes with one value of `target` in every row, its values
    repeating over CLASS_ROWS rows each on average: the rows' distinct (value, target) pairs are as many as its
    values, and those few (an identifier, or a column of measurements, goes with one target value per row too)."""
    pairs = pd.DataFrame({"x": column, "y": target}).drop_duplicates()
    distinct = pairs["x"].nunique(dropna=False)
    return len(pairs) == distinct and distinct * CLASS_ROWS <= len(column)


def _doubt(name: Any, column: pd.Series, numbers: bool) -> str | None:
    """Why a column looks like no feature: an unnamed one (a saved index tells the target of sorted rows), one
    value only, text (not `numbers` with stray text) of nearly a value per row (an identifier: categories no
    new row shares), or whole numbers of nearly a value per row and nearly consecutive (`_counted`: an identifier
    or a row number, read as a quantity); else None."""
    if _unnamed(name):
        return f"has {UNNAMED_WHY}; the model reads it as a feature"
    values = column.dropna()
    distinct = values.nunique()
    if distinct == 1 and len(values) == len(column):
        return f"holds one value only ({_plain(values.iloc[0])!r}): it tells no row from another"
    text = not (numbers or _numeric(column) or pd.api.types.is_bool_dtype(column))
    if text and identifier_like(distinct, len(values)):
        return (f"holds {distinct} distinct values in {len(values)} rows, like an identifier: as categories they "
                "would not carry over to new rows, and the model card would list them all")
    if text and _free_text(values):
        return (f"holds texts of {_words(values):.1f} words on average, {distinct} distinct in {len(values)} rows, "
                "like free text (notes, comments, addresses): the model takes each distinct text as a category, "
                "which new rows' texts would rarely match, and the model card would list them all")
    if _numeric(column) and identifier_like(distinct, len(values)) and _counted(values):
        return (f"holds {distinct} distinct whole numbers in {len(values)} rows, nearly consecutive "
                f"({_plain(values.min())}..{_plain(values.max())}), like an identifier or a row number: the model "
                "reads it as a quantity, which tells when a row was written, not what it holds")
    return None


def identifier_like(distinct: int, rows: int) -> bool:
    """Whether `distinct` values in `rows` cells are nearly one per row (ID_SHARE, in ID_ROWS rows or more), as an
    identifier's are."""
    return rows >= ID_ROWS and distinct >= ID_SHARE * rows


def withheld_columns(card: Mapping[str, Any]) -> list[str]:
    """The categorical columns of a tabular model's `card` whose values GET /model and the MLflow input example
    leave out, as the card records them (`Preprocessing.withheld`: an id's, a name's, an e-mail address's), which
    would copy the training rows' personal values to every client; for a card written before it kept them, those
    whose categories are nearly one per training row."""
    if "withheld_categories" in card:
        return list(card["withheld_categories"])
    rows = int(card.get("samples", {}).get("train", 0))
    return [column for column, values in card.get("categories", {}).items() if identifier_like(len(values), rows)]


def _withheld(values: pd.Series) -> bool:
    """Whether a categorical column's values in the train split (none missing) are kept from the model's clients
    (`Preprocessing.withheld`): nearly one per row, or free text."""
    return identifier_like(values.astype(str).nunique(), len(values)) or _free_text(values)


def _free_text(values: pd.Series) -> bool:
    """Whether a column's values (none missing) read as free text: distinct in FREE_TEXT_SHARE of its rows or
    more (of ID_ROWS rows or more), of FREE_TEXT_WORDS words or more on average."""
    texts = values.astype(str)
    return (len(texts) >= ID_ROWS and texts.nunique() >= FREE_TEXT_SHARE * len(texts)
            and _words(texts) >= FREE_TEXT_WORDS)


def _words(values: pd.Series) -> float:
    """The words of a column's cells (none missing), on average."""
    return float(values.astype(str).str.split().str.len().mean())


def _counted(values: pd.Series) -> bool:
    """Whether a numeric column's values (none missing) are whole numbers spanning at most about a value per row
    (ID_SHARE): a counter, as an identifier or a row number is."""
    span = float(values.max()) - float(values.min()) + 1
    return _whole(values) and span * ID_SHARE <= len(values)


def _warn_majority(names: np.ndarray, train: np.ndarray, source: str) -> None:
    """A warning when one class holds most of the training rows (`autotune.splits.dominant_class`)."""
    classes, counts = np.unique(names[train], return_counts=True)
    why = dominant_class({str(c): int(n) for c, n in zip(classes, counts)}, "rows")
    if why:
        log.warning("%s: %s", source, why)


def _stray_cells(column: pd.Series) -> pd.Series:
    """The cells of text of a column of numbers that they make text, of 10 or more cells: at most a tenth of them,
    or texts of at most 3 values in a column that numbers fill at least half of (a missing-value marker such as "?"
    in a third of the rows); none for any other column."""
    if _numeric(column) or pd.api.types.is_bool_dtype(column):
        return column.iloc[:0]
    text = column.dropna().astype(str)
    if len(text) < 10:
        return text.iloc[:0]
    values = pd.Series(pd.unique(text.to_numpy()))  # each distinct text read once: a column repeats its categories
    stray = text[text.isin(values[pd.to_numeric(values, errors="coerce").isna()])]
    few = len(stray) <= 0.1 * len(text) or (stray.nunique() <= 3 and len(stray) <= 0.5 * len(text))
    return stray if len(stray) and few else text.iloc[:0]


def _check_classes(source: str, names: np.ndarray, split: tuple[np.ndarray, ...]) -> None:
    """Every class has training rows (a UserError), and validation and test rows (a warning): rows are split one
    by one, not class by class, so a rare class can miss a split. A validation split of one class says that no
    metric there ranks trials on the others, and a split of one class that its ROC AUC is undefined; else a dominant
    class is a warning too."""
    sizes = f"{len(split[0])} train / {len(split[1])} val / {len(split[2])} test of {len(names)} rows"
    every = sorted(set(names.tolist()))
    missing = absent_classes(every, names[split[0]].tolist())
    if missing:
        raise UserError(f"{source}: the train split holds no row of {missing} ({sizes}): add rows of every class, "
                        "lower data.val_fraction and data.test_fraction, or try another data.split_seed"
                        f"{_many(len(every), len(names))}")
    held = set(names[split[1]].tolist())  # a validation split of one class: no metric there ranks the others
    for what, rows, key in (("validation", split[1], "data.val_fraction"), ("test", split[2], "data.test_fraction")):
        present = set(names[rows].tolist())
        missing = absent_classes(every, present)
        if missing and what == "validation" and len(present) == 1:
            log.warning("%s: the validation split holds no row of %s (%s): it holds class %r only, so no "
                        "classification metric there can rank trials on the others (always predicting it scores 1.0 "
                        "there, val_balanced_accuracy too, and val_roc_auc is undefined: NaN); raise "
                        "data.val_fraction, or try another data.split_seed", source, missing, sizes, next(iter(held)))
        elif missing:
            undefined = ", and test_roc_auc is undefined there (NaN): it holds one class" if len(present) == 1 else ""
            log.warning("%s: the %s split holds no row of %s (%s): its metrics there leave them out%s; add rows, "
                        "raise %s, or try another data.split_seed", source, what, missing, sizes, undefined, key)
    few = few_to_rank(len(split[1]), "rows")
    if few:
        log.warning("%s: %s", source, few)
    if len(held) > 1:  # else the majority warning's advice, val_balanced_accuracy, would not hold there
        _warn_majority(names, split[0], source)


def _warn_alike_labels(labels: Sequence[str], target: str, source: str) -> None:
    """A warning naming the class names that differ only by surrounding spaces, case or Unicode form
    (`alike_classes`): each is a class of its own."""
    alike = alike_classes(labels)
    if alike:
        log.warning("%s: column %r (data.target) holds class names that differ only by surrounding spaces, case or "
                    "Unicode form (%s): each is a class of its own; write each class alike in the file", source,
                    target, "; ".join(", ".join(map(spelled, names)) for names in alike))


def _warn_constant_targets(source: str, y: np.ndarray, split: tuple[np.ndarray, ...]) -> None:
    """A warning for a validation or test split whose regression target holds one value: its r2 is undefined (no
    variance to explain), so a search on it finds no finite value."""
    for what, prefix, rows, key in (("validation", "val", split[1], "data.val_fraction"),
                                    ("test", "test", split[2], "data.test_fraction")):
        values = np.unique(y[rows])
        if len(values) == 1:
            log.warning("%s: the %s split's target holds one value (%.6g in its %d rows): %s_r2 is undefined there "
                        "(no variance to explain), %s_rmse and %s_mae are not (search.metric: val_rmse ranks trials); "
                        "add rows, raise %s, or try another data.split_seed", source, what, values[0], len(rows),
                        prefix, prefix, prefix, key)


def _many(classes: int, rows: int) -> str:
    """A note for a message of a target read as many classes (more than MANY_CLASSES) for its `rows`: how many;
    "" otherwise."""
    if classes <= MANY_CLASSES:
        return ""
    return (f"; data.target is read as {classes} classes, about {rows / classes:.1f} rows each: if its values are "
            "quantities, write them as plain numbers and set data.task: regression")


# -------------------------------------------------------------------------------------------- preprocessing
def _check_scales(train: pd.DataFrame, target: str, task: str, source: str) -> None:
    """A UserError naming a numeric feature, or a regression target, of the train split whose finite values' std
    overflows float64 (magnitudes from about 1e154): standardised, its values would be infinite for the model."""
    for name in train.columns:
        if not _numeric(train[name]) or (name == target and task != "regression"):
            continue
        values = train[name].to_numpy(np.float64, na_value=np.nan)
        values = values[np.isfinite(values)]
        with np.errstate(over="ignore", invalid="ignore"):
            std = values.std() if len(values) else 0.0
        if np.isfinite(std):
            continue
        fix = ("the model predicts it in those units" if name == target else
               f"or leave it out with data.drop: [{_plain(name)!r}]")
        raise UserError(f"{source}: column {name!r}{' (data.target)' * (name == target)} holds numbers too large to "
                        f"standardise (up to {np.abs(values).max():.3g} in magnitude: their std overflows float64): "
                        f"rescale it in the file (divide it by a power of ten, or take its logarithm); {fix}")


def _scale(std: np.ndarray) -> np.ndarray:
    """std where it can divide (finite, > 0), else 1: a constant or empty column is only centred."""
    return np.where(np.isfinite(std) & (std > 0), std, 1.0)


@dataclass(frozen=True)
class Preprocessing:
    """How a table becomes the model's inputs and targets, fitted on the train split. The model takes `numeric`
    (float32: the standardised numeric columns, then the missing indicators of `indicators`) and `categorical`
    (int64: one index per column of `categories`: MISSING, UNKNOWN, or 2 + the value's place in its vocabulary)."""

    task: str  # classification | regression
    target: str
    numeric: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    median: tuple[float, ...]
    indicators: tuple[str, ...]  # numeric columns that miss values in the train split
    categories: Mapping[str, tuple[str, ...]]  # categorical column -> its values in the train split, as text
    labels: tuple[str, ...] = ()  # classification: the class names
    target_mean: float = 0.0  # regression: the network learns (target - target_mean) / target_std
    target_std: float = 1.0
    missing: tuple[str, ...] | None = None  # the CSV texts read as missing (data.missing); None: pandas' defaults
    encoding: str = ENCODING  # a CSV file's text encoding (data.encoding)
    decimal: str = DECIMAL  # a CSV file's decimal mark (data.decimal)
    low: tuple[float | None, ...] = ()  # each numeric column's smallest value in the train split (None: no value);
    high: tuple[float | None, ...] = ()  # its largest. (): a card written before they were kept
    withheld: tuple[str, ...] = ()  # categorical columns of nearly a value per train row holding one (an id, a
    # name): their values stay in the card, out of GET /model and the MLflow input example (`withheld_columns`)

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns the model reads: the numeric ones, then the categorical ones."""
        return (*self.numeric, *self.categories)

    @property
    def num_numeric(self) -> int:
        """The width of the `numeric` input."""
        return len(self.numeric) + len(self.indicators)

    @property
    def cardinalities(self) -> list[int]:
        """The indices each categorical column takes (its values and the two reserved ones)."""
        return [len(values) + 2 for values in self.categories.values()]

    @property
    def outputs(self) -> int:
        return len(self.labels) if self.task == "classification" else 1

    @classmethod
    def fit(cls, train: pd.DataFrame, target: str, task: str, labels: tuple[str, ...] = (),
            missing: tuple[str, ...] | None = None, encoding: str = ENCODING, decimal: str = DECIMAL
            ) -> Preprocessing:
        """The statistics of the train split's columns (numbers: numeric; anything else: categorical), and the
        texts `missing`, the `encoding` and the `decimal` mark the table was read with, for rows to be read alike."""
        features = [c for c in train.columns if c != target]
        numeric = [c for c in features if _numeric(train[c])]
        values = train[numeric].to_numpy(np.float64, na_value=np.nan, copy=True)
        values[~np.isfinite(values)] = np.nan
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a column missing in every train row: mean of nothing
            mean, std, median = np.nanmean(values, 0), np.nanstd(values, 0), np.nanmedian(values, 0)
            low, high = np.nanmin(values, 0, initial=np.inf), np.nanmax(values, 0, initial=-np.inf)
        y = train[target].to_numpy(np.float64) if task == "regression" else np.zeros(1)
        return cls(
            task=task,
            target=str(target),
            numeric=tuple(str(c) for c in numeric),
            mean=tuple(np.nan_to_num(mean).tolist()),
            std=tuple(_scale(std).tolist()),
            median=tuple(np.nan_to_num(median).tolist()),
            indicators=tuple(str(c) for c, gaps in zip(numeric, np.isnan(values).any(0)) if gaps),
            categories={str(c): tuple(sorted(set(train[c].dropna().astype(str).unique()))) for c in features
                        if c not in numeric},
            labels=tuple(labels),
            target_mean=float(y.mean()) if task == "regression" else 0.0,
            target_std=float(_scale(np.array(y.std()))) if task == "regression" else 1.0,
            missing=missing,
            encoding=encoding,
            decimal=decimal,
            low=tuple(float(v) if np.isfinite(v) else None for v in low),
            high=tuple(float(v) if np.isfinite(v) else None for v in high),
            withheld=tuple(str(c) for c in features if c not in numeric and _withheld(train[c].dropna())),
        )

    def encode(self, frame: pd.DataFrame) -> tuple[torch.Tensor, torch.Tensor]:
        """(numeric float32 (N, num_numeric), categorical int64 (N, categorical columns)) of the rows of `frame`,
        whose numeric columns hold numbers (NaN or infinite: missing); other columns are ignored."""
        values = frame[list(self.numeric)].to_numpy(np.float64, na_value=np.nan)
        missing = ~np.isfinite(values)
        scaled = (np.where(missing, self.median, values) - np.array(self.mean)) / np.array(self.std)
        flags = missing[:, [self.numeric.index(c) for c in self.indicators]]
        numeric = np.concatenate([scaled, flags], axis=1).astype(np.float32)
        codes = [_codes(frame[column], values) for column, values in self.categories.items()]
        categorical = np.stack(codes, axis=1) if codes else np.zeros((len(frame), 0), np.int64)
        return torch.from_numpy(numeric), torch.from_numpy(categorical)

    def encode_target(self, column: pd.Series) -> torch.Tensor:
        """Class indices (int64), or the values in their own units (float64: float32 rounds a value as large as
        123456789 to a multiple of 8)."""
        if self.task == "regression":
            return torch.from_numpy(column.to_numpy(np.float64, copy=True))
        index = {name: i for i, name in enumerate(self.labels)}
        return torch.from_numpy(_class_names(column).map(index).to_numpy(np.int64, copy=True))

    def as_card(self) -> dict[str, Any]:
        """The model card's account of the preprocessing (plain JSON): the inputs' column order, the numeric
        scalers (with each column's range in the train split, "min" and "max"), the category vocabularies, the task, the target, the labels or the target's scaler, how a CSV file
        is read ("encoding", "decimal"; a card without them: utf-8 and ".") and the texts read as missing where
        data.missing set them ("missing_texts"; a card without it: pandas' defaults)."""
        card: dict[str, Any] = {
            "task": self.task,
            "target": self.target,
            "columns": {"numeric": list(self.numeric), "missing_indicators": list(self.indicators),
                        "categorical": list(self.categories)},
            "scalers": {c: {"mean": m, "std": s, "median": d}
                        for c, m, s, d in zip(self.numeric, self.mean, self.std, self.median)},
            "categories": {c: list(values) for c, values in self.categories.items()},
            "category_indices": {"missing": MISSING, "unknown": UNKNOWN, "first_value": 2},
            "encoding": self.encoding,
            "decimal": self.decimal,
        }
        for column, low, high in zip(self.numeric, self.low, self.high):
            card["scalers"][column].update(min=low, max=high)
        if self.task == "classification":
            card["labels"] = list(self.labels)
        else:
            card["target_scaler"] = {"mean": self.target_mean, "std": self.target_std}
        if self.missing is not None:
            card["missing_texts"] = list(self.missing)
        card["withheld_categories"] = list(self.withheld)
        return card

    @classmethod
    def from_card(cls, card: Mapping[str, Any]) -> Preprocessing:
        """The preprocessing a model card (or a checkpoint) records, as `as_card` wrote it."""
        numeric = card["columns"]["numeric"]
        scalers = [card["scalers"][c] for c in numeric]
        target_scaler = card.get("target_scaler", {"mean": 0.0, "std": 1.0})
        return cls(
            task=card["task"],
            target=card["target"],
            numeric=tuple(numeric),
            mean=tuple(s["mean"] for s in scalers),
            std=tuple(s["std"] for s in scalers),
            median=tuple(s["median"] for s in scalers),
            indicators=tuple(card["columns"]["missing_indicators"]),
            categories={c: tuple(card["categories"][c]) for c in card["columns"]["categorical"]},
            labels=tuple(card.get("labels", ())),
            target_mean=target_scaler["mean"],
            target_std=target_scaler["std"],
            missing=tuple(card["missing_texts"]) if "missing_texts" in card else None,
            encoding=card.get("encoding", ENCODING),
            decimal=card.get("decimal", DECIMAL),
            low=tuple(s["min"] for s in scalers) if all("min" in s for s in scalers) else (),
            high=tuple(s["max"] for s in scalers) if all("max" in s for s in scalers) else (),
            withheld=tuple(withheld_columns(card)),
        )


def _codes(column: pd.Series, vocabulary: tuple[str, ...]) -> np.ndarray:
    """The indices of a categorical column's values: MISSING, UNKNOWN, or 2 + the place in `vocabulary`. A whole
    number is found however it is written (5, 5.0, "5", "5.0" match "5" or "5.0": `_spelled`)."""
    text = column.astype(str)
    unheld = pd.unique(text[~text.isin(vocabulary)])
    if len(unheld):
        spelled = {value: _spelled(value, set(vocabulary)) for value in unheld}
        text = text.map(lambda value: spelled.get(value, value))
    known = pd.Categorical(text, categories=list(vocabulary)).codes.astype(np.int64)
    return np.where(column.isna().to_numpy(), MISSING, np.where(known < 0, UNKNOWN, known + 2))


def _spelled(text: str, vocabulary: set[str]) -> str:
    """`text` as `vocabulary` writes it where it writes the same value otherwise (`_spellings`); a missing value (a
    float NaN that astype(str) keeps) as it is: it is encoded as MISSING."""
    if not isinstance(text, str):
        return text
    return next((s for s in _spellings(text) if s in vocabulary), text)


def _spellings(text: str) -> tuple[str, ...]:
    """The other ways training may have written `text`: a whole number as "5" or "5.0" (a column read as numbers
    with a missing cell, or as text, or a client's JSON number); a datetime at midnight as its date, and a date as
    that midnight ("2024-01-01" and "2024-01-01 00:00:00": pandas writes a column of datetimes as dates where each
    is midnight, and one value alone with its time); a truth value as pandas' CSV reader reads it ("TRUE", "true"
    and "True" are the bool True of a column of them, whose category is "True")."""
    truth = next((texts for texts in BOOL_TEXTS if text in texts), None)
    if truth is not None:
        return tuple(spelled for spelled in truth if spelled != text)
    if re.fullmatch(DATE + MIDNIGHT, text):
        return (text[:-len(MIDNIGHT)],)
    if re.fullmatch(DATE, text):
        return (text + MIDNIGHT,)
    try:
        number = float(text)
    except ValueError:
        return ()
    spellings = (str(int(number)), str(number)) if number.is_integer() else ()
    return spellings if text in spellings else ()  # not plainly written ("05", " 5", "1_000"): none


# ---------------------------------------------------------------------------------------------- the splits
@dataclass
class Split:
    """Rows encoded as tensors; batches are slices of a (seeded) permutation."""

    numeric: torch.Tensor  # float32 (N, num_numeric)
    categorical: torch.Tensor  # int64 (N, categorical columns)
    y: torch.Tensor  # int64 class indices, or float64 targets in their own units
    rows: np.ndarray  # each row's number in the table (0: the first row after the header)

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device: torch.device) -> Split:
        return replace(self, numeric=self.numeric.to(device), categorical=self.categorical.to(device),
                       y=self.y.to(device))

    def batches(self, batch_size: int, *, generator: torch.Generator | None = None,
                drop_last: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """(numeric, categorical, y) batches in a random order drawn from `generator` (in order without one).
        `drop_last` drops a last partial batch when there is at least one full batch."""
        for index in batch_indices(len(self), batch_size, generator=generator, drop_last=drop_last,
                                   device=self.y.device):
            yield self.numeric[index], self.categorical[index], self.y[index]


@dataclass
class Data:
    """A table split into train/val/test and encoded, with the preprocessing fitted on its train split."""

    name: str
    train: Split
    val: Split
    test: Split
    preprocessing: Preprocessing
    fingerprint: str
    test_rows: pd.DataFrame | None = None  # the test split's rows as read, for a model of other preprocessing
    path: str | None = None  # the file read (dataset: csv)
    spans: str = ""  # split by time (data.order): each split's first and last time, for describe()

    @property
    def labels(self) -> list[str]:
        """The class names (none for regression)."""
        return list(self.preprocessing.labels)

    @property
    def input_shape(self) -> tuple[int, int]:
        """(numeric inputs, categorical columns): the widths of the model's two inputs."""
        return self.preprocessing.num_numeric, len(self.preprocessing.categories)

    def describe(self) -> str:
        """One line: its name, split sizes, columns and task (`autotune train` prints it)."""
        prep = self.preprocessing
        task = f"{len(prep.labels)} classes" if prep.task == "classification" else f"regression of {prep.target!r}"
        name = f"{self.name} {self.path}" if self.path else self.name
        return (f"{name}, {len(self.train)} train / {len(self.val)} val / {len(self.test)} test, "
                f"{len(prep.numeric)} numeric and {len(prep.categories)} categorical columns, {task}"
                + (f"; {self.spans}" if self.spans else ""))

    def to(self, device: torch.device) -> Data:
        """The same data with its splits on `device` (done once per trial, not per batch)."""
        return replace(self, train=self.train.to(device), val=self.val.to(device), test=self.test.to(device))


    def test_for(self, preprocessing: Preprocessing) -> Split:
        """The test split encoded as `preprocessing` encodes it: another model's, fitted on other data (a retrain's
        current model: its scalers, vocabularies, column order and classes), given the rows as it would be served
        them (`_as_served`: a column it reads that is gone, or a cell of its numeric columns that is not a number, is
        missing, with a warning). A UserError for a class it does not know."""
        if preprocessing == self.preprocessing or self.test_rows is None:
            return self.test
        rows = self.test_rows
        if preprocessing.task == "classification":
            unknown = sorted(set(_class_names(rows[preprocessing.target])) - set(preprocessing.labels))
            if unknown:
                raise UserError(f"the model knows the classes {', '.join(map(repr, preprocessing.labels))}; the test "
                                f"split also holds {', '.join(map(repr, unknown))}")
        numeric, categorical = preprocessing.encode(_as_served(rows, preprocessing))
        return Split(numeric, categorical, preprocessing.encode_target(rows[preprocessing.target]),
                     rows.index.to_numpy())


def _as_served(rows: pd.DataFrame, preprocessing: Preprocessing) -> pd.DataFrame:
    """`rows` as the model of `preprocessing` takes them: a column it reads that they lack is missing in every row
    (a number: the median; a category: MISSING), and a cell of one of its numeric columns that is not a number
    (a stray text that made the column text) is missing. One warning names them: the model is scored on what its
    clients' rows now carry."""
    gone = [c for c in preprocessing.columns if c not in rows]
    numbers = {c: pd.to_numeric(rows[c].astype(object), errors="coerce") for c in preprocessing.numeric
               if c in rows and not _numeric(rows[c])}
    texts = {c: int((rows[c].notna() & numbers[c].isna()).sum()) for c in numbers}
    texts = {c: n for c, n in texts.items() if n}
    if gone or texts:
        what = [f"the columns it reads that the data no longer has ({', '.join(map(repr, gone))}) are missing in "
                "every test row"] if gone else []
        what += [f"{n} cells of {c!r} that are not numbers are missing" for c, n in texts.items()]
        log.warning("the model (trained on other data) is tested on these rows as it would be served them: %s",
                    "; ".join(what))
    return rows.assign(**{c: np.nan for c in gone}, **numbers)

def load(dataset: str, *, path: str | None = None, target: str | None = None, task: str = "auto",
         val_fraction: float = 0.1, test_fraction: float = 0.1, split_seed: int = 0,
         drop: list[str] | None = None, key: list[str] | None = None, missing: list[str] | None = None,
         encoding: str = ENCODING, decimal: str = DECIMAL, order: str | None = None) -> Data:
    """Read the table (a CSV file with the texts `missing` as its missing values, None: pandas' defaults; as text in
    `encoding`, with `decimal` as its numbers' decimal mark), split it by each row's values in the `key` columns
    (None: every column, those of `drop` too) and `split_seed` (`autotune.splits`), or by time, the latest rows of
    the `order` column for validation and test (`autotune.splits.ordered`), leave out the columns of `drop`
    and those without values, fit the preprocessing on the train split and encode each split. A UserError names
    the file or column and the fix."""
    texts = _missing_texts(missing, path)
    frame, source, target = _table(dataset, path, target, texts, encoding, decimal)
    _check_columns(frame, target, source)
    _check_repeated_names(path, encoding, source)
    dropped = _named(frame, drop, "data.drop", target, source)
    key = _named(frame, key, "data.key", target, source) or None
    frame = _labelled(frame, target, source)
    task = _task(frame[target], task, source)
    _check_target(frame[target], task, source)
    labels = labels_of(frame[target]) if task == "classification" else ()
    _warn_alike_labels(labels, target, source)
    times = _order_times(frame, order, target, source)
    ordering = frame[order] if times is not None else None  # before data.drop may leave it out
    keys = row_keys(frame, key)
    _warn_repeats(keys, source, key)
    contents = keys if key is None else row_keys(frame)  # what the fingerprint reads: every value of every row
    frame = _features(frame, target, dropped, source)
    _warn_columns(frame, target, source, order)
    split = (positions(keys, val_fraction, test_fraction, split_seed) if times is None
             else ordered(times, val_fraction, test_fraction))
    _check_sizes(source, len(frame), tuple(len(p) for p in split), val_fraction, test_fraction, order)
    if task == "classification":
        _check_classes(source, _class_names(frame[target]).to_numpy(), split)
    else:
        _warn_constant_targets(source, frame[target].to_numpy(np.float64), split)
    _check_scales(frame.iloc[split[0]], target, task, source)
    preprocessing = Preprocessing.fit(frame.iloc[split[0]], target, task, labels, texts, encoding, decimal)
    train, val, test = (_encoded(frame.iloc[p], preprocessing) for p in split)
    return Data(dataset, train, val, test, preprocessing, _fingerprint(frame, target, task, split, contents),
                test_rows=frame.iloc[split[2]], path=path, spans=_spans(ordering, times, split))


def _encoded(rows: pd.DataFrame, preprocessing: Preprocessing) -> Split:
    numeric, categorical = preprocessing.encode(rows)
    return Split(numeric, categorical, preprocessing.encode_target(rows[preprocessing.target]), rows.index.to_numpy())


def _fingerprint(frame: pd.DataFrame, target: str, task: str, positions: tuple[np.ndarray, ...],
                 keys: np.ndarray) -> str:
    """A digest of the columns and their types (those of `data.drop` left out), the target, the task and each
    split's rows (the keys of their values in every column, sorted: the same rows in another order, or the columns
    moved, are the same data). Of the table as read: `data.missing` changes it where it reads a cell otherwise."""
    columns = sorted([str(c), str(t)] for c, t in frame.dtypes.items())
    sha = hashlib.sha256(json.dumps([target, task, columns]).encode())
    for rows in positions:
        sha.update(np.sort(keys[rows]).tobytes())
    return sha.hexdigest()
