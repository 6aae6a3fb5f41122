"""What a recipe declares in its SCHEMA for the engine: its budget key (what early stopping counts in), its metrics
and their directions. `check` reads only those: a metric the recipe does not report, or early stopping for a recipe
without a budget, is a problem with file and line; the default metric and mode are the recipe's."""
from __future__ import annotations

from pathlib import Path

import pytest

from autotune.engine.schedulers import make_scheduler, max_epochs
from autotune.errors import SpaceError
from autotune.api import load_space
from autotune.space.schema import Field, Schema, Section
from ray.tune.schedulers import AsyncHyperBandScheduler, FIFOScheduler

RECIPE = '''\
from autotune.space.schema import Field, Schema, Section

SCHEMA = Schema(
    model=Section(depth=Field(int, default=3, low=1)),
    fit=Section(rounds=Field(int, default=12, low=1)),
    {declarations}
)


def load_data(data): ...
def train(config, report, *, data=None, checkpoint=None): ...
def evaluate(checkpoint, data=None): ...
def export(checkpoint, data, out_dir): ...
'''
ROUNDS = 'budget="fit.rounds", metrics={"val_error": "min", "val_auc": "max"},'


def _space(tmp_path: Path, declarations: str, body: str) -> Path:
    (tmp_path / "rounds_recipe.py").write_text(RECIPE.format(declarations=declarations))
    (tmp_path / "space.yaml").write_text(f"name: r\nrecipe: rounds_recipe.py\n{body}")
    return tmp_path / "space.yaml"


def test_the_first_declared_metric_and_its_direction_are_the_defaults(tmp_path):
    space = load_space(_space(tmp_path, ROUNDS, "fit: {rounds: {int: [4, 20]}}\n"))
    assert space.search.metric == ("val_error",) and space.search.mode == ("min",)
    assert space.budget == "fit.rounds" and max_epochs(space) == 20  # the budget key of its own, searched
    scheduler = make_scheduler(load_space(_space(tmp_path, ROUNDS, "search: {scheduler: asha}\n")))
    assert isinstance(scheduler, AsyncHyperBandScheduler) and scheduler._max_t == 12
    assert load_space(_space(tmp_path, ROUNDS, "search: {metric: val_auc}\n")).search.mode == ("max",)


@pytest.mark.parametrize("metric, mode", [
    ("val_mae", "min"), ("val_rmse", "min"), ("test-MSE", "min"), ("val_wer", "min"), ("val_perplexity", "min"),
    ("val_loss", "min"), ("val_error_rate", "min"), ("val_f1_macro", "max"), ("val_auc", "max"),
    ("val_camera", "max"),  # "mae" inside a word is not the error's name
])
def test_an_undeclared_metric_s_direction_is_guessed_from_its_name(metric, mode, tmp_path):
    space = load_space(_space(tmp_path, "", f"search: {{metric: {metric}, scheduler: fifo}}\n"))
    assert space.search.mode == (mode,)


def test_a_metric_the_recipe_does_not_report_is_a_problem_with_its_line(tmp_path):
    with pytest.raises(SpaceError) as err:
        load_space(_space(tmp_path, ROUNDS, "search:\n  metric: val_accuracy\n"))
    (problem,) = err.value.problems
    assert problem.line == 4 and problem.path == "search.metric"
    assert "not a metric the recipe reports" in str(err.value) and "val_error, val_auc" in str(err.value)


def test_without_a_budget_nothing_stops_early_and_asking_for_it_says_why(tmp_path):
    space = load_space(_space(tmp_path, 'metrics={"val_error": "min"},', ""))
    assert space.budget is None and isinstance(make_scheduler(space), FIFOScheduler)  # auto: fifo
    assert space.stops_nothing() == "the recipe declares no budget"
    with pytest.raises(SpaceError) as err:
        load_space(_space(tmp_path, 'metrics={"val_error": "min"},', "search: {scheduler: asha}\n"))
    assert "the recipe declares no budget" in str(err.value) and "use scheduler: fifo" in str(err.value)


@pytest.mark.parametrize("definition, message", [
    ("def train(config, report): ...", "train(config, report) (rounds_recipe.py, line 11) cannot be called as "
                                       "autotune calls it (got an unexpected keyword argument 'data')"),
    ("def train(config): ...", "train(config) (rounds_recipe.py, line 11) cannot be called as autotune calls it "
                               "(too many positional arguments)"),
    ("def evaluate(checkpoint): ...", "evaluate(checkpoint) (rounds_recipe.py, line 12) cannot be called"),
], ids=["train-without-keywords", "train-without-report", "evaluate-without-data"])
def test_a_contract_function_autotune_cannot_call_is_refused_by_check(definition, message, tmp_path):
    """`check` (and every command, before Ray) compares each contract function the recipe defines with the call
    autotune makes: it was each trial failing with Ray's TypeError after the search started."""
    function = definition.split("(")[0].removeprefix("def ")
    path = _space(tmp_path, ROUNDS, "")
    recipe = tmp_path / "rounds_recipe.py"
    recipe.write_text("\n".join(definition if line.startswith(f"def {function}(") else line
                                for line in recipe.read_text().splitlines()) + "\n")
    with pytest.raises(SpaceError) as err:
        load_space(path)
    assert message in str(err.value) and "define it as " in str(err.value)


