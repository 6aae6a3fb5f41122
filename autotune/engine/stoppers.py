"""What ends a whole search before its trial count: `search.epoch_budget`, `search.time_budget`, `search.stop`
targets, and a broken recipe (a report without the searched metric, or its first trials' same error). Each is both
Ray's stopper and a callback; Ray pickles a search's copies of them, which share their state."""
from __future__ import annotations

import copy
import logging
import uuid
from typing import Any, ClassVar

from ray import tune
from ray.exceptions import RayError
from ray.tune.stopper import TimeoutStopper

from autotune.engine.history import epochs_reported, result_history
from autotune.engine.ray_internals import spend_time_budget, time_budget
from autotune.engine.running_clock import running_time
from autotune.engine.result_grid import in_start_order, reaches, trial_id_of
from autotune.engine.trial_errors import error_text, failure_of, trial_error
from autotune.errors import Diverged, MissingMetric

__all__ = ["BrokenReports", "EpochBudget", "TargetStopper", "TimeBudget"]

log = logging.getLogger("autotune")

ALIKE = 3  # the first trials that fail before any report with one error: a broken recipe (BrokenReports)


class _SharedState:
    """State shared by the copies Ray makes of a stopper or callback (a resumed search unpickles one as its
    stopper and another as a callback), through a `token` they all carry."""

    _states: ClassVar[dict[str, dict[str, Any]]] = {}

    def _new_state(self, token: str | None = None, **initial: Any) -> None:
        """A new state, under `token` (a new one when None), replacing any the token held."""
        self.token = token or uuid.uuid4().hex
        self._initial = initial
        self._states[self.token] = copy.deepcopy(initial)

    @property
    def _state(self) -> dict[str, Any]:
        return self._states.setdefault(self.token, copy.deepcopy(self._initial))


class _StopsAllOnceSaved(_SharedState):
    """A stopper that one trial's report sets off (`_reached_by`): that trial stops first, the others once its
    checkpoint is saved or it ended (stopping everything at the same step would drop that checkpoint: often the
    best one). Its state holds `reached` (that trial's id) and `saved`."""

    def _reached_by(self, trial_id: str) -> None:
        if self._state.get("reached") is None:
            self._state["reached"] = trial_id

    def _ended(self, trial: Any) -> None:
        self._state["saved"] = self._state.get("saved") or trial.trial_id == self._state.get("reached")

    def on_checkpoint(self, iteration: int, trials: list, trial: Any, checkpoint: Any, **info: Any) -> None:
        self._ended(trial)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._ended(trial)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._ended(trial)

    def stop_all(self) -> bool:
        return bool(self._state.get("saved"))


def _left_at_resume(key: str, budget: str, left: str, asked: str) -> None:
    """A resumed search's line on what is left of its `search.<key>` (`budget`, as "40 s"), and a warning when the
    one asked for now (`asked`) is another: Ray restores the stopper the run started with."""
    name = key.replace("_", " ")
    log.info("the %s of %s: %s of it left for this resumed search", name, budget, left)
    if asked != budget:
        log.warning("search.%s is %s, but this run started with %s: a resumed search keeps its %s, %s of it left",
                    key, asked, budget, name, left)


