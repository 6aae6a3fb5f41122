"""Asynchronous Hyperband, with Hyperband's own share of trials per bracket.

Each bracket is successive halving (autotune.engine.asha: Ray's, one bracket) whose first rung is at
grace_period x rf^s epochs; the last bracket stops nothing. A new trial joins bracket s with Hyperband's weight
(Li et al., 2018): n_s proportional to (B / R) * rf^(S - s) / (S - s + 1) for the S + 1 brackets, so that every
bracket gets about the same budget of epochs. Ray's own multi-bracket scheduler draws brackets with weights
e^-(rungs missing) from NumPy's global random state: 64 % of trials went to the bracket that stops at epoch 1 and
1 % to the one that stops nothing (Hyperband's weights: 57 % and 3.5 %, and 24 % rather than 23 % to the next),
and the draw followed no seed. bench/simulate_brackets.py compares the two (docs/search-space.md).

Adaptive (`scheduler: auto`, the default): whether early epochs rank configurations as later ones do is a property
of the task, so it is measured rather than assumed. New trials join the most aggressive bracket until MIN_TRIALS
trials have reached a later milestone; from then on bracket s weighs Hyperband's n_s times tau_s^2, tau_s being
Kendall's rank agreement, over those trials, between the values at the bracket's first rung and at the latest
milestone they reached (the bracket that stops nothing, and any whose first rung is not below that milestone:
tau = 1). Where early accuracy ranks well the search stays close to ASHA from epoch 1; where curves cross, trials
move to the brackets that stop later or not at all (bench/quality.py measures both; docs/search-space.md).
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import numpy as np
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from autotune.engine.asha import Asha
from autotune.engine.trial_queue import LiveQueue

__all__ = ["Hyperband", "first_rungs", "kendall_tau"]

MIN_TRIALS = 5  # trials that must reach a later milestone before the adaptive weights move off the first bracket
KEPT_TRIALS = 200  # the most recent trials whose milestone values the adaptive weights read


def kendall_tau(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-a: concordant minus discordant pairs, over all pairs (ties count as neither)."""
    n = len(x)
    if n < 2:
        return 0.0
    agree = np.sign(x[:, None] - x[None, :]) * np.sign(y[:, None] - y[None, :])
    return float(agree.sum() / (n * (n - 1)))


def first_rungs(max_t: int, grace_period: int, reduction_factor: float) -> list[int]:
    """The first rung of every bracket that stops something: grace_period x rf^s below max_t."""
    count = math.floor(math.log(max_t / grace_period) / math.log(reduction_factor) + 1e-9) + 1
    return [r for r in (round(grace_period * reduction_factor**s) for s in range(count)) if r < max_t]


