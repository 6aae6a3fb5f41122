"""A W&B sweep's and Hydra's sweepers' ways of writing a search get autotune's as the fix: their parameter mappings
(`{values: [...]}`, `{distribution: log_uniform_values, min:, max:}`), their sweep texts (`interval(0.1, 0.5)`), and
their search keys (`method`, `goal`, `run_cap`, `early_terminate`, `direction`, `n_trials`)."""
from __future__ import annotations

import pytest

from space_support import problems, space


@pytest.mark.parametrize("value, fix", [
    ("{values: [16, 32, 64]}", "use {choice: [16, 32, 64]}"),
    ("{distribution: categorical, values: [16, 32], probabilities: [0.2, 0.8]}",
     "{choice: [16, 32]} (or {grid: [...]} with search.sampler: grid, W&B's method: grid); options here are equally"),
    ("{value: 64}", "a constant is written alone here: 64"),
    ("{distribution: int_uniform, min: 16, max: 64}", "use {int: [16, 64]} (both ends included"),
    ("{min: 16, max: 64}", "use {int: [16, 64]}, as W&B reads two integer bounds (both ends included), or "
                           "{uniform: [16.0, 64.0]} for a number"),
    ("{min: 16.0, max: 64.0}", "use {uniform: [16.0, 64.0]}"),
    ("{distribution: q_uniform, min: 16, max: 64, q: 16}", "use {quniform: [16, 64, 16]}"),
    ("{distribution: log_uniform_values, min: 16, max: 64}", "use {loguniform: [16, 64]}"),
    ("{distribution: log_uniform, min: 0, max: 1}", "natural logs of the bounds: use {loguniform: [1.0, 2.71828]}"),
    ("{distribution: normal, mu: 32, sigma: 8}", "no normal distribution here (normal): use {uniform: [16.0, 48.0]}"),
    ("{distribution: q_log_uniform_values, min: 16, max: 64, q: 16}", "no log scale with a step here"),
    ("{distribution: beta, min: 16, max: 64}", "W&B's distribution 'beta' has no equivalent here"),
])
def test_a_wandb_parameter_gets_autotunes_distribution(value, fix):
    """It was answered `expected an integer (got {'values': [16, 32, 64]})`, with no word of choice."""
    message, given = problems(f"train: {{batch_size: {value}}}\n")["train.batch_size"]
    assert message == "a W&B sweep's parameter, not a distribution here" and fix in given, given


@pytest.mark.parametrize("value, fix", [
    ("'choice(16, 32, 64)'", "use {choice: [16, 32, 64]}"),
    ("'range(16, 64, 16)'", "use {int: [16, 64, 16]} (both ends included, as Hydra's Optuna sweeper reads range; its "
                          "basic sweeper stops before 64)"),
    ("'range(1, 5)'", "use {int: [1, 5]}"),
    ("'interval(16, 64)'", "use {int: [16, 64]} (two integers draw an integer, as in Hydra's Optuna sweeper; "
                         "{uniform: [16.0, 64.0]} draws a number)"),
    ("'interval(0.1, 0.5)'", "use {uniform: [0.1, 0.5]}"),
    ("'tag(log, interval(1e-4, 1e-2))'", "use {loguniform: [0.0001, 0.01]}"),
    ("'tag(log, interval(16, 256))'", "use {int: [16, 256, 1, true]}"),
    ("glob(a*)", None),  # not one of the sweeps: the key's own check answers
])
def test_a_hydra_sweep_gets_autotunes_distribution(value, fix):
    """`interval(0.1, 0.5)` was answered `expected a number (got 'interval(0.1, 0.5)')`; `choice(a, b)` under a
    model name `did you mean 'a'?`."""
    message, given = problems(f"train: {{batch_size: {value}}}\n")["train.batch_size"]
    if fix is None:
        assert message == "expected an integer"
    else:
        assert message == "a Hydra sweep's text, not a distribution here" and fix in given, given


@pytest.mark.parametrize("value, fix", [
    ("{type: int, low: 16, high: 64}", "use {int: [16, 64]}"),
    ("{type: int, low: 16, high: 64, step: 16}", "use {int: [16, 64, 16]}"),
    ("{type: int, low: 16, high: 64, log: true}", "use {int: [16, 64, 1, true]}"),
    ("{type: float, low: 16, high: 64}", "use {uniform: [16, 64]}"),
    ("{type: float, low: 16, high: 64, log: true}", "use {loguniform: [16, 64]}"),
    ("{type: float, low: 16, high: 64, step: 8}", "use {quniform: [16, 64, 8]}"),
    ("{type: categorical, choices: [16, 32]}", "use {choice: [16, 32]}"),
])
def test_a_hydra_optuna_sweepers_search_space_entry_gets_autotunes_distribution(value, fix):
    message, given = problems(f"train: {{batch_size: {value}}}\n")["train.batch_size"]
    assert message == "a Hydra Optuna sweeper's search_space entry, not a distribution here" and given == fix


def test_a_hydra_choice_of_names_is_not_answered_with_the_closest_name():
    message, fix = problems("model: {head: 'choice(linear, mlp)'}\n")["model.head"]
    assert message == "a Hydra sweep's text, not a distribution here" and fix == "use {choice: [linear, mlp]}"


@pytest.mark.parametrize("value", ["{values: [16, 32]}", "{distribution: uniform, min: 0, max: 1}"])
def test_a_wandb_parameter_is_refused_where_a_mapping_is_taken(value):
    """Under a key of any type it would reach the function as a constant, and search nothing."""
    message, _ = problems(f"model: {{head: {value}}}\n")["model.head"]
    assert message == "a W&B sweep's parameter, not a distribution here"