class EpochBudget(_StopsAllOnceSaved, tune.Stopper, tune.Callback):
    """`search.epoch_budget`: once the trials together have run this many epochs, the running trials stop and no
    new one starts (after the checkpoint of the epoch that used it up is saved). A resumed search counts the epochs
    its trials ran before, against the budget it started with: it says, as it starts, how many are left, and that a
    budget asked for now does not replace it. A resumed search's copy (Ray's, unpickled) shares its state with this
    one through the run's folder `run`."""

    def __init__(self, budget: int, run: str) -> None:
        self.budget = budget
        self._new_state(f"epoch budget of {run}", asked=budget, limit=None, epochs={}, used=0, counted=False,
                        reached=None, saved=False)

    def _ran(self, trial_id: str, epochs: int) -> None:
        """Trial `trial_id` has run `epochs` epochs: the total follows (one step per result, not a sum of all)."""
        state = self._state
        state["used"] += epochs - state["epochs"].get(trial_id, 0)
        state["epochs"][trial_id] = epochs

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        if not self._state["counted"]:
            self._state["counted"] = True
            self._state["limit"] = self.budget
            for trial in trials:
                self._ran(trial.trial_id, epochs_reported(trial))
            self._told_at_start(self._state.get("asked", self.budget))
            if self.reached():  # used up before this start: no checkpoint to wait for
                self._state["saved"] = True

    def _told_at_start(self, asked: int) -> None:
        """At a resumed search's start (epochs run before), how many of the budget are left (`_left_at_resume`)."""
        used = self._state["used"]
        if used or asked != self.budget:
            _left_at_resume("epoch_budget", f"{self.budget} epochs", f"{max(self.budget - used, 0)} epochs",
                            f"{asked} epochs")

    def __call__(self, trial_id: str, result: dict) -> bool:
        self._ran(trial_id, int(result.get("training_iteration", 0)))
        if self.reached():
            self._reached_by(trial_id)
        return self.reached()

    def _limit(self) -> int:
        """The budget the search counts: the one it started with, which a resumed search's copy records."""
        return self._state.get("limit") or self.budget

    def reached(self) -> bool:
        return self._state["used"] >= self._limit()

    def reached_in(self, grid: Any) -> bool:
        """Whether the trials of `grid` ran the budget's epochs (the copy of this stopper that a resumed run started
        before the copies shared their state uses is Ray's, unpickled from the run: this one never sees its
        results)."""
        ran = sum(int((result.metrics or {}).get("training_iteration", 0) or 0) for result in grid)
        return self.reached() or ran >= self._limit()

    def __str__(self) -> str:
        return f"the epoch budget of {self._limit()} epochs"


class TimeBudget(_SharedState, TimeoutStopper, tune.Callback):
    """`search.time_budget`: Ray's stopper of it (as `time_budget_s` builds), which saves what is left of the budget
    with the search's state, so that a resumed search runs for the rest of it. It records whether it ran out (a
    search that ran its trials past the budget's time was not ended by it) and the budget it counts, and says, as a
    resumed search starts, how much of it is left, and that a budget asked for now does not replace it. A resumed
    search's copy (Ray's, unpickled) shares its state with this one through the run's folder `run`. It counts the
    time the search's process runs: a laptop's lid closed, a search stopped with Ctrl-Z and continued, or the system
    clock set forward spends none of it (Ray's stopper counted them)."""

    def __init__(self, seconds: float, run: str) -> None:
        TimeoutStopper.__init__(self, seconds)
        self._new_state(f"time budget of {run}", asked=seconds, seconds=None, ran_out=False)

    def stop_all(self) -> bool:
        state = self._state
        if state["seconds"] is None:
            state["seconds"] = time_budget(self)[0]
            self._told_at_start(state["asked"])
        state["ran_out"] = state["ran_out"] or spend_time_budget(self, running_time())
        return state["ran_out"]

    def _told_at_start(self, asked: float) -> None:
        """At a resumed search's start (part of the budget spent), what is left of it (`_left_at_resume`)."""
        seconds, left = time_budget(self)
        if left < seconds or asked != seconds:
            _left_at_resume("time_budget", f"{seconds:g} s", f"{max(left, 0.0):.1f} s", f"{asked:g} s")

    def ran_out(self, seconds: float) -> bool:
        """Whether the budget ran out before the search ended. A resumed run started before the engine counted its
        budget so is counted by Ray's own stopper, and this one never runs: there, whether the search ran for the
        whole budget in `seconds`, this session's time."""
        if self._state["seconds"] is None:
            return seconds >= time_budget(self)[0]
        return self._state["ran_out"]

    def __str__(self) -> str:
        return f"the time budget of {self._state['seconds'] or time_budget(self)[0]:g} s"


