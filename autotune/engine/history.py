"""A trial's reported rows as its model went through them.

A trial that continues from a checkpoint (a resumed search, a retry after a failure, a node lost) retrains the
epochs after that checkpoint, and its result files keep the rows the abandoned run reported for them before the
rows of the rerun: epochs 1..6, then 4..9. Those earlier rows describe a model that was thrown away.

    final_run(frame)        # epochs 1..3 and 4..9 of the rerun: each epoch once, from the run that went on
    result_history(result)  # the same, of a Ray Result's reports (its metrics_dataframe); None without any
"""
from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["final_run", "result_history"]


def result_history(result: Any) -> pd.DataFrame | None:
    """The reports of a trial's Ray `Result` (its `metrics_dataframe`), each epoch once (`final_run`); None when
    it holds none."""
    history = result.metrics_dataframe
    return None if history is None else final_run(history)


def final_run(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of `frame` (a trial's reports in the order written) that a later row does not retrain: a row is kept
    when its step (`training_iteration`, else `epoch`) is below that of every row after it. A frame without either
    column is returned as it is."""
    column = next((c for c in ("training_iteration", "epoch") if c in frame), None)
    if column is None or frame.empty:
        return frame
    steps = pd.to_numeric(frame[column], errors="coerce")
    later_min = steps[::-1].cummin()[::-1].shift(-1)  # the smallest step of the rows after each row
    keep = later_min.isna() | (steps < later_min) | steps.isna()
    return frame[keep.to_numpy()].reset_index(drop=True)
