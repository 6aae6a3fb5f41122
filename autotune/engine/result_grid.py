"""What Ray's ResultGrid of a search holds, read for autotune: a row per trial, and the best checkpoint."""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from autotune.engine.checkpoints import finite, rank
from autotune.engine.history import result_history
from autotune.engine.schedulers import max_epochs
from autotune.engine.trial_errors import error_text
from autotune.space.types import Space

__all__ = ["best_checkpoint", "params_of", "trial_rows"]


def trial_rows(grid: Any, space: Space, unfinished: set[str] = frozenset()) -> list[dict[str, Any]]:
    """One dict per trial: id, status, epochs, whether it was stopped early, best metrics, params, error. A trial
    of `unfinished` (an interrupted search's, which a resume continues) is INTERRUPTED, not stopped early."""
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
        if row["status"] == "TERMINATED" and str(row["trial_id"]) in unfinished:
            row["status"] = "INTERRUPTED"
        planned = (space.planned(space.config(config)) if config else None) or epochs_max
        row["stopped_early"] = row["status"] == "TERMINATED" and row["epochs"] < planned
        row.update(_best_values(history, space.search.metric, space.search.mode))
        row["seconds"] = float(metrics.get("time_total_s", 0.0) or 0.0)
        row["node_id"] = metrics.get("node_id", "")
        row["error"] = error_text(result.error) if result.error else ""
        for key, value in config.items():
            row[f"p:{key}"] = value
        row["path"] = result.path
        rows.append(row)
    return rows


def _best_values(history: Any, metrics: Sequence[str], modes: Sequence[str]) -> dict[str, float]:
    """A trial's value of each searched metric: its best over the epochs; with several metrics, those of its one
    best epoch (by the first metric, ties broken by the next: the checkpoint it would export), never a mix of
    epochs, which no epoch reached. NaN where it reported none."""
    if len(metrics) == 1:
        values = [v for v in (history[metrics[0]] if history is not None and metrics[0] in history else [])
                  if finite(v)]
        return {metrics[0]: (max(values) if modes[0] == "max" else min(values)) if values else float("nan")}
    ranked = [(r, report) for report in (history.to_dict("records") if history is not None else [])
              if (r := rank(report, metrics, modes)) is not None]
    best = max(ranked, key=lambda pair: pair[0])[1] if ranked else {}
    return {name: float(best[name]) if best else float("nan") for name in metrics}


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
    beats on every metric. A recipe that reports no checkpoint at all: its best reported epoch, with None for the
    checkpoint. None when no trial reported finite metrics (e.g. every trial failed at once).
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
