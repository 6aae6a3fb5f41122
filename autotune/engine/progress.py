"""What the user sees while trials run: a line per finished or failed trial, and a periodic line on those running."""
from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

import ray
from ray import tune

from autotune.engine.checkpoints import CheckpointPolicy, Rank, finite
from autotune.engine.history import epochs_reported
from autotune.engine.running_clock import running_time
from autotune.engine.trial_timeout import duration_text
from autotune.engine.trial_errors import trial_error

__all__ = ["Progress"]

log = logging.getLogger("autotune")


def _cluster_free() -> dict[str, tuple[float, float]]:
    """The Ray cluster's CPUs and GPUs: name -> (free, total); {} without Ray. Two calls to Ray's control store
    (under a millisecond each on one node): made once per line that says it, never every step."""
    if not ray.is_initialized():
        return {}
    free, total = ray.available_resources(), ray.cluster_resources()  # free: a resource all in use is left out
    return {name: (free.get(name, 0.0), total[name]) for name in ("CPU", "GPU") if total.get(name)}


def _ctrl_c_said() -> None:
    """Ray Tune's handler of Ctrl-C (SIGINT), set as its loop starts (the one it sets for SIGUSR1 too), made to say
    first that the search stops, as a SIGTERM's handler does: Ray's own line is below a search's log level without
    -v, and a search of 1,869 trials said nothing for 17 to 25 s after a Ctrl-C (the trials stopped, the state saved,
    their results read) before its summary. Tune's handler puts back the one it replaced, so the line is said once.
    The main thread only: Python handles signals there."""
    if threading.current_thread() is not threading.main_thread():
        return
    tune_stop = signal.getsignal(signal.SIGINT)
    if not callable(tune_stop) or tune_stop is not signal.getsignal(signal.SIGUSR1):
        return  # not Tune's: TUNE_DISABLE_SIGINT_HANDLER, or said already

    def stop(number: int, frame: Any) -> None:
        log.warning("Ctrl-C: stopping the search, its state saved to be resumed")
        tune_stop(number, frame)

    signal.signal(signal.SIGINT, stop)


