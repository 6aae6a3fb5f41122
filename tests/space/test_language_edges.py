"""Edges of the search-space language a walk of it found: a mode against the recipe's direction, a range that a
key's `check` refuses, YAML 1.1 integers, a grid too large to build, an override of an `x-` anchor key, ASHA that
can stop nothing, distributions that cannot vary, options equal as numbers, the hints of small slips, and a --set of
the key that tells a choice's options apart."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from autotune.errors import Problem, SpaceError
from autotune.space import Space, load_space
from autotune.space.schema import Field, Schema, Section, positive

SET = "<--set>"
SCHEMA = Schema(
    model=Section(arch=Field(str, default="mlp", choices=("mlp", "cnn")), width=Field(int, default=8, low=1),
                  dropout=Field(float, default=0.0, low=0.0, high=0.9), tag=Field(str, default="a")),
    optimizer=Section(lr=Field(float, default=0.01, check=positive), momentum=Field(float, default=0.9)),
    train=Section(epochs=Field(int, default=4, low=1), batch_size=Field(int, default=32, low=1)),
    extra=Section(**{f"k{i}": Field(int, default=0) for i in range(12)}),
    search_time=Section(limit=Field(int, default=1)),
    budget="train.epochs", metrics={"val_accuracy": "max", "val_loss": "min"},
)


def load(text: str, overrides: tuple[str, ...] = ()) -> Space:
    """The space `text` (its first line is line 2) of recipe 'edges', whose schema is SCHEMA."""
    return load_space("recipe: edges\n" + text, overrides, schema_for=lambda name, base: SCHEMA)


def problems(text: str, overrides: tuple[str, ...] = ()) -> list[Problem]:
    with pytest.raises(SpaceError) as caught:
        load(text, overrides)
    return caught.value.problems


def only(found: list[Problem], path: str, line: int | None, *words: str) -> Problem:
    """The one problem of `found`, at `path` and `line`, whose text holds each of `words`."""
    assert len(found) == 1, found
    assert (found[0].path, found[0].line) == (path, line), found[0]
    for word in words:
        assert word in str(found[0]), found[0]
    return found[0]


# 1. a mode against the direction the recipe declares exports the worst model
@pytest.mark.parametrize("text, overrides, path, line, words", [
    ("search: {metric: val_loss, mode: max}\n", (), "search.mode", 2,
     ("val_loss is minimised by recipe 'edges' (it declares min), but search.mode is max",
      "use mode: min, or leave mode out (or null: --set search.mode=null): it follows the recipe")),
    ("", ("search.metric=val_loss", "search.mode=max"), "search.mode", 2, ("val_loss is minimised", "use mode: min")),
    ("search:\n  metric: [val_accuracy, val_loss]\n  mode: [max, max]\n", (), "search.mode[1]", 4,
     ("val_loss is minimised", "search.mode[1] is max", "use mode: [max, min]")),
    ("search: {metric: [val_loss, val_accuracy], mode: min}\n", (), "search.mode", 2,
     ("val_accuracy is maximised", "search.mode is min", "use mode: [min, max]")),
])
def test_a_mode_against_the_recipe_s_direction_is_refused(text, overrides, path, line, words):
    found = problems(text, overrides)
    only(found, path, line, *words)
    assert found[0].file == (SET if overrides else "<string>")


def test_a_mode_that_follows_the_recipe_or_is_left_out_loads():
    assert load("search: {metric: val_loss, mode: min}\n").search.mode == ("min",)
    assert load("search: {metric: [val_loss, val_accuracy]}\n").search.mode == ("min", "max")
    assert load("search: {metric: val_loss, mode: min}\n", ("search.metric=val_accuracy",
                                                            "search.mode=null")).search.mode == ("max",)
    assert load("search: {metric: val_loss, mode: null}\n").search.mode == ("min",)


# 2. a key's `check` applies to the ends of a range as to a constant
@pytest.mark.parametrize("dist", ["{uniform: [-0.1, 0.1]}", "{quniform: [0.0, 0.5, 0.1]}", "{uniform: [-1, -0.5]}"])
def test_a_range_whose_end_the_key_s_check_refuses_is_a_problem(dist):
    only(problems(f"optimizer:\n  lr: {dist}\n"), "optimizer.lr.uniform" if "quniform" not in dist
         else "optimizer.lr.quniform", 3, "must be > 0", "narrow the distribution")


def test_a_range_the_check_allows_loads():
    assert load("optimizer: {lr: {loguniform: [1.0e-4, 0.1]}}\n").params[0].name == "optimizer.lr"


# 3. integers as YAML 1.2 reads them
@pytest.mark.parametrize("written, value", [("010", 10), ("0o10", 8), ("0x10", 16), ("-3", -3), ("+3", 3),
                                            ("1e1", 10), ("12", 12)])
def test_integers_are_read_as_yaml_1_2_reads_them(written, value):
    assert load(f"extra: {{k0: {written}}}\n").config({})["extra"]["k0"] == value


@pytest.mark.parametrize("written", ["1:30", "1_000", "0b101"])
def test_yaml_1_1_integer_forms_are_text(written):
    only(problems(f"extra: {{k0: {written}}}\n"), "extra.k0", 2, "expected an integer", repr(written))


def test_a_value_of_another_type_for_a_key_of_choices_is_told_the_choices():
    """scikit-learn's class_weight={0: 1, 1: 10} for a key of the choices none and balanced was answered "expected a
    string" alone."""
    found = only(problems("model: {arch: {0: 1, 1: 10}}\n"), "model.arch", 2, "expected a string")
    assert found.fix == "use one of mlp, cnn"
    assert problems("model: {tag: [1]}\n")[0].fix == ""  # a key of any string: nothing to list


