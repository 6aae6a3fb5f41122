"""Ray Tune's names of autotune's settings and distributions get autotune's as the fix (or say what is missing),
even under a key of any type; and early-stopping settings that can stop nothing (a grace period past a trial's last
epoch, hyperband's at it, a max_t past it) are refused."""
from __future__ import annotations

import textwrap

import pytest

import autotune.recipes
from autotune.errors import SpaceError
from autotune.space import load_space
from space_support import problems, space


@pytest.mark.parametrize("text, path, words", [
    ("search: {num_samples: 4}", "search.num_samples", "search.trials"),
    ("search: {points_to_evaluate: []}", "search.points_to_evaluate", "search.start"),
    ("search: {stop: {training_iteration: 2}}", "search.stop.training_iteration",
     "an epoch count here: set train.epochs (or search.epoch_budget"),
    ("search: {scheduler: pbt}", "search.scheduler", "no population-based training here"),
    ("search: {scheduler: pb2}", "search.scheduler", "asha or auto stop weak trials early"),
    ("search: {scheduler: bohb}", "search.scheduler", "auto with sampler: tpe"),
    ("search: {scheduler: MedianStoppingRule}", "search.scheduler", "median here"),
    ("search: {scheduler: median_stopping_rule}", "search.scheduler", "median here"),
    ("search: {scheduler: ASHAScheduler}", "search.scheduler", "asha here"),
    ("search: {scheduler: HyperBandScheduler}", "search.scheduler", "hyperband here"),
    ("search: {scheduler: hyperbnd}", "search.scheduler", "did you mean 'hyperband'?"),  # did-you-mean as before
    ("search: {sampler: hyperopt}", "search.sampler", "tpe here (the same algorithm family)"),
    ("search: {sampler: bayesopt}", "search.sampler", "the nearest here is gp"),
    ("search: {sampler: ax}", "search.sampler", "the nearest here is gp"),
    ("search: {sampler: nevergrad}", "search.sampler", "cmaes (an evolution strategy, numbers only) or random"),
    ("search: {sampler: optuna}", "search.sampler", "are Optuna's: tpe"),
    ("search: {sampler: tpee}", "search.sampler", "did you mean 'tpe'?"),
])
def test_tunes_names_of_settings_get_autotunes_as_the_fix(text, path, words):
    found = problems(text + "\n")
    assert words in found[path][1], found


@pytest.mark.parametrize("value, words", [
    ("{grid_search: [32, 64]}", "{grid: [...]} here, with search.sampler: grid"),
    ("{lograndint: [1, 64]}", "{int: [1, 63, 1, true]}"),
    ("{randint: [1, 64], default: 3}", "{int: [1, 9]}"),
    ("{qrandint: [1, 64, 2]}", "{int: [lower, upper, q]}"),
    ("{randn: [0, 1]}", "no normal distribution"),
    ("{qrandn: {mean: 0, sd: 1}}", "no normal distribution"),
    ("{qloguniform: [1, 64, 2]}", "use loguniform"),
    ("{sample_from: {fn: x}}", "a choice of mappings"),
    ('{sample_from: "lambda spec: spec.config.width * 2"}', "${...}"),
    ("{grid_search: 16}", "{grid: [...]}"),
])
@pytest.mark.parametrize("key", ["train.batch_size", "model.head"])  # an integer key, and one that takes a mapping
def test_tunes_distributions_are_refused_with_autotunes_equivalent(key, value, words):
    section, name = key.split(".")
    found = problems(f"{section}: {{{name}: {value}}}\n")
    message, fix = found[key]
    assert message.startswith("unknown distribution") and words in fix, found


@pytest.mark.parametrize("value, words", [
    ("{logint: [16, 256]}", "{int: [low, high, 1, true]}"), ("{log_int: {low: 16, high: 256}}", "1, true]}"),
    ("{int_uniform: [1, 8]}", "a uniform integer is {int: [low, high]}"),
    ("{intt: [1, 8]}", "did you mean 'int'?"),  # a misspelling keeps its closest name
])
def test_other_tools_names_close_to_another_distribution_get_the_one_they_mean(value, words):
    """`logint` was answered "did you mean 'int'?", which drops the log scale, and `int_uniform` "'uniform'?", which
    draws fractions."""
    message, fix = problems(f"train: {{batch_size: {value}}}\n")["train.batch_size"]
    assert message.startswith("unknown distribution") and words in fix


@pytest.mark.parametrize("value", ["{layers: [16, 32]}", "{options: {a: 1}}", "{chioce: 3}",
                                   "{randint: [1, 2], other: 1}", "{randint: [1, 2], grid_search: [1]}"])
def test_a_mapping_that_names_no_tune_function_is_a_constant_where_mappings_are_taken(value):
    assert space(f"model: {{head: {value}}}\n").config({})["model"]["head"]


