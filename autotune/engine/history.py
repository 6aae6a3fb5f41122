"""A trial's reported rows as its model went through them.

A trial that continues from a checkpoint (a resumed search, a retry after a failure, a node lost) retrains the
epochs after that checkpoint, and its result files keep the rows the abandoned run reported for them before the
rows of the rerun: epochs 1..6, then 4..9. Those earlier rows describe a model that was thrown away.

    final_run(frame)        # epochs 1..3 and 4..9 of the rerun: each epoch once, from the run that went on
    result_history(result)  # the same, of a Ray Result's reports (its metrics_dataframe); None without any
    reports(text)           # the reports of a trial's result.json text, in the order written
    best_values(history, metrics, modes)  # a trial's value of each searched metric: its best epoch's
    best_epoch(history, metrics, modes)   # and that epoch (trials.csv's best_epoch)
    best_report(history, metrics, modes)  # and that epoch's whole report (trials.csv's m: columns)
    epochs_reported(trial)  # the epochs a Ray trial has reported so far (0: none)
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Rank", "best_epoch", "best_report", "best_values", "epochs_reported", "final_run", "finite", "rank", "reports",
           "result_history"]


def epochs_reported(trial: Any) -> int:
    """The epochs a Ray trial has reported so far: its last result's training_iteration (0 before its first)."""
    return int((trial.last_result or {}).get("training_iteration", 0) or 0)


def result_history(result: Any) -> pd.DataFrame | None:
    """The reports of a trial's Ray `Result` (its `metrics_dataframe`), each epoch once (`final_run`); None when
    it holds none."""
    history = result.metrics_dataframe
    return None if history is None else final_run(history)


def reports(text: str) -> pd.DataFrame:
    """The reports in the text of a trial's result.json (one JSON object per line), in the order written; a line
    cut short (a trial killed while Ray wrote it) is left out. Empty without any."""
    rows = []
    for line in text.splitlines():
        try:
            report = json.loads(line)
        except ValueError:
            continue
        if isinstance(report, dict):
            rows.append(report)
    return pd.DataFrame(rows)


def final_run(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of `frame` (a trial's reports in the order written) that a later row does not retrain: a row is kept
    when its step (`training_iteration`, else `epoch`) is below that of every row after it. A frame without either
    column is returned as it is."""
    column = next((c for c in ("training_iteration", "epoch") if c in frame), None)
    if column is None or frame.empty:
        return frame
    steps = pd.to_numeric(frame[column], errors="coerce")
    ordered = steps.to_numpy(dtype=float)
    if not np.isnan(ordered).any() and (np.diff(ordered) > 0).all():  # no row retrained: most trials' reports
        return frame.reset_index(drop=True)
    later_min = steps[::-1].cummin()[::-1].shift(-1)  # the smallest step of the rows after each row
    keep = later_min.isna() | (steps < later_min) | steps.isna()
    return frame[keep.to_numpy()].reset_index(drop=True)


Rank = tuple[float, ...]


def finite(value: Any) -> bool:
    """Whether a reported metric is a finite number (not missing, NaN or infinite)."""
    return isinstance(value, (int, float)) and math.isfinite(value)


def rank(metrics: Mapping[str, Any], names: Sequence[str], modes: Sequence[str]) -> Rank | None:
    """How good a result is, larger is better: each metric signed by its mode, compared in turn (the first
    metric first, ties broken by the next). None when a metric is missing or not finite."""
    values = [metrics.get(name) for name in names]
    if not all(map(finite, values)):
        return None
    return tuple(float(v) if mode == "max" else -float(v) for v, mode in zip(values, modes))


def best_values(history: Any, metrics: Sequence[str], modes: Sequence[str]) -> dict[str, float]:
    """A trial's value of each searched metric: its best over the epochs; with several metrics, those of its one
    best epoch (by the first metric, ties broken by the next: the checkpoint it would export), never a mix of
    epochs, which no epoch reached. NaN where it reported none."""
    if len(metrics) == 1:
        values = [v for v in (history[metrics[0]] if history is not None and metrics[0] in history else [])
                  if finite(v)]
        return {metrics[0]: (max(values) if modes[0] == "max" else min(values)) if values else float("nan")}
    best = best_report(history, metrics, modes)
    return {name: float(best[name]) if best else float("nan") for name in metrics}


def best_epoch(history: Any, metrics: Sequence[str], modes: Sequence[str]) -> int | None:
    """The epoch of a trial's best report, whose values `best_values` gives (the first of equal ones); None where
    it reported no finite value of every metric."""
    epoch = best_report(history, metrics, modes).get("training_iteration")
    return int(epoch) if finite(epoch) else None


def best_report(history: Any, metrics: Sequence[str], modes: Sequence[str]) -> dict[str, Any]:
    """A trial's best report: by the first metric, ties broken by the next (the checkpoint it would export), the
    first of equal ones; {} where none has a finite value of every metric. The rows are ranked by the metrics'
    columns alone, and only the best one is made a dict: `DataFrame.to_dict` looks up every column of every row
    (about 3 ms a trial of Ray's 25 columns; 9 of the 13 s that the rows of 1,500 trials took after their search)."""
    if history is None or history.empty:
        return {}
    columns = [history[name].tolist() if name in history else [None] * len(history) for name in metrics]
    ranked = [(r, row) for row, values in enumerate(zip(*columns))
              if (r := rank(dict(zip(metrics, values)), metrics, modes)) is not None]
    if not ranked:
        return {}
    best = max(ranked, key=lambda pair: pair[0])[1]
    return {name: column.tolist()[best] for name, column in history.items()}  # Python's types, as to_dict's