def test_a_budget_that_names_no_field_is_refused_by_check(tmp_path):
    """A typo in `budget` (it was searched with early stopping counted in a key nothing reads)."""
    with pytest.raises(SpaceError, match=r"rounds_recipe.py:\d+: ValueError: Schema budget='fit.round': name the "
                                         r"integer field that counts a trial's reports \(section.key\), one of "
                                         r"\['model.depth', 'fit.rounds'\], or leave budget out"):
        load_space(_space(tmp_path, ROUNDS.replace("fit.rounds", "fit.round"), ""))


def test_a_direction_other_than_max_or_min_is_refused():
    with pytest.raises(ValueError, match="'max' or 'min'"):
        Schema(train=Section(epochs=Field(int, default=1)), metrics={"val_error": "down"})


@pytest.mark.parametrize("recipe, metric, mode", [("image_classification", "val_accuracy", "max"),
                                                  ("tabular", "val_loss", "min")])
def test_the_shipped_recipes_declare_theirs(recipe, metric, mode):
    space = load_space(f"name: s\nrecipe: {recipe}\n")
    assert space.budget == "train.epochs" and (space.search.metric, space.search.mode) == ((metric,), (mode,))


def test_the_held_out_twin_that_decides_promotion_is_the_declared_one(tmp_path):
    declarations = ROUNDS + ' tests={"val_error": "test_error"},'
    assert load_space(_space(tmp_path, declarations, "")).test_twin() == ("test_error", "min")
    # a searched metric without a twin: the first declared twin, with its own direction
    assert load_space(_space(tmp_path, declarations, "search: {metric: val_auc}\n")).test_twin() == ("test_error", "min")
    regression = load_space("name: s\nrecipe: tabular\nsearch: {metric: val_rmse}\n")
    assert regression.test_twin() == ("test_rmse", "min")


def test_a_path_field_is_made_absolute_against_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    space = load_space("name: t\nrecipe: tabular\ndata: {dataset: csv, target: y, path: {choice: [a.csv, ~/b.csv]}}\n")
    (param,) = space.params
    paths = [space.config({param.name: label})["data"]["path"] for label in param.dist.labels]
    assert paths == [str(tmp_path / "a.csv"), "~/b.csv"]  # each option; ~ as given, the same on every node
    space = load_space("name: t\nrecipe: image_classification\ndata: {root: s3://bucket/images}\n")
    assert space.config({})["data"]["root"] == "s3://bucket/images"
    assert load_space("name: t\nrecipe: image_classification\n").config({})["data"]["root"] == "~/.cache/autotune/data"
    # weights given by their file: the trials run in folders of their own (it failed every trial there)
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "r18.pth").touch()  # it must exist: checked when the space is read
    space = load_space("name: t\nrecipe: image_classification\nmodel: {arch: resnet18, pretrained: w/r18.pth}\n")
    assert space.config({})["model"]["pretrained"] == str(tmp_path / "w" / "r18.pth")
    space = load_space("name: t\nrecipe: image_classification\nmodel: {arch: resnet18, pretrained: true}\n")
    assert space.config({})["model"]["pretrained"] is True


LR_FIND_RECIPE = '''\
from autotune.space.schema import Field, Schema, Section
from autotune.vision.lr_find import range_test

SCHEMA = Schema(data=Section(scale=Field(float, default=2.0)), train=Section(epochs=Field(int, default=1)),
                budget="train.epochs", metrics={"val_loss": "min"})


def load_data(data):
    return {"scale": data["scale"], "loaded": True}


def train(config, report, *, data=None, checkpoint=None): ...


def lr_find(config, data, *, start, end, steps):
    assert data == {"scale": 3.0, "loaded": True}, data  # what load_data gave, for the configuration's data
    return range_test(lambda lr: (lr - 1e-3) ** 2 * data["scale"] + 1.0, start=start, end=end, steps=steps)
'''


def test_lr_find_hands_the_recipe_the_data_its_load_data_gives(tmp_path, monkeypatch, capsys):
    from autotune.cli import main

    (tmp_path / "sweep_recipe.py").write_text(LR_FIND_RECIPE)
    (tmp_path / "space.yaml").write_text("name: s\nrecipe: sweep_recipe.py\ndata: {scale: 3.0}\n")
    monkeypatch.chdir(tmp_path)
    assert main(["lr-find", "space.yaml", "--steps", "20", "--out", "sweep.png"]) == 0
    assert "suggested learning rate" in capsys.readouterr().out and (tmp_path / "sweep.png").stat().st_size > 0
