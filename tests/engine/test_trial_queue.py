"""The schedulers pick the next trial among the trials not yet ended, with the choice Ray's FIFO makes."""
from __future__ import annotations

import random

import pytest
from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler

from autotune.engine.hyperband import Hyperband
from autotune.engine.schedulers import _Asha, _Fifo, _Median


class _Controller:
    """What a scheduler reads of Ray's TuneController: its trials, in Ray's order (a requeued trial at the end)."""

    def __init__(self) -> None:
        self.trials: list[Trial] = []

    def get_trials(self) -> list[Trial]:
        return self.trials


class _Everything(_Controller):
    def get_trials(self) -> list[Trial]:
        raise AssertionError("the queue scanned every trial of the search")


def _make(name: str):
    return {"fifo": _Fifo, "median": lambda: _Median(time_attr="training_iteration"),
            "asha": lambda: _Asha(time_attr="training_iteration", max_t=10),
            "hyperband": lambda: Hyperband(max_t=10, seed=0)}[name]()


@pytest.mark.parametrize("name", ["fifo", "median", "asha", "hyperband"])
@pytest.mark.parametrize("seed", range(5))
def test_the_choice_is_ray_fifos_over_a_random_run_of_adds_starts_pauses_ends_errors_and_retries(name, seed):
    rng = random.Random(seed)
    ray_fifo, ours, controller = FIFOScheduler(), _make(name), _Controller()
    ours.set_search_properties("acc", "max")
    made = 0
    for _ in range(300):
        live = [t for t in controller.trials if t.status not in (Trial.TERMINATED, Trial.ERROR)]
        event = rng.choice(["add", "add", "start", "start", "pause", "end", "end", "error", "retry", "remove"])
        if event == "add" or not live:
            trial = Trial("trivial", stub=True, trial_id=f"t{made:04d}")
            made += 1
            controller.trials.append(trial)
            ours.on_trial_add(controller, trial)
        else:
            trial = rng.choice(live)
            if event == "start" and trial.status in (Trial.PENDING, Trial.PAUSED):
                trial.set_status(Trial.RUNNING)
            elif event == "pause" and trial.status == Trial.RUNNING:
                trial.set_status(Trial.PAUSED)
            elif event == "end" and trial.status == Trial.RUNNING:
                ours.on_trial_complete(controller, trial, {"acc": 0.5, "training_iteration": 1})
                trial.set_status(Trial.TERMINATED)
            elif event == "remove" and trial.status in (Trial.PENDING, Trial.PAUSED):
                ours.on_trial_remove(controller, trial)
                trial.set_status(Trial.TERMINATED)
            elif event in ("error", "retry") and trial.status == Trial.RUNNING:
                ours.on_trial_error(controller, trial)
                if event == "error":
                    trial.set_status(Trial.ERROR)
                else:  # Ray's requeue: PENDING again, moved to the end of its list, added again
                    trial.set_status(Trial.PENDING)
                    controller.trials.remove(trial)
                    controller.trials.append(trial)
                    ours.on_trial_add(controller, trial)
        assert ours.choose_trial_to_run(_Everything()) is ray_fifo.choose_trial_to_run(controller)


def test_an_ended_trial_leaves_the_queue():
    scheduler, controller = _Fifo(), _Controller()
    trials = [Trial("trivial", stub=True, trial_id=f"t{i}") for i in range(3)]
    for trial in trials:
        scheduler.on_trial_add(controller, trial)
    trials[0].set_status(Trial.RUNNING)
    scheduler.on_trial_complete(controller, trials[0], {})
    trials[0].set_status(Trial.TERMINATED)

    assert scheduler.choose_trial_to_run(controller) is trials[1]
    assert list(scheduler.live) == trials[1:]  # what it scans: the two trials not yet ended


def test_a_resumed_search_queues_only_its_trials_not_yet_ended():
    """Ray's resume adds every trial of the saved state, the ended ones with their status already set."""
    scheduler, controller = _Fifo(), _Controller()
    statuses = [Trial.TERMINATED, Trial.ERROR, Trial.PENDING, Trial.TERMINATED, Trial.PENDING]
    trials = [Trial("trivial", stub=True, trial_id=f"t{i}") for i in range(len(statuses))]
    for trial, status in zip(trials, statuses):
        trial.set_status(status)
        scheduler.on_trial_add(controller, trial)

    assert list(scheduler.live) == [trials[2], trials[4]]
    assert scheduler.choose_trial_to_run(controller) is trials[2]
