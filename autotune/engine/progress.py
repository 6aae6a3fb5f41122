"""What the user sees while trials run: a line per finished or failed trial, and a periodic line on those running."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ray import tune

from autotune.engine.checkpoints import CheckpointPolicy, Rank, finite
from autotune.engine.trial_errors import trial_error

__all__ = ["Progress"]

log = logging.getLogger("autotune")


class Progress(tune.Callback):
    """What the user sees while trials run: a line per ended trial (finished, stopped early or failed: its metric
    at its best epoch, epochs run, the best so far) and, at most every `interval` seconds and only when something
    changed, one line on the trials running: their epoch and metric, finished/total, the best so far, the time
    elapsed. `planned`: the epochs a trial of a config runs if not stopped (None: every trial counts as finished)."""

    SHOWN = 4  # running trials named in a live line; the others are counted

    def __init__(self, metric: str, mode: str, total: int, interval: float,
                 planned: Callable[[dict[str, Any]], int] | None = None,
                 objectives: CheckpointPolicy | None = None) -> None:
        """`objectives`: a search of several objectives' policy, whose rank picks each trial's best epoch (the one
        its row of the summary shows, with every objective); None: the best `metric` over the epochs."""
        self.metric, self.mode, self.total, self.interval = metric, mode, total, interval
        self.planned = planned
        self.objectives = objectives if objectives is not None and objectives.multi_objective else None
        self.best_epoch: dict[str, tuple[Rank, dict[str, float]]] = {}  # several objectives: trial id -> its best
        self.done = 0
        self.best: float | None = None
        self.started = self.shown_at = time.monotonic()
        self.shown: tuple[int, str] = (0, "")
        self.counted = False

    def _better(self, value: float) -> bool:
        return self.best is None or (value > self.best if self.mode == "max" else value < self.best)

    def _best_of(self, trial: Any) -> float | None:
        kept = self.best_epoch.get(trial.trial_id)
        if kept is not None:
            return kept[1][self.metric]
        value = (trial.metric_analysis.get(self.metric) or {}).get(self.mode)  # (a trial before a resume too)
        return value if finite(value) else None

    def _shown(self, trial: Any, value: float | None) -> str:
        """The trial's value at its best epoch, as words: every objective's with several."""
        kept = self.best_epoch.pop(trial.trial_id, None) if self.objectives is not None else None
        if kept is not None:
            return ", ".join(f"{name}={v:.4f}" for name, v in kept[1].items())
        return f"{self.metric}={'-' if value is None else f'{value:.4f}'}"

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        """With several objectives, keep the trial's best epoch by their rank (the summary's and the export's), its
        epochs with a non-finite objective left out."""
        if self.objectives is None:
            return
        rank = self.objectives.rank(result)
        kept = self.best_epoch.get(trial.trial_id)
        if rank is not None and (kept is None or rank > kept[0]):
            self.best_epoch[trial.trial_id] = (rank, {m: float(result[m]) for m in self.objectives.metrics})

    def setup(self, **info: Any) -> None:  # also when a search is resumed (this object is then Ray's copy)
        self.started = self.shown_at = time.monotonic()
        self.counted = False

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        if self.counted:
            return
        self.counted = True  # a resumed search starts with the trials it finished before
        finished = [t for t in trials if t.status in ("TERMINATED", "ERROR")]
        self.done = len(finished)
        for trial in finished:
            value = self._best_of(trial)
            if value is not None and self._better(value):
                self.best = value

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        now = time.monotonic()
        if self.interval <= 0 or now - self.shown_at < self.interval:
            return  # before looking at the trials: Ray ends a step several times a trial, with every trial so far
        running = [t for t in trials if t.status == "RUNNING"]
        if not running:
            return
        parts = []
        for trial in running[: self.SHOWN]:
            result = trial.last_result or {}
            value, epoch = result.get(self.metric), result.get("training_iteration")
            reported = isinstance(value, (int, float)) and epoch
            shown = f"epoch {epoch} {self.metric}={value:.4f}" if reported else "in epoch 1"  # none reported yet
            parts.append(f"{trial.trial_id} {shown}")
        more = f", +{len(running) - self.SHOWN} more" if len(running) > self.SHOWN else ""
        pending = sum(t.status == "PENDING" for t in trials)
        best = "-" if self.best is None else f"{self.best:.4f}"
        state = (f"{len(running)} running ({', '.join(parts)}{more})" + (f", {pending} pending" if pending else "")
                 + f", best {best}")
        if (self.done, state) == self.shown:
            return
        self.shown, self.shown_at = (self.done, state), now
        log.info("[%d/%d] %.0fs: %s", self.done, self.total, now - self.started, state)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        """The trial's value at its best epoch, as the summary's table and the export rank it (its last epoch's
        may be lower), and the epochs it ran: "stopped early at epoch N" before its planned last (the scheduler,
        or a search setting, stopped it), as the summary says."""
        self.done += 1
        epochs = int((trial.last_result or {}).get("training_iteration", 0) or 0)
        value = self._best_of(trial)
        if value is not None and self._better(value):
            self.best = value
        shown = self._shown(trial, value)
        planned = self.planned(dict(trial.config)) if self.planned is not None else epochs
        if epochs < planned:  # as the trackers say it
            ended = f"stopped early at epoch {epochs} of {planned}: {shown}" + (
                f" (best of {epochs} epochs)" if epochs > 1 else "")
        else:
            ended = f"finished: {shown} (best of {epochs} epoch{'' if epochs == 1 else 's'})"
        log.info("[%d/%d] trial %s %s, best so far %s", self.done, self.total, trial.trial_id, ended,
                 "-" if self.best is None else f"{self.best:.4f}")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        """The trial's error, and its value at its best epoch when it reported any (it counts, as the export ranks
        it), saying so when that is the best so far."""
        self.done += 1
        value = self._best_of(trial)
        best = value is not None and self._better(value)
        if best:
            self.best = value
        self.best_epoch.pop(trial.trial_id, None)
        reached = "" if value is None else (f" (its best before: {self.metric}={value:.4f}"
                                            f"{', the best so far' if best else ''})")
        log.warning("[%d/%d] trial %s failed: %s%s", self.done, self.total, trial.trial_id, trial_error(trial),
                    reached)
