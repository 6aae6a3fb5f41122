"""Every sampler `search.sampler` accepts, end to end: a tiny real search, checked against the saved searcher and
the persisted Optuna study (the sampler's own traces prove it, not a fallback, proposed the trials)."""
from __future__ import annotations

import logging

import optuna
import pytest

import autotune
from autotune.errors import SpaceError
from autotune.space._settings import SAMPLERS
from engine_helpers import saved_searcher, toy_space

pytestmark = pytest.mark.usefixtures("local_ray")

NUMERIC = "{x: {uniform: [0.0, 1.0]}, y: {loguniform: [0.01, 1.0]}}"
WITH_CHOICE = "{x: {uniform: [0.0, 1.0]}, y: {uniform: [0.0, 1.0]}, kind: {choice: [plain, other]}}"
GRID = "{x: {grid: [0.1, 0.3]}, y: {grid: [0.2, 0.6]}}"
CONDITIONAL = """
  choice:
    - {kind: a, x: {uniform: [0.0, 1.0]}, y: {uniform: [0.0, 1.0]}}
    - {kind: b, x: {uniform: [0.0, 1.0]}, extra: {uniform: [0.0, 1.0]}}"""
TWO_METRICS = ("metric: val_accuracy, mode: max", "metric: [val_accuracy, val_loss], mode: [max, min]")


def _trace(study: optuna.Study, key: str) -> list[bool]:
    """Per trial (in order): whether the sampler left a system attribute starting with `key` on it."""
    return [any(k.startswith(key) for k in t.system_attrs) for t in sorted(study.trials, key=lambda t: t.number)]


# sampler as written in YAML, model section, the Optuna class, the trace that sampler leaves in the study
CASES = {
    "tpe": ("{tpe: {n_startup_trials: 2}}", WITH_CHOICE, optuna.samplers.TPESampler, "tpe:relative_params"),
    "random": ("random", WITH_CHOICE, optuna.samplers.RandomSampler, None),
    "cmaes": ("cmaes", NUMERIC, optuna.samplers.CmaEsSampler, "cma:generation"),
    "gp": ("{gp: {n_startup_trials: 2}}", NUMERIC, optuna.samplers.GPSampler, "gp:relative_params"),
    "qmc": ("qmc", NUMERIC, optuna.samplers.QMCSampler, "qmc:"),
    "nsga2": ("nsga2", NUMERIC, optuna.samplers.NSGAIISampler, "NSGAIISampler:generation"),
    "grid": ("grid", GRID, optuna.samplers.GridSampler, "grid_id"),
}


def test_every_sampler_the_space_accepts_is_tested():
    assert set(CASES) == set(SAMPLERS)


@pytest.mark.parametrize("name", list(CASES))
def test_each_sampler_runs_a_search_and_proposes_its_trials(in_tmp, study_of, name):
    sampler, model, cls, trace = CASES[name]
    text = toy_space(name, trials=4, model=model, train="{epochs: 2}", concurrent=1,
                     search=f", sampler: {sampler}, scheduler: fifo")
    if name == "nsga2":
        text = text.replace(*TWO_METRICS)
    result = autotune.fit(text, export=False)

    assert len(result.trials) == 4 and (result.trials["status"] == "TERMINATED").all(), result.trials["error"]
    study = study_of(result)
    assert len(study.trials) == 4
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)

    state = saved_searcher(result.run_dir)
    assert isinstance(state["_sampler"], cls) and isinstance(state["_ot_study"].sampler, cls)
    if name == "qmc":  # QMC numbers its samples in the study's own attributes
        assert any(k.startswith(trace) for k in study._storage.get_study_system_attrs(study._study_id))
    elif trace:
        traced = _trace(study, trace)
        # CMA-ES samples the first trial independently, TPE and GP their 2 startup trials; then they model.
        first = {"cmaes": 1, "tpe": 2, "gp": 2}.get(name, 0)
        assert all(traced[first:]), traced
    else:
        assert not any(t.system_attrs for t in study.trials)
    if name == "grid":
        assert sorted((t.params["model.x"], t.params["model.y"]) for t in study.trials) == [
            (0.1, 0.2), (0.1, 0.6), (0.3, 0.2), (0.3, 0.6)]


def test_a_grid_with_more_trials_than_points_runs_each_point_once(in_tmp, study_of, caplog):
    text = toy_space("grid", trials=6, model=GRID, train="{epochs: 1}", concurrent=1,
                     search=", sampler: grid, scheduler: fifo")
    with caplog.at_level(logging.INFO, logger="autotune"):
        result = autotune.fit(text, export=False)
    assert len(result.trials) == 4  # Optuna's grid sampler alone ran points again for the 5th and 6th trials
    points = sorted((t.params["model.x"], t.params["model.y"]) for t in study_of(result).trials)
    assert points == [(0.1, 0.2), (0.1, 0.6), (0.3, 0.2), (0.3, 0.6)]
    assert "the grid has 4 points: 4 trials run, each point once (search.trials is 6)" in caplog.text


