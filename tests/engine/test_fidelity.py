"""What the sampler learns from trials stopped early, the epoch budget, and Hyperband's brackets: real searches of
the toy recipe, checked against the Optuna study the run persisted and the trials' own reports."""
from __future__ import annotations

import logging
import math


import numpy as np
import optuna
import pytest
from ray.tune.experiment import Trial

import autotune
from autotune.engine.hyperband import Hyperband
from autotune.engine.schedulers import make_scheduler
from autotune.errors import SpaceError
from engine_helpers import run_histories, toy_space

pytestmark = pytest.mark.usefixtures("local_ray")


def _by_params(result) -> dict[tuple[float, float], list[dict]]:
    """(x, y) of each trial -> the reports it made, from the trial folders."""
    out = {}
    for reports in run_histories(result.run_dir).values():
        if reports:
            out[(reports[0]["config"]["model.x"], reports[0]["config"]["model.y"])] = reports
    return out


def test_a_stopped_trial_is_pruned_with_its_epochs_and_a_finished_one_complete(in_tmp, study_of):
    text = toy_space("fidelity", trials=10, train="{epochs: 4}", concurrent=2,
                     search=", sampler: random, scheduler: {asha: {grace_period: 1, reduction_factor: 2}}")
    result = autotune.fit(text, export=False)
    reports = _by_params(result)
    states = []
    for trial in study_of(result).trials:
        ran = reports[(trial.params["model.x"], trial.params["model.y"])]
        values = {r["training_iteration"]: r["val_accuracy"] for r in ran}
        states.append(trial.state)
        assert trial.intermediate_values.keys() <= values.keys()
        assert all(math.isclose(v, values[step]) for step, v in trial.intermediate_values.items())
        assert sorted(trial.intermediate_values) == list(range(1, len(ran) + 1))  # every epoch it ran, the last too
        assert trial.user_attrs["autotune_trial_id"] in set(result.trials["trial_id"])  # its id in the summary
        if len(ran) == 4:
            assert trial.state == optuna.trial.TrialState.COMPLETE, trial
            assert math.isclose(trial.value, values[4])
        else:
            assert trial.state == optuna.trial.TrialState.PRUNED, trial
            assert math.isclose(trial.value, values[len(ran)])  # valued at the epoch it was stopped
    assert optuna.trial.TrialState.PRUNED in states and optuna.trial.TrialState.COMPLETE in states, states
    assert study_of(result).metric_names == ["val_accuracy"]  # optuna-dashboard's label, not "Objective 0"


def test_the_epoch_budget_stops_the_search_once_spent(in_tmp, study_of):
    text = toy_space("budget", trials=40, train="{epochs: 4}", concurrent=2,
                     search=", sampler: random, scheduler: fifo, epoch_budget: 10")
    result = autotune.fit(text, export=False)
    epochs = sum(len(r) for r in run_histories(result.run_dir).values())
    assert 10 <= epochs <= 12, epochs  # at most one more epoch per running trial
    assert len(result.trials) < 40 and not result.interrupted
    assert result.ended == "the epoch budget of 10 epochs is used up"
    assert "Ended early: the epoch budget" in str(result)
    trials = study_of(result).trials
    ran = {(r[0]["config"]["model.x"], r[0]["config"]["model.y"]): len(r) for r in run_histories(result.run_dir).values()
           if r}
    for trial in trials:  # the trials the budget cut short are PRUNED; one asked for but never run, FAIL
        epochs = ran.get((trial.params["model.x"], trial.params["model.y"]), 0)
        expected = "COMPLETE" if epochs == 4 else "PRUNED" if epochs else "FAIL"
        assert trial.state.name == expected, (trial, epochs)
    assert any(t.state == optuna.trial.TrialState.PRUNED for t in trials)


