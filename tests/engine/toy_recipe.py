"""A tiny recipe for engine tests and the driver-scale benchmark: no torch, a second of work at most.

The "model" is a point (x, y); its "accuracy" rises each epoch towards 1 - (x - 0.3)^2 - (y - 0.6)^2
(`train.peak_epoch`: it rises until that epoch, then falls). Each report offers its checkpoint as a folder, or as a
`save(directory)` function with `train.offer: save` (`train.count_saves_in` names a folder where each call of it
appends a line to `saves`). `train.fail_if_x_above` raises inside the trial,
`train.oom_if_x_above` raises CUDA's out-of-memory error, `train.killed_if_x_above` kills the trial's worker process
(SIGKILL, as the kernel's out-of-memory killer does), `train.nan_if_x_above` reports a non-finite loss,
`train.parse_argv` parses the worker's command line with argparse (a training script turned into a recipe).
`train.raises` names an exception Ray cannot carry to the driver, raised at the first epoch (RAISED).
`train.set_env` sets the environment variable AUTOTUNE_TOY_ENV; each report says whether it was set at the start.
`train.log_reports_in` names a folder where each report appends `pid epoch` to `reports`.
`train.checkpoint_kb` pads each checkpoint; while the path `train.full_if_exists` exists, `save` raises ENOSPC;
while the path `train.unscored_if_exists` exists, a report holds `val_acc` in place of `val_accuracy`.
Each report also carries the worker's `pid`, its `CUDA_VISIBLE_DEVICES` and whether the trial was handed its
data (`data_given`); `data.count_loads_in` names a folder where each `load_data` call appends its process id.
"""
from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from autotune.errors import Diverged
from autotune.space.schema import Field, Schema, Section

SCHEMA = Schema(
    data=Section(size=Field(int, default=100, low=1),
                 count_loads_in=Field(str, default="", help="a folder: load_data appends its pid to `loads`")),
    model=Section(x=Field(float, default=0.5, low=0.0, high=1.0), y=Field(float, default=0.5, low=0.0, high=1.0),
                  kind=Field(str, default="plain"), extra=Field(float, default=0.0)),
    train=Section(
        epochs=Field(int, default=4, low=1),
        sleep=Field(float, default=0.0, low=0.0),
        hold_while_exists=Field(str, default="", help="a path: each epoch waits while it exists (120 s at most)"),
        fail_if_x_above=Field(float, default=2.0),
        fail_from=Field(int, default=1, low=1, help="the first epoch at which fail_if_x_above raises"),
        nan_if_x_above=Field(float, default=2.0),
        oom_if_x_above=Field(float, default=2.0),
        killed_if_x_above=Field(float, default=2.0),
        parse_argv=Field(bool, default=False, help="parse the command line with argparse, as a training script does"),
        raises=Field(str, default="", help="a key of RAISED: raise that exception at the first epoch"),
        set_env=Field(bool, default=False, help="set AUTOTUNE_TOY_ENV, as a recipe may set a variable it needs"),
        peak_epoch=Field(int, default=0, low=0, help="0: the accuracy rises every epoch"),
        fail_once_in=Field(str, default="", help="a folder: each trial fails once at `fail_at`, then succeeds"),
        fail_at=Field(int, default=2, low=1),
        offer=Field(str, default="folder", choices=("folder", "save")),
        count_saves_in=Field(str, default=""),
        log_reports_in=Field(str, default="", help="a folder: each report appends `pid epoch` to its `reports`"),
        checkpoint_kb=Field(int, default=0, low=0, help="padding written into each checkpoint"),
        full_if_exists=Field(str, default="", help="a path: while it exists, save() raises ENOSPC"),
        unscored_if_exists=Field(str, default="", help="a path: while it exists, reports miss val_accuracy"),
    ),
    budget="train.epochs",  # early stopping counts the epochs a trial reports
)
SPLIT = "keyed"  # autotune.splits.SCHEME: its test "split" never holds what a model trained on (a retrain compares)


@dataclass(frozen=True)
class ToyData:
    size: int

    @property
    def fingerprint(self) -> str:
        return f"toy-{self.size}"


def load_data(data: dict) -> ToyData:
    if data.get("count_loads_in"):
        with open(Path(data["count_loads_in"], "loads"), "a") as loads:
            loads.write(f"{os.getpid()}\n")
    return ToyData(data["size"])


def _score(model: dict, epoch: int, peak: int = 0) -> float:
    target = 1.0 - (model["x"] - 0.3) ** 2 - (model["y"] - 0.6) ** 2 - 0.01 * model.get("extra", 0.0)
    if peak and epoch > peak:
        return target * (1.0 - 0.5 ** peak - 0.1 * (epoch - peak))
    return target * (1.0 - 0.5 ** epoch)


