"""A warm start tells the sampler the option an earlier trial ran, not its position: a choice labelled by position
('0', '1', ...) whose options changed between the runs is translated through the earlier run's space.json."""
from __future__ import annotations

import logging
from pathlib import Path

import optuna

import autotune
from autotune.engine.warm_start import add_history, read_history
from engine_helpers import toy_space
from test_warm_start import _earlier_run, _study_of_a_run

# as `dropout: {choice: [0.0, {uniform: [0.1, 0.5]}]}`: labelled by position, the range's value named `model.y[1]`
YS = "{y: {choice: [%s]}}"
RANGE = "{uniform: [0.5, 1.0]}"
SECTIONS = "{choice: [%s]}"
PLAIN, WIDE = "{kind: plain, x: {uniform: [0.0, 1.0]}}", "{kind: wide, x: {uniform: [0.0, 1.0]}}"


def test_a_position_is_told_as_the_option_it_stood_for_and_a_vanished_option_skips_the_trial(tmp_path, caplog):
    run = _earlier_run(tmp_path / "old", YS % f"0.0, {RANGE}", [{"model.y": "1", "model.y[1]": 0.6},
                                                              {"model.y": "0"}])
    more = autotune.load_space(toy_space("new", model=YS % f"0.0, 0.25, {RANGE}"))
    assert [t.params for t in read_history(run, more).trials] == [{"model.y": "2", "model.y[2]": 0.6},
                                                                  {"model.y": "0"}]

    fewer = autotune.load_space(toy_space("new", model=YS % "0.0, 0.25"))
    history = read_history(run, fewer)
    assert [t.params for t in history.trials] == [{"model.y": 0.0}]  # values label these options
    caplog.set_level(logging.INFO, logger="autotune")
    add_history(history, tmp_path / "study.db", fewer)
    assert (f"warm start from {run}: 1 finished trial(s) told to the sampler; 1 skipped, their parameters no longer "
            'fit the space (1: model.y \'1\' ({"uniform": [0.5, 1.0]}) is no longer one of its options)') in caplog.text


def test_the_position_in_a_conditional_parameter_s_name_is_translated_too(tmp_path):
    run = _earlier_run(tmp_path / "old", SECTIONS % f"{PLAIN}, {WIDE}", [{"model": "0", "model[0].x": 0.1}])
    reordered = autotune.load_space(toy_space("new", model=SECTIONS % f"{WIDE}, {PLAIN}"))
    assert [t.params for t in read_history(run, reordered).trials] == [{"model": "1", "model[1].x": 0.1}]


def test_without_the_earlier_space_a_position_skips_the_trial(tmp_path):
    run = _earlier_run(tmp_path / "old", YS % f"0.0, {RANGE}", [{"model.y": "1", "model.y[1]": 0.6}])
    (run / "space.json").unlink()  # an older run
    history = read_history(run, autotune.load_space(toy_space("new", model=YS % f"0.0, 0.25, {RANGE}")))
    assert history.trials == [] and dict(history.skipped) == {
        "model.y '1' is an option's position, and the run records no readable space.json to tell which option": 1}


def test_a_name_is_told_as_the_option_it_stood_for_when_the_new_space_labels_by_position(tmp_path):
    """An earlier run's optimizers were labelled by their names; the new space adds a second `sgd` (another lr
    range), so that its options are labelled by position: the earlier adamw trial is told as option '1', its
    parameters renamed with it, rather than skipped as naming no option."""
    digits = Path(__file__).parents[2] / "search_spaces" / "digits.yaml"
    space = autotune.load_space(digits)
    lr = optuna.distributions.FloatDistribution(3e-4, 1e-2, log=True)
    trial = optuna.trial.create_trial(
        state=optuna.trial.TrialState.COMPLETE, value=0.9,
        params={"optimizer": "adamw", "optimizer[adamw].lr": 1e-3},
        distributions={"optimizer": optuna.distributions.CategoricalDistribution(("sgd", "adamw")),
                       "optimizer[adamw].lr": lr})
    run = _study_of_a_run(tmp_path / "old", "digits", [trial])
    (run / "space.json").write_text(space.definition() + "\n")
    text = digits.read_text().replace(
        "  default: sgd ", "    - {name: sgd, lr: {loguniform: [1.0e-3, 1.0e-2]}, momentum: 0.5, nesterov: false}\n"
                           "  default: 0 ")
    positional = autotune.load_space(text)
    assert next(p.dist.labels for p in positional.params if p.name == "optimizer") == ("0", "1", "2")
    [told] = read_history(run, positional).trials
    assert told.params["optimizer"] == "1" and told.params["optimizer[1].lr"] == 1e-3
