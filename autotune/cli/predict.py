"""`autotune predict MODEL_DIR FILE...`: predict with an exported model, one JSON object per line: the inputs the
`predict(model_dir, files, **options)` of the recipe that made the model reads (the image recipe: images, .npy
arrays and folders of them; the tabular recipe: rows of .csv and .parquet files)."""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from autotune.cli.common import MODEL_DIR_HELP, MODEL_FOLDER, HelpFormatter, check_folder
from autotune.errors import UserError

SURROGATE = re.compile("[\ud800-\udfff]")  # a character that UTF-8 cannot write: a byte of a non-UTF-8 file name

EPILOG = """\
examples:
  autotune predict models/digits seven.png                    one image
  autotune predict models/digits photos/ --top-k 5            every image and .npy file under photos/
  autotune predict models/digits batch.npy | jq .label        a .npy array: one image or a batch
  cat seven.png | autotune predict models/digits -            one image from standard input
  autotune predict models/tabular new_rows.csv                a table's rows (a model of the tabular recipe)
  cat new_rows.csv | autotune predict models/tabular -        a table's rows from standard input (CSV or Parquet)
  autotune predict models/tabular new.csv --keep customer_id  each row's customer_id too, to join it back
  autotune predict -v models/tabular new.csv > out.jsonl   the predictions, and on stderr the version that made them

The model's recipe reads the inputs. An image classifier prints one JSON object per line: {"file", "label",
"probability", "top_k": [{"label", "probability"}, ...]}; an image of a .npy batch also has "index". Images (PNG,
JPEG, BMP, GIF, WEBP, TIFF) of any size and mode are converted to the model's channels and resized to its input
size. Arrays must have the model's input size, as uint8 0..255 or floats in [0, 1].

A tabular model reads .csv or .parquet files of rows (the target column, if there, is ignored) and prints one
object per row: {"file", "row", "label", "probability"}, or {"file", "row", "value"} for regression. A category
the model did not see in training is encoded as "unknown", as in its test metrics: the row's object names it,
"unseen_categories": {column: value}, and one stderr line counts those rows and names their columns. So does a
number below or above every value its column held in the training rows: "outside_training_range": {column:
value}, its prediction an extrapolation (a model whose card keeps no "min" and "max" does not say).
--keep COLUMN copies a column of the rows (an id the model does not read, or one it does) into each object,
"kept": {column: value}, to join the predictions back to the rows; a file without that column is refused.

A model of another recipe reads the files that recipe's predict() reads, and prints the records it gives.

Needs only the exported directory (model.json and the files its recipe's export() wrote: the shipped recipes'
model.pt). A file that cannot be read is reported on stderr (one line) and skipped; the others are still
predicted, and the exit status is then 1. A MODEL_DIR that is not an
exported model, a model whose recipe defines no predict(), no input at all, or an output that cannot be
written (a full disk), exits 2.
"""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "predict", help="predict with an exported model, from the files its recipe reads (images, tables, ...)",
        epilog=EPILOG,
        description="Predict with an exported model, one JSON object per line, from the files its recipe's predict() "
                    "reads: the image recipe's, images, .npy arrays or folders of them; the tabular recipe's, rows "
                    "of .csv or .parquet files; another recipe's, whatever its predict() reads.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("model_dir", metavar="MODEL_DIR", help=MODEL_DIR_HELP)
    parser.add_argument("files", metavar="FILE", nargs="+",
                        help="the inputs the model's recipe reads: image files, .npy files or folders of them (the "
                             "image recipe); .csv or .parquet files of rows (the tabular recipe); another recipe's, "
                             "what its predict() reads")
    parser.add_argument("--top-k", type=int, metavar="K",
                        help="labels listed per input, where the model's recipe lists several (an image "
                             "classifier: default 3; a tabular classifier: none unless given)")
    parser.add_argument("--keep", action="append", metavar="COLUMN",
                        help="a column of the input rows to copy into each prediction, to join it back (a "
                             "customer id: --keep customer_id; repeat it for several); a tabular model's, under "
                             "\"kept\"")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print each record of the recipe's `predict(model_dir, files, **options)` as a JSON line; each input it
    refuses (a BadInput it yields) is one line on stderr, and the others are still predicted (exit 1)."""
    from autotune.errors import BadInput
    from autotune.model_dir import pinned, recipe_function
    from autotune.calls import unknown_arguments
    from autotune.tabular.rows import OUTSIDE, UNSEEN

    if args.top_k is not None and args.top_k < 1:
        raise UserError(f"--top-k must be >= 1, got {args.top_k}")
    check_folder(args.model_dir, "MODEL_DIR", MODEL_FOLDER)
    model_dir = pinned(args.model_dir)  # one version, however an export moves the canonical model's link meanwhile
    predict, card = recipe_function(model_dir, "predict",
                                    f"autotune predict cannot read inputs for the model in {args.model_dir}")
    if args.verbose:  # which model made these predictions, for a batch job's log; stderr stays empty otherwise
        print(f"autotune predict: {args.model_dir}: version {card.get('version', 'unknown')}, made "
              f"{card.get('created', 'at an unknown time')}", file=sys.stderr)
    options = {name: value for name, value in (("top_k", args.top_k), ("keep", args.keep)) if value is not None}
    for name in options:
        if unknown_arguments(predict, [name], hidden=("model_dir", "files")):
            flag = f"--{name.replace('_', '-')}"
            raise UserError(f"{flag} does not apply to the model in {args.model_dir}: the predict() of recipe "
                            f"{card.get('recipe')!r} takes no {name}; drop {flag}")
    failed = predicted = 0
    noted: dict[str, dict[str, int]] = {UNSEEN: {}, OUTSIDE: {}}  # a tabular model's: {column: rows} in order met
    rows_noted = dict.fromkeys(noted, 0)
    for record in _records(predict, card, str(model_dir), args.files, options):
        if isinstance(record, BadInput):  # a file it cannot read, a row it refuses
            failed += 1
            print(f"autotune predict: {record.source}: {record}", file=sys.stderr, flush=True)
        else:
            predicted += 1
            for key, columns in noted.items():
                if record.get(key):
                    rows_noted[key] += 1
                    for column in record[key]:
                        columns[column] = columns.get(column, 0) + 1
            _print_line(_json_line(record), predicted - 1)
    if rows_noted[UNSEEN]:
        print(f"autotune predict: {rows_noted[UNSEEN]} of {predicted} rows hold categories the model did not see in "
              f"training ({', '.join(noted[UNSEEN])}); they are encoded as 'unknown'"
              f"{_new_in_every_row(card, noted[UNSEEN], predicted) or ', as in its test metrics'}", file=sys.stderr)
    if rows_noted[OUTSIDE]:
        print(f"autotune predict: {rows_noted[OUTSIDE]} of {predicted} rows ({rows_noted[OUTSIDE] / predicted:.0%}) "
              f"hold numbers outside the range the model trained on ({_ranges(card, noted[OUTSIDE])}){_by_chance(card)}; "
              "its predictions for them extrapolate, which its test metrics do not measure", file=sys.stderr)
    return 1 if failed else 0


def _by_chance(card: dict[str, Any]) -> str:
    """How often rows drawn as the training rows were would hold a number outside its column's range in them: of n
    values, a new one is beyond the smallest or the largest with chance 2 / (n + 1), in each numeric column; "" for a
    card without the train split's size. More rows than that: the data has moved from what the model learnt."""
    n = card.get("samples", {}).get("train") if isinstance(card.get("samples"), dict) else None
    columns = len(card.get("scalers", {}))
    if not isinstance(n, int) or n < 1 or not columns:
        return ""
    share = 1 - (1 - 2 / (n + 1)) ** columns
    return f", where rows like its {n} training rows would have such a number {share:.1%} of the time"


