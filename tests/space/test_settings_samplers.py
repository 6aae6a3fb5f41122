"""search.sampler and search.scheduler settings: argument pairs Optuna refuses together, the defaults the sampler is
built with, warn_independent_sampling, and the hints for Optuna's names of autotune's settings."""
from __future__ import annotations

from pathlib import Path

import pytest

import autotune.recipes
from autotune.errors import SpaceError
from autotune.space import Space, load_space
from autotune.space._settings import sampler_arguments

RECIPE = str(Path(__file__).parent / "tiny_recipe.py")
CONDITIONAL = ("optimizer: {choice: [{name: sgd, lr: {uniform: [0.01, 0.1]}}, "
               "{name: adamw, lr: {loguniform: [1e-4, 1e-2]}}]}\n")
NUMERIC = "model: {dropout: {uniform: [0.0, 0.5]}}\n"


def space(text: str) -> Space:
    return load_space(f"recipe: {RECIPE}\ndata: {{dataset: digits}}\n" + text,
                      schema_for=lambda name, base: autotune.recipes.load(name, base).SCHEMA)


def problems(text: str) -> dict[str, tuple[str, str, int | None]]:
    """key path -> (message, fix, line) of each problem `text` has."""
    with pytest.raises(SpaceError) as caught:
        space(text)
    return {p.path: (p.message, p.fix, p.line) for p in caught.value.problems}


@pytest.mark.parametrize("sampler, path, words", [
    ("{tpe: {multivariate: false, group: true}}", "search.sampler.tpe.group", "set multivariate: true"),
    ("{cmaes: {use_separable_cma: true, with_margin: true}}", "search.sampler.cmaes.with_margin", "one of the two"),
    ("{cmaes: {lr_adapt: true, with_margin: true}}", "search.sampler.cmaes.lr_adapt", "drop one of the two"),
    ("{cmaes: {lr_adapt: true, use_separable_cma: true}}", "search.sampler.cmaes.lr_adapt", "drop one of the two"),
])
def test_arguments_optuna_refuses_together_are_a_problem_at_the_key(sampler, path, words):
    found = problems(f"{NUMERIC}search:\n  sampler: {sampler}\n")
    message, fix, line = found[path]
    assert "refuses" in message and words in fix and line == 5, found


@pytest.mark.parametrize("sampler", ["{tpe: {multivariate: true, group: true}}", "{cmaes: {with_margin: true}}",
                                     "{cmaes: {lr_adapt: true, use_separable_cma: false}}"])
def test_arguments_optuna_takes_together_pass(sampler):
    assert space(f"{NUMERIC}search: {{sampler: {sampler}}}\n").search.sampler_args


@pytest.mark.parametrize("text, sampler, expected", [
    (CONDITIONAL, "tpe", {"multivariate": True, "group": True}),
    (NUMERIC, "tpe", {"multivariate": True}),
    (CONDITIONAL, "{tpe: {multivariate: false}}", {"multivariate": False}),  # no group: Optuna refuses it alone
    (CONDITIONAL, "{tpe: {group: false}}", {"multivariate": True, "group": False}),
    (CONDITIONAL, "random", {}),
])
def test_the_arguments_a_sampler_is_built_with(text, sampler, expected):
    s = space(f"{text}search: {{sampler: {sampler}}}\n")
    assert sampler_arguments(s.search, s.params) == expected


@pytest.mark.parametrize("name", ["qmc", "cmaes", "gp"])
def test_warn_independent_sampling_is_accepted_where_optuna_takes_it(name):
    s = space(f"{NUMERIC}search: {{sampler: {{{name}: {{warn_independent_sampling: false}}}}}}\n")
    assert s.search.sampler_args == {"warn_independent_sampling": False}


def test_warn_independent_sampling_of_tpe_says_tpe_does_not_warn():
    found = problems(f"{NUMERIC}search: {{sampler: {{tpe: {{warn_independent_sampling: false}}}}}}\n")
    message, fix, _ = found["search.sampler.tpe.warn_independent_sampling"]
    assert message == "unknown key" and "does not warn" in fix


@pytest.mark.parametrize("setting, path, words", [
    ("sampler: {tpe: {seed: 3}}", "search.sampler.tpe.seed", "search.seed"),
    ("sampler: {random: {seed: 3}}", "search.sampler.random.seed", "search.seed"),
    ("scheduler: {hyperband: {min_resource: 1}}", "search.scheduler.hyperband.min_resource", "grace_period"),
    ("scheduler: {hyperband: {max_resource: 4}}", "search.scheduler.hyperband.max_resource", "max_t"),
    ("scheduler: {asha: {min_resource: 1}}", "search.scheduler.asha.min_resource", "grace_period"),
    ("scheduler: {median: {n_startup_trials: 5}}", "search.scheduler.median.n_startup_trials",
     "min_samples_required"),
    ("scheduler: {median: {n_warmup_steps: 2}}", "search.scheduler.median.n_warmup_steps", "grace_period"),
    ("scheduler: none", "search.scheduler", "fifo: it runs every trial to its end"),
    ("scheduler: null", "search.scheduler", "fifo: it runs every trial to its end"),
    ("scheduler: nop", "search.scheduler", "fifo: it runs every trial to its end"),
    ("scheduler: percentile", "search.scheduler", "median"),
    ("scheduler: successive_halving", "search.scheduler", "asha"),
    ("scheduler: ashaa", "search.scheduler", "did you mean 'asha'?"),  # did-you-mean as before
    ("scheduler: {asha: {grace_perod: 1}}", "search.scheduler.asha.grace_perod", "did you mean 'grace_period'?"),
])
def test_optunas_names_get_autotunes_equivalent_as_the_fix(setting, path, words):
    found = problems(f"{NUMERIC}search: {{{setting}}}\n")
    assert words in found[path][1], found