def _out_of_memory() -> None:
    import torch

    raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 1.00 GiB total)")


class _TwoArguments(Exception):
    """An exception whose __init__ takes two arguments: unpickling it calls it with its message alone."""

    def __init__(self, rows: int, columns: int) -> None:
        super().__init__(f"{rows} rows, {columns} columns")


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text")


RAISED = {"two_arguments": lambda: _TwoArguments(3, 4), "unprintable": _Unprintable,
          "keyboard_interrupt": lambda: KeyboardInterrupt("stopped by the recipe")}


def train(config: dict, report, *, data=None, checkpoint: str | None = None) -> None:
    model, cfg = config["model"], config["train"]
    start, began = 0, time.time()
    given = data is not None
    data = data if given else load_data(config.get("data", {"size": 100}))
    if checkpoint:
        start = json.loads((Path(checkpoint) / "state.json").read_text())["epoch"]
    if cfg["parse_argv"]:
        argparse.ArgumentParser().parse_args()
    if cfg["raises"]:
        raise RAISED[cfg["raises"]]()
    env_was_set = float("AUTOTUNE_TOY_ENV" in os.environ)
    if cfg["set_env"]:
        os.environ["AUTOTUNE_TOY_ENV"] = "1"
    for epoch in range(start + 1, cfg["epochs"] + 1):
        if cfg["sleep"]:
            time.sleep(cfg["sleep"])
        held = time.time() + 120
        while cfg["hold_while_exists"] and os.path.exists(cfg["hold_while_exists"]) and time.time() < held:
            time.sleep(0.05)  # a test's gate: the trial goes on once the test removes the file
        if model["x"] > cfg["fail_if_x_above"] and epoch >= cfg["fail_from"]:
            raise ValueError(f"x={model['x']:.3f} is too large for this toy")
        marker = Path(cfg["fail_once_in"], f"{model['x']:.12f}") if cfg["fail_once_in"] else None
        if marker and epoch == cfg["fail_at"] and not marker.exists():
            marker.touch()
            raise RuntimeError("a one-off failure (node lost)")
        if model["x"] > cfg["oom_if_x_above"]:
            _out_of_memory()
        if model["x"] > cfg["killed_if_x_above"] and epoch == cfg["epochs"]:
            os.kill(os.getpid(), signal.SIGKILL)
        if model["x"] > cfg["nan_if_x_above"]:
            raise Diverged(f"non-finite training loss at epoch {epoch}")
        acc = _score(model, epoch, cfg["peak_epoch"])
        metrics = {"val_accuracy": acc, "val_loss": 1 - acc, "epoch": epoch, "t_start": began, "t_now": time.time(),
                   "pid": os.getpid(), "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", "unset"),
                   "data_given": float(given), "data_size": data.size, "env_was_set": env_was_set}
        if cfg["unscored_if_exists"] and os.path.exists(cfg["unscored_if_exists"]):  # a recipe edited with a typo
            metrics["val_acc"] = metrics.pop("val_accuracy")
        state = {"epoch": epoch, "config": config, "acc": acc}
        if cfg["log_reports_in"]:  # what a test watching the search can read at once (the run folder is synced late)
            with open(Path(cfg["log_reports_in"], "reports"), "a") as reports:
                reports.write(f"{os.getpid()} {epoch}\n")
        save = partial(_save, state, cfg["count_saves_in"], cfg["checkpoint_kb"], cfg["full_if_exists"])
        if cfg["offer"] == "save":
            report(metrics, save)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                save(tmp)
                report(metrics, tmp)


def _save(state: dict, count_in: str, padding_kb: int, full_if: str, directory: str) -> None:
    if full_if and os.path.exists(full_if):  # a stand-in for a full disk
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), directory)
    (Path(directory) / "state.json").write_text(json.dumps(state))
    if padding_kb:
        (Path(directory) / "padding.bin").write_bytes(os.urandom(padding_kb * 1024))
    if count_in:
        with open(Path(count_in, "saves"), "a") as saves:
            saves.write(f"{state['epoch']}\n")


def evaluate(model_dir: str, data) -> dict:
    state = json.loads((Path(model_dir) / "toy_model.json").read_text())
    acc = _score(state["config"]["model"], state["epoch"], state["config"]["train"].get("peak_epoch", 0))
    return {"test_accuracy": acc, "test_loss": 1 - acc}


def export(checkpoint: str, data, out_dir: str) -> dict:
    state = json.loads((Path(checkpoint) / "state.json").read_text())
    Path(out_dir, "toy_model.json").write_text(json.dumps(state))
    return {"labels": ["toy"], "data_fingerprint": data.fingerprint, "arch": "point"}
