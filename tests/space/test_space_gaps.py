"""The gaps an audit of `autotune check` found (/tmp/audit_cli/REPORT.md, items 7-24): each bad input is one Problem
at its own line and key path, with the rule and a fix, and the CLI exits 2 without a traceback."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import autotune.api
import autotune.cli
import autotune.recipes
from autotune.errors import Problem, SpaceError, UserError
from autotune.space import Schema, Section, Space, load_space
from autotune.space.schema import Field, held_out, needed_with

SPACES = Path(__file__).parents[2] / "search_spaces"
SET = "<--set>"


@pytest.fixture
def spaces(tmp_path: Path) -> Path:
    """A folder with copies of the shipped spaces, a text file and a sub-folder beside them."""
    for space in ("digits.yaml", "tabular.yaml"):
        shutil.copy(SPACES / space, tmp_path / space)
    (tmp_path / "b.txt").write_text("import autotune\n")
    (tmp_path / "folder").mkdir()
    return tmp_path


def load(path: Path, overrides: tuple[str, ...] = ()) -> Space:
    return load_space(path, overrides, schema_for=autotune.recipes.load_schema)


def problems(path: Path, overrides: tuple[str, ...] = ()) -> list[Problem]:
    with pytest.raises(SpaceError) as caught:
        load(path, overrides)
    return caught.value.problems


def appended(spaces: Path, text: str) -> Path:
    """digits.yaml with `text` appended (its line 46 on)."""
    path = spaces / "more.yaml"
    path.write_text((spaces / "digits.yaml").read_text() + text)
    return path


def assert_one(found: list[Problem], file: str, line: int, path: str, words: tuple[str, ...]) -> None:
    """Exactly one problem at `path`, located at file:line, whose text holds each of `words`."""
    at = [p for p in found if p.path == path]
    assert len(at) == 1, found
    assert (Path(at[0].file).name if at[0].file != SET else SET, at[0].line) == (file, line), at[0]
    for word in words:
        assert word in str(at[0]), at[0]


# (item, --set overrides on digits.yaml, line (the --set's number), key path, words the problem must hold)
OVERRIDES = [
    ("7-not-py", ("custom=b.txt",), 1, "custom", ("is not a .py file",)),
    ("7-yaml", ("custom=digits.yaml",), 1, "custom", ("is not a .py file",)),
    ("7-directory", ("custom=folder",), 1, "custom", ("is a directory",)),
    ("8-name", ("train.epochs=${name}",), 1, "train.epochs",
     ("expected an integer", "gives 'digits'", "'${name}'")),
    ("8-env", ("train.epochs=${env:AUTOTUNE_GAPS_HOME}",), 1, "train.epochs",
     ("expected an integer", "gives '/home/x'", "${env:AUTOTUNE_GAPS_HOME}")),
    ("8-env-default", ("search.trials=2", "train.epochs=${env:AUTOTUNE_GAPS_UNSET,abc}"), 2, "train.epochs",
     ("expected an integer", "gives 'abc'")),
    ("8-env-number", ("model.dropout=${env:AUTOTUNE_GAPS_FOO}",), 1, "model.dropout", ("expected a number",)),
    ("8-bounds", ("model.dropout=${env:AUTOTUNE_GAPS_TWO}",), 1, "model.dropout", ("must be within", "gives 2")),
    ("8-other-option", ("train.batch_size={choice: [32, '${name}']}",), 1, "train.batch_size.choice[1]",
     ("expected an integer", "gives 'digits'")),
    ("10-slash", ("name=a/b",), 1, "name", ("one folder name", "holds '/'", "e.g. name: a-b")),
    ("10-escape", ("name=../../../tmp/escape",), 1, "name", ("one folder name", "e.g. name: tmp-escape")),
    ("10-backslash", ("name=a\\b",), 1, "name", ("one folder name", "holds '\\\\'")),
    ("10-dots", ("name=..",), 1, "name", ("one folder name", "is '..'")),
    ("10-colon", ("name=a:b",), 1, "name", ("holds ':'",)),
    ("10-interpolated", ("name=runs/${recipe}",), 1, "name", ("one folder name", "holds '/'")),
    ("11-setting", ("export.dir=models/${name",), 1, "export.dir", ("unterminated", "models/${name}")),
    ("11-ingredient", ("data.root=${env:HOME",), 1, "data.root", ("unterminated",)),
    ("12-stop-direction", ("search.stop={val_acc: {max: 0.9}}",), 1, "search.stop.val_acc",
     ("not a metric the recipe reports", "did you mean 'val_accuracy'?")),
    ("12-stop-target", ("search.stop={val_acc: 0.9}",), 1, "search.stop.val_acc", ("did you mean 'val_accuracy'?",)),
    ("12-metric-cut-short", ("search.metric=val_f1",), 1, "search.metric",
     ("not a metric the recipe reports", "did you mean 'val_f1_macro'?")),
    ("13-duplicate-metric", ("search.metric=[val_accuracy, val_accuracy]", "search.scheduler=fifo"), 1,
     "search.metric", ("val_accuracy is listed 2 times", "list each metric once")),
    ("15-fractions", ("data.val_fraction=0.9", "data.test_fraction=0.9"), 1, "data.val_fraction",
     ("data.val_fraction + data.test_fraction is 1.8", "leaves no training samples", "sum to less than 1")),
    ("15-fraction-range", ("data.val_fraction={uniform: [0.5, 0.9]}", "data.test_fraction=0.2"), 1,
     "data.val_fraction", ("is 1.1", "(when data.val_fraction=0.9)")),
    ("15-grace-epochs", ("search.scheduler={asha: {grace_period: 20}}",), 1, "search.scheduler.asha.grace_period",
     ("grace_period is 20 but a trial runs at most 8 epoch(s)", "raise train.epochs")),
    ("15-grace-max-t", ("search.scheduler={asha: {grace_period: 3, max_t: 2}}",), 1,
     "search.scheduler.asha.grace_period", ("at most 2 epoch(s)", "lower grace_period, raise max_t")),
    ("15-grace-searched", ("train.epochs={choice: [2, 4]}", "search.scheduler={asha: {grace_period: 5}}"), 2,
     "search.scheduler.asha.grace_period", ("at most 4 epoch(s)",)),
    ("15-hyperband", ("search.scheduler={hyperband: {grace_period: 8}}",), 1,
     "search.scheduler.hyperband.grace_period", ("nothing would be stopped", "raise train.epochs")),
    ("18-misspelt-default", ("model.dropout={uniform: [0, 0.3], defualt: 0.1}",), 1, "model.dropout.defualt",
     ("unknown key 'defualt' beside a distribution", "did you mean 'default'?")),
    ("18-two-distributions", ("model.dropout={int: [1, 3], uniform: [0, 1]}",), 1, "model.dropout",
     ("2 distributions in one key: int, uniform", "keep one")),
    ("18-extra", ("model.width={choice: [16, 32], default: 32, extra: 1}",), 1, "model.width.extra",
     ("unknown key 'extra' beside a distribution", "remove 'extra'")),
    ("18-section", ("optimizer={choice: [{name: sgd}], defualt: sgd}",), 1, "optimizer.defualt",
     ("did you mean 'default'?",)),
    ("20-mode-length", ("search.metric=[val_accuracy, val_loss]", "search.mode=[max]", "search.scheduler=fifo"), 2,
     "search.mode", ("one mode per metric: 2 metrics, 1 mode", "e.g. mode: [max, min]")),
    ("21-start-example", ("search.start={model.depth: 2}",), 1, "search.start",
     ("e.g. start: [{model.arch: simple_cnn, model.width: 32}]",)),
    ("21-start-option", ("search.start=[{optimizer.lr: 0.05}]",), 1, "search.start[0].optimizer.lr",
     ("is not a searched parameter", "did you mean 'optimizer[sgd].lr' or 'optimizer[adamw].lr'?")),
    ("22-missing-high", ("model.dropout={uniform: {low: 0}}",), 1, "model.dropout.uniform",
     ("high is missing", "e.g. {uniform: {low: 0, high: 1}}")),
    ("22-scalar", ("model.dropout={uniform: 0.3}",), 1, "model.dropout.uniform",
     ("uniform takes [low, high]", "e.g. {uniform: [0, 1]}")),
    ("22-one-value", ("model.dropout={uniform: [0.3]}",), 1, "model.dropout.uniform",
     ("got 1 value: high is missing",)),
    ("22-quniform", ("model.dropout={quniform: [0, 0.5]}",), 1, "model.dropout.quniform",
     ("step is missing", "e.g. {quniform: [0, 1, 0.25]}")),
    ("22-misspelt-argument", ("model.depth={int: {low: 1, hihg: 3}}",), 1, "model.depth.int.hihg",
     ("int takes no argument 'hihg'", "did you mean 'high'?")),
    ("23-log-zero", ("model.dropout={loguniform: [0, 0.3]}",), 1, "model.dropout.loguniform",
     ("loguniform needs low > 0", "give low > 0, e.g. [0.0003, 0.3]")),
    ("23-swapped", ("model.dropout={uniform: [0.3, 0.0]}",), 1, "model.dropout.uniform",
     ("`low <= high` must hold", "swap them: [0, 0.3]")),
    ("23-int-log", ("model.depth={int: {low: 0, high: 4, log: true}}",), 1, "model.depth.int",
     ("needs low >= 1", "e.g. {int: {low: 1, high: 4, log: true}}")),
    ("24-empty-segment", ("train..epochs=3",), 1, "train..epochs",
     ("empty key segment", "e.g. --set train.epochs=3")),
    ("24-empty-key", ("=3",), 1, "", ("an override is KEY=VALUE, but KEY is empty",)),
]


@pytest.mark.parametrize("overrides, line, path, words", [c[1:] for c in OVERRIDES], ids=[c[0] for c in OVERRIDES])
def test_a_bad_override_is_one_located_problem(spaces, monkeypatch, overrides, line, path, words):
    monkeypatch.setenv("AUTOTUNE_GAPS_HOME", "/home/x")
    monkeypatch.setenv("AUTOTUNE_GAPS_FOO", "abc")
    monkeypatch.setenv("AUTOTUNE_GAPS_TWO", "2")
    monkeypatch.delenv("AUTOTUNE_GAPS_UNSET", raising=False)
    assert_one(problems(spaces / "digits.yaml", overrides), SET, line, path, words)


# (item, text appended to digits.yaml (its line 46 on), line, key path, words)
APPENDED = [
    ("8-in-the-file", "train:\n  epochs: ${name}\n", 47, "train.epochs", ("expected an integer", "gives 'digits'")),
    ("18-in-the-file", "model:\n  dropout: {uniform: [0, 0.3], defualt: 0.1}\n", 47, "model.dropout.defualt",
     ("did you mean 'default'?",)),
    ("19-top-level", "? [a, b]\n: foo\n", 46, "", ("a key must be a plain value", "write the key as plain text")),
    ("19-nested", "tracking:\n  ? [a, b]\n  : foo\n", 47, "tracking", ("a key must be a plain value",)),
    ("19-date", "2001-12-14: x\n", 46, "", ("a key must be a plain value",)),
]


@pytest.mark.parametrize("text, line, path, words", [c[1:] for c in APPENDED], ids=[c[0] for c in APPENDED])
def test_a_bad_line_is_one_problem_at_that_line(spaces, text, line, path, words):
    found = [p for p in problems(appended(spaces, text)) if "duplicate key" not in p.message]
    assert_one(found, "more.yaml", line, path, words)


# (item, --set overrides on tabular.yaml, key path, words): problems a key that is not there cannot locate closer
TABULAR = [
    ("15-csv-path", ("data.dataset=csv", "data.target=y"), "data.path", ("data.dataset: csv needs data.path",)),
    ("15-csv-target", ("data.dataset=csv", "data.path=rows.csv"), "data.target", ("csv needs data.target",)),
    ("15-tabular-fractions", ("data.val_fraction=0.5", "data.test_fraction=0.5"), "data.val_fraction", ("is 1",)),
]


@pytest.mark.parametrize("overrides, path, words", [c[1:] for c in TABULAR], ids=[c[0] for c in TABULAR])
def test_the_tabular_recipe_checks_across_keys(spaces, overrides, path, words):
    found = problems(spaces / "tabular.yaml", overrides)
    if path == "data.val_fraction":
        assert_one(found, SET, 1, path, words)
    else:  # a key that is not there: its section's line
        lines = (spaces / "tabular.yaml").read_text().splitlines()
        assert_one(found, "tabular.yaml", lines.index("data:") + 1, path, words)


@pytest.mark.parametrize("overrides", [
    ("data.dataset=mnist", "data.val_fraction=0.6", "data.test_fraction=0.5"),  # mnist has its own test set
    ("train.epochs=${env:AUTOTUNE_GAPS_EPOCHS,3}",),
    ("search.scheduler={asha: {grace_period: 8}}",),  # its rung at the last epoch: allowed, a quick epochs=1 try
    ("search.start=[{'optimizer[sgd].lr': 0.05}]",),
])
def test_what_the_rules_allow_still_loads(spaces, overrides):
    load(spaces / "digits.yaml", overrides)


@pytest.mark.parametrize("metric, mode", [("val_roc_auc", "max"), ("val_f1_macro", "max"), ("val_mae", "min"),
                                          ("val_loss", "min")])
def test_tabular_yaml_searches_another_metric_in_its_direction_with_no_mode_given(spaces, metric, mode):
    """`--set search.metric=val_roc_auc`, as tabular.yaml's own comment advises for an imbalanced table, was refused:
    the file set `mode: min` for its val_loss."""
    assert load(spaces / "tabular.yaml", (f"search.metric={metric}",)).search.mode == (mode,)


@pytest.mark.parametrize("scheduler", ["asha", "median"])
def test_early_stopping_that_judges_trials_only_at_their_last_epoch_is_a_warning(spaces, scheduler):
    """A quick `--set train.epochs=1` of a space with asha or median is allowed, but they then stop nothing: said,
    at the scheduler's line; one epoch more and nothing is said."""
    at_last = load(spaces / "digits.yaml", ("train.epochs=1", f"search.scheduler={{{scheduler}: {{}}}}"))
    [warning] = [w for w in at_last.warnings if w.path.startswith("search.")]
    assert (warning.path, warning.file, warning.line) == (f"search.scheduler.{scheduler}.grace_period", "<--set>", 2)
    assert warning.message == f"{scheduler} judges a trial first at epoch 1, its last: it stops no trial, and every " \
        "trial runs all its epochs"
    assert warning.fix == "raise train.epochs above 1 for early stopping, or use scheduler: fifo to say that none is " \
        "wanted"
    later = load(spaces / "digits.yaml", ("train.epochs=2", f"search.scheduler={{{scheduler}: {{}}}}"))
    assert not [w for w in later.warnings if w.path.startswith("search.")]