def test_a_tune_distribution_for_a_models_keyword_arguments_is_refused(tmp_path):
    """`check` passed, and the model got {'grid_search': [16, 32]} as a constant: the user thought it searched."""
    (tmp_path / "mine.py").write_text(textwrap.dedent("""\
        import autotune

        @autotune.register("model")
        def mymlp(in_chans, num_classes, input_size, **options):
            raise NotImplementedError
        """))
    (tmp_path / "space.yaml").write_text("name: walk\nrecipe: image_classification\ncustom: mine.py\n"
                                         "data: {dataset: digits}\n"
                                         "model: {arch: mymlp, hidden: {grid_search: [16, 32]}}\n")
    with pytest.raises(SpaceError) as caught:
        load_space(tmp_path / "space.yaml", schema_for=autotune.recipes.load_schema)
    [problem] = caught.value.problems
    assert (problem.path, problem.line) == ("model.hidden", 5) and "{grid: [...]}" in problem.fix


@pytest.mark.parametrize("scheduler, path, words", [
    ("{median: {grace_period: 4}}", "search.scheduler.median.grace_period", "at most 3 epoch(s): nothing would be"),
    ("{median: {grace_period: 3.5}}", "search.scheduler.median.grace_period", "grace_period 3.5 but"),  # judged at 4
    ("{hyperband: {max_t: 5}}", "search.scheduler.hyperband.max_t", "leave max_t out (it defaults to 3)"),
    ("{asha: {max_t: 5}}", "search.scheduler.asha.max_t", "or set train.epochs to 5 for longer trials"),
    ("{asha: {max_t: 5, grace_period: 4}}", "search.scheduler.asha.grace_period", "raise train.epochs"),
    ("{asha: {max_t: 2, grace_period: 3}}", "search.scheduler.asha.grace_period", "raise max_t"),
])
def test_scheduler_settings_that_stop_nothing_are_refused(scheduler, path, words):
    found = problems(f"train: {{epochs: 3}}\nsearch: {{scheduler: {scheduler}}}\n")
    assert words in " ".join(found[path]), found


@pytest.mark.parametrize("scheduler", ["{median: {grace_period: 2}}", "{median: {grace_period: 1.5}}",
                                       "{median: {grace_period: 0}}", "{asha: {max_t: 3, grace_period: 2}}",
                                       "{hyperband: {max_t: 2}}", "{median: {grace_period: 3}}",
                                       "{asha: {grace_period: 3}}"])  # the last two: judged at the last epoch
def test_scheduler_settings_that_can_stop_a_trial_load(scheduler):
    assert space(f"search: {{scheduler: {scheduler}}}\n").search.scheduler_args


@pytest.mark.parametrize("text, path, words", [
    ("search: {n_iter: 8}", "search.n_iter", "search.trials here"),
    ("search: {scoring: roc_auc}", "search.scoring", "search.metric here, on the validation split"),
    ("search: {n_jobs: 2}", "search.n_jobs", "search.max_concurrent here"),
    ("search: {random_state: 0}", "search.random_state", "search.seed here"),
    ("search: {cv: 5}", "search.cv", "no cross-validation here"),
    ("search: {refit: true}", "search.refit", "trained on the train split only"),
    ("search: {param_grid: {}}", "search.param_grid", "{grid: [...]}"),
    ("search: {max_concurrent: -1}", "search.max_concurrent", "or null for as many trials at a time as the resources "
                                                              "allow (what scikit-learn's n_jobs=-1 means)"),
])
def test_scikit_learns_names_of_search_settings_get_autotunes_as_the_fix(text, path, words):
    """A GridSearchCV habit (`cv: 5`, `refit: true`) was answered with the list of known keys only."""
    found = problems(text + "\n")
    assert words in " ".join(found[path]), found


@pytest.mark.parametrize("scorer, words", [
    ("neg_mean_absolute_error", "is val_mae here, on the validation split (lower is better: no negated score"),
    ("neg_root_mean_squared_error", "is val_rmse here"), ("neg_log_loss", "is val_loss here"),
    ("r2", "is val_r2 here"), ("roc_auc", "is val_roc_auc here"), ("balanced_accuracy", "val_balanced_accuracy"),
])
def test_a_scikit_learn_scorer_as_the_metric_gets_the_recipes_metric_as_the_fix(scorer, words):
    """`search.metric: neg_mean_absolute_error` was answered with the recipe's metrics and no hint of val_mae."""
    with pytest.raises(SpaceError) as caught:
        load_space(f"recipe: tabular\nsearch: {{metric: {scorer}}}\n", schema_for=autotune.recipes.load_schema)
    [problem] = caught.value.problems
    assert problem.path == "search.metric" and words in problem.fix, problem
