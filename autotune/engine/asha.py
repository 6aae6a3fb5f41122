"""Ray's asynchronous successive halving (ASHA), judging a trial only at the epochs of its bracket's rungs, and
against the values recorded there and its own.

At a rung, a trial goes on only if its value is at least the (1 - 1/rf) quantile of the values recorded there,
its own among them: the top 1/rf of the rung goes on, as successive halving defines it. Ray's own takes the
quantile of the earlier trials' values alone, which while a rung holds few values keeps others than its top 1/rf
(at rf 3, a trial second of three goes on when above the 2/3 point between the other two). In the search-quality
simulation of the default search (bench/simulate_brackets.py, 240 seeds), Ray's rule was behind on the synthetic
curves by 0.006 and 0.005 mean regret at 50 and 100 % of the budget, and within 0.0004 on the recorded tables
(docs/search-space.md).

Ray's bracket judges a result at the first rung the trial has no record of, whatever the result's epoch: after
`--resume`, a trial continuing from its checkpoint at epoch 7 was judged at rung 3 with its epoch-7 value, though it
had passed rung 3 before the kill. Here a result reaches the bracket only at the epoch where an unbroken run first
reaches one of the bracket's rungs, or at the last epoch (max_t). Every epoch is reported, so an unbroken run is
judged at the same epochs as by Ray's own.

Ray saves no scheduler state: after `--resume` its rungs started empty, and the first value to reach a rung went on
(a trial an unbroken run stopped at epoch 1 ran all its epochs). `get_state`/`set_state` hold the rungs' values and
the trials' brackets, saved with the search's state (autotune.engine.schedulers.SavedScheduler) and given back
before the restored trials are added again; a restored trial keeps its bracket.
"""
from __future__ import annotations

import math
from typing import Any

from ray.tune.schedulers import AsyncHyperBandScheduler, TrialScheduler

from autotune.engine import ray_internals

__all__ = ["Asha"]


class Asha(AsyncHyperBandScheduler):
    """Ray's ASHA (its arguments), passing a trial's result to its bracket only at the bracket's rung epochs, where
    it is judged with its own value among the rung's."""

    def __init__(self, max_t: int, time_attr: str = "training_iteration", **kwargs: Any):
        super().__init__(time_attr=time_attr, max_t=max_t, **kwargs)
        self._epoch_key, self._last_epoch = time_attr, max_t
        ray_internals.judge_with_own_value(self)

    def rung_epochs(self, trial_id: str | None = None) -> list[int]:
        """The epochs below max_t at which a trial's bracket judges it (the first bracket's without a trial):
        the first epoch at or past each rung's milestone."""
        return sorted({math.ceil(m) for m in ray_internals.asha_milestones(self, trial_id) if m < self._last_epoch})

    def get_state(self) -> dict[str, Any]:
        """The values recorded at each rung and each live trial's bracket."""
        return ray_internals.asha_state(self)

    def set_state(self, state: dict[str, Any]) -> None:
        ray_internals.set_asha_state(self, state)

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        if not ray_internals.asha_has_trial(self, trial.trial_id):  # a restored trial keeps its bracket
            super().on_trial_add(tune_controller, trial)

    def _at_rung(self, trial: Any, result: dict[str, Any]) -> bool:
        return result.get(self._epoch_key) in self.rung_epochs(trial.trial_id)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        epoch = result.get(self._epoch_key)
        if isinstance(epoch, (int, float)) and epoch < self._last_epoch and not self._at_rung(trial, result):
            return TrialScheduler.CONTINUE
        return super().on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> None:
        """A trial's last result is recorded at a rung only at that rung's epoch; otherwise (a trial resumed past
        a rung, or at max_t) it would stand at the first rung it has no record of, as Ray's would put it."""
        if self._at_rung(trial, result):
            super().on_trial_complete(tune_controller, trial, result)
        else:
            AsyncHyperBandScheduler.on_trial_remove(self, tune_controller, trial)
