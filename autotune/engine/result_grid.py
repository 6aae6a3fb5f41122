"""What Ray's ResultGrid of a search holds, read for autotune: a row per trial, and the best checkpoint."""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from autotune.engine.history import best_epoch, best_report, best_values, rank, result_history
from autotune.engine.schedulers import max_epochs
from autotune.engine.study import trial_numbers
from autotune.engine.track import metrics_of
from autotune.engine.trial_errors import result_error
from autotune.space.types import Space

__all__ = ["best_checkpoint", "in_start_order", "not_finite_from", "params_of", "reaches", "trial_rows"]


def trial_rows(grid: Any, space: Space, unfinished: set[str] = frozenset()) -> list[dict[str, Any]]:
    """One dict per trial, in the order of `grid` (`in_start_order`: the order the trials started): id, status,
    epochs, whether it was stopped early (after an epoch, as a scheduler stops trials; not one whose report reached
    the `search.stop` target: it ended the search), best metrics, params (`p:<name>`), the recipe's other metrics of
    its best epoch (`m:<name>`: the epoch whose checkpoint it would export), error. A trial of `unfinished` (an
    interrupted search's, which a resume continues) is INTERRUPTED, not stopped early."""
    epochs_max = max_epochs(space)
    rows = []
    for result in grid:
        config = params_of(result)
        metrics = result.metrics or {}
        history = result_history(result)
        row: dict[str, Any] = {
            "trial_id": trial_id_of(result),
            "status": "ERROR" if result.error else "TERMINATED",
            "epochs": int(metrics.get("training_iteration", 0) or 0),
        }
        row["best_epoch"] = best_epoch(history, space.search.metric, space.search.mode)
        if row["status"] == "TERMINATED" and str(row["trial_id"]) in unfinished:
            row["status"] = "INTERRUPTED"
        planned = (space.planned(space.config(config)) if config else None) or epochs_max
        row["stopped_early"] = row["status"] == "TERMINATED" and 0 < row["epochs"] < planned and not (
            space.search.stop and history is not None and any(
                reaches(report, space.search.stop, space.search.stop_modes or {})
                for report in history.to_dict("records")))  # it ended the search by reaching its target
        row.update(best_values(history, space.search.metric, space.search.mode))
        row["not_finite_from"] = not_finite_from(history, space.search.metric)
        row["seconds"] = float(metrics.get("time_total_s", 0.0) or 0.0)
        row["node_id"] = metrics.get("node_id", "")
        row["error"] = result_error(result)
        for key, value in config.items():
            row[f"p:{key}"] = value
        best = metrics_of(best_report(history, space.search.metric, space.search.mode))
        row.update({f"m:{name}": value for name, value in best.items() if name not in space.search.metric})
        row["path"] = result.path
        rows.append(row)
    return rows


def reaches(report: Mapping[str, Any], targets: Mapping[str, float], modes: Mapping[str, str]) -> bool:
    """Whether `report` reaches every `search.stop` target: at or above it, or at or below for a metric whose mode
    is "min"."""
    def hit(metric: str) -> bool:
        value = report.get(metric)
        if value is None:  # not reported (NaN compares false either way)
            return False
        return value <= targets[metric] if modes.get(metric) == "min" else value >= targets[metric]
    return all(hit(metric) for metric in targets)


def in_start_order(grid: Any, name: str) -> list[Any]:
    """The results of `grid` in the order their trials started; Ray's ResultGrid lists a resumed search's trials in
    another order (the most recently reported first). The order is each trial's number in the run's Optuna study
    `name` (study.db beside the trials, a local storage's), given as the searcher proposed the trial (its user
    attribute `autotune_trial_id`) and kept by a resume. Where the study does not number every trial (a URI
    storage, whose study is in the local mirror), the time of each trial's first report less the time it had run
    by then (to the second; a trial that never reported last). Ties keep the grid's order."""
    results = list(grid)
    numbers = _study_numbers(results, name)
    if results and all(trial_id_of(result) in numbers for result in results):
        return sorted(results, key=lambda result: numbers[trial_id_of(result)])
    return sorted(results, key=_first_start)


