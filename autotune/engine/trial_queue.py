"""Which waiting trial a scheduler starts next: the first come, among the trials not yet ended.

Ray's FIFOScheduler, and every scheduler built on it (ASHA, the median rule, the engine's Hyperband), picks the
next trial by scanning every trial of the search, the ended ones too, each time a trial could start: a cost per
trial that grows with the search (a sixth of the driver's time per trial at 10,000 trials: bench measure 4b).
`LiveQueue` keeps the trials not yet ended, in the order Ray added them, and picks from those: the same choice.
"""
from __future__ import annotations

from typing import Any

from ray.tune.experiment import Trial

__all__ = ["LiveQueue"]


class LiveQueue:
    """A mixin before a FIFOScheduler class: choose_trial_to_run from the trials not yet ended. A trial Ray
    retries (`on_trial_error`, then `on_trial_add` again) goes to the end, as Ray moves it to the end of its list."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.live: dict[Trial, None] = {}  # the trials not yet ended, in the order added: an insertion-ordered set

    def on_trial_add(self, tune_controller: Any, trial: Trial) -> None:
        super().on_trial_add(tune_controller, trial)  # type: ignore[misc]
        if trial.status not in (Trial.TERMINATED, Trial.ERROR):  # a resumed search adds its ended trials too
            self.live[trial] = None

    def on_trial_complete(self, tune_controller: Any, trial: Trial, result: dict[str, Any]) -> None:
        super().on_trial_complete(tune_controller, trial, result)  # type: ignore[misc]
        self.live.pop(trial, None)

    def on_trial_error(self, tune_controller: Any, trial: Trial) -> None:
        super().on_trial_error(tune_controller, trial)  # type: ignore[misc]
        self.live.pop(trial, None)

    def on_trial_remove(self, tune_controller: Any, trial: Trial) -> None:
        super().on_trial_remove(tune_controller, trial)  # type: ignore[misc]
        self.live.pop(trial, None)

    def choose_trial_to_run(self, tune_controller: Any) -> Trial | None:
        """The first PENDING trial, else the first PAUSED one (FIFOScheduler's rule), of the trials not yet ended."""
        for status in (Trial.PENDING, Trial.PAUSED):
            for trial in self.live:
                if trial.status == status:
                    return trial
        return None