def test_hyperband_has_a_bracket_per_first_rung_up_to_one_that_stops_nothing():
    space = autotune.load_space(toy_space("hb", train="{epochs: 50}", search=", scheduler: hyperband"))
    scheduler = make_scheduler(space)
    assert isinstance(scheduler, Hyperband)
    assert scheduler.rungs() == [[1, 3, 9, 27], [3, 9, 27], [9, 27], [27], []]
    # each bracket stops at its own rungs: Ray's successive halving, one bracket each
    assert [b._brackets[0]._rungs and sorted(m for m, _ in b._brackets[0]._rungs) or []
            for b in scheduler.brackets[:-1]] == scheduler.rungs()[:-1]
    # Hyperband's share of trials per bracket (Li et al. 2018: 81, 34, 15, 8, 5 of 143 for rf 3 and 5 brackets)
    assert scheduler.weights == pytest.approx(np.asarray([81, 33.75, 15, 7.5, 5]) / 142.25)


def test_hyperband_draws_brackets_from_the_search_seed():
    def draws(seed: int) -> list[int]:
        text = toy_space("hb", train="{epochs: 50}", search=", scheduler: hyperband").replace("seed: 0", f"seed: {seed}")
        space = autotune.load_space(text)
        scheduler = make_scheduler(space)
        scheduler.set_search_properties("val_accuracy", "max")
        trials = [Trial("trivial", stub=True, trial_id=f"t{i}") for i in range(200)]
        for trial in trials:
            scheduler.on_trial_add(None, trial)
        return [scheduler.brackets.index(scheduler._of(trial)) for trial in trials]

    assert draws(1) == draws(1) != draws(2)
    shares = np.bincount(draws(3), minlength=5) / 200
    assert shares[0] > 0.45 and shares[-1] > 0


def test_hyperband_refuses_trials_too_short_to_stop():
    with pytest.raises(SpaceError, match="nothing would be stopped") as err:
        autotune.load_space(toy_space("hb", train="{epochs: 2}", search=", scheduler: {hyperband: {grace_period: 2}}"))
    assert err.value.problems[0].path == "search.scheduler.hyperband.grace_period"


def test_hyperband_stops_trials_at_several_rungs_of_a_50_epoch_recipe(in_tmp):
    text = toy_space("hyperband50", trials=24, train="{epochs: 50}", concurrent=2,
                     search=", sampler: random, scheduler: hyperband")
    result = autotune.fit(text, export=False)
    stopped = set(result.trials.loc[result.trials["stopped_early"], "epochs"])
    assert len(stopped & {1, 3, 9, 27}) >= 2, sorted(result.trials["epochs"])
    assert (result.trials["epochs"] == 50).any()


def test_a_trial_the_study_already_holds_is_not_told_again(tmp_path):
    """A search killed after telling Optuna a trial's end, before Ray saved its own state, runs that trial again
    when resumed: neither its reports nor its second end are told (Optuna refuses to update a finished trial, which
    failed the search: a full disk's stop showed it)."""
    from autotune.engine.searcher import make_searcher

    space = autotune.load_space(toy_space("told", train="{epochs: 3}"))
    searcher = make_searcher(space, tmp_path, [])
    searcher = getattr(searcher, "searcher", searcher)  # below the concurrency limiter
    config = searcher.suggest("a")
    assert config is not None
    searcher._ot_study.tell(searcher._ot_trials["a"], 0.5)  # told before the kill
    searcher.on_trial_result("a", {"val_accuracy": 0.6, "training_iteration": 2})  # its epochs after the resume
    searcher.on_trial_complete("a", {"val_accuracy": 0.7, "training_iteration": 3})
    [trial] = searcher._ot_study.trials
    assert trial.state == optuna.trial.TrialState.COMPLETE and trial.value == 0.5