@pytest.mark.parametrize("overrides", [("name=",), ("name=${recipe}",)])
def test_a_null_or_interpolated_name_is_used_everywhere(spaces, overrides):
    """Item 9: `name:` null is the file's name, in the run's folder (space.name) and the export's alike."""
    space = load(spaces / "digits.yaml", overrides)
    expected = "digits" if overrides == ("name=",) else "image_classification"
    assert space.name == expected and space.export.dir == f"models/{expected}"
    assert space.config(space.defaults()[0]) is not None


def test_schema_checks_run_over_each_trials_config():
    """Item 15: the helpers a recipe's SCHEMA declares its rules across keys with."""
    fractions = held_out("val_fraction", "test_fraction", only=("digits",))
    assert [p.path for p in fractions({"data": {"dataset": "digits", "val_fraction": 0.5, "test_fraction": 0.5}})] \
        == ["data.val_fraction"]
    assert fractions({"data": {"dataset": "mnist", "val_fraction": 0.5, "test_fraction": 0.5}}) == []
    assert fractions({"data": {"dataset": "digits", "val_fraction": 0.5, "test_fraction": 0.4}}) == []
    needs = needed_with("data.dataset", "csv", "data.path")
    assert [p.path for p in needs({"data": {"dataset": "csv", "path": None}})] == ["data.path"]
    assert needs({"data": {"dataset": "iris", "path": None}}) == []