class Progress(tune.Callback):
    """What the user sees while trials run: a line per ended trial (finished, stopped early or failed: its metric
    at its best epoch, epochs run, the best so far) and, at most every `interval` seconds and only when something
    changed, one line on the trials running: their epoch and metric, finished/total, the time elapsed and the
    epochs the trials ran together (the search's cost, as the summary counts it), the best so far. When nothing
    was said for `quiet` seconds (a trial that hangs, trials pending while other jobs hold the cluster) that line
    again, once per such period, so that a wait does not look like a frozen terminal: with, at
    most once per period, the running trials that have not reported for that long and, trials pending, what the
    cluster has free. `planned`: the epochs a trial of a config runs if not stopped (None: every trial counts as
    finished). `reached`: whether a report reached the search's `search.stop` target (None: the search has none);
    the trial that reached it ended the search, and is not said to be stopped early. Its times are those the search
    ran (`running_time`): a search stopped with Ctrl-Z does not name its trials as silent when it is continued."""

    SHOWN = 4  # running trials named in a live line; the others are counted
    QUIET = 60.0  # the least `quiet`: past a trial's start (process, imports), as Ray's no-trial-started warning
    reached: Callable[[dict[str, Any]], bool] | None = None  # a callback a run pickled before it existed has none

    def __init__(self, metric: str, mode: str, total: int, interval: float,
                 planned: Callable[[dict[str, Any]], int] | None = None,
                 objectives: CheckpointPolicy | None = None,
                 reached: Callable[[dict[str, Any]], bool] | None = None) -> None:
        """`objectives`: a search of several objectives' policy, whose rank picks each trial's best epoch (the one
        its row of the summary shows, with every objective); None: the best `metric` over the epochs."""
        self.metric, self.mode, self.total, self.interval = metric, mode, total, interval
        self.planned, self.reached = planned, reached
        self.objectives = objectives if objectives is not None and objectives.multi_objective else None
        self.best_epoch: dict[str, tuple[Rank, dict[str, float]]] = {}  # several objectives: trial id -> its best
        self.best_value: dict[str, float] = {}  # one objective: running trial id -> its best finite value so far
        self.done = 0
        self.best: float | None = None
        self.started = self.shown_at = self.spoke_at = self.told_at = running_time()
        self.heard: dict[str, float] = {}  # running trial id -> when it started or last reported
        self.pending_since: dict[str, float] = {}  # pending trial id -> when a step first saw it pending
        self.shown: tuple[int, str] = (0, "")
        self.counted = False

    def _better(self, value: float, than: float | None = None) -> bool:
        """Whether `value` beats `than` (the best so far when None)."""
        than = self.best if than is None else than
        return than is None or (value > than if self.mode == "max" else value < than)

    def _best_of(self, trial: Any) -> float | None:
        """The trial's best finite value: of the reports heard in this session, and Ray's own best of the trial's
        (a trial before a resume too), which is NaN once any report was: one NaN epoch hid the others."""
        kept = self.best_epoch.get(trial.trial_id)
        if kept is not None:
            return kept[1][self.metric]
        before = (trial.metric_analysis.get(self.metric) or {}).get(self.mode)
        best = None
        for value in (self.best_value.pop(trial.trial_id, None), before):
            if finite(value) and (best is None or self._better(value, best)):
                best = value
        return best

    def _shown(self, trial: Any, value: float | None) -> str:
        """The trial's value at its best epoch, as words: every objective's with several."""
        kept = self.best_epoch.pop(trial.trial_id, None) if self.objectives is not None else None
        if kept is not None:
            return ", ".join(f"{name}={v:.4f}" for name, v in kept[1].items())
        return f"{self.metric}={'-' if value is None else f'{value:.4f}'}"

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        """When the trial reported and, with several objectives, its best epoch by their rank (the summary's and
        the export's), its epochs with a non-finite objective left out."""
        self.heard[trial.trial_id] = running_time()
        if self.objectives is None:
            value, kept = result.get(self.metric), self.best_value.get(trial.trial_id)
            if finite(value) and (kept is None or self._better(value, kept)):
                self.best_value[trial.trial_id] = value
            return
        rank = self.objectives.rank(result)
        kept = self.best_epoch.get(trial.trial_id)
        if rank is not None and (kept is None or rank > kept[0]):
            self.best_epoch[trial.trial_id] = (rank, {m: float(result[m]) for m in self.objectives.metrics})

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.heard[trial.trial_id] = running_time()

    def setup(self, **info: Any) -> None:  # also when a search is resumed (this object is then Ray's copy)
        self.started = self.shown_at = self.spoke_at = self.told_at = running_time()
        self.heard = {}  # another process's clock
        self.pending_since = {}
        self.best_value = {}  # (a Progress pickled before it held one)
        self.counted = False
        _ctrl_c_said()

    @property
    def quiet(self) -> float:
        """Seconds without a line before the line is said again: 3 intervals at least, not taken for the usual
        cadence. (Not an attribute: a resumed run's pickled copy of an earlier autotune's Progress gets it too.)"""
        return max(self.QUIET, 3 * self.interval)

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
        """The line on the running trials when it changed, and every `quiet` seconds without a line while trials run
        or wait: trials pending alone are said only then (a trial starting is pending a few seconds)."""
        now = running_time()
        if self.interval <= 0 or now - self.shown_at < self.interval:
            return  # before looking at the trials: Ray ends a step several times a trial, with every trial so far
        running = [t for t in trials if t.status == "RUNNING"]
        pending = sum(t.status == "PENDING" for t in trials)
        self.pending_since = {t.trial_id: self.pending_since.get(t.trial_id, now) for t in trials
                              if t.status == "PENDING"}
        state = self._state(running, pending)
        changed = bool(running) and (self.done, state) != self.shown
        if not (running or pending) or (not changed and now - self.spoke_at < self.quiet):
            return
        self.shown, self.shown_at, self.spoke_at = (self.done, state), now, now
        waiting, silent = self._notes(running, now)
        epochs = sum(epochs_reported(t) for t in trials)
        log.info("[%d/%d] %.0fs, %d epoch%s run: %s%s", self.done, self.total, now - self.started, epochs,
                 "s" * (epochs != 1), self._state(running, pending, waiting) if waiting else state, silent)

    def _state(self, running: list, pending: int, waiting: str = "") -> str:
        """The running trials (the first SHOWN by name, with their epoch and metric), those pending (`waiting`: why)
        and the best so far."""
        parts = []
        for trial in running[: self.SHOWN]:
            result = trial.last_result or {}
            value, epoch = result.get(self.metric), result.get("training_iteration")
            reported = isinstance(value, (int, float)) and epoch
            shown = f"epoch {epoch} {self.metric}={value:.4f}" if reported else "in epoch 1"  # none reported yet
            parts.append(f"{trial.trial_id} {shown}")
        more = f", +{len(running) - self.SHOWN} more" if len(running) > self.SHOWN else ""
        said = [f"{len(running)} running ({', '.join(parts)}{more})"] if running else []
        said += [f"{pending} pending{waiting}"] if pending else []
        return ", ".join(said + [f"best {'-' if self.best is None else f'{self.best:.4f}'}"])

    def _notes(self, running: list, now: float) -> tuple[str, str]:
        """At most once per `quiet` seconds: why trials pend (what the cluster has free), where one has pended since
        the step an interval before (a trial starts pending while the worker of the one that ended lets its CPU go:
        "waiting for resources (0 of 2 CPUs free)" said of that moment, about once a minute in a search of short
        trials), and the running trials that have not reported for that long; ("", "") otherwise."""
        if now - self.told_at < self.quiet:
            return "", ""
        waited = any(now - since >= self.interval for since in self.pending_since.values())
        waiting, silent = self._waiting(running) if waited else "", self._silent(running, now)
        if waiting or silent:
            self.told_at = now
        return waiting, silent

    def _waiting(self, running: list) -> str:
        """Trials pend for resources: what the cluster has free, held by other jobs when this search runs none."""
        free = _cluster_free()
        said = ", ".join(f"{f:g} of {t:g} {name}{'' if t == 1 else 's'} free" for name, (f, t) in free.items())
        others = ": other jobs use the cluster" if not running and any(f < t for f, t in free.values()) else ""
        return f": waiting for resources ({said}{others})" if said else ": waiting for resources"

    def _silent(self, running: list, now: float) -> str:
        """The running trials without a report (or since they started) for `quiet` seconds: a trial that hangs holds
        its slot and says nothing."""
        silent = [(t, now - self.heard.get(t.trial_id, self.started)) for t in running]
        silent = [(t, seconds) for t, seconds in silent if seconds >= self.quiet]
        said = [f"trial {t.trial_id}: no report for {duration_text(seconds)} (in epoch {epochs_reported(t) + 1})"
                for t, seconds in silent[: self.SHOWN]]
        said += [f"+{len(silent) - self.SHOWN} more"] if len(silent) > self.SHOWN else []
        return "".join(f"; {s}" for s in said)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        """The trial's value at its best epoch, as the summary's table and the export rank it (its last epoch's
        may be lower), and the epochs it ran: "stopped early at epoch N" before its planned last (the scheduler,
        or a budget, stopped it), "reached the stop target at epoch N" where its last report did, as the summary
        says."""
        self.done += 1
        self.spoke_at = running_time()
        self.heard.pop(trial.trial_id, None)
        epochs = epochs_reported(trial)
        value = self._best_of(trial)
        if value is not None and self._better(value):
            self.best = value
        shown = self._shown(trial, value)
        planned = self.planned(dict(trial.config)) if self.planned is not None else epochs
        if epochs < planned:  # as the summary says it: the trial that reached the target ended the search
            reached = self.reached is not None and self.reached(trial.last_result or {})
            how = "reached the stop target" if reached else "stopped early"
            ended = f"{how} at epoch {epochs} of {planned}: {shown}" + (
                f" (best of {epochs} epochs)" if epochs > 1 else "")
        else:
            ended = f"finished: {shown} (best of {epochs} epoch{'' if epochs == 1 else 's'})"
        log.info("[%d/%d] trial %s %s, best so far %s", self.done, self.total, trial.trial_id, ended,
                 "-" if self.best is None else f"{self.best:.4f}")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        """The trial's error, and its value at its best epoch when it reported any (it counts, as the export ranks
        it), saying so when that is the best so far."""
        self.done += 1
        self.spoke_at = running_time()
        self.heard.pop(trial.trial_id, None)
        value = self._best_of(trial)
        best = value is not None and self._better(value)
        if best:
            self.best = value
        self.best_epoch.pop(trial.trial_id, None)
        reached = "" if value is None else (f" (its best before: {self.metric}={value:.4f}"
                                            f"{', the best so far' if best else ''})")
        log.warning("[%d/%d] trial %s failed: %s%s", self.done, self.total, trial.trial_id, trial_error(trial),
                    reached)