def test_a_base_60_time_budget_is_text_and_refused():
    only(problems("search: {time_budget: 1:30}\n"), "search.time_budget", 2, "must be a positive duration", "'1:30'")
    only(problems("search: {trial_timeout: 0}\n"), "search.trial_timeout", 2, "must be a positive duration", "0")


def test_yes_and_1e_4_keep_their_meaning():
    space = load("optimizer: {lr: 1e-4}\n")
    assert space.config({})["optimizer"]["lr"] == 1e-4
    assert any("true or false" in str(p) or "yes" in str(p) for p in problems("model: {tag: yes}\n"))


# 4. a grid too large to build is refused without building it
def test_a_grid_of_more_than_a_million_points_is_refused_without_building_it():
    grids = ", ".join(f"k{i}: {{grid: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]}}" for i in range(12))
    started = time.monotonic()
    found = problems(f"extra: {{{grids}}}\nsearch: {{sampler: grid}}\n")
    assert time.monotonic() - started < 10  # 10^12 points built would exhaust memory long before
    only(found, "search.sampler", 3, "1,000,000,000,000 points", "more than the 1,000,000",
         "use sampler: random (or tpe), with choice instead of grid")


def test_a_grid_of_a_million_points_loads():
    grids = ", ".join(f"k{i}: {{grid: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]}}" for i in range(6))
    assert load(f"extra: {{{grids}}}\nsearch: {{sampler: grid}}\n").grid_size() == 1_000_000


# 5. an override of an `x-` key would change nothing
ANCHORED = """\
x-base: &base {lr: {loguniform: [1.0e-3, 1.0e-1]}, momentum: 0.5}
optimizer: *base
"""


def test_an_override_of_an_anchor_key_is_refused_and_names_the_keys_that_use_it():
    found = problems(ANCHORED, ("x-base.lr=0.2",))
    problem = only(found, "x-base.lr", 1, "anchors", "expanded", "when the file is read",
                   "set the keys that use it instead: --set optimizer.lr=0.2")
    assert problem.file == SET


def test_an_override_of_an_anchor_key_used_under_a_choice_names_the_choice_s_key():
    text = "x-base: &base {lr: 0.1, momentum: 0.5}\noptimizer: {choice: [{<<: *base}, {lr: 0.2}]}\n"
    only(problems(text, ("x-base=5",)), "x-base", 1, "set the keys that use it instead: --set optimizer=5")


# 6. distributions that can take one value only
FIXED = """\
model:
  width: {choice: [16]}
  dropout: {uniform: [0.2, 0.2]}
train: {epochs: {int: [2, 2]}}
"""


def test_a_distribution_that_cannot_vary_is_a_warning_at_its_line():
    space = load(FIXED)
    shown = [(p.path, p.line, p.message, p.fix) for p in space.one_value()]
    assert shown == [
        ("model.width", 3, "can take one value only", "write the value as a constant, e.g. width: 16"),
        ("model.dropout", 4, "can take one value only", "write the value as a constant, e.g. dropout: 0.2"),
        ("train.epochs", 5, "can take one value only", "write the value as a constant, e.g. epochs: 2"),
    ]
    assert "searches no parameter" in (space.same_trials() or "")


def test_a_space_with_one_parameter_that_varies_searches_it():
    space = load(FIXED + "optimizer: {lr: {loguniform: [1.0e-4, 0.1]}}\n")
    assert space.same_trials() is None and len(space.one_value()) == 3
    assert load("model: {width: {choice: [16, 32]}}\n").one_value() == []


def test_check_prints_the_warnings(tmp_path, capsys):
    from autotune.cli import main

    recipe = Path(__file__).parent / "tiny_recipe.py"
    path = tmp_path / "fixed.yaml"
    path.write_text(f"recipe: {recipe}\ndata: {{dataset: digits}}\nmodel: {{width: {{choice: [16]}}}}\n")
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"warning: {path}:3: model.width: can take one value only; write the value as a constant" in out
    assert "searches no parameter" in out