def test_a_failing_check_of_a_users_recipe_is_a_problem():
    def broken(config):
        raise KeyError("nope")

    schema = Schema(train=Section(epochs=Field(int, default=2)), checks=(broken,))
    with pytest.raises(SpaceError) as caught:
        load_space("train: {epochs: 3}\n", schema_for=lambda name, base: schema)
    assert_one(caught.value.problems, "<string>", 1, "recipe", ("a check of the recipe's SCHEMA failed: KeyError",))


@pytest.mark.parametrize("overrides, words", [
    (("custom=b.txt",), "is not a .py file"),
    (("train.epochs=${env:AUTOTUNE_GAPS_UNSET,abc}",), "gives 'abc'"),
    (("name=a/b",), "one folder name"),
    (("train..epochs=3",), "empty key segment"),
    (("data.val_fraction=0.9", "data.test_fraction=0.9"), "leaves no training samples"),
])
def test_check_exits_2_without_a_traceback(spaces, monkeypatch, capsys, overrides, words):
    monkeypatch.delenv("AUTOTUNE_GAPS_UNSET", raising=False)
    argv = ["check", str(spaces / "digits.yaml")]
    for override in overrides:
        argv += ["--set", override]
    assert autotune.cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert words in err and f"{SET}:1:" in err
    assert "Traceback" not in out + err


