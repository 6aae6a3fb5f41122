"""A trivial recipe for the driver-scale benchmark: no torch, no work, so all a trial costs is the engine's.

The "model" is a point x; its accuracy is 1 - (x - 0.3)^2. Each epoch reports it with a one-file checkpoint, as
a real recipe does, plus `t_start` (time.time() when the trial began).
"""
from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from autotune.space.schema import Field, Schema, Section

SCHEMA = Schema(
    model=Section(x=Field(float, default=0.5, low=0.0, high=1.0)),
    train=Section(epochs=Field(int, default=1, low=1)),
    budget="train.epochs",  # early stopping counts the epochs a trial reports
)


@dataclass(frozen=True)
class Nothing:
    fingerprint: str = "trivial"


def load_data(data: dict) -> Nothing:
    return Nothing()


def _accuracy(x: float) -> float:
    return 1.0 - (x - 0.3) ** 2


def train(config: dict, report, *, data=None, checkpoint: str | None = None) -> None:
    started, x = time.time(), config["model"]["x"]
    first = json.loads((Path(checkpoint) / "state.json").read_text())["epoch"] + 1 if checkpoint else 1
    for epoch in range(first, config["train"]["epochs"] + 1):
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "state.json").write_text(json.dumps({"epoch": epoch, "x": x}))
            report({"val_accuracy": _accuracy(x), "epoch": epoch, "t_start": started}, tmp)


def evaluate(path: str, data) -> dict:
    return {"test_accuracy": _accuracy(json.loads((Path(path) / "state.json").read_text())["x"])}


def export(checkpoint: str, data, out_dir: str) -> dict:
    Path(out_dir, "state.json").write_text((Path(checkpoint) / "state.json").read_text())
    return {"labels": ["trivial"], "data_fingerprint": data.fingerprint, "arch": "point"}