# Spaces the engine allows that a sampler cannot model jointly: it samples those parameters independently.
FALLBACKS = {
    "qmc-with-a-choice": ("qmc", WITH_CHOICE, "{epochs: 2}", {"model.x", "model.y", "model.kind"}),
    "gp-with-a-conditional": ("{gp: {n_startup_trials: 2}}", CONDITIONAL, "{epochs: 2}", {"model"}),
    "cmaes-with-steps-and-ints": ("cmaes", "{x: {quniform: [0.0, 1.0, 0.1]}, y: {uniform: [0.0, 1.0]}}",
                                  "{epochs: {int: [1, 3]}}", {"model.x", "model.y", "train.epochs"}),
}


@pytest.mark.parametrize("case", list(FALLBACKS))
def test_a_sampler_handles_parameters_it_cannot_model_without_an_error(in_tmp, study_of, case):
    sampler, model, train, always = FALLBACKS[case]
    text = toy_space("fallback", trials=5, model=model, train=train, concurrent=1,
                     search=f", sampler: {sampler}, scheduler: fifo")
    result = autotune.fit(text, export=False)
    assert len(result.trials) == 5 and (result.trials["status"] == "TERMINATED").all(), result.trials["error"]
    study = study_of(result)
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert all(always <= set(t.params) for t in study.trials), [t.params for t in study.trials]
    if case.startswith("gp"):  # each trial sampled exactly the parameters of the option it chose
        for trial in study.trials:
            option = trial.params["model"]
            assert {n.split("].")[0] for n in trial.params if "[" in n} == {f"model[{option}"}, trial.params
    if case.startswith("cmaes"):
        assert all(abs(t.params["model.x"] * 10 - round(t.params["model.x"] * 10)) < 1e-9 for t in study.trials)


REFUSED = {
    "cmaes-with-a-choice": ("cmaes", WITH_CHOICE, "cmaes samples numbers only; model.kind is a choice"),
    "cmaes-with-a-conditional": ("cmaes", CONDITIONAL, "cmaes samples numbers only; model is a choice"),
    "grid-values-without-grid": ("tpe", GRID, "grid needs search.sampler: grid, but the sampler is tpe"),
    "grid-with-a-uniform": ("grid", NUMERIC, "a choice of constants or a pow2; model.x is a uniform"),
    "grid-with-a-conditional": ("grid", CONDITIONAL, "model is a conditional choice"),
    "cmaes-with-a-pow2": ("cmaes", "{extra: {pow2: [1, 8]}}", "cmaes samples numbers only; model.extra is a pow2"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_space_a_sampler_cannot_search_is_refused_before_ray_starts(case):
    sampler, model, message = REFUSED[case]
    text = toy_space("refused", model=model, search=f", sampler: {sampler}, scheduler: fifo")
    with pytest.raises(SpaceError, match=message):
        autotune.load_space(text)


@pytest.mark.parametrize("sampler", ["tpe", "random", "grid"])
def test_a_pow2_is_proposed_as_its_powers(sampler):
    """Optuna gets a pow2 as a categorical of its powers: each proposal is one of them, an integer, and the grid
    sampler tries each once."""
    from autotune.engine.optuna_space import DefineByRun, make_sampler

    space = autotune.load_space(toy_space("pow2", model="{extra: {pow2: [2, 16]}}", search=f", sampler: {sampler}"))
    study = optuna.create_study(sampler=make_sampler(space.search, space.params), direction="maximize")
    study.optimize(lambda trial: DefineByRun(space.params)(trial) or 0.5, n_trials=4)
    proposed = [t.params["model.extra"] for t in study.trials]
    assert set(proposed) <= {2, 4, 8, 16} and all(type(x) is int for x in proposed)
    assert sampler != "grid" or sorted(proposed) == [2, 4, 8, 16]


@pytest.mark.parametrize("name", list(CASES))
def test_each_sampler_survives_the_pickle_ray_saves_it_in(name):
    """Ray pickles the searcher, sampler included, into the run folder (Optuna 5.1's NSGA-II holds a lock that
    does not pickle as it is); the unpickled sampler still proposes trials."""
    from ray import cloudpickle

    from autotune.engine.optuna_space import DefineByRun, make_sampler

    sampler_text, model, cls, _ = CASES[name]
    text = toy_space(name, model=model, search=f", sampler: {sampler_text}")
    if name == "nsga2":
        text = text.replace(*TWO_METRICS)
    space = autotune.load_space(text)
    sampler = cloudpickle.loads(cloudpickle.dumps(make_sampler(space.search, space.params)))
    assert isinstance(sampler, cls)
    study = optuna.create_study(sampler=sampler, directions=["maximize"] * len(space.search.metric))
    for _ in range(3):
        trial = study.ask()
        DefineByRun(space.params)(trial)
        study.tell(trial, [0.5] * len(space.search.metric))
    assert len(study.trials) == 3 and all(t.params for t in study.trials)