def test_a_one_line_yaml_mapping_is_a_space_and_any_other_line_a_path(tmp_path):
    """`fit` and `load_space` take a path or YAML text: YAML of several lines, or a `{...}` mapping on one line."""
    space = load_space("{name: inline, data: {dataset: digits}, search: {trials: 2}}")
    assert space.name == "inline" and space.search.trials == 2
    with pytest.raises(UserError, match="search space file 'name: inline' does not exist"):
        load_space("name: inline")


def test_one_override_given_as_a_string_is_one_override():
    """`autotune.load_space(space, overrides="search.trials=2")` (and `fit`'s) took the string's characters as 15
    overrides, each a problem."""
    from autotune.api import load_space as api_load_space

    text = "{name: inline, data: {dataset: digits}, search: {trials: 4}}"
    assert api_load_space(text, overrides="search.trials=2").search.trials == 2
    assert api_load_space(text, overrides=["search.trials=3"]).search.trials == 3


def test_nesterov_without_momentum_is_refused_before_a_trial(spaces):
    """Every trial of such a search failed building its optimizer; both recipes refuse it, also as one option of a
    searched momentum."""
    found = problems(spaces / "digits.yaml", ("optimizer.name=sgd", "optimizer.momentum={choice: [0.0, 0.9]}"))
    assert [p.path for p in found] == ["optimizer.nesterov"], found
    assert "Nesterov momentum needs optimizer.momentum > 0, but it is 0" in str(found[0])
    with pytest.raises(SpaceError, match="optimizer.nesterov: Nesterov momentum needs"):
        autotune.api.load_space("name: t\nrecipe: tabular\noptimizer: {name: sgd, lr: 0.1, momentum: 0.0, nesterov: true}\n")



