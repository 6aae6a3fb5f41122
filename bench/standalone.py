"""Standalone speed of the image_classification recipe (no Ray): samples/second and epoch time on MNIST-10k.

    python bench/standalone.py            # measures, prints, and rewrites its section of docs/benchmarks.md
    python bench/standalone.py --no-write

Trains each model for `--epochs` epochs on the shared MNIST 10k (about 8k train / 1k val / 1k test, the recipe's
keyed split) with the recipe's own loop and reports the median of epochs 2.. (the first one pays for warm-up).
Torch's thread count is left as it is. The section records its date, the load average and the split's sizes.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from typing import TYPE_CHECKING

import torch

from autotune.recipes import image_classification as recipe
from common import DOC, MNIST_DATA, write_section

if TYPE_CHECKING:
    from autotune.vision.data import Data

MODELS = {  # name -> model section (the built-in defaults, spelled out)
    "simple_cnn": {"arch": "simple_cnn", "width": 32, "depth": 3},
    "simple_cnn (width 16)": {"arch": "simple_cnn", "width": 16, "depth": 3},
    "mlp": {"arch": "mlp", "width": 256, "depth": 2},
}


def measure(model: dict, data, epochs: int, batch_size: int) -> dict[str, float]:
    reports: list[dict[str, float]] = []
    config = {"model": model, "train": {"epochs": epochs, "batch_size": batch_size, "device": "cpu"},
              "optimizer": {"name": "sgd", "lr": 0.05}}
    recipe.train(config, lambda metrics, _dir: reports.append(metrics), data=data)
    last = reports[1:] or reports
    return {"samples_per_second": statistics.median(m["samples_per_second"] for m in last),
            "epoch_seconds": statistics.median(m["epoch_seconds"] for m in last),
            "val_accuracy": reports[-1]["val_accuracy"]}


def render(rows: list[str], data: Data, *, command: str, epochs: int, batch_size: int, load: tuple[float, float],
           date: str) -> str:
    """The section of docs/benchmarks.md: the command, its date, the split's sizes, the machine and the rows."""
    return "\n".join([
        "## Standalone recipe speed (no Ray)",
        "",
        f"Command: `{command}` ({date}; load average {load[0]:.1f} at the start, {load[1]:.1f} at the end). The "
        f"image_classification recipe's own loop on MNIST-10k (the shared 10k test set split {len(data.train)} train "
        f"/ {len(data.val)} val / {len(data.test)} test), batch size {batch_size}, SGD, CPU, median of epochs "
        f"2..{epochs} (epoch 1 is warm-up). An epoch's time includes the validation pass; samples/second counts "
        "training only.",
        "",
        f"Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch threads (the machine is shared, so numbers vary by a factor of ~2 with "
        "other work on it).",
        "",
        f"| model | train samples/s | epoch on MNIST-10k (s) | val accuracy after {epochs} epochs |",
        "|---|---:|---:|---:|",
        *rows,
    ])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()

    data = recipe.load_data(MNIST_DATA)
    load_before = os.getloadavg()[0]
    rows = []
    for name, model in MODELS.items():
        result = measure(model, data, args.epochs, args.batch_size)
        rows.append(f"| {name} | {result['samples_per_second']:,.0f} | {result['epoch_seconds']:.2f} | "
                    f"{result['val_accuracy']:.3f} |")
        print(rows[-1], flush=True)
    command = "python bench/standalone.py" + (f" --epochs {args.epochs}" if args.epochs != 3 else "") + (
        f" --batch-size {args.batch_size}" if args.batch_size != 128 else "")
    section = render(rows, data, command=command, epochs=args.epochs, batch_size=args.batch_size,
                     load=(load_before, os.getloadavg()[0]), date=time.strftime("%Y-%m-%d %H:%M"))
    if not args.no_write:
        write_section("standalone", section)
        print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
