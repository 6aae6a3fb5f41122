"""The default scheduler (`scheduler: auto`): Hyperband whose brackets are weighed by how well each bracket's first
rung has ranked the trials so far (autotune.engine.hyperband)."""
from __future__ import annotations

import itertools
import pickle

import numpy as np
import pytest
from ray.tune.experiment import Trial

import autotune
from autotune.engine.hyperband import MIN_TRIALS, Hyperband, kendall_tau
from autotune.engine.schedulers import make_scheduler
from engine_helpers import toy_space


def test_kendall_tau_counts_concordant_minus_discordant_pairs():
    x = np.asarray([1.0, 2.0, 3.0, 4.0])
    assert kendall_tau(x, x * 10) == 1.0
    assert kendall_tau(x, -x) == -1.0
    y = np.asarray([1.0, 3.0, 2.0, 4.0])  # one discordant pair of six
    assert kendall_tau(x, y) == pytest.approx((5 - 1) / 6)
    assert kendall_tau(np.asarray([1.0]), np.asarray([2.0])) == 0.0
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=30), rng.normal(size=30)  # the definition, pair by pair
    pairs = list(itertools.combinations(range(30), 2))
    expected = sum(np.sign(a[i] - a[j]) * np.sign(b[i] - b[j]) for i, j in pairs) / len(pairs)
    assert kendall_tau(a, b) == pytest.approx(expected)


def _scheduler(mode: str = "max", max_t: int = 27) -> Hyperband:
    scheduler = Hyperband(max_t, 1, 3, seed=0, adaptive=True)
    scheduler.set_search_properties("val_accuracy", mode)
    return scheduler


def _report(scheduler: Hyperband, trial_id: str, curve: list[float]) -> None:
    for epoch, value in enumerate(curve, 1):
        scheduler.record(trial_id, {"training_iteration": epoch, "val_accuracy": value})


def _curves(early_agrees: bool, count: int = 12, epochs: int = 27) -> list[list[float]]:
    """Curves whose value at epochs 1-9 ranks them as at epoch 27 (early_agrees), or the other way round."""
    curves = []
    for i in range(count):
        final = 0.5 + 0.04 * i
        early = 0.1 + 0.02 * (i if early_agrees else count - i)
        curves.append([early + (final - early) * (e / epochs) ** 3 for e in range(1, epochs + 1)])
    return curves


def test_new_trials_join_the_first_bracket_until_enough_trials_went_further():
    scheduler = _scheduler()
    assert scheduler.rungs() == [[1, 3, 9], [3, 9], [9], []]
    assert list(scheduler.current_weights()) == [1, 0, 0, 0]
    for i in range(10):  # many trials, all stopped at epoch 1: nothing to compare yet
        _report(scheduler, f"short{i}", [0.1])
    assert list(scheduler.current_weights()) == [1, 0, 0, 0]
    for i, curve in enumerate(_curves(True)[:MIN_TRIALS - 1]):
        _report(scheduler, f"t{i}", curve)
    assert list(scheduler.current_weights()) == [1, 0, 0, 0]
    _report(scheduler, "last", _curves(True)[-1])
    assert list(scheduler.current_weights()) != [1, 0, 0, 0]


def test_where_early_epochs_rank_as_the_last_one_the_weights_stay_hyperbands():
    scheduler = _scheduler()
    for i, curve in enumerate(_curves(True)):
        _report(scheduler, f"t{i}", curve)
    assert scheduler.current_weights() == pytest.approx(scheduler.weights)


def test_where_early_epochs_rank_the_other_way_no_trial_is_judged_on_them():
    scheduler = _scheduler()
    for i, curve in enumerate(_curves(False)):
        _report(scheduler, f"t{i}", curve)
    weights = scheduler.current_weights()
    # every bracket that stops at epochs 1..9 ranks wrongly here: only the one that stops nothing is left
    assert weights == pytest.approx([0, 0, 0, 1])
    trials = [Trial("trivial", stub=True, trial_id=f"new{i}") for i in range(20)]
    for trial in trials:
        scheduler.on_trial_add(None, trial)
    assert {scheduler.brackets.index(scheduler._of(t)) for t in trials} == {3}


def test_a_metric_to_minimise_is_ranked_the_other_way():
    rising, falling = _scheduler("max"), _scheduler("min")
    for i, curve in enumerate(_curves(True)):
        _report(rising, f"t{i}", curve)
        _report(falling, f"t{i}", [-v for v in curve])
    assert falling.current_weights() == pytest.approx(rising.current_weights())


def test_only_milestones_of_the_most_recent_trials_are_kept():
    scheduler = _scheduler()
    _report(scheduler, "t", [0.1] * 27 + [float("nan")])
    assert sorted(scheduler._values["t"]) == [1, 3, 9, 27]
    for i in range(300):
        _report(scheduler, f"n{i}", [0.2])
    assert len(scheduler._values) == 200 and "t" not in scheduler._values


def test_the_weights_survive_a_save_and_a_scheduler_saved_before_them_keeps_hyperbands():
    scheduler = _scheduler()
    for i, curve in enumerate(_curves(False)):
        _report(scheduler, f"t{i}", curve)
    again = pickle.loads(pickle.dumps(scheduler))
    assert again.current_weights() == pytest.approx(scheduler.current_weights())
    old = Hyperband(27, 1, 3, seed=0)
    del old.__dict__["adaptive"]  # as unpickled from a run saved before adaptive weights
    assert old.current_weights() == pytest.approx(old.weights)


def test_auto_is_the_adaptive_hyperband_and_hyperband_is_hyperbands_unless_asked():
    def scheduler(search: str) -> Hyperband:
        return make_scheduler(autotune.load_space(toy_space("hb", train="{epochs: 27}", search=search)))

    assert scheduler("").adaptive  # the toy space's default scheduler is auto
    assert not scheduler(", scheduler: hyperband").adaptive
    assert scheduler(", scheduler: {hyperband: {adaptive: true}}").adaptive
    assert "Adaptive Hyperband: first rung 1" in scheduler("").debug_string()


def test_a_trial_is_judged_at_its_rungs_epochs_only_so_a_resumed_one_is_not_judged_on_a_later_epoch():
    scheduler = _scheduler(max_t=9)  # adaptive: every trial joins the bracket that stops at epochs 1 and 3
    trials = [Trial("trivial", stub=True, trial_id=f"t{i}") for i in range(4)]
    for trial in trials:
        scheduler.on_trial_add(None, trial)

    def result(trial: Trial, epoch: int, value: float) -> str:
        return scheduler.on_trial_result(None, trial, {"training_iteration": epoch, "val_accuracy": value})

    for trial in trials[:2]:  # two trials set rung 1 and rung 3 high
        assert [result(trial, e, 0.9) for e in (1, 2, 3)] == ["CONTINUE"] * 3
    assert [result(trials[2], e, 0.5) for e in (1,)] == ["STOP"]  # judged at rung 1, as Ray's bracket does
    # a trial resumed from its checkpoint at epoch 6 (it passed both rungs before a kill): its first result here is
    # epoch 7, with a value below rung 3's; it is not judged at a rung it is past
    assert [result(trials[3], e, 0.5) for e in (7, 8)] == ["CONTINUE", "CONTINUE"]
    assert result(trials[3], 9, 0.5) == "STOP"  # the last epoch: Ray's bracket ends it, as before