@pytest.mark.parametrize("recipe", ["image_classification", "tabular"])
def test_a_warm_up_as_long_as_the_training_is_warned_of(recipe):
    """A linear warm-up of train.epochs or more trained no batch at optimizer.lr (the rate searched, or the one
    `autotune lr-find` suggests), and nothing said so; onecycle's rise is capped, so it is not warned of."""
    def warnings(optimizer: str) -> list[str]:
        text = f"name: t\nrecipe: {recipe}\noptimizer: {optimizer}\ntrain: {{epochs: 4}}\n"
        return [f"{p.path}: {p.message}" for p in autotune.api.load_space(text).warnings]

    assert warnings("{warmup_epochs: {choice: [1, 4]}}") == [
        "optimizer.warmup_epochs: is 4 and train.epochs 4: the warm-up lasts the whole training, so the learning "
        "rate stays below optimizer.lr to the last batch or never reaches it (when optimizer.warmup_epochs=4)"]
    assert warnings("{warmup_epochs: 3.5, schedule: none}") == []
    assert warnings("{warmup_epochs: 6, schedule: onecycle}") == []


def test_a_problem_of_an_option_of_a_choice_of_sections_is_at_the_option_s_line():
    """A recipe's check or warning of a key inside a choice of sections was reported at the choice's line
    (`optimizer:`, the key `optimizer.nesterov` written nowhere as such); it is at the key in the option the
    scenario takes."""
    text = ("name: t\nrecipe: image_classification\ntrain: {epochs: 4}\noptimizer:\n  choice:\n"
            "    - {name: adamw, lr: 0.001}\n"
            "    - {name: adamw, lr: 0.01,\n"
            "       warmup_epochs: {choice: [1, 4]}}\n"
            "    - name: sgd\n"
            "      lr: 0.1\n"
            "      momentum: 0.0\n"
            "      nesterov: true\n")
    with pytest.raises(SpaceError) as refused:
        autotune.api.load_space(text)
    assert [(p.path, p.line) for p in refused.value.problems] == [("optimizer.nesterov", 12)]
    warned = autotune.api.load_space(text.replace("nesterov: true", "nesterov: false")).warnings
    assert [(p.path, p.line) for p in warned] == [("optimizer.warmup_epochs", 8)]


def test_a_table_in_memory_as_the_data_path_is_named_by_its_shape_and_told_to_be_written():
    """A notebook's dict space with `path: frame` printed the DataFrame's whole repr inside the error, over many
    lines, and no fix."""
    import pandas as pd

    frame = pd.DataFrame({"x": range(50), "y": [0, 1] * 25})
    with pytest.raises(SpaceError) as caught:
        load_space({"recipe": "tabular", "data": {"dataset": "csv", "path": frame, "target": "y"}},
                   schema_for=autotune.recipes.load_schema)
    [problem] = caught.value.problems
    assert str(problem) == ("<dict>: data.path: expected a string (got a pandas DataFrame of shape (50, 2)); a space "
                            "reads its data from a file: write the table first (frame.to_parquet('train.parquet')) "
                            "and give that file's path")
    assert "(got [1, 2])" in str(Problem("k", "expected a string", value=[1, 2], has_value=True))  # YAML's: repr
