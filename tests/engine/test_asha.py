"""ASHA judging a trial only at its bracket's rung epochs, against the rung's values and its own
(autotune.engine.asha): `scheduler: asha` and every bracket of Hyperband. An unbroken run is judged at the epochs
Ray's own judges; a resumed trial is not judged on a later epoch."""
from __future__ import annotations

import numpy as np
import pytest
from ray.tune.experiment import Trial
from ray.tune.schedulers import AsyncHyperBandScheduler

import autotune
from autotune.engine import ray_internals
from autotune.engine.asha import Asha
from autotune.engine.schedulers import make_scheduler
from engine_helpers import toy_space


def _asha_of_space(epochs: int = 9) -> Asha:
    space = autotune.load_space(toy_space("asha", train=f"{{epochs: {epochs}}}",
                                          search=", scheduler: {asha: {reduction_factor: 3}}"))
    scheduler = make_scheduler(space)
    scheduler.set_search_properties("val_accuracy", "max")
    return scheduler


def _trials(scheduler: Asha, count: int) -> list[Trial]:
    trials = [Trial("trivial", stub=True, trial_id=f"t{i}") for i in range(count)]
    for trial in trials:
        scheduler.on_trial_add(None, trial)
    return trials


def _result(scheduler: Asha, trial: Trial, epoch: int, value: float) -> str:
    return scheduler.on_trial_result(None, trial, {"training_iteration": epoch, "val_accuracy": value})


def test_asha_after_a_resume_does_not_judge_a_trial_at_a_rung_it_is_past():
    scheduler = _asha_of_space()
    assert isinstance(scheduler, Asha) and scheduler.rung_epochs() == [1, 3]
    trials = _trials(scheduler, 4)
    for trial in trials[:2]:  # two trials set rungs 1 and 3 high
        assert [_result(scheduler, trial, e, 0.9) for e in (1, 2, 3)] == ["CONTINUE"] * 3
    assert _result(scheduler, trials[2], 1, 0.5) == "STOP"  # judged at rung 1, as Ray's bracket does
    # resumed from its checkpoint at epoch 6 (it passed both rungs before a kill): its first result here is epoch 7,
    # below rung 3's values; Ray's own bracket would stop it at rung 3
    ray_asha = AsyncHyperBandScheduler(max_t=9, grace_period=1, reduction_factor=3, metric="val_accuracy", mode="max")
    ray_trials = _trials(ray_asha, 4)
    for trial in ray_trials[:2]:
        [_result(ray_asha, trial, e, 0.9) for e in (1, 2, 3)]
    assert _result(ray_asha, ray_trials[3], 7, 0.5) == "STOP"
    assert [_result(scheduler, trials[3], e, 0.5) for e in (7, 8)] == ["CONTINUE", "CONTINUE"]
    assert _result(scheduler, trials[3], 9, 0.5) == "STOP"  # the last epoch ends it, as before


def test_a_resumed_trials_last_result_does_not_stand_at_a_rung_it_did_not_report_at():
    scheduler = _asha_of_space()
    trials = _trials(scheduler, 6)
    for trial, value in zip(trials, (0.5, 0.6, 0.7, 0.9)):  # each goes on: rungs 1 and 3 hold these four values
        assert [_result(scheduler, trial, e, value) for e in (1, 2, 3)] == ["CONTINUE"] * 3
    # resumed at epoch 7, it ends (fails) at epoch 8 with a high value: Ray's bracket would record 0.99 at rung 3,
    # raising the cutoff there from 0.767 (the 2/3 quantile of 0.5, 0.6, 0.7, 0.8, 0.9) to 0.833 (0.99 among them)
    _result(scheduler, trials[4], 7, 0.99)
    scheduler.on_trial_complete(None, trials[4], {"training_iteration": 8, "val_accuracy": 0.99})
    assert [_result(scheduler, trials[5], e, v) for e, v in ((1, 0.95), (2, 0.8), (3, 0.8))] == ["CONTINUE"] * 3
    assert "t4" not in scheduler._trial_info  # the ended trial is forgotten all the same


def test_a_rung_keeps_its_top_third_counting_the_judged_trials_own_value():
    scheduler = Asha(max_t=9, grace_period=1, reduction_factor=3, metric="val_accuracy", mode="max")
    rays = AsyncHyperBandScheduler(max_t=9, grace_period=1, reduction_factor=3, metric="val_accuracy", mode="max")
    ours, theirs = _trials(scheduler, 4), _trials(rays, 4)
    assert _result(scheduler, ours[0], 1, 0.5) == _result(rays, theirs[0], 1, 0.5) == "CONTINUE"  # first: goes on
    assert _result(scheduler, ours[1], 1, 0.9) == _result(rays, theirs[1], 1, 0.9) == "CONTINUE"
    # 0.8, second of 0.5, 0.8 and 0.9: not in the top third. Ray's cutoff, the 2/3 point between 0.5 and 0.9 alone
    # (0.767), lets it through; counting its own value, the cutoff is 0.833
    assert _result(rays, theirs[2], 1, 0.8) == "CONTINUE"
    assert _result(scheduler, ours[2], 1, 0.8) == "STOP"
    assert _result(scheduler, ours[3], 1, 0.95) == "CONTINUE"  # the best of four goes on
    minimized = Asha(max_t=9, grace_period=1, reduction_factor=3, metric="val_loss", mode="min")
    low = _trials(minimized, 3)
    for trial, loss in zip(low, (0.5, 0.1)):
        minimized.on_trial_result(None, trial, {"training_iteration": 1, "val_loss": loss})
    assert minimized.on_trial_result(None, low[2], {"training_iteration": 1, "val_loss": 0.2}) == "STOP"


