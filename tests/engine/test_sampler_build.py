"""make_sampler builds what `autotune check` accepts, and the preflight builds the sampler before Ray starts: an
argument Optuna's constructor refuses is one UserError naming search.sampler. Without Ray."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import autotune.recipes
from autotune.engine.optuna_space import make_sampler
from autotune.errors import UserError
from autotune.preflight import preflight
from autotune.space import Space, load_space

RECIPE = str(Path(__file__).parents[1] / "space" / "tiny_recipe.py")
CONDITIONAL = ("optimizer: {choice: [{name: sgd, lr: {uniform: [0.01, 0.1]}}, "
               "{name: adamw, lr: {loguniform: [1e-4, 1e-2]}}]}\n")


def space(sampler: str) -> Space:
    return load_space(f"recipe: {RECIPE}\ndata: {{dataset: digits}}\n{CONDITIONAL}search: {{sampler: {sampler}}}\n",
                      schema_for=lambda name, base: autotune.recipes.load(name, base).SCHEMA)


@pytest.mark.parametrize("sampler, multivariate, group", [
    ("tpe", True, True), ("{tpe: {multivariate: false}}", False, False), ("{tpe: {group: false}}", True, False)])
def test_tpe_groups_conditional_parameters_only_when_multivariate(sampler, multivariate, group):
    s = space(sampler)
    built = make_sampler(s.search, s.params)
    assert (built._multivariate, built._group) == (multivariate, group)


def test_qmc_takes_warn_independent_sampling():
    s = space("{qmc: {warn_independent_sampling: false}}")
    assert make_sampler(s.search, s.params)._warn_independent_sampling is False


def test_the_preflight_builds_the_sampler_and_says_what_optuna_refuses():
    s = space("tpe")
    refused = dataclasses.replace(s, search=dataclasses.replace(
        s.search, sampler_args={"multivariate": False, "group": True}))  # past check, as a newer Optuna might refuse
    recipe = autotune.recipes.load(RECIPE, None)
    preflight(s, recipe, None, export=False)
    with pytest.raises(UserError, match=r"^search\.sampler tpe \(multivariate: false, group: true\): Optuna refuses "
                                        r"it: ``group`` option can only be enabled"):
        preflight(refused, recipe, None, export=False)


@pytest.mark.parametrize("sampler", ["tpe", "gp"])
def test_building_an_experimental_sampler_shows_no_warning_and_leaves_the_warning_filters(sampler):
    """Optuna's ExperimentalWarning (multivariate TPE, GP) was silenced by a filter added for good: after `fit`, a
    notebook's own Optuna code no longer showed any."""
    import warnings

    s = space(sampler)
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        before = list(warnings.filters)
        make_sampler(s.search, s.params)
        assert warnings.filters == before
    assert not shown