def _study_numbers(results: list[Any], name: str) -> dict[str, int]:
    """Trial id -> its Optuna trial number, from the study.db in the folder of the trials of `results` (a local
    folder); {} where there is none."""
    folders = {Path(result.path).parent for result in results if result.path}
    db = folders.pop() / "study.db" if len(folders) == 1 else None
    if db is None or not db.is_absolute() or not db.is_file():
        return {}
    return trial_numbers(db, name, "autotune_trial_id")


def _first_start(result: Any) -> float:
    """When a trial's first report says it started (its Unix time less its running time); inf without one."""
    frame = result.metrics_dataframe
    if frame is None or frame.empty or "timestamp" not in frame:
        return math.inf
    first = frame.iloc[0]
    start = float(first["timestamp"]) - float(first.get("time_total_s", 0.0) or 0.0)
    return start if math.isfinite(start) else math.inf


def not_finite_from(history: Any, metrics: Sequence[str]) -> int | None:
    """The epoch from which a searched metric was not a finite number (NaN, infinite, missing) in every report up to
    the trial's last: a training that diverged. None when the last report holds finite values (an epoch without a
    value before one with it does not count), or the trial reported nothing."""
    if history is None or history.empty:
        return None
    values = history.reindex(columns=list(metrics)).apply(pd.to_numeric, errors="coerce").to_numpy(float)
    finite_rows = np.isfinite(values).all(axis=1)
    if finite_rows[-1]:
        return None
    first = int(np.flatnonzero(finite_rows)[-1]) + 1 if finite_rows.any() else 0
    return int(history["training_iteration"].iloc[first]) if "training_iteration" in history else first + 1


def trial_id_of(result: Any) -> str | None:
    """The trial id of a Ray `Result`: its folder's (trial_<id>, `trial_dirname`), else its metrics'. The folder
    first: a trial stopped before its first report (a reached target, the epoch budget) was seen to carry another
    trial's id in its metrics, and trials.csv listed that id twice."""
    if result.path and Path(result.path).name.startswith("trial_"):
        return Path(result.path).name.removeprefix("trial_")
    return (result.metrics or {}).get("trial_id")


def params_of(result: Any) -> dict[str, Any]:
    """A trial's parameters: its config, else the params.json Ray wrote in its folder when it started (a trial that
    failed before a search was killed, and is not rerun on resume, comes back with no config); {} if neither."""
    if result.config:
        return dict(result.config)
    try:
        with result.filesystem.open_input_stream(f"{result.path}/params.json") as stream:
            saved = json.loads(stream.read())
    except (OSError, ValueError, AttributeError, TypeError):
        return {}
    return saved if isinstance(saved, dict) else {}


def best_checkpoint(grid: Any, space: Space) -> tuple[Any, Any, dict[str, Any]] | None:
    """The best checkpointed epoch over all trials: (its trial's Result, its Checkpoint, its metrics).

    Best by the first metric; ties are broken by the next metrics in turn (`checkpoints.rank`, the order the
    checkpoint policy keeps by), so that with several objectives the exported checkpoint is never one that another
    beats on every metric; among equals, the first in `grid` (in `in_start_order`: the first started). A recipe
    that reports no checkpoint at all: its best reported epoch, with None for the checkpoint. None when no trial
    reported finite metrics (e.g. every trial failed at once).
    """
    best: tuple[Any, Any, dict[str, Any]] | None = None
    best_rank: tuple[float, ...] = ()
    for result in grid:
        for checkpoint, metrics in result.best_checkpoints or []:
            value = rank(metrics, space.search.metric, space.search.mode)
            if value is not None and (best is None or value > best_rank):
                best, best_rank = (result, checkpoint, metrics), value
    if best is not None or any(result.best_checkpoints for result in grid):
        return best
    for result in grid:  # nothing checkpointed: the best report
        history = result_history(result)
        for metrics in history.to_dict("records") if history is not None else []:
            value = rank(metrics, space.search.metric, space.search.mode)
            if value is not None and (best is None or value > best_rank):
                best, best_rank = (result, None, metrics), value
    return best