class Hyperband(LiveQueue, FIFOScheduler):
    """Brackets of asynchronous successive halving, plus one that stops nothing; each trial joins one, drawn with
    Hyperband's weights from a generator seeded by the search's seed (`adaptive`: weights from the trials'
    rank agreement, in the module's docstring). The next trial to start: the first come (LiveQueue)."""

    adaptive = False  # a scheduler pickled before adaptive weights existed keeps Hyperband's
    min_trials = MIN_TRIALS

    def __init__(self, max_t: int, grace_period: int = 1, reduction_factor: float = 3, seed: int | None = None,
                 adaptive: bool = False):
        super().__init__()
        self._max_t = max_t
        self._firsts = first_rungs(max_t, grace_period, reduction_factor)
        self.brackets: list[TrialScheduler] = [
            Asha(max_t=max_t, grace_period=first, reduction_factor=reduction_factor, brackets=1)
            for first in self._firsts
        ] + [FIFOScheduler()]
        last = len(self.brackets) - 1
        weights = np.asarray([reduction_factor ** (last - s) / (last - s + 1) for s in range(last + 1)])
        self.weights = weights / weights.sum()
        self._random = np.random.default_rng(seed)
        self._bracket: dict[str, int] = {}  # trial id -> its bracket
        self.adaptive, self._metric, self._sign = adaptive, None, 1.0
        self._milestones = sorted({r for rungs in self.rungs() for r in rungs} | {max_t})
        self._values: OrderedDict[str, dict[int, float]] = OrderedDict()  # trial id -> milestone -> value (max)

    @property
    def supports_buffered_results(self) -> bool:
        return False  # a bracket decides at each epoch

    def rungs(self) -> list[list[int]]:
        """Each bracket's rungs (epochs), the last bracket's none."""
        return [bracket.rung_epochs() if isinstance(bracket, Asha) else [] for bracket in self.brackets]

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        if metric is not None:
            self._metric, self._sign = metric, -1.0 if mode == "min" else 1.0
        return all([b.set_search_properties(metric, mode, **spec) for b in self.brackets])

    def current_weights(self) -> np.ndarray:
        """The share of new trials each bracket gets now: Hyperband's, or (adaptive) as the module says."""
        if not self.adaptive:
            return self.weights
        latest = self.measured_milestone()
        if latest is None:
            return self.unmeasured_weights()
        weights = self.weights * np.asarray(self.agreement(latest))
        return weights / weights.sum()

    def unmeasured_weights(self) -> np.ndarray:
        """The adaptive weights before agreement can be measured: every new trial to the bracket that stops first."""
        return np.eye(len(self.brackets))[0]

    def measured_milestone(self) -> int | None:
        """The latest milestone past the first rung that `min_trials` trials reached; None before there is one."""
        reached = sorted((max(v) for v in self._values.values() if v), reverse=True)
        if len(reached) < self.min_trials or reached[self.min_trials - 1] <= self._firsts[0]:
            return None
        return reached[self.min_trials - 1]

    def agreement(self, latest: int) -> list[float]:
        """Each bracket's factor: tau^2 between the values at its first rung and at `latest`, over the trials that
        reached `latest` (negative: 0); 1 for the bracket that stops nothing and any whose first rung is not below
        `latest`."""
        rows = [v for v in self._values.values() if latest in v]
        final = np.asarray([v[latest] for v in rows])
        return [max(0.0, kendall_tau(np.asarray([v[first] for v in rows]), final)) ** 2 if first < latest else 1.0
                for first in self._firsts] + [1.0]

    def get_state(self) -> dict[str, Any]:
        """What a resume needs to decide as an unbroken run would: each bracket's rungs, the trials' brackets, the
        draw's generator, the milestone values the adaptive weights read."""
        return {"brackets": [b.get_state() if isinstance(b, Asha) else None for b in self.brackets],
                "bracket_of": dict(self._bracket), "random": self._random.bit_generator.state,
                "values": [(trial_id, dict(values)) for trial_id, values in self._values.items()]}

    def set_state(self, state: dict[str, Any]) -> None:
        for bracket, saved in zip(self.brackets, state["brackets"]):
            if isinstance(bracket, Asha):
                bracket.set_state(saved)
        self._bracket = dict(state["bracket_of"])
        self._random.bit_generator.state = state["random"]
        self._values = OrderedDict(state["values"])

    def _of(self, trial: Any) -> TrialScheduler:
        return self.brackets[self._bracket[trial.trial_id]]

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        if trial.trial_id not in self._bracket:  # a resumed run re-adds its trials: they keep their bracket
            self._bracket[trial.trial_id] = int(self._random.choice(len(self.brackets), p=self.current_weights()))
        self._of(trial).on_trial_add(tune_controller, trial)
        super().on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        if self.adaptive:
            self.record(trial.trial_id, result)
        return self._of(trial).on_trial_result(tune_controller, trial, result)

    def record(self, trial_id: str, result: dict[str, Any]) -> None:
        """Keep a trial's value at each milestone it reaches (of the KEPT_TRIALS most recent trials)."""
        epoch, value = result.get("training_iteration"), result.get(self._metric)
        if epoch not in self._milestones or not isinstance(value, (int, float)) or not math.isfinite(value):
            return
        self._values.setdefault(trial_id, {})[epoch] = self._sign * float(value)
        self._values.move_to_end(trial_id)
        while len(self._values) > KEPT_TRIALS:
            self._values.popitem(last=False)

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
        shares = self.current_weights()
        return ("Adaptive Hyperband: " if self.adaptive else "Hyperband: ") + ", ".join(
            f"first rung {r[0] if r else 'none'}: {n} trials ({share:.0%} of new ones)"
            for r, n, share in zip(self.rungs(), counts, shares))