class TargetStopper(_StopsAllOnceSaved, tune.Stopper, tune.Callback):
    """`search.stop: {metric: target}`: once a trial reaches every target, the whole search stops.

    The trial that reached it stops first; the others stop once its checkpoint is saved (stopping everything
    at the same step would drop that checkpoint: the best one).
    """

    def __init__(self, targets: dict[str, float], modes: dict[str, str]) -> None:
        self.targets, self.modes = targets, modes  # metric -> target, and "max" (reached at >=) or "min" (<=)
        self._new_state(reached=None, saved=False)

    def __call__(self, trial_id: str, result: dict) -> bool:
        if reaches(result, self.targets, self.modes):
            self._reached_by(trial_id)
        return self._state["reached"] is not None

    def reached_in(self, grid: Any) -> str | None:
        """The id of a trial of `grid` that reached every target, or None (the copy of this stopper that a resumed
        run uses is Ray's, unpickled from the run: this one never sees its results)."""
        for result in grid:
            history = result_history(result)
            if history is None or not set(self.targets) <= set(history.columns):
                continue
            if any(reaches(row, self.targets, self.modes) for row in history[list(self.targets)].to_dict("records")):
                return trial_id_of(result)
        return None

    def __str__(self) -> str:
        return ", ".join(f"{m} {'<=' if self.modes[m] == 'min' else '>='} {t:g}" for m, t in self.targets.items())


class BrokenReports(_SharedState, tune.Stopper, tune.Callback):
    """The search stops, and fails, where its recipe is broken whatever the configuration:
    - a trial failed because its report lacked a searched metric (`MissingMetric`): every trial of the search would
      fail the same way at its first report;
    - the first ALIKE trials (as the searcher made them) all failed before their first report with one error of the
      recipe's own (not a dead worker's, a diverged training's or memory that ran out: `_the_recipe_s`): a typo, a
      missing file, argparse reading the worker's command line. Each trial after them would fail so: a plain Optuna
      script stops at the first exception, and Ray ran every trial (20 trials of a recipe with a NameError: 55 s,
      and 20 lines of the same error)."""

    def __init__(self) -> None:
        self._new_state(seen=False, alike=False, failed={})

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        failure = failure_of(trial)
        self._state["seen"] = self._state["seen"] or isinstance(failure, MissingMetric)
        if not epochs_reported(trial) and _the_recipe_s(failure):
            self._state["failed"][trial.trial_id] = trial_error(trial)
        # Ray's trials in the order the searcher made them: the study's numbers, which `error_in` reads the grid by
        texts = [self._state["failed"].get(t.trial_id) for t in trials[:ALIKE]]
        self._state["alike"] = len(texts) == ALIKE and None not in texts and len(set(texts)) == 1

    def _broken(self) -> bool:
        return self._state["seen"] or self._state["alike"]

    def __call__(self, trial_id: str, result: dict) -> bool:
        return self._broken()

    def stop_all(self) -> bool:
        return self._broken()

    def error_in(self, grid: Any, name: str, *, cut_short: bool) -> str | None:
        """Why the search of `grid` (its study `name`) stopped as broken, in one line ending with the error; None when
        it did not. Read from the grid: the copies a resumed search uses are Ray's, unpickled from the run, and this
        one sees none of its trials. `cut_short`: whether the search ended before its trial count by no budget or
        target; one that ran them all was not stopped for its first trials (a search resumed between their failures:
        its restored copies do not know those before the kill, and it runs on)."""
        for result in grid:
            if isinstance(getattr(result.error, "cause", None) or result.error, MissingMetric):
                return (f"the search stopped at the first broken report (every trial would fail so); the error: "
                        f"{error_text(result.error)}")
        if not cut_short:
            return None
        early = [error_text(r.error) for r in in_start_order(grid, name)[:ALIKE]
                 if r.error is not None and not r.metrics.get("training_iteration")
                 and _the_recipe_s(getattr(r.error, "cause", None) or r.error)]
        if len(early) < ALIKE or len(set(early)) != 1:
            return None
        return (f"the search stopped: its first {ALIKE} trials failed before their first report with the same error, "
                f"which the recipe raises whatever the configuration (fix it, then start the search again with "
                f"--restart); the error: {early[0]}")


def _the_recipe_s(failure: BaseException | None) -> bool:
    """Whether `failure` is an exception of the recipe's own that need say nothing of its configuration: not Ray's (a
    worker that died, a lost node), nor a verdict on the configuration (`Diverged`), nor memory that ran out (a
    batch too large for the GPU: torch's OutOfMemoryError, Python's MemoryError)."""
    return failure is not None and not isinstance(failure, (RayError, Diverged, MemoryError)) and (
        type(failure).__name__ != "OutOfMemoryError")
