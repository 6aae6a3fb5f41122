"""What a search returns: the best configuration, its metrics, the exported model and every trial."""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["SearchResult"]

# scikit-learn's names of a search's results (GridSearchCV's attributes) -> this result's
_SKLEARN = {
    "best_params_": "best_params (the sampled values by key path; best_config is the whole configuration)",
    "best_score_": "best_metrics[metric]: the best trial's value at its best epoch on the validation split, not a "
                   "mean over folds; test_metrics are the held-out test split's",
    "cv_results_": "trials (a DataFrame, a row per trial)",
    "best_estimator_": "autotune.load_model(result.model_dir), the exported model (not refit on every row)",
    "best_index_": "best_trial_id (the trials' column trial_id)",
}


@dataclass
class SearchResult:
    """The outcome of `autotune.fit` / `autotune run`.

    `trials` has one row per trial: `trial_id`, `status` (TERMINATED, ended by itself or by the scheduler; ERROR;
    or, in an interrupted search, INTERRUPTED: one a resume continues), `epochs`, `best_epoch` (the epoch of the
    metric columns' values, whose checkpoint `export` takes; empty without one), `stopped_early` (TERMINATED before
    its last epoch: "stopped early" in the summary, else "done"), the metric columns (best value over the trial's
    epochs; with several metrics, those of its best epoch), `not_finite_from` (the epoch from which a searched
    metric was NaN or infinite up to the trial's last report: a training that diverged; empty otherwise), `seconds`
    (from the recipe's start to its last report: a trial worker's start-up and the `custom:` file's import are not
    counted; what the recipe imports inside its `train`, such as torch for the shipped recipes, is, in the first trial
    of each worker), `error`, one column per sampled parameter (`p:<name>`), and one per other metric the recipe
    reported (`m:<name>`: `m:val_loss`, `m:epoch`), its value at the trial's best epoch, whose checkpoint `export`
    takes.
    `ended` says why a setting (a stop target, a budget) ended the search before its trials.
    `run_dir` is the local folder of the run (with a URI storage, the local mirror of autotune's own state:
    the Optuna study, summary.json, trials.csv; the trials themselves are at `run_uri`). A search interrupted
    before any trial saved a checkpoint has no best trial: `best_trial_id` is None, the best_* fields empty.
    """

    name: str
    run_dir: Path
    metric: tuple[str, ...]
    mode: tuple[str, ...]
    best_trial_id: str | None
    best_params: dict[str, Any]
    best_config: dict[str, Any]
    best_metrics: dict[str, float]
    trials: pd.DataFrame
    model_dir: Path | None = None
    test_metrics: dict[str, float] = field(default_factory=dict)
    promotion: dict[str, Any] = field(default_factory=dict)
    pareto: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0  # this session's: a resumed search's earlier sessions are not counted
    resumed: bool = False  # the search continued an earlier session's (resume=True)
    interrupted: bool = False
    ended: str | None = None  # why a setting ended the search before its trials: a stop target, a budget
    run_uri: str | None = None
    tracked: list[str] = field(default_factory=list)  # where the trackers recorded the search, a line each
    moved: list[dict[str, Any]] = field(default_factory=list)  # trials that lost their node (engine.lost_nodes)
    warm_start: str | None = None  # the earlier run whose finished trials were the sampler's history (--warm-start)
    model_warning: str | None = None  # why the exported model is of no use (it predicts one class), else None
    # what the labels of a choice of constants labelled by position stand for, by parameter ("0=null, 1=1.0")
    positions: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        """The summary `autotune run` prints: the top trials, failures, the best trial, where the model and the run
        are (`print(result)`)."""
        from autotune.engine.summary import format_summary

        return format_summary(self)

    def _repr_html_(self) -> str:
        """What a notebook shows for a result as a cell's last expression: the summary, as `print(result)` gives
        it, rather than the dataclass's fields (its trials table among them)."""
        return f"<pre>{html.escape(str(self))}</pre>"

    def __getattr__(self, name: str) -> Any:
        """Only for a name the dataclass lacks: scikit-learn's (best_score_, cv_results_) are refused naming this
        result's equivalent."""
        theirs = _SKLEARN.get(name)
        message = f"{type(self).__name__!r} object has no attribute {name!r}"
        raise AttributeError(message + (f"; scikit-learn's {name} is {theirs} here" if theirs else ""),
                             name=name, obj=self)

    @property
    def num_errors(self) -> int:
        return int((self.trials["status"] == "ERROR").sum()) if len(self.trials) else 0
