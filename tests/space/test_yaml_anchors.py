"""YAML anchors and `<<` merges in a space (a written key overrides a merged one), `x-` keys that hold anchors, and the
hints for YAML slips: a tab in the indentation, `off` read as false, `[` in a key inside {...}."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import autotune.recipes
from autotune.errors import SpaceError
from autotune.space import Choice, LogUniform, Space, load_space

RECIPE = str(Path(__file__).parent / "tiny_recipe.py")


def schema_for(name: str, base: str | None):
    return autotune.recipes.load(name, base).SCHEMA


def space(text: str) -> Space:
    return load_space(f"recipe: {RECIPE}\ndata: {{dataset: digits}}\n" + text, schema_for=schema_for)


def problems(text: str) -> list[str]:
    """The problems of the space `text` (its first line is line 3), one line each."""
    with pytest.raises(SpaceError) as caught:
        space(text)
    return [str(problem) for problem in caught.value.problems]


def test_a_key_written_beside_a_merge_overrides_the_merged_one():
    result = space("""\
optimizer:
  choice:
    - &sgd {name: sgd, lr: {loguniform: [1.0e-3, 1.0e-1]}, weight_decay: 1.0e-4}
    - {<<: *sgd, name: adamw}
""")
    params = {param.name: param for param in result.params}
    choice = params["optimizer"].dist
    assert isinstance(choice, Choice) and choice.labels == ("sgd", "adamw")
    assert choice.options[1] == {"name": "adamw", "lr": {"loguniform": (1e-3, 0.1)}, "weight_decay": 1e-4}
    assert params["optimizer[adamw].lr"].dist == LogUniform(1e-3, 0.1)
    values = {"optimizer": "adamw", "optimizer[adamw].lr": 0.01}
    assert result.config(values)["optimizer"] == {"name": "adamw", "lr": 0.01, "weight_decay": 1e-4, "momentum": 0.9}


def test_a_key_written_twice_beside_a_merge_is_still_a_duplicate_at_its_line():
    found = problems("""\
optimizer:
  choice:
    - &sgd {name: sgd, lr: 0.1}
    - <<: *sgd
      name: adamw
      lr: 0.01
      name: sgd
""")
    assert found == ["<string>:9: optimizer.choice[1].name: duplicate key; keep only one of them"]


def test_two_anchors_merge_the_earlier_first_and_x_keys_hold_them():
    result = space("""\
x-fast: &fast {lr: 0.1, momentum: 0.5}
x-decay: &decay {lr: 0.2, weight_decay: 0.01}
optimizer: {<<: [*fast, *decay], momentum: 0.8}
""")
    values, _ = result.defaults()
    assert result.config(values)["optimizer"] == {"lr": 0.1, "momentum": 0.8, "weight_decay": 0.01, "name": "sgd"}
    assert "x-fast" not in result.template


def test_a_merged_value_is_located_where_it_is_written():
    found = problems("x-base: &base {lr: 20, momentum: 0.5}\noptimizer: {<<: *base, momentum: 0.8}\n")
    assert found == ["<string>:3: optimizer.lr: must be within [0.0, 10.0] (got 20.0)"]


def test_a_merge_of_a_merge_and_a_merge_of_itself():
    result = space("x-a: &a {lr: 0.1}\nx-b: &b {<<: *a, momentum: 0.5}\noptimizer: {<<: *b, weight_decay: 0.1}\n")
    values, _ = result.defaults()
    assert result.config(values)["optimizer"] == {"lr": 0.1, "momentum": 0.5, "weight_decay": 0.1, "name": "sgd"}
    assert space("x-loop: &loop {<<: *loop}\n").params == ()


@pytest.mark.parametrize("merge, line", [("{<<: 3}", 3), ("{<<: [*a, 3]}", 3), ("{<<: *a, <<: *a}", 3)])
def test_a_merge_of_something_else_is_a_problem(merge, line):
    found = problems(f"x-a: &a {{lr: 0.1}}\noptimizer: {merge}\n")
    assert len(found) == 1 and found[0].startswith(f"<string>:{line + 1}: optimizer.<<: ")


def test_a_tab_in_the_indentation_gets_a_hint():
    found = problems("train:\n\tepochs: 3\n")
    reason = "found character that cannot start any token" if hasattr(yaml, "CSafeLoader") else \
        "found character '\\t' that cannot start any token"  # libyaml's wording, else PyYAML's
    assert found == [f"<string>:4: <root>: YAML syntax error: {reason} (while scanning for the next token); "
                     "YAML indents with spaces, not tabs: replace the tab"]


def test_off_where_a_string_is_expected_gets_a_hint():
    found = problems("train:\n  label: off\n")
    assert found == ["<string>:4: train.label: expected a string (got False); YAML reads off, no, yes and on as "
                     "booleans: quote it, e.g. 'off'"]
    assert space("train:\n  label: 'off'\n").config({})["train"]["label"] == "off"


def test_a_boolean_where_a_number_is_expected_gets_no_hint():
    assert problems("train:\n  epochs: yes\n") == ["<string>:4: train.epochs: expected an integer (got True)"]


def test_a_bracket_in_a_key_inside_braces_gets_a_hint():
    found = problems("search: {start: [{optimizer[sgd].lr: 0.01}]}\n")
    assert len(found) == 1 and found[0].startswith("<string>:3: <root>: YAML syntax error: ")
    assert found[0].endswith("; inside {...}, quote a key or value that holds [ ], e.g. {'optimizer[sgd].lr': 0.01}")
