"""A recipe that trains nothing: it replays learning curves recorded once, so that a search of hundreds of trials
runs in about a minute and every search method can be compared on the same, real curves.

`data.table` names what is replayed:
- a table in bench/curves/ (`digits_mlp`, `digits_cnn`, `mnist_mlp`, `mnist_cnn`), recorded by
  bench/record_curves.py with the shipped image_classification recipe: every configuration of a discrete grid
  trained to its last epoch. A trial's configuration is snapped to the nearest grid point (on a log scale for the
  learning rate, the batch size and the width), and the curve of that point is reported epoch by epoch.
- `synthetic`: a function whose early ranking misleads (`synthetic_curve`): learning curves that cross, where the
  configurations that start slowest end best.

Each epoch reports val_accuracy, val_loss, train_loss and the recorded epoch_seconds, with a one-file checkpoint (what
a real recipe's report costs the engine). A space uses it with `recipe: <repo>/bench/replay_recipe.py`.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autotune.errors import Diverged
from autotune.space.schema import Field, Schema, Section

CURVES = Path(__file__).resolve().parent / "curves"
LOG_KEYS = ("optimizer.lr", "train.batch_size", "model.width")  # snapped to the grid on a log scale
SYNTHETIC_EPOCHS = 50

SCHEMA = Schema(
    data=Section(table=Field(str, default="digits_mlp", help="a table in bench/curves/, or synthetic")),
    model=Section(width=Field(int, default=128, low=1), depth=Field(int, default=2, low=1),
                  dropout=Field(float, default=0.0, low=0.0, high=0.95)),
    optimizer=Section(lr=Field(float, default=0.01, low=1e-9)),
    train=Section(epochs=Field(int, default=0, low=0, help="0: every recorded epoch"),
                  batch_size=Field(int, default=64, low=1)),
    budget="train.epochs",  # early stopping counts the epochs a trial reports
)


@dataclass(frozen=True)
class Table:
    """Recorded curves: `points[i]` (one value per grid key) trained for `epochs` epochs gave `curves[m][i]`."""

    name: str
    grid: dict[str, list[float]]
    epochs: int
    points: np.ndarray  # (configurations, keys)
    curves: dict[str, np.ndarray]  # metric -> (configurations, epochs)
    test_accuracy: np.ndarray
    diverged_at: np.ndarray  # the epoch whose loss was not finite (the recipe raised there), 0: none
    fingerprint: str = field(default="")

    def index(self, config: dict[str, Any]) -> int:
        """The grid point nearest to a trial config (per key, on a log scale for LOG_KEYS)."""
        wanted = []
        for key, values in self.grid.items():
            section, name = key.split(".")
            value, grid = float(config[section][name]), np.asarray(values, dtype=float)
            scale = np.log if key in LOG_KEYS else (lambda v: v)
            wanted.append(values[int(np.argmin(np.abs(scale(grid) - scale(value))))])
        return int(np.flatnonzero((self.points == np.asarray(wanted)).all(axis=1))[0])

    def curve(self, config: dict[str, Any]) -> tuple[dict[str, np.ndarray], float]:
        i = self.index(config)
        return {m: c[i] for m, c in self.curves.items()}, float(self.test_accuracy[i])

    def diverges(self, config: dict[str, Any]) -> int:
        return int(self.diverged_at[self.index(config)])


@dataclass(frozen=True)
class Synthetic:
    """The synthetic benchmark: `synthetic_curve` over the same ingredients as the tables."""

    name: str = "synthetic"
    epochs: int = SYNTHETIC_EPOCHS
    fingerprint: str = "synthetic-v1"

    def diverges(self, config: dict[str, Any]) -> int:
        return 0

    def curve(self, config: dict[str, Any]) -> tuple[dict[str, np.ndarray], float]:
        accuracy = synthetic_curve(config["optimizer"]["lr"], config["train"]["batch_size"], config["model"]["width"],
                                   config["model"]["depth"], config["model"]["dropout"], self.epochs)
        loss = -np.log(np.clip(accuracy, 1e-3, 1.0))
        return {"val_accuracy": accuracy, "val_loss": loss, "train_loss": loss * 0.8,
                "epoch_seconds": np.full(self.epochs, 0.01 * (1 + config["model"]["width"] / 256))}, float(accuracy[-1])


def synthetic_curve(lr: float, batch_size: int, width: int, depth: int, dropout: float, epochs: int) -> np.ndarray:
    """Validation accuracy per epoch of a made-up network, built so that early accuracy ranks configurations badly.

    The final accuracy peaks at a small learning rate (1e-2.5), a small batch, depth 3, dropout 0.3 and a wide
    layer; how fast a curve rises grows with the learning rate and the batch size and shrinks with dropout and
    depth. So the best configurations are slow starters: at epoch 1 they trail the fast, mediocre ones, and their
    curves cross those later. Large learning rates also plateau early and drift down (overfitting). Each
    configuration carries a fixed offset (its "seed"), and each epoch a little noise, both from a hash of it.
    """
    u = (math.log10(lr) + 2.5) / 1.5  # 0 at the best learning rate, +-1 at 10x off
    b = math.log2(batch_size / 32) / 3  # 0 at 32, 1 at 256
    final = (0.97 - 0.10 * u * u - 0.05 * max(u, 0.0) - 0.03 * b * b - 0.02 * (depth - 3) ** 2
             - 0.12 * (dropout - 0.3) ** 2 - 0.02 * (1.0 - min(width, 512) / 512))
    speed = 10 ** (0.9 * u + 0.5 * b - 0.8 * dropout - 0.15 * (depth - 1))  # epochs^-1, roughly
    tau = 3.0 / max(speed, 0.05)
    seed = int(hashlib.sha256(f"{lr:.6g}-{batch_size}-{width}-{depth}-{dropout:.4g}".encode()).hexdigest()[:8], 16)
    rng = np.random.default_rng(seed)
    t = np.arange(1, epochs + 1, dtype=float)
    rise = 1.0 - np.exp(-t / tau)
    drift = 0.002 * max(u, 0.0) * np.maximum(t - 2 * tau, 0.0)  # fast, high-lr runs overfit after their peak
    accuracy = 0.1 + (final + rng.normal(0, 0.005) - 0.1) * rise - drift + rng.normal(0, 0.003, epochs)
    return np.clip(accuracy, 0.0, 1.0)


def load_table(name: str) -> Table:
    path = CURVES / f"{name}.json.gz"
    if not path.is_file():
        known = sorted(p.name.removesuffix(".json.gz") for p in CURVES.glob("*.json.gz"))
        raise ValueError(f"no recorded table {name!r} in {CURVES}; recorded: {', '.join(known)}, or synthetic")
    document = json.loads(gzip.decompress(path.read_bytes()))
    curves = {m: np.asarray([[np.nan if v is None else v for v in row] for row in rows], dtype=float)
              for m, rows in document["curves"].items()}
    return Table(name, document["grid"], document["epochs"], np.asarray(document["points"], dtype=float), curves,
                 np.asarray(document["test_accuracy"], dtype=float),
                 np.asarray([d or 0 for d in document["diverged_at"]], dtype=int),
                 hashlib.sha256(path.read_bytes()).hexdigest())


def load_data(data: dict[str, Any]) -> Table | Synthetic:
    return Synthetic() if data["table"] == "synthetic" else load_table(data["table"])


def _epochs(config: dict[str, Any], data: Table | Synthetic) -> int:
    epochs = config["train"]["epochs"] or data.epochs
    if epochs > data.epochs:
        raise ValueError(f"train.epochs is {epochs} but {data.name} recorded {data.epochs} epochs")
    return epochs


def train(config: dict[str, Any], report: Any, *, data: Table | Synthetic | None = None,
          checkpoint: str | None = None) -> None:
    """Report the recorded curve of `config`, from the epoch after `checkpoint`'s; raise where the recorded
    training diverged, as the recipe did."""
    data = load_data(config["data"]) if data is None else data
    curve, _ = data.curve(config)
    first = json.loads((Path(checkpoint) / "state.json").read_text())["epoch"] + 1 if checkpoint else 1
    diverges = data.diverges(config)
    for epoch in range(first, _epochs(config, data) + 1):
        if epoch == diverges:
            raise Diverged(f"non-finite training loss at epoch {epoch} (recorded)")
        metrics = {name: float(values[epoch - 1]) for name, values in curve.items()}
        with tempfile.TemporaryDirectory() as directory:
            (Path(directory) / "state.json").write_text(json.dumps({"epoch": epoch, "config": config}))
            report({**metrics, "epoch": epoch, "t_report": time.time()}, directory)


def evaluate(path: str, data: Table | Synthetic | None) -> dict[str, float]:
    """The recorded test accuracy of the configuration (of its last epoch)."""
    config = json.loads((Path(path) / "state.json").read_text())["config"]
    data = load_data(config["data"]) if data is None else data
    return {"test_accuracy": data.curve(config)[1]}


def export(checkpoint: str, data: Table | Synthetic | None, out_dir: str) -> dict[str, Any]:
    Path(out_dir, "state.json").write_text((Path(checkpoint) / "state.json").read_text())
    return {"labels": [], "data_fingerprint": getattr(data, "fingerprint", ""), "arch": "replay"}