def _ranges(card: dict[str, Any], columns: dict[str, int], shown: int = 5) -> str:
    """The first `shown` of `columns` with the range of each in the train split, as the card's scalers record it:
    "income: 1200 to 98000, age: 18 to 90, +2 more"."""
    scalers = card.get("scalers", {})
    named = [f"{column}: {scalers[column]['min']:g} to {scalers[column]['max']:g}" for column in list(columns)[:shown]]
    return ", ".join(named) + (f", +{len(columns) - shown} more" if len(columns) > shown else "")


def _new_in_every_row(card: dict[str, Any], unseen: dict[str, int], predicted: int) -> str:
    """A note on the columns whose value the model did not see in any of the `predicted` rows (a date later than
    every training row's: next month's rows), of a model whose data was split by chance (no data.order): its test
    rows shared such values with its training rows, so its test metrics promise more than these rows get; ""
    otherwise."""
    every = [column for column, rows in unseen.items() if rows == predicted]
    data = card.get("config", {}).get("data", {}) if isinstance(card.get("config"), dict) else {}
    if predicted < 2 or not every or not isinstance(data, dict) or data.get("order"):
        return ""
    return (f"; {', '.join(map(repr, every))} is new in every row (as dates later than its training's are), while "
            "its test rows, split by chance, shared their values with the rows it trained on: its test metrics may "
            "promise more than these rows get; data.order splits by time (docs/retraining.md, \"Rows ordered in "
            "time\")")


def _records(predict: Callable[..., Iterable[Any]], card: dict[str, Any], model_dir: str, files: list[str],
             options: dict[str, Any]) -> Iterator[Any]:
    """The records of the recipe's `predict(model_dir, files, **options)`; what its own code raises is one line
    (`autotune.model_dir.recipe_calls`), not a traceback."""
    from autotune.model_dir import recipe_calls

    with recipe_calls(card, "predict", predict):
        yield from predict(model_dir, files, **options)


def _json_line(record: dict[str, Any]) -> str:
    """`record` as one line of JSON, its text as written (a label "chien 🐶"), and UTF-8 whatever a file's name: a
    name that is not UTF-8 (its bytes held as surrogates by Python's surrogateescape) is written with \\udcXX
    escapes, which json.loads gives back as that name and os.fsencode as its bytes."""
    return SURROGATE.sub(lambda found: f"\\u{ord(found.group()):04x}", json.dumps(record, ensure_ascii=False))


def _print_line(line: str, written: int) -> None:
    """`line` on stdout, flushed. Where stdout cannot take it (a full disk, an I/O error), a UserError (one line, exit
    2, not 1: the predictions are incomplete whatever the inputs) that says how many lines were `written` before;
    a reader that went away (BrokenPipeError) ends the command as `autotune.cli.main` says."""
    try:
        print(line, flush=True)
    except BrokenPipeError:
        raise
    except OSError as err:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's flush at exit would fail again
        raise UserError(f"cannot write the predictions to the standard output: {err.strerror or err}; "
                        f"{written} lines were written before it, the others were not") from None
