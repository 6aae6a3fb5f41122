"""Asynchronous Hyperband, with Hyperband's own share of trials per bracket.

Each bracket is successive halving (Ray's `AsyncHyperBandScheduler`, one bracket) whose first rung is at
grace_period x rf^s epochs; the last bracket stops nothing. A new trial joins bracket s with Hyperband's weight
(Li et al., 2018): n_s proportional to (B / R) * rf^(S - s) / (S - s + 1) for the S + 1 brackets, so that every
bracket gets about the same budget of epochs. Ray's own multi-bracket scheduler draws brackets with weights
e^-(rungs missing) from NumPy's global random state: 64 % of trials went to the bracket that stops at epoch 1 and
1 % to the one that stops nothing (Hyperband's weights: 57 % and 3.5 %, and 24 % rather than 23 % to the next),
and the draw followed no seed. bench/simulate_brackets.py compares the two (docs/search-space.md).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from ray.tune.schedulers import AsyncHyperBandScheduler, FIFOScheduler, TrialScheduler

from autotune.engine.trial_queue import LiveQueue

__all__ = ["Hyperband", "first_rungs"]


def first_rungs(max_t: int, grace_period: int, reduction_factor: float) -> list[int]:
    """The first rung of every bracket that stops something: grace_period x rf^s below max_t."""
    count = math.floor(math.log(max_t / grace_period) / math.log(reduction_factor) + 1e-9) + 1
    return [r for r in (round(grace_period * reduction_factor**s) for s in range(count)) if r < max_t]


class Hyperband(LiveQueue, FIFOScheduler):
    """Brackets of asynchronous successive halving, plus one that stops nothing; each trial joins one, drawn with
    Hyperband's weights from a generator seeded by the search's seed. The next trial to start: the first come
    (LiveQueue)."""

    def __init__(self, max_t: int, grace_period: int = 1, reduction_factor: float = 3, seed: int | None = None):
        super().__init__()
        self._max_t, self._rf = max_t, reduction_factor
        self._firsts = first_rungs(max_t, grace_period, reduction_factor)
        self.brackets: list[TrialScheduler] = [
            AsyncHyperBandScheduler(time_attr="training_iteration", max_t=max_t, grace_period=first,
                                    reduction_factor=reduction_factor, brackets=1)
            for first in self._firsts
        ] + [FIFOScheduler()]
        last = len(self.brackets) - 1
        weights = np.asarray([reduction_factor ** (last - s) / (last - s + 1) for s in range(last + 1)])
        self.weights = weights / weights.sum()
        self._random = np.random.default_rng(seed)
        self._bracket: dict[str, int] = {}  # trial id -> its bracket

    @property
    def supports_buffered_results(self) -> bool:
        return False  # a bracket decides at each epoch

    def rungs(self) -> list[list[int]]:
        """Each bracket's rungs (epochs), the last bracket's none."""
        rungs = [[round(first * self._rf**k) for k in range(64) if first * self._rf**k < self._max_t]
                 for first in self._firsts]
        return [*rungs, []]

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return all([b.set_search_properties(metric, mode, **spec) for b in self.brackets])

    def _of(self, trial: Any) -> TrialScheduler:
        return self.brackets[self._bracket[trial.trial_id]]

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        if trial.trial_id not in self._bracket:  # a resumed run re-adds its trials: they keep their bracket
            self._bracket[trial.trial_id] = int(self._random.choice(len(self.brackets), p=self.weights))
        self._of(trial).on_trial_add(tune_controller, trial)
        super().on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        return self._of(trial).on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> None:
        self._of(trial).on_trial_complete(tune_controller, trial, result)
        super().on_trial_complete(tune_controller, trial, result)

    def on_trial_error(self, tune_controller: Any, trial: Any) -> None:
        self._of(trial).on_trial_error(tune_controller, trial)
        super().on_trial_error(tune_controller, trial)

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        self._of(trial).on_trial_remove(tune_controller, trial)
        super().on_trial_remove(tune_controller, trial)

    def debug_string(self) -> str:
        counts = np.bincount(list(self._bracket.values()), minlength=len(self.brackets))
        return "Hyperband: " + ", ".join(f"first rung {r[0] if r else 'none'}: {n} trials"
                                         for r, n in zip(self.rungs(), counts))