@pytest.mark.parametrize("value", ["{min: 0, max: 1}", "{value: 3}", "{values: 3, other: 1}"])
def test_a_mapping_without_wandbs_marks_is_a_constant_where_mappings_are_taken(value):
    assert space(f"model: {{head: {value}}}\n").config({})["model"]["head"]


def test_wandbs_nested_parameters_in_a_section_get_the_keys_written_directly():
    message, fix = problems("train: {parameters: {batch_size: {values: [16]}}}\n")["train.parameters"]
    assert message == "unknown key" and "W&B's nested parameters are written as the keys themselves" in fix


@pytest.mark.parametrize("value, fix", [
    ("'choice(sgd, adamw)'", "a section is searched by a choice of mappings here, one per option, each holding the "
                             "section's keys: optimizer: {choice: [{name: a, ...}, {name: b, ...}]} (Hydra's config"),
    ("{values: [sgd, adamw]}", "optimizer: {choice: [{name: a, ...}, {name: b, ...}]}"),
    ("{values: [{name: sgd}, {name: adamw, lr: 0.001}]}", "use {choice: [{name: sgd}, {name: adamw, lr: 0.001}]}"),
])
def test_a_whole_section_chosen_as_the_sweep_tools_choose_gets_a_choice_of_mappings(value, fix):
    """Hydra's `optimizer: choice(sgd, adamw)` (config groups) was answered "an ingredient section must be a mapping
    of keys", and W&B's `{values: [...]}` "optimizer.values: unknown key"."""
    found = problems(f"optimizer: {value}\n")
    assert list(found) == ["optimizer"] and fix in found["optimizer"][1], found


@pytest.mark.parametrize("text, path, words", [
    ("search: {method: bayes}", "search.method", "W&B's method is search.sampler here: bayes is tpe"),
    ("search: {goal: maximize}", "search.goal", "W&B's goal is search.mode here: maximize is max"),
    ("search: {run_cap: 4}", "search.run_cap", "W&B's run_cap is search.trials here"),
    ("search: {early_terminate: {type: hyperband}}", "search.early_terminate",
     "scheduler: {asha: {grace_period: 1, reduction_factor: 3}}"),
    ("search: {metric: {name: val_accuracy, goal: maximize}}", "search.metric",
     "W&B's metric mapping is keys of search here: metric: val_accuracy, mode: max"),
    ("search: {metric: {name: val_loss, goal: minimize, target: 0.1}}", "search.metric",
     "W&B's metric mapping is keys of search here: metric: val_loss, mode: min, stop: {val_loss: 0.1}"),
    ("search: {scheduler: {type: hyperband, min_iter: 2, eta: 2}}", "search.scheduler",
     "scheduler: {asha: {grace_period: 2, reduction_factor: 2}}"),
    ("search: {scheduler: {type: hyperband}}", "search.scheduler",
     "scheduler: {asha: {grace_period: 1, reduction_factor: 3}}"),
    ("search: {sampler: {type: tpe, seed: 1}}", "search.sampler", "use one of tpe, random"),  # no scheduler's fix
    ("search: {scheduler: {asha: {min_iter: 1}}}", "search.scheduler.asha.min_iter", "W&B's min_iter is grace_period"),
    ("search: {scheduler: {hyperband: {eta: 3}}}", "search.scheduler.hyperband.eta", "W&B's eta is reduction_factor"),
    ("search: {sampler: bayes}", "search.sampler", "W&B's bayes is tpe here"),
    ("search: {direction: maximize}", "search.direction", "Optuna's direction is search.mode here: maximize is max"),
    ("search: {n_trials: 4}", "search.n_trials", "Optuna's n_trials is search.trials here"),
    ("search: {n_jobs: 2}", "search.n_jobs", "n_jobs (scikit-learn's, Optuna's, Hydra's sweeper's) is "
                                             "search.max_concurrent here"),
    ("search: {params: {}}", "search.params", "Hydra's sweeper params are written in the ingredient sections"),
    ("search: {sampler: {_target_: optuna.samplers.CmaEsSampler, seed: 1}}", "search.sampler",
     "Hydra's _target_ mapping is the name here: sampler: cmaes (its arguments: {cmaes: {...}}; its seed: "
     "search.seed)"),
    ("search: {sampler: TPESampler}", "search.sampler", "Optuna's TPESampler is tpe here"),
    ("method: bayes", "method", "W&B's method goes under search here: search.sampler"),
    ("run_cap: 4", "run_cap", "W&B's run_cap goes under search here: search.trials"),
    ("parameters: {}", "parameters", "the distributions are written in the ingredient sections here"),
    ("hydra: {}", "hydra", "Hydra's sweeper settings go under search here"),
])
def test_sweep_tools_names_of_settings_get_autotunes_as_the_fix(text, path, words):
    """`method: bayes` was answered "did you mean 'mode'?", and `run_cap`, `goal`, `early_terminate` with the list
    of known keys only."""
    found = problems(text + "\n")
    assert words in found[path][1], found


@pytest.mark.parametrize("text, path, fix", [
    ("model.head: {choice: [linear, mlp]}", "model.head",
     "a key path is written nested in the file: model: {head: ...} (a dotted path is --set's form)"),
    ("search.trials: 4", "search.trials", "a key path is written nested in the file: search: {trials: ...}"),
    ("defaults: [{override hydra/sweeper: optuna}]", "defaults", "no config groups here"),
])
def test_hydras_dotted_keys_and_defaults_at_the_top_get_the_nested_form(text, path, fix):
    """`model.width:` at the top, as Hydra's sweeper params write it, was answered "did you mean 'model'?"."""
    assert fix in problems(text + "\n")[path][1]
