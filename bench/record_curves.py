"""Record a learning-curve table: every configuration of a discrete space trained to its last epoch with the
shipped image_classification recipe, every epoch's metrics and seconds kept.

    python bench/record_curves.py digits_mlp            # records (or continues) bench/curves/digits_mlp.json.gz
    python bench/record_curves.py mnist_cnn --workers 2 # processes side by side, 1 torch thread each
    python bench/record_curves.py --list                # the tables, their grids and sizes

Each configuration's curve is appended to `bench/curves/.partial/<name>.jsonl` as it finishes, so an interrupted
recording continues where it stopped; once every configuration is there, the table is packed into
`bench/curves/<name>.json.gz` (what `bench/replay_recipe.py` serves). The recording is done once: the tables
are committed, and nothing in a test or a benchmark run trains them again.
"""
from __future__ import annotations

import argparse
import gzip
import itertools
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Any

from common import MNIST_DATA, machine

CURVES = Path(__file__).resolve().parent / "curves"
DIGITS_DATA = {"dataset": "digits", "val_fraction": 0.15, "test_fraction": 0.15}
METRICS = ("val_accuracy", "val_loss", "train_loss", "epoch_seconds")

# name -> what is fixed (a partial recipe config), the grid (dotted key -> values), the epochs of every curve
TABLES: dict[str, dict[str, Any]] = {
    "digits_mlp": {
        "fixed": {"data": DIGITS_DATA, "model": {"arch": "mlp"},
                  "optimizer": {"name": "sgd", "momentum": 0.9, "weight_decay": 5e-4, "schedule": "cosine"}},
        "grid": {"optimizer.lr": [0.001, 0.003, 0.01, 0.03, 0.1, 0.3], "train.batch_size": [16, 64, 256],
                 "model.width": [32, 128, 512], "model.depth": [1, 2, 3], "model.dropout": [0.0, 0.25, 0.5]},
        "epochs": 40,
    },
    "digits_cnn": {
        "fixed": {"data": DIGITS_DATA, "model": {"arch": "simple_cnn"},
                  "optimizer": {"name": "sgd", "momentum": 0.9, "weight_decay": 5e-4, "schedule": "cosine"}},
        "grid": {"optimizer.lr": [0.001, 0.003, 0.01, 0.03, 0.1, 0.3], "train.batch_size": [16, 128],
                 "model.width": [8, 16, 32], "model.depth": [1, 2, 3], "model.dropout": [0.0, 0.3]},
        "epochs": 30,
    },
    "mnist_mlp": {
        "fixed": {"data": MNIST_DATA, "model": {"arch": "mlp"},
                  "optimizer": {"name": "sgd", "momentum": 0.9, "weight_decay": 5e-4, "schedule": "cosine"}},
        "grid": {"optimizer.lr": [0.003, 0.01, 0.03, 0.1, 0.3], "train.batch_size": [32, 128, 512],
                 "model.width": [64, 256, 1024], "model.depth": [1, 2], "model.dropout": [0.0, 0.3]},
        "epochs": 16,
    },
    "mnist_cnn": {
        "fixed": {"data": MNIST_DATA, "model": {"arch": "simple_cnn"},
                  "optimizer": {"name": "sgd", "momentum": 0.9, "weight_decay": 5e-4, "schedule": "cosine"}},
        "grid": {"optimizer.lr": [0.003, 0.01, 0.03, 0.1, 0.3], "train.batch_size": [64, 256],
                 "model.width": [8, 16], "model.depth": [2, 3]},
        "epochs": 10,
    },
}


def configurations(table: dict[str, Any]) -> list[dict[str, Any]]:
    """Every point of the table's grid, as {dotted key: value}, in a fixed order."""
    keys = list(table["grid"])
    return [dict(zip(keys, values)) for values in itertools.product(*(table["grid"][k] for k in keys))]


def _config(table: dict[str, Any], point: dict[str, Any]) -> dict[str, Any]:
    """The recipe config of one grid point: the table's fixed ingredients with the point's values set."""
    config = json.loads(json.dumps(table["fixed"]))
    config.setdefault("train", {}).update(epochs=table["epochs"], device="cpu", seed=0)
    for key, value in point.items():
        section, name = key.split(".")
        config.setdefault(section, {})[name] = value
    return config


_DATA: dict[str, Any] = {}