def test_a_retrained_epoch_replaces_the_abandoned_run_s_value(tmp_path, recwarn):
    """A trial continued from its checkpoint of epoch 1 (a retry, a resume) reports epochs 2 and 3 again: the study
    holds the rerun's values (Optuna's `Trial.report` kept the first and warned), and the trial stopped at epoch 3
    is PRUNED with the rerun's value there."""
    from autotune.engine.searcher import make_searcher

    space = autotune.load_space(toy_space("retrained", train="{epochs: 5}"))
    searcher = make_searcher(space, tmp_path, [])
    searcher = getattr(searcher, "searcher", searcher)
    assert searcher.suggest("a") is not None
    for epoch, value in [(1, 0.5), (2, 0.6), (3, 0.7), (2, 0.65), (3, 0.9)]:
        searcher.on_trial_result("a", {"val_accuracy": value, "training_iteration": epoch})
    searcher.on_trial_complete("a", {"val_accuracy": 0.9, "training_iteration": 3})
    [trial] = searcher._ot_study.trials
    assert trial.intermediate_values == {1: 0.5, 2: 0.65, 3: 0.9}
    assert trial.state == optuna.trial.TrialState.PRUNED and trial.value == 0.9
    assert not [w for w in recwarn if "already reported" in str(w.message)]


def test_the_searcher_s_intermediate_values_read_back_as_optuna_s_own(tmp_path):
    """The searcher writes a report's value in one SQL statement on Optuna's table, not through Optuna's
    `set_trial_intermediate_value`: another process reading the study (optuna-dashboard, a user's script) sees what
    Optuna's own write would have stored, NaN and infinities included, and a trial that has ended is not written."""
    from autotune.engine.searcher import _set_intermediate_value, _study_storage

    storage = _study_storage(tmp_path)
    study = optuna.create_study(storage=storage, study_name="values", direction="maximize")
    ours, optunas, ended = study.ask(), study.ask(), study.ask()
    values = {1: 0.25, 2: float("nan"), 3: float("inf"), 4: float("-inf"), 5: -1e-300}
    for step, value in values.items():
        assert _set_intermediate_value(storage, ours._trial_id, step, value)
        storage.set_trial_intermediate_value(optunas._trial_id, step, value)
    assert _set_intermediate_value(storage, ours._trial_id, 1, 0.75)  # a step told again is replaced
    storage.set_trial_intermediate_value(optunas._trial_id, 1, 0.75)
    study.tell(ended, state=optuna.trial.TrialState.PRUNED)
    assert not _set_intermediate_value(storage, ended._trial_id, 1, 0.5)

    read = optuna.load_study(study_name="values", storage=f"sqlite:///{tmp_path / 'study.db'}").trials
    assert repr(read[0].intermediate_values) == repr(read[1].intermediate_values) \
        == repr({1: 0.75, 2: float("nan"), 3: float("inf"), 4: float("-inf"), 5: -1e-300})
    assert read[2].intermediate_values == {} and read[2].state == optuna.trial.TrialState.PRUNED


def test_a_trial_that_ended_on_a_non_finite_value_is_pruned_so_that_tpe_ranks_it_last(tmp_path):
    """A trial whose last report was NaN (its training diverged) was FAIL in the study, which TPE leaves out: it
    learned nothing of the region that diverged, and proposed there again. It is PRUNED, as Optuna's successive
    halving prunes a NaN, keeping its values; TPE ranks such a trial below every other at its epoch."""
    from optuna.samplers._tpe.sampler import _split_trials

    from autotune.engine.searcher import make_searcher

    space = autotune.load_space(toy_space("diverged", train="{epochs: 3}", search=", scheduler: fifo"))
    searcher = make_searcher(space, tmp_path, [])
    searcher = getattr(searcher, "searcher", searcher)
    nan = float("nan")
    curves = {"late": [0.5, nan, nan], "never": [nan], "ok": [0.2, 0.3, 0.4]}
    for trial_id, curve in curves.items():
        assert searcher.suggest(trial_id) is not None
        for epoch, value in enumerate(curve, 1):
            searcher.on_trial_result(trial_id, {"val_accuracy": value, "training_iteration": epoch})
        searcher.on_trial_complete(trial_id, {"val_accuracy": curve[-1], "training_iteration": len(curve)})
    late, never, ok = searcher._ot_study.trials
    assert [late.state, never.state, ok.state] == [optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.PRUNED,
                                                   optuna.trial.TrialState.COMPLETE]
    assert repr(late.intermediate_values) == repr({1: 0.5, 2: nan, 3: nan}) and late.value is None
    assert repr(never.intermediate_values) == repr({1: nan})
    below, above = _split_trials(searcher._ot_study, searcher._ot_study.trials, 1)
    assert [t.number for t in below] == [ok.number] and {t.number for t in above} == {late.number, never.number}


