"""Starting from what is known: `default:` beside a distribution, `search.start` points, and what they give the
search (`Space.first_points`) and its fingerprint. Invalid ones are rows of tests/test_cli_check.py's table."""
from __future__ import annotations

from pathlib import Path

import pytest

import autotune.recipes
from autotune.space import Space, load_space
from autotune.space.points import complete_point, fit_value, on_step_grid
from autotune.space.types import GIVEN, Choice, Int, LogUniform, Pow2, QUniform, Uniform

RECIPE = str(Path(__file__).parent / "tiny_recipe.py")

DEFAULTS = """\
data: {dataset: digits}
model:
  arch: {choice: [mlp, cnn], default: cnn}
  width: {int: [8, 64, 8], default: 32}
  dropout: {uniform: [0, 0.5], default: 0}
optimizer:
  choice:
    - {name: sgd, lr: {loguniform: [1.0e-3, 0.3], default: 0.05}, momentum: {quniform: [0.5, 0.9, 0.1]}}
    - {name: adamw, lr: {loguniform: [1.0e-4, 1.0e-2], default: 3.0e-3}}
  default: adamw
train: {batch_size: {choice: [16, 32]}}
"""


def space(text: str, overrides: tuple[str, ...] = ()) -> Space:
    return load_space(f"recipe: {RECIPE}\n" + text, overrides,
                      schema_for=lambda name, base: autotune.recipes.load(name, base).SCHEMA)


def test_a_default_beside_each_distribution_is_the_default():
    result = space(DEFAULTS)
    values, how = result.defaults()
    assert values == {"model.arch": "cnn", "model.width": 32, "model.dropout": 0.0, "optimizer": "adamw",
                      "optimizer[adamw].lr": 3e-3, "train.batch_size": 16}
    assert isinstance(values["model.dropout"], float) and isinstance(values["model.width"], int)
    assert {name for name, h in how.items() if h == GIVEN} == set(values) - {"train.batch_size"}
    assert how["train.batch_size"] == "first option"
    params = {p.name: p for p in result.params}
    assert params["optimizer[sgd].lr"].default == (0.05,) and params["optimizer[sgd].momentum"].default == ()
    config = result.config(values)
    assert config["optimizer"]["name"] == "adamw" and config["model"]["arch"] == "cnn"


@pytest.mark.parametrize("dist, value, fitted", [
    (LogUniform(1e-4, 10.0), 1, 1.0), (Int(2, 6, 2), 4.0, 4), (QUniform(0.0, 1.0, 0.1), 0.3, 0.3),
    (Choice(({"name": "sgd"}, {"name": "adamw"}), ("sgd", "adamw"), True), "adamw", "adamw"),
    (Choice(({"lr": 1}, {"lr": 2}), ("0", "1"), True), 1, "1"),  # unnamed options: by position
    (Choice(((1, 2), (3, 4)), ("0", "1")), [3, 4], "1"), (Pow2(16, 256), 64.0, 64), (Pow2(16, 256), 256, 256),
])
def test_fit_value_gives_what_the_distribution_samples(dist, value, fitted):
    got, error, _ = fit_value(dist, value)
    assert error is None and got == fitted and type(got) is type(fitted)


@pytest.mark.parametrize("dist, value, words", [
    (LogUniform(1e-4, 1e-1), 0.5, "range"), (Int(2, 6, 2), 3, "step grid"), (Int(2, 3), 2.5, "integer"),
    (Choice((0, 1), (0, 1)), True, "not one of the options"), (LogUniform(1e-4, 1e-1), "0.01", "a number"),
    (LogUniform(1e-4, 1e-1), float("nan"), "finite"), (Pow2(16, 256), 48, "power of two (16, 32, 64, 128, 256)"),
    (Pow2(16, 256), 8, "range"), (Pow2(16, 256), 32.5, "integer"),
    (Uniform(0.0, 1.0), True, "expected a number"), (Int(0, 3), False, "expected an integer"),  # not 1.0 and 0
    # options labelled by position: what each position stands for (the list 1 is not, the label '1' is)
    (Choice(((64, 64), (128,)), ("0", "1")), 1, "not one of the options (0=[64, 64], 1=[128])"),
])
def test_fit_value_refuses_what_the_distribution_cannot_sample(dist, value, words):
    assert words in fit_value(dist, value)[1]


@pytest.mark.parametrize("low, value, step, on", [
    (0.5, 0.8, 0.1, True), (0.0, 0.3, 0.1, True), (0.5, 0.85, 0.1, False), (1, 9, 4, True), (1, 10, 4, False),
    (0.0, 1e6, 0.1, True), (0.0, 1e6 + 0.05, 0.1, False),
])
def test_on_step_grid_forgives_float_rounding_only(low, value, step, on):
    """One rule for a distribution's high (`_parse`) and for a value given for it (`fit_value`)."""
    assert on_step_grid(low, value, step) is on