def _record(args: tuple[str, int]) -> dict[str, Any]:
    """Train grid point `index` of table `name` to its last epoch: its curve, final test accuracy and seconds."""
    import math

    import torch

    from autotune.errors import TrialError
    from autotune.recipes import Checkpoint, written
    from autotune.recipes import image_classification as recipe

    torch.set_num_threads(1)
    name, index = args
    table = TABLES[name]
    point = configurations(table)[index]
    config = _config(table, point)
    if name not in _DATA:
        _DATA[name] = recipe.load_data(config["data"])
    data = _DATA[name]
    curve: dict[str, list[float]] = {m: [] for m in METRICS}
    last: dict[str, Any] = {}

    def report(metrics: dict[str, float], checkpoint: Checkpoint) -> None:
        for metric in METRICS:
            curve[metric].append(float(metrics[metric]))
        if metrics["epoch"] == table["epochs"] and checkpoint is not None:
            with written(checkpoint) as folder:
                last["test"] = recipe.evaluate(folder, data)["test_accuracy"]

    began = time.perf_counter()
    try:
        recipe.train(config, report, data=data)
        diverged = False
    except TrialError:  # a non-finite loss: the rest of the curve is chance level (what a diverged run is worth)
        diverged = True
    epochs = len(curve["val_accuracy"])
    if diverged:
        chance = 1.0 / data.num_classes
        for metric in METRICS:
            fill = {"val_accuracy": chance, "epoch_seconds": curve["epoch_seconds"][-1] if epochs else 0.0}
            curve[metric] += [fill.get(metric, math.inf)] * (table["epochs"] - epochs)
    return {"index": index, "point": point, "curve": curve, "test_accuracy": last.get("test", 1.0 / data.num_classes),
            "diverged_at": epochs + 1 if diverged else None, "seconds": time.perf_counter() - began}


def _partial(name: str) -> Path:
    return CURVES / ".partial" / f"{name}.jsonl"


def record(name: str, workers: int) -> None:
    table = TABLES[name]
    points = configurations(table)
    partial = _partial(name)
    partial.parent.mkdir(parents=True, exist_ok=True)
    done = {json.loads(line)["index"] for line in partial.read_text().splitlines()} if partial.exists() else set()
    todo = [(name, i) for i in range(len(points)) if i not in done]
    print(f"{name}: {len(points)} configurations x {table['epochs']} epochs, {len(done)} recorded, "
          f"{len(todo)} to go", flush=True)
    began = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers) as pool, partial.open("a") as out:
        for count, row in enumerate(pool.imap_unordered(_record, todo), start=1):
            out.write(json.dumps(row) + "\n")
            out.flush()
            if count % 10 == 0 or count == len(todo):
                elapsed = time.perf_counter() - began
                print(f"  {count}/{len(todo)} in {elapsed:.0f} s (eta {elapsed / count * (len(todo) - count):.0f} s)",
                      flush=True)
    pack(name)


def _round(values: list[float], digits: int = 5) -> list[float | None]:
    return [None if v == float("inf") else round(v, digits) for v in values]


def pack(name: str) -> Path:
    """Write bench/curves/<name>.json.gz from the recorded rows (every grid point must be there)."""
    table = TABLES[name]
    rows = {r["index"]: r for r in map(json.loads, _partial(name).read_text().splitlines())}
    points = configurations(table)
    missing = [i for i in range(len(points)) if i not in rows]
    if missing:
        raise SystemExit(f"{name}: {len(missing)} configuration(s) not recorded yet; run the recording again")
    import torch

    info = machine()
    document = {
        "name": name,
        "recipe": "image_classification",
        "fixed": table["fixed"],
        "grid": table["grid"],
        "epochs": table["epochs"],
        "metrics": list(METRICS),
        "recorded": {"date": time.strftime("%Y-%m-%d"), "cpu": info["cpu"], "torch": torch.__version__,
                     "threads": 1, "workers_side_by_side": "2", "seed": 0,
                     "seconds": round(sum(r["seconds"] for r in rows.values()), 1)},
        "points": [[rows[i]["point"][k] for k in table["grid"]] for i in range(len(points))],
        "curves": {m: [_round(rows[i]["curve"][m], 4 if m == "epoch_seconds" else 5) for i in range(len(points))]
                   for m in METRICS},
        "test_accuracy": [round(rows[i]["test_accuracy"], 5) for i in range(len(points))],
        "diverged_at": [rows[i]["diverged_at"] for i in range(len(points))],
    }
    path = CURVES / f"{name}.json.gz"
    with gzip.open(path, "wt", compresslevel=9) as out:
        json.dump(document, out, separators=(",", ":"))
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)", flush=True)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tables", nargs="*", help=f"which tables ({', '.join(TABLES)}); default: all")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--list", action="store_true", help="list the tables and their sizes")
    parser.add_argument("--pack", action="store_true", help="only pack what is recorded")
    args = parser.parse_args()
    unknown = sorted(set(args.tables) - set(TABLES))
    if unknown:
        parser.error(f"unknown table(s) {', '.join(unknown)}; choose from {', '.join(TABLES)}")
    for name in args.tables or list(TABLES):
        if args.list:
            print(f"{name}: {len(configurations(TABLES[name]))} configurations x {TABLES[name]['epochs']} epochs; "
                  f"grid {TABLES[name]['grid']}")
        elif args.pack:
            pack(name)
        else:
            record(name, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
