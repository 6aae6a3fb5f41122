"""Ray Tune's trial events, handed to the search's trackers (`autotune.tracking`) in the driver.

Ray keeps a search's callbacks in its saved state and restores them on a resume, so the callback holds only the
run's key: the driver registers the `Tracking` of this invocation under it (`register`), and a resumed search
reports to the trackers of the command that resumed it.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any

from ray import tune

from autotune.engine.checkpoints import finite
from autotune.engine.history import epochs_reported, result_history
from autotune.engine.ray_internals import RESULT_KEYS
from autotune.engine.schedulers import planned_epochs
from autotune.engine.trial_errors import trial_error
from autotune.space.types import Space
from autotune.tracking import INTERRUPTED, Tracking, TrialRecord

__all__ = ["TrackingCallback", "flat_settings", "register", "trial_records", "unregister"]

# key -> (the trackers, the epochs a trial of given sampled values plans to run, whether a report reached the
# search's stop target: None without one)
_ACTIVE: dict[str, tuple[Tracking, Callable[[dict[str, Any]], int], Callable[[dict[str, Any]], bool] | None]] = {}
_NOT_METRICS = {*RESULT_KEYS, "trial_id", "experiment_tag", "date", "hostname", "node_ip", "pid", "config",
                "checkpoint_dir_name", "should_checkpoint", "node_id"}


def register(key: str, tracking: Tracking, planned: Callable[[dict[str, Any]], int],
             reached: Callable[[dict[str, Any]], bool] | None = None) -> None:
    _ACTIVE[key] = (tracking, planned, reached)


def unregister(key: str) -> None:
    _ACTIVE.pop(key, None)


def flat_settings(space: Space) -> dict[str, Any]:
    """The search settings as a tracker records them: {"search.sampler": "tpe", "search.resources.cpu": 1, ...}."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping) and value:
            for key, item in value.items():
                walk(f"{prefix}.{key}", item)
        elif value not in (None, (), {}):
            flat[prefix] = list(value) if isinstance(value, tuple) else value

    walk("search", asdict(space.search))
    flat.update({"export.dir": space.export.dir, "export.promote": space.export.promote, "recipe": space.recipe})
    return flat


def metrics_of(result: dict[str, Any]) -> dict[str, float]:
    """The recipe's own finite numbers of a result (not Ray's bookkeeping, nor the trial's configuration, which a
    report of Ray's `metrics_dataframe` holds flattened as `config/<key>` columns)."""
    return {k: float(v) for k, v in result.items() if k not in _NOT_METRICS and not k.startswith("config/")
            and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def ended(epochs: int, planned: int, reached: bool = False) -> tuple[str, str]:
    """The status and reason a tracker records of a trial that ended on its own after `epochs` of `planned`;
    `reached`: its last report reached the search's stop target (it ended the search, and was not stopped early)."""
    if epochs >= planned:
        return "finished", f"ran all {planned} epochs"
    return "stopped", f"{'reached the stop target' if reached else 'stopped early'} at epoch {epochs} of {planned}"


def trial_records(grid: Any, rows: list[dict[str, Any]], space: Space) -> list[TrialRecord]:
    """The search's trials as the trackers record them, from Ray's `grid` and its `rows` (`result_grid.trial_rows`,
    in the grid's order): the sampled values, each epoch's metrics once (the run that went on, for a retrained
    epoch), the end."""
    records = []
    for result, row in zip(grid, rows):
        params = {key.removeprefix("p:"): value for key, value in row.items() if key.startswith("p:")}
        history = result_history(result)
        reports = [] if history is None or "training_iteration" not in history else [
            report for report in history.to_dict("records") if finite(report.get("training_iteration"))]
        epochs = [(int(report["training_iteration"]), metrics_of(report)) for report in reports]
        times = [float(report["timestamp"]) for report in reports if finite(report.get("timestamp"))]
        if row["status"] == "ERROR":
            status, reason = "failed", f"failed: {row['error']}"[:500]
        elif row["status"] == "INTERRUPTED":
            status, reason = "interrupted", INTERRUPTED
        else:
            status, reason = ended(row["epochs"], planned_epochs(space, params),
                                   reached=0 < row["epochs"] and not row["stopped_early"])
        records.append(TrialRecord(str(row["trial_id"]), params, epochs, status, reason,
                                   times if len(times) == len(epochs) else ()))
    return records


class TrackingCallback(tune.Callback):
    """Each trial's results and end, reported to the trackers registered under `key` (none: nothing)."""

    def __init__(self, key: str) -> None:
        self.key = key

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if self.key in _ACTIVE:
            epoch = int(result.get("training_iteration", 0) or 0)
            _ACTIVE[self.key][0].trial_result(trial.trial_id, dict(trial.config), metrics_of(result), epoch)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if self.key in _ACTIVE:
            tracking, planned, reached = _ACTIVE[self.key]
            epochs = epochs_reported(trial)
            status, reason = ended(epochs, planned(dict(trial.config)),
                                   reached is not None and reached(trial.last_result or {}))
            tracking.trial_end(trial.trial_id, dict(trial.config), status, reason)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if self.key in _ACTIVE:
            reason = f"failed: {trial_error(trial)}"
            _ACTIVE[self.key][0].trial_end(trial.trial_id, dict(trial.config), "failed", reason[:500])
