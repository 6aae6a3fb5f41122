"""The schedulers that stop weak trials early (`search.scheduler`), time counted in epochs: a trial's reports.

    make_scheduler(space)           # FIFO, median, ASHA or the engine's Hyperband, checked against the space
    max_epochs(space)               # the most epochs any trial of the space can run
    planned_epochs(space, values)   # the epochs a trial of sampled `values` runs if not stopped
    SavedScheduler(scheduler)       # a callback: the scheduler's state saved with the search's, restored on resume
"""
from __future__ import annotations

from typing import Any

from ray.tune import Callback
from ray.tune.schedulers import FIFOScheduler, MedianStoppingRule, TrialScheduler

from autotune.engine.asha import Asha
from autotune.engine.hyperband import Hyperband
from autotune.engine.trial_queue import LiveQueue
from autotune.errors import UserError
from autotune.space.types import Space

__all__ = ["SavedScheduler", "make_scheduler", "max_epochs", "planned_epochs"]


class _Fifo(LiveQueue, FIFOScheduler):
    """Ray's FIFO, choosing among the trials not yet ended (autotune.engine.trial_queue)."""


class _Median(LiveQueue, MedianStoppingRule):
    """Ray's median stopping rule, choosing among the trials not yet ended."""


class _Asha(LiveQueue, Asha):
    """Ray's ASHA judging at rung epochs only (autotune.engine.asha), choosing among the trials not yet ended."""


class SavedScheduler(Callback):
    """Saves the state of `scheduler` (ASHA's, Hyperband's: their `get_state`) with the search's: Ray saves its
    callbacks' states with its trials' and gives them back on `Tuner.restore` before it adds the restored trials
    again, while it saves no scheduler state. Tuner.restore unpickles the callback with the scheduler it was made
    with, the one the restored search runs (both are in the run's tuner.pkl, pickled at once). A scheduler without
    state (FIFO, the median rule) saves none."""

    def __init__(self, scheduler: TrialScheduler) -> None:
        self.scheduler = scheduler

    def get_state(self) -> dict[str, Any] | None:
        state = getattr(self.scheduler, "get_state", None)
        return {"scheduler": state()} if state else None

    def set_state(self, state: dict[str, Any]) -> None:
        self.scheduler.set_state(state["scheduler"])


def planned_epochs(space: Space, values: dict[str, Any]) -> int:
    """The epochs (reports) a trial of sampled `values` makes at most: the recipe's budget key; 1 without one."""
    return space.planned(space.config(values)) or 1


def max_epochs(space: Space) -> int:
    """The most epochs any trial can run (`Space.most_planned`: over the top of a searched budget range and every
    option of every choice or grid)."""
    return space.most_planned()


def make_scheduler(space: Space) -> TrialScheduler:
    """The scheduler `search.scheduler` names (`auto`: as `Space.scheduler_run` resolves it); time is counted in
    epochs, up to the most a trial can run."""
    name, given = space.scheduler_run()  # `auto` resolved for the space
    args = dict(given)
    if name == "fifo":
        return _Fifo()
    if name == "median":
        return _Median(time_attr="training_iteration", **{"grace_period": 1, **args})
    args.setdefault("max_t", max_epochs(space))
    if name == "hyperband":
        return _hyperband(**args, seed=space.search.seed)
    grace = args.setdefault("grace_period", 1)
    if grace > args["max_t"]:
        limit = "max_t" if "max_t" in space.search.scheduler_args else space.budget
        raise UserError(
            f"search.scheduler.asha.grace_period is {grace} but a trial runs at most {args['max_t']} epoch(s): nothing "
            f"would be stopped; lower grace_period, raise {limit}, or use scheduler: fifo"
        )
    return _Asha(time_attr="training_iteration", **args)


def _hyperband(max_t: int, grace_period: int = 1, reduction_factor: float = 3, seed: int = 0,
               adaptive: bool = False) -> TrialScheduler:
    """Asynchronous Hyperband (autotune.engine.hyperband): brackets of successive halving whose first rung is at
    grace_period * rf^s epochs (s = 0, 1, ...), the last bracket stopping nothing, each trial drawn into one with
    Hyperband's weights (`adaptive`: weighed by how well each bracket's first rung has ranked the trials).

    Ray's synchronous HyperBandScheduler fills its first bracket (81 trials for 52 epochs) before it opens
    another, and waits for every trial of a bracket to reach a milestone: with a few trials at a time it
    stopped nothing. The asynchronous form (Li et al., "A System for Massively Parallel Hyperparameter
    Tuning", 2020) promotes without waiting and hedges in the same way, with brackets that stop later."""
    if grace_period >= max_t:
        raise UserError(
            f"search.scheduler: hyperband starts stopping trials at grace_period {grace_period} epoch(s), but a "
            f"trial runs at most {max_t}: nothing would be stopped; lower grace_period, raise train.epochs, or use "
            "scheduler: fifo"
        )
    return Hyperband(max_t, grace_period, reduction_factor, seed=seed, adaptive=adaptive)