@pytest.mark.parametrize("reduction_factor, brackets", [(3, 1), (2.5, 1), (4, 2), (3, 3)])
def test_an_unbroken_run_is_judged_at_the_epochs_rays_asha_judges(reduction_factor: float, brackets: int):
    """Ray's own scheduler with the same rung rule (ray_internals.judge_with_own_value) makes the same decisions:
    rung epochs and records are Ray's."""
    kwargs = dict(max_t=30, grace_period=1, reduction_factor=reduction_factor, brackets=brackets)
    ours = Asha(**kwargs, metric="val_accuracy", mode="max")
    rays = AsyncHyperBandScheduler(**kwargs, metric="val_accuracy", mode="max")
    ray_internals.judge_with_own_value(rays)
    decisions: dict[str, list[list[str]]] = {"ours": [], "rays": []}
    for scheduler, name in ((ours, "ours"), (rays, "rays")):
        np.random.seed(0)  # Ray draws brackets from NumPy's global state
        trials = _trials(scheduler, 40)
        curves = np.random.default_rng(7).random((40, 30)).cumsum(axis=1)
        for trial, curve in zip(trials, curves):
            made = []
            for epoch, value in enumerate(curve, 1):
                made.append(_result(scheduler, trial, epoch, float(value)))
                if made[-1] == "STOP":
                    break
            scheduler.on_trial_complete(None, trial, {"training_iteration": epoch, "val_accuracy": float(value)})
            decisions[name].append(made)
    assert decisions["ours"] == decisions["rays"]
    stopped_at = {len(made) for made in decisions["ours"]}
    assert len(stopped_at) >= 3, stopped_at  # trials were stopped at several rungs, and some ran to the end


def test_a_fractional_reduction_factor_judges_at_the_first_epoch_past_each_milestone():
    scheduler = Asha(max_t=20, grace_period=1, reduction_factor=2.5, metric="val_accuracy", mode="max")
    assert scheduler.rung_epochs() == [1, 3, 7, 16]  # milestones 1, 2.5, 6.25, 15.6
    hyperband = make_scheduler(autotune.load_space(toy_space(
        "hb", train="{epochs: 20}", search=", scheduler: {hyperband: {reduction_factor: 2.5}}")))
    assert hyperband.rungs()[0] == [1, 3, 7, 16]  # what Hyperband reports is where its brackets judge


def test_a_trial_without_a_finite_value_stops_at_a_rung_that_holds_one_and_leaves_the_cutoff_to_the_others():
    """A NaN (a diverged training) or an infinity ranks below every finite value, as Optuna's successive halving
    prunes a NaN: Ray's bracket let a NaN through every rung, and an infinity in the better direction made its rung's
    cutoff NaN, so that no later trial was stopped there."""
    scheduler = Asha(max_t=9, grace_period=1, reduction_factor=3, metric="val_loss", mode="min")
    trials = _trials(scheduler, 6)

    def loss(trial: Trial, epoch: int, value: float) -> str:
        return scheduler.on_trial_result(None, trial, {"training_iteration": epoch, "val_loss": value})

    assert loss(trials[0], 1, 0.5) == "CONTINUE"
    assert loss(trials[1], 1, float("nan")) == "STOP"
    assert loss(trials[2], 1, float("-inf")) == "STOP"  # the better direction's infinity, for a loss
    assert loss(trials[3], 1, float("inf")) == "STOP"
    assert loss(trials[4], 1, 0.9) == "STOP"  # the cutoff is the finite values': 0.9 is not in their top third
    assert loss(trials[5], 1, 0.1) == "CONTINUE"
    assert [loss(trials[0], epoch, value) for epoch, value in ((2, 0.4), (3, 0.3))] == ["CONTINUE", "CONTINUE"]
    assert [loss(trials[5], epoch, float("nan")) for epoch in (2, 3)] == ["CONTINUE", "STOP"]  # diverged later


def test_a_rung_where_no_trial_has_a_value_stops_none_of_them():
    """A recipe may report NaN for an epoch without a value (validating every other epoch): at a rung where every
    trial has NaN there is nothing to rank, and each goes on, to be judged where values are."""
    scheduler = Asha(max_t=9, grace_period=1, reduction_factor=3, metric="val_loss", mode="min")
    trials = _trials(scheduler, 3)
    nan = float("nan")
    for trial in trials:
        assert scheduler.on_trial_result(None, trial, {"training_iteration": 1, "val_loss": nan}) == "CONTINUE"
    decisions = [scheduler.on_trial_result(None, trial, {"training_iteration": 3, "val_loss": value})
                 for trial, value in zip(trials, (0.5, 0.2, 0.9))]
    assert decisions == ["CONTINUE", "CONTINUE", "STOP"]
