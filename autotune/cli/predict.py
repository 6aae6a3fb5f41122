"""`autotune predict MODEL_DIR FILE...`: predict with an exported model, one JSON object per input: images and
.npy arrays for an image classifier; for another recipe's model, the inputs its recipe's `predict` reads (the
tabular recipe: rows of .csv and .parquet files)."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

EPILOG = """\
examples:
  autotune predict models/digits seven.png                   one image
  autotune predict models/digits photos/ --top-k 5           every image and .npy file under photos/
  autotune predict models/digits batch.npy | jq .label       a .npy array: one image or a batch
  autotune predict models/tabular new_rows.csv               a table's rows (a model of the tabular recipe)

Prints one JSON object per line: {"file", "label", "probability", "top_k": [{"label", "probability"}, ...]};
an image of a .npy batch also has "index". Images (PNG, JPEG, BMP, GIF, WEBP, TIFF) of any size and mode are
converted to the model's channels and resized to its input size. Arrays must have the model's input size, as
uint8 0..255 or floats in [0, 1]. Needs only the exported directory (model.pt, model.json).

A tabular model reads .csv or .parquet files of rows (the target column, if there, is ignored) and prints one
object per row: {"file", "row", "label", "probability"}, or {"file", "row", "value"} for regression.

A file that cannot be read is reported on stderr (one line) and skipped; the others are still predicted, and
the exit status is then 1. A MODEL_DIR that is not an exported model, or no input at all, exits 2.
"""

BATCH = 256  # images predicted at once


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "predict", help="label images or .npy arrays with an exported model", epilog=EPILOG,
        description="Predict the label of images, .npy arrays or folders of them with an exported model.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model_dir", metavar="MODEL_DIR", help="an exported model directory (model.pt, model.json)")
    parser.add_argument("files", metavar="FILE", nargs="+", help="image files, .npy files or folders of them")
    parser.add_argument("--top-k", type=int, default=3, metavar="K", help="labels listed per input (default 3)")
    parser.set_defaults(func=run)


def expand(paths: list[str]) -> Iterator[Path]:
    """Each path, with a folder replaced by the images and .npy files under it (recursively, sorted)."""
    from autotune.vision.datasets import IMAGE_SUFFIXES

    for name in paths:
        path = Path(name)
        if path.is_dir():
            suffixes = {*IMAGE_SUFFIXES, ".npy"}
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
        else:
            yield path


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from autotune.errors import UserError
    from autotune.inference import BadInput, array_batch, image_pixels, records
    from autotune.vision.predictor import load_model

    if args.top_k < 1:
        raise UserError(f"--top-k must be >= 1, got {args.top_k}")
    card_file = Path(args.model_dir) / "model.json"
    card = json.loads(card_file.read_text()) if card_file.is_file() else {}
    if card and "input_shape" not in card:  # another recipe's model: its recipe reads the inputs
        return _with_recipe(args, card)
    model = load_model(args.model_dir)
    top_k = min(args.top_k, len(model.labels))
    pending: list[tuple[str, np.ndarray]] = []
    failed = seen = 0

    def emit(rows: list[dict[str, Any]]) -> None:
        for row in rows:
            print(json.dumps(row), flush=True)

    def flush() -> None:
        if pending:
            names, pixels = zip(*pending)
            emit(records(model, pixels, names, top_k))
            pending.clear()

    for path in expand(args.files):
        seen += 1
        try:
            if path.suffix.lower() == ".npy":
                batch = array_batch(np.load(path, allow_pickle=False), model.input_shape)
                flush()
                rows = records(model, batch, [str(path)] * len(batch), top_k)
                emit([{**row, "index": i} for i, row in enumerate(rows)] if len(rows) > 1 else rows)
            else:
                pending.append((str(path), image_pixels(path, model.input_shape, model.resize)))
        except (BadInput, OSError, ValueError) as err:  # unreadable file, not an image, bad .npy
            failed += 1
            reason = err.strerror if isinstance(err, OSError) and err.strerror else err
            print(f"autotune predict: {path}: {reason}", file=sys.stderr, flush=True)
        if len(pending) >= BATCH:
            flush()
    flush()
    if seen == 0:
        raise UserError(f"no images or .npy files in {', '.join(args.files)}")
    return 1 if failed else 0


def _with_recipe(args: argparse.Namespace, card: dict[str, Any]) -> int:
    """Predict with the `predict(model_dir, files)` of the recipe that made the model: a line per record, a line on
    stderr per file it refuses (the others are still predicted; exit 1)."""
    from autotune import recipes
    from autotune.errors import UserError

    recipe = recipes.load(card.get("recipe", ""), card.get("base_dir"))
    predict = getattr(recipe, "predict", None)
    if predict is None:
        raise UserError(f"recipe {card.get('recipe')!r} defines no predict(): autotune predict cannot read inputs "
                        f"for the model in {args.model_dir}")
    failed = 0
    for file in args.files:
        try:
            for record in predict(args.model_dir, [file]):
                print(json.dumps(record), flush=True)
        except UserError as err:  # a file it cannot read, a row it refuses
            failed += 1
            print(f"autotune predict: {file}: {err}", file=sys.stderr, flush=True)
    return 1 if failed else 0