# 7. options equal as numbers are one option
@pytest.mark.parametrize("key, options, index", [("model.dropout", "[0, 0.0]", 1),
                                                 ("train.batch_size", "[1, 2, 1.0]", 2),
                                                 ("model.dropout", "[0.5, 0, 0.50]", 2)])
def test_options_equal_as_numbers_are_duplicates(key, options, index):
    section, name = key.split(".")
    only(problems(f"{section}: {{{name}: {{choice: {options}}}}}\n"), f"{key}.choice[{index}]", 2,
         "duplicate option: equal to option")


def test_true_and_1_are_different_options():
    space = load_space("recipe: edges\nmodel: {tag: {choice: [true, 1]}}\n",
                       schema_for=lambda name, base: Schema(model=Section(tag=Field((bool, int), default=1))))
    assert space.params[0].dist.options == (True, 1)


# 8. the hints of small slips
@pytest.mark.parametrize("overrides, path", [(("name=yes",), "name"), (("recipe=on",), "recipe")])
def test_a_boolean_name_gets_the_yaml_boolean_hint(overrides, path):
    with pytest.raises(SpaceError) as caught:
        load_space("recipe: edges\n", overrides, schema_for=lambda name, base: SCHEMA)
    only(caught.value.problems, path, 1, "must be a non-empty string", "YAML reads off, no, yes and on as booleans")


@pytest.mark.parametrize("text, path, line", [
    ("model:\n  arch:mlp\n  width: 8\n", "", 4),  # a syntax error on the next line
    ("model:\n  arch:mlp\n", "model", 2),  # the section read as the text 'arch:mlp'
])
def test_a_key_without_a_space_after_its_colon_gets_a_hint(text, path, line):
    only(problems(text), path, line, "add a space after the colon: `arch: mlp`")


@pytest.mark.parametrize("text, path", [
    ('model: {width: {choice: [16, 32], default: "32"}}\n', "model.width.default"),
    ('model: {dropout: {uniform: [0.1, 0.5], default: "0.2"}}\n', "model.dropout.default"),
])
def test_a_quoted_number_as_a_default_is_said_to_be_text(text, path):
    found = only(problems(text), path, 2, "is text: write")
    assert "without quotes" in found.fix and "did you mean" not in found.fix


# 9. `--set model.arch=mlp` keeps the option of that arch, as `--set optimizer.name=adamw` keeps the named one (it
# set arch in every option, making both options mlp)
NESTED = "model:\n  choice:\n    - {arch: cnn, width: {choice: [4, 8]}}\n    - {arch: mlp, width: 16}\n"


def test_a_set_of_the_key_that_tells_options_apart_keeps_that_option():
    space = load(NESTED, ("model.arch=mlp",))
    assert not space.params and space.config({})["model"]["arch"] == "mlp"
    assert space.config({})["model"]["width"] == 16
    kept = load(NESTED, ("model.arch=cnn",))
    assert [param.name for param in kept.params] == ["model.width"]
    only(problems(NESTED, ("model.arch=resnet",)), "model", 1, "model.arch=ARCH keeps the option of that arch",
         "has no option 'resnet'; its options: cnn, mlp")
    both = load(NESTED, ("model.width=32",))  # a key the options share without telling them apart: set in each
    assert [param.name for param in both.params] == ["model"]



def test_a_set_through_choice_and_a_position_says_how_to_reach_that_option():
    """`--set model.choice.0.width=8`, the file's own path to an option, wrote a key `choice` into every option:
    two problems, `model 'cnn' takes no argument 'choice'`, that did not say how to set it. It is one problem that
    does; `model.choice=[...]` replaces the options."""
    found = problems(NESTED, ("model.choice.0.width={choice: [8, 16]}",))
    only(found, "model", 1, "a --set reaches into the options of a choice by their own keys",
         "keep that option with --set model.arch=cnn, then --set model.width=...")
    replaced = load(NESTED, ("model.choice=[{arch: cnn, width: 4}, {arch: mlp, width: 16}]",))
    assert [param.name for param in replaced.params] == ["model"]
    assert replaced.config({"model": "0"})["model"]["width"] == 4


def test_a_hash_inside_an_override_value_is_text_not_a_comment():
    """`--set 'export.dir=models #2/int'` exported into ./models: YAML took ` #2/int` for a comment. A --set value
    holds no comment; a quoted value and a value without ` #` read as YAML, as before."""
    space = load_space(Path(__file__).parents[2] / "search_spaces" / "digits.yaml",
                       ["export.dir=models #2/int", "name='a #b'", "train.epochs=3"])
    assert space.export.dir == "models #2/int" and space.name == "a #b"
    assert space.config(space.defaults()[0])["train"]["epochs"] == 3