def test_a_trial_that_raised_diverged_is_pruned_with_nan_at_that_epoch_and_not_retried(tmp_path, monkeypatch):
    """A shipped recipe ends a training whose loss is not finite by raising Diverged. Ray tells the searcher only
    that the trial failed, so the study held it FAIL, which TPE leaves out: it went on proposing the region that
    diverged. Through Ray's `Trial.handle_error` (as the engine wraps it) the trial is PRUNED, keeping its values,
    with NaN at the epoch it diverged; it is not retried; another error stays FAIL."""
    from types import SimpleNamespace

    from ray.exceptions import RayTaskError

    from autotune.engine import ray_internals
    from autotune.engine.searcher import make_searcher
    from autotune.errors import Diverged

    monkeypatch.setattr(Trial, "handle_error", lambda trial, exc=None: None)  # Ray's own: restored after the test
    space = autotune.load_space(toy_space("diverged", train="{epochs: 4}", search=", scheduler: fifo"))
    searcher = make_searcher(space, tmp_path, [])
    searcher = getattr(searcher, "searcher", searcher)
    errors = {"diverged": Diverged("non-finite training loss at epoch 3"), "broken": ValueError("x too large")}
    retried = {}
    with ray_internals.lost_nodes_apart(lambda trial, node: None):
        for trial_id, error in errors.items():
            assert searcher.suggest(trial_id) is not None
            for epoch, value in enumerate([0.5, 0.6], 1):
                searcher.on_trial_result(trial_id, {"val_accuracy": value, "training_iteration": epoch})
            trial = SimpleNamespace(trial_id=trial_id, max_failures=2, last_result={},
                                    run_metadata=SimpleNamespace(num_failures=1))
            Trial.handle_error(trial, RayTaskError("train", "Traceback", error))
            retried[trial_id] = Trial.should_recover(trial)
            searcher.on_trial_complete(trial_id, error=True)
    diverged, broken = searcher._ot_study.trials
    assert retried == {"diverged": False, "broken": True}
    assert [diverged.state, broken.state] == [optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL]
    assert repr(diverged.intermediate_values) == repr({1: 0.5, 2: 0.6, 3: float("nan")})


def test_a_non_finite_objective_of_several_is_said_to_fail_the_trial_for_the_sampler(tmp_path, caplog):
    """With several objectives, a last report holding NaN made every trial FAIL in the study (NSGA-II learned
    nothing) while the summary said 0 failed: the user is told, naming the objective."""
    from autotune.engine.searcher import make_searcher

    space = autotune.load_space(toy_space("nan", train="{epochs: 1}").replace(
        "metric: val_accuracy, mode: max", "metric: [val_accuracy, val_loss], mode: [max, min], sampler: nsga2, "
        "scheduler: fifo"))
    searcher = make_searcher(space, tmp_path, [])
    searcher = getattr(searcher, "searcher", searcher)
    assert searcher.suggest("a") is not None and searcher.suggest("b") is not None
    with caplog.at_level(logging.WARNING, logger="autotune"):
        searcher.on_trial_complete("a", {"val_accuracy": 0.6, "val_loss": float("nan"), "training_iteration": 1})
        searcher.on_trial_complete("b", {"val_accuracy": 0.7, "val_loss": 0.3, "training_iteration": 1})
    assert [t.state for t in searcher._ot_study.trials] == [optuna.trial.TrialState.FAIL,
                                                            optuna.trial.TrialState.COMPLETE]
    assert ("trial a: its last report's val_loss (nan) is not a finite number, so the sampler takes the trial as "
            "failed and learns nothing from it") in caplog.text and "trial b" not in caplog.text


