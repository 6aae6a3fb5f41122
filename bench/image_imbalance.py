"""The image recipe on imbalanced classes, measured without Ray: train.class_weight none against balanced.

    python bench/image_imbalance.py                                   # seeds 0-9 (about a minute on one core);
                                                                      # rewrites its section of docs/benchmarks.md
    python bench/image_imbalance.py --seeds 0 --epochs 1 --no-write   # a smoke run

The digits images with the classes 0, 1 and 2 cut to a tenth of their images (as bench/tabular_categories.py cuts
the digits table), loaded through the recipe's own keyed split (data.split_seed = the seed; 15 % validation, 25 %
test). The recipe's `train` runs search_spaces/digits.yaml's default configuration (simple_cnn width 32, depth 2,
dropout 0.1, sgd lr 0.05 with nesterov momentum 0.9, batch 32; train.seed = the seed) in this process, one thread,
and `evaluate` scores its last epoch on the test images. Compared per seed: test accuracy and balanced accuracy.
"""
from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from typing import Any

from common import machine, write_section

SEEDS = "0,1,2,3,4,5,6,7,8,9"
RARE, KEPT = (0, 1, 2), 0.1  # the classes cut, and the share of their images kept
CONFIG = {"model": {"arch": "simple_cnn", "width": 32, "depth": 2, "dropout": 0.1},
          "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True},
          "train": {"batch_size": 32, "device": "cpu"}}


def register_dataset() -> None:
    """`digits_rare` (seed): the digits images with RARE cut to KEPT of their images, drawn by the seed."""
    import torch

    from autotune import register
    from autotune.vision.data import Images
    from autotune.vision.datasets import digits

    @register("dataset")
    def digits_rare(root: str, seed: int = 0) -> Images:
        images = digits(root)
        draw = torch.rand(len(images.y), generator=torch.Generator().manual_seed(seed))
        keep = ~torch.isin(images.y, torch.tensor(RARE)) | (draw < KEPT)
        return Images(images.x[keep], images.y[keep], images.labels, flip=False)


def measure(seeds: list[int], epochs: int) -> list[dict[str, Any]]:
    """Per seed: the split's sizes, the rarest class's share of the training images, and {weighting: test
    metrics}."""
    import torch

    from autotune.recipes import image_classification as recipe

    records = []
    for seed in seeds:
        data = recipe.load_data({"dataset": "digits_rare", "seed": seed, "split_seed": seed, "val_fraction": 0.15,
                                 "test_fraction": 0.25})
        counts = torch.bincount(data.train.y, minlength=data.num_classes)
        scores = {}
        for weighting in ("none", "balanced"):
            config = {**CONFIG, "train": {**CONFIG["train"], "epochs": epochs, "seed": seed, "class_weight": weighting}}
            kept: dict[str, Any] = {}
            recipe.train(config, lambda metrics, save: kept.update(save=save), data=data)
            with tempfile.TemporaryDirectory() as folder:
                kept["save"](folder)  # the last epoch's checkpoint
                scores[weighting] = recipe.evaluate(folder, data)
        records.append({"seed": seed, "sizes": [len(data.train), len(data.val), len(data.test)],
                        "rarest": float(counts.min() / counts.sum()), "scores": scores})
        print(f"seed {seed}: " + "; ".join(f"{w} acc {s['test_accuracy']:.3f} bal {s['test_balanced_accuracy']:.3f}"
                                           for w, s in scores.items()), flush=True)
    return records


def _mean_std(values: list[float], spec: str) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):{spec}} ± {spread:{spec.lstrip('+')}}"


def render(records: list[dict[str, Any]], info: dict[str, Any], command: str, epochs: int) -> str:
    sizes = " / ".join(str(int(statistics.median(r["sizes"][i] for r in records))) for i in range(3))
    lines = [
        "## Images: imbalanced classes (train.class_weight)",
        "",
        f"Command: `{command}` ({info['minutes']:.1f} minutes, {info['date']}; load average {info['load_start']:.2f} "
        f"at the start, {info['load_end']:.2f} at the end). Seeds {', '.join(str(r['seed']) for r in records)}. "
        f"The digits images with the classes 0, 1 and 2 cut to a tenth of their images (as the tabular measure cuts "
        f"the digits table); the recipe's keyed split (15 % validation, 25 % test; median {sizes} images; the rarest "
        f"class {100 * statistics.fmean(r['rarest'] for r in records):.1f} % of the training images). No Ray: the "
        f"recipe's `train` on search_spaces/digits.yaml's default configuration ({epochs} epochs), one thread, "
        "scored by `evaluate` after the last epoch. Higher is better; mean ± std over the seeds.",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['ram_gib']} GiB RAM, {info['os']}; Python "
        f"{info['python']}, torch {info['torch']}, numpy {info['numpy']}.",
        "",
        "| train.class_weight | test accuracy | test balanced accuracy |",
        "|---|---:|---:|",
    ]
    for weighting in ("none", "balanced"):
        acc = _mean_std([r["scores"][weighting]["test_accuracy"] for r in records], ".3f")
        bal = _mean_std([r["scores"][weighting]["test_balanced_accuracy"] for r in records], ".3f")
        lines.append(f"| {weighting} | {acc} | {bal} |")
    gains = {k: [r["scores"]["balanced"][k] - r["scores"]["none"][k] for r in records]
             for k in ("test_accuracy", "test_balanced_accuracy")}
    higher, lower = (sum(g * sign > 0 for g in gains["test_balanced_accuracy"]) for sign in (1, -1))
    lines += ["", f"Balanced against none, paired per seed: balanced accuracy "
                  f"{_mean_std(gains['test_balanced_accuracy'], '+.3f')} (higher on {higher}, lower on {lower} of "
                  f"{len(records)} seeds), accuracy {_mean_std(gains['test_accuracy'], '+.3f')}."]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default=SEEDS, help="comma-separated seeds (the cut, the split, training)")
    parser.add_argument("--epochs", type=int, default=8, help="train.epochs (digits.yaml's: 8)")
    parser.add_argument("--no-write", action="store_true", help="leave docs/benchmarks.md alone")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if not seeds:
        parser.error("--seeds names no seed")
    import torch

    torch.set_num_threads(1)
    logging.getLogger("autotune").setLevel(logging.ERROR)
    register_dataset()
    info = machine()
    info.update(load_start=info.pop("load_average"))
    began = time.perf_counter()
    records = measure(seeds, args.epochs)
    info.update(load_end=os.getloadavg()[0], minutes=(time.perf_counter() - began) / 60,
                date=time.strftime("%Y-%m-%d %H:%M"))
    given = [f"--{k} {getattr(args, k)}" for k, v in {"seeds": SEEDS, "epochs": 8}.items() if getattr(args, k) != v]
    body = render(records, info, " ".join(["python bench/image_imbalance.py", *given]), args.epochs)
    print(body)
    if not args.no_write:
        write_section("image_imbalance", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