def test_overrides_keep_working_on_a_key_with_a_default():
    assert "model.width" not in {p.name for p in space(DEFAULTS, ("model.width=16",)).params}
    for override in ("model.width={int: [8, 64, 8], default: 16}", "model.width.default=16"):
        assert space(DEFAULTS, (override,)).defaults()[0]["model.width"] == 16
    picked = space(DEFAULTS, ("optimizer.name=sgd",))  # keeps that option: the choice and its default are gone
    assert picked.defaults()[0] == {"model.arch": "cnn", "model.width": 32, "model.dropout": 0.0,
                                    "optimizer.lr": 0.05, "optimizer.momentum": 0.7, "train.batch_size": 16}
    assert space(DEFAULTS, ("optimizer.default=sgd",)).defaults()[0]["optimizer[sgd].lr"] == 0.05
    assert space(DEFAULTS, ("optimizer.lr=0.01",)).defaults()[0]["optimizer"] == "adamw"


START = DEFAULTS + """\
search:
  start:
    - {model.width: 64, optimizer: sgd}
    - model.arch: cnn
    - {train.batch_size: 32, "optimizer[adamw].lr": 1.0e-3}
"""


def test_start_points_are_completed_with_the_defaults_and_follow_the_default_configuration():
    result = space(START)
    defaults = result.defaults()[0]
    first = result.first_points()
    assert first[0] == defaults
    assert first[1] == {"model.arch": "cnn", "model.width": 64, "model.dropout": 0.0, "optimizer": "sgd",
                        "optimizer[sgd].lr": 0.05, "optimizer[sgd].momentum": 0.7, "train.batch_size": 16}
    assert first[2] == {**defaults, "train.batch_size": 32, "optimizer[adamw].lr": 1e-3}
    assert len(first) == 3  # the second start point is the default configuration: evaluated once
    assert result.first_points(before=[first[2]])[0] == first[2] and len(result.first_points(before=[first[2]])) == 3


def test_without_a_default_only_the_start_points_come_first():
    result = space("data: {dataset: digits}\nmodel: {width: {int: [8, 64, 8]}, dropout: {uniform: [0, 0.5]}}\n"
                   "search: {start: [{model.width: 64}, {model.dropout: 0.1}]}\n")
    assert result.first_points() == [{"model.width": 40, "model.dropout": 0.25} | {"model.width": 64},
                                     {"model.width": 40, "model.dropout": 0.1}]


def test_under_the_grid_sampler_no_point_comes_first():
    grid = space("data: {dataset: digits}\nmodel: {width: {choice: [8, 16], default: 16}}\nsearch: {sampler: grid}\n")
    assert grid.defaults()[0] == {"model.width": 16} and grid.first_points() == []


def test_default_first_false_leaves_the_default_configuration_to_the_sampler():
    """A researcher's searches of seeds 0, 1 and 2 each ran the space's default configuration first; where it won,
    every seed reported the same best (0.9894 ± 0 on digits.yaml at 2 epochs): the spread over seeds said nothing
    of the sampler. `default_first: false` runs the start points alone first, and the sampler proposes the rest."""
    result = space(START, ("search.default_first=false",))
    first = space(START).first_points()  # the default configuration, then the start points but one equal to it
    assert result.first_points() == [first[1], first[0], first[2]]  # the start points alone, as listed
    assert space(DEFAULTS, ("search.default_first=false",)).first_points() == []
    assert space(START, ("search.default_first=true",)).fingerprint() == space(START).fingerprint()  # as before
    assert result.fingerprint() != space(START).fingerprint()  # another first trial: another search
    with pytest.raises(Exception, match=r"search\.default_first"):
        space(START, ("search.default_first=sometimes",))


def test_the_fingerprint_holds_the_defaults_and_the_start_points():
    base = space(START).fingerprint()
    assert base == space(START, ("search.trials=3",)).fingerprint()
    assert base != space(START, ("model.width.default=16",)).fingerprint()
    assert base != space(START, ("search.start=[{model.width: 16}]",)).fingerprint()
    assert base != space(DEFAULTS).fingerprint()


def test_complete_point_without_computed_defaults_names_what_is_missing():
    params = space(DEFAULTS).params
    values, problems = complete_point(params, {"optimizer": "sgd"}, computed_defaults=False)
    assert values["optimizer[sgd].lr"] == 0.05
    assert problems == [("optimizer[sgd].momentum", "is missing, and the space gives it no default",
                         "give it a `default:` beside its distribution, or a value for optimizer[sgd].momentum"),
                        ("train.batch_size", "is missing, and the space gives it no default",
                         "give it a `default:` beside its distribution, or a value for train.batch_size")]


def test_complete_point_names_a_value_given_for_a_parameter_its_choices_leave_out():
    """A known configuration (a start point, an earlier run's trial) that gives sgd's momentum but chooses adamw
    would run without it: the value is named as a problem rather than dropped."""
    values, problems = complete_point(space(DEFAULTS).params, {"optimizer": "adamw", "optimizer[sgd].momentum": 0.9})
    assert "optimizer[sgd].momentum" not in values
    assert problems == [("optimizer[sgd].momentum", "is sampled only when optimizer=sgd, which this configuration "
                         "does not choose", "choose it too (optimizer=sgd), or leave optimizer[sgd].momentum out")]