@pytest.mark.parametrize("end", ["finished", "stopped", "failed"])
def test_the_searcher_keeps_no_optuna_trial_once_its_end_is_told(tmp_path, end):
    """What the driver keeps per trial, bounded: OptunaSearch keeps the Optuna trial it asked for each Ray trial
    for ever; the engine's searcher drops it once the end is told, and later news of that trial is ignored."""
    from autotune.engine.searcher import make_searcher

    space = autotune.load_space(toy_space("forget", train="{epochs: 3}"))
    searcher = make_searcher(space, tmp_path, [])
    searcher = getattr(searcher, "searcher", searcher)
    for trial_id in ("a", "b"):
        assert searcher.suggest(trial_id) is not None
    searcher.on_trial_result("a", {"val_accuracy": 0.6, "training_iteration": 1})
    epoch = 3 if end == "finished" else 1
    searcher.on_trial_complete("a", {"val_accuracy": 0.6, "training_iteration": epoch}, error=end == "failed")

    assert list(searcher._ot_trials) == ["b"]  # "b" still runs
    searcher.on_trial_result("a", {"val_accuracy": 0.9, "training_iteration": 2})  # news after its end: ignored
    searcher.on_trial_complete("a", {"val_accuracy": 0.9, "training_iteration": 3})
    first = searcher._ot_study.trials[0]
    expected = {"finished": optuna.trial.TrialState.COMPLETE, "stopped": optuna.trial.TrialState.PRUNED,
                "failed": optuna.trial.TrialState.FAIL}[end]
    assert first.state == expected and first.intermediate_values.get(2) is None


def test_a_trial_killed_before_all_its_parameters_were_drawn_is_closed_as_failed(tmp_path):
    """A run killed while the sampler was drawing a trial's parameters leaves it RUNNING with some of them: the end
    of the next run closes it as FAIL (it has no configuration to value), rather than failing on it."""
    from autotune.engine.searcher import close_orphaned_trials

    space = autotune.load_space(toy_space("partial", train="{epochs: 3}"))
    study = optuna.create_study(study_name=space.name, storage=f"sqlite:///{tmp_path / 'study.db'}",
                                direction="maximize")
    partial = study.ask()
    partial.suggest_float("model.x", 0.0, 1.0)  # model.y never drawn
    close_orphaned_trials(tmp_path, space, grid=[])
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.FAIL]


@pytest.mark.parametrize(("metric", "last", "state", "value"), [
    ("val_accuracy", {"val_accuracy": 0.7, "training_iteration": 3}, "COMPLETE", 0.7),
    ("val_accuracy", {"val_accuracy": 0.6, "training_iteration": 2}, "PRUNED", 0.6),
    ("val_accuracy", {"val_accuracy": float("nan"), "training_iteration": 3}, "PRUNED", None),
    ("[val_accuracy, val_loss]", {"val_accuracy": 0.6, "val_loss": 0.3, "training_iteration": 2}, "FAIL", None),
])
def test_a_trial_running_when_the_search_ended_is_closed_as_the_searcher_tells_one(tmp_path, metric, last, state,
                                                                                     value):
    """A trial still running when the search ends is closed from its last report: COMPLETE after its last epoch,
    PRUNED before it, or on a value that is not finite (no value kept, as the searcher keeps none); with several
    objectives a trial stopped early is FAIL, as Optuna prunes single-objective trials only."""
    from types import SimpleNamespace

    from autotune.engine.searcher import close_orphaned_trials

    several = metric.startswith("[")
    space = autotune.load_space(toy_space("orphan", train="{epochs: 3}").replace(
        "metric: val_accuracy, mode: max", f"metric: {metric}, mode: {'[max, min]' if several else 'max'}"))
    study = optuna.create_study(study_name=space.name, storage=f"sqlite:///{tmp_path / 'study.db'}",
                                directions=["maximize", "minimize"] if several else ["maximize"])
    running = study.ask()
    params = {name: running.suggest_float(name, 0.0, 1.0) for name in ("model.x", "model.y")}
    close_orphaned_trials(tmp_path, space, grid=[SimpleNamespace(config=params, metrics=last)])
    [trial] = study.trials
    assert trial.state.name == state
    assert (trial.values if several else trial.value) == value
