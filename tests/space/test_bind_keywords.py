"""`check` binds the keys an open section does not list to the function they feed (`Section(keywords_of=...)`):
the dataset function, the model factory, a timm model's class. A typo is a problem with its line and the
closest name, found without importing torch for autotune's own functions."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import autotune.recipes
from autotune.cli import main
from autotune.errors import SpaceError
from autotune.space import load_space
from autotune.space.schema import Field, Section
from autotune.vision import models

DIGITS = str(Path(__file__).resolve().parents[2] / "search_spaces" / "digits.yaml")  # from any working folder

# `autotune check digits.yaml --set model.widht=32` in a fresh interpreter: its exit status, what it printed and
# whether torch got imported
_PROBE = """\
import contextlib, io, json, sys
from autotune.cli import main
err = io.StringIO()
with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
    status = main(["check", sys.argv[1], "--set", "model.widht=32"])
print(json.dumps({"status": status, "stderr": err.getvalue(), "torch": "torch" in sys.modules}))
"""


def test_a_typo_in_an_open_section_is_exit_2_with_its_line_and_the_closest_name():
    result = subprocess.run([sys.executable, "-c", _PROBE, DIGITS], capture_output=True, text=True, timeout=120)
    found = json.loads(result.stdout)
    assert found["status"] == 2 and found["torch"] is False
    assert ("<--set>:1: model.widht: models 'simple_cnn' and 'mlp' take no argument 'widht'; did you mean 'width'?"
            in found["stderr"])


def _problems(tmp_path, text: str) -> list[str]:
    space = tmp_path / "space.yaml"
    space.write_text(textwrap.dedent(text))
    with pytest.raises(SpaceError) as caught:
        load_space(space, schema_for=autotune.recipes.load_schema)
    return [f"{p.line}: {p.path}: {p.message}; {p.fix}" for p in caught.value.problems]


def test_the_dataset_function_and_the_model_factory_are_bound_in_a_file(tmp_path):
    problems = _problems(tmp_path, """\
        name: typo
        recipe: image_classification
        data: {dataset: image_folder, root: ., image_sise: 32}
        model:
          arch: simple_cnn
          widht: 16
        """)
    assert problems == [
        "3: data.image_sise: dataset 'image_folder' takes no argument 'image_sise'; did you mean 'image_size'?",
        "6: model.widht: model 'simple_cnn' takes no argument 'widht'; did you mean 'width'?",
    ]


def test_a_constant_of_another_type_than_the_argument_s_default_is_a_problem(tmp_path):
    """`image_size: abc` passed `check` and failed in the dataset function (a TypeError, after the search started)."""
    problems = _problems(tmp_path, """\
        name: typed
        recipe: image_classification
        data: {dataset: image_folder, root: ., image_size: abc, flip: 1, memory_limit_mb: 512, channels: 3}
        """)
    assert problems == [
        "3: data.flip: dataset 'image_folder' takes true or false for 'flip' (its default: true); give true or false",
        "3: data.image_size: dataset 'image_folder' takes a whole number for 'image_size' (its default: 32); give "
        "a whole number",
    ]
    space = tmp_path / "ok.yaml"  # distributions and numbers where numbers go: as before
    space.write_text("name: ok\nrecipe: image_classification\ndata: {dataset: image_folder, root: ., image_size: "
                     "{choice: [16, 32]}, memory_limit_mb: 512}\nmodel: {arch: simple_cnn, width: {int: [8, 32]}}\n")
    load_space(space, schema_for=autotune.recipes.load_schema)


def test_a_distribution_drawing_another_type_than_the_argument_s_default_is_a_problem(tmp_path):
    """`image_size: {uniform: [16, 64]}` passed `check`: each trial's image size was a fraction. A choice's options
    are checked one by one; int draws whole numbers, which a number argument takes too."""
    problems = _problems(tmp_path, """\
        name: typed
        recipe: image_classification
        data: {dataset: image_folder, root: ., image_size: {uniform: [16, 64]}, flip: {choice: [true, 0]}}
        optimizer: {name: sgd, lr: 0.1}
        """)
    assert problems == [
        "3: data.flip: dataset 'image_folder' takes true or false for 'flip' (its default: true), but choice option 1 "
        "is 0; give true or false",
        "3: data.image_size: dataset 'image_folder' takes a whole number for 'image_size' (its default: 32), but "
        "uniform draws fractions; use {int: [low, high]}",
    ]
    space = tmp_path / "ok.yaml"
    space.write_text("name: ok\nrecipe: image_classification\ndata: {dataset: image_folder, root: ., image_size: "
                     "{int: [16, 64]}, memory_limit_mb: {choice: [256, 512.5]}, flip: {choice: [true, false]}}\n")
    load_space(space, schema_for=autotune.recipes.load_schema)


def test_each_name_a_choice_may_take_is_bound_and_a_section_choice_binds_per_option(tmp_path):
    problems = _problems(tmp_path, """\
        name: typo
        recipe: image_classification
        data: {dataset: digits}
        model: {arch: {choice: [simple_cnn, mlp]}, dropout: 0.1, colour: red, in_chans: 1}
        """)
    assert problems == ["4: model.colour: models 'simple_cnn' and 'mlp' take no argument 'colour'; "
                        "its arguments: width, depth, dropout",
                        "4: model.in_chans: is set by the recipe itself; remove 'in_chans'"]
    space = tmp_path / "options.yaml"
    space.write_text(textwrap.dedent("""\
        name: options
        recipe: image_classification
        data: {dataset: fake, samples: 64, image_size: 8}
        model:
          choice:
            - {arch: simple_cnn, width: 8}
            - {arch: mlp, width: 16, depth: 1}
        """))
    assert len(load_space(space, schema_for=autotune.recipes.load_schema).params) == 1


@pytest.fixture
def timm_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    models._timm_keywords.cache_clear()
    yield
    models._timm_keywords.cache_clear()


# digits.yaml searches simple_cnn's width and depth, which a timm model does not take (null: unset)
UNSIZED = ("--set", "model.width=null", "--set", "model.depth=null")


def test_a_timm_model_is_bound_to_its_class(tmp_path, timm_cache, capsys):
    assert main(["check", DIGITS, *UNSIZED, "--set", "model.arch=resnet18", "--set", "model.drop_path_rate=0.1"]) == 0
    capsys.readouterr()
    assert main(["check", DIGITS, *UNSIZED, "--set", "model.arch=resnet18", "--set", "model.drop_path_rat=0.1"]) == 2
    assert ("model.drop_path_rat: model 'resnet18' takes no argument 'drop_path_rat'; did you mean 'drop_path_rate'?"
            in capsys.readouterr().err)
    cached = list((tmp_path / "cache" / "autotune").glob("timm-*-keywords-resnet18.json"))
    assert len(cached) == 1 and "drop_path_rate" in json.loads(cached[0].read_text())["keywords"]
    assert main(["check", DIGITS, *UNSIZED, "--set", "model.arch={choice: [simple_cnn, resnet18]}",
                 "--set", "model.drop_path_rate=0.1"]) == 2
    assert ("model 'simple_cnn' takes no argument 'drop_path_rate'; only 'resnet18' takes it: give it in a choice of "
            "model sections, with the arch it applies to") in capsys.readouterr().err


def test_a_function_taking_any_keyword_is_not_bound(tmp_path):
    (tmp_path / "mine.py").write_text(textwrap.dedent("""\
        import autotune

        @autotune.register("dataset")
        def loose(root, **options):
            raise NotImplementedError
        """))
    space = tmp_path / "space.yaml"
    space.write_text("name: loose\nrecipe: image_classification\ncustom: mine.py\n"
                     "data: {dataset: loose, anything: 1}\n")
    assert load_space(space, schema_for=autotune.recipes.load_schema).config({})["data"]["anything"] == 1


def test_an_argument_without_a_default_that_the_space_does_not_give_is_a_problem_at_the_name(tmp_path):
    """`check` passed a model whose factory needs `channels`, and `run` then failed on it: the arguments the recipe
    passes (in_chans, num_classes, input_size; an optimizer's params, lr, weight_decay) and the section's keys count
    as given, each name of a choice is checked."""
    (tmp_path / "mine.py").write_text(textwrap.dedent("""\
        import autotune

        @autotune.register("model")
        def needy(in_chans, num_classes, input_size, channels, dropout=0.0):
            raise NotImplementedError

        @autotune.register("optimizer")
        def plain(weights, lr, weight_decay, *, beta):
            raise NotImplementedError
        """))
    problems = _problems(tmp_path, """\
        name: needs
        recipe: image_classification
        custom: mine.py
        model: {arch: {choice: [mlp, needy]}}
        optimizer: {name: plain}
        """)
    assert problems == [
        "4: model.arch: model 'needy' needs the argument 'channels', which the space does not give (no default); "
        "add `channels: ...` to the model section, or give it a default in 'needy'",
        "5: optimizer.name: optimizer 'plain' needs the argument 'beta', which the space does not give (no default); "
        "add `beta: ...` to the optimizer section, or give it a default in 'plain'",
    ]
    (tmp_path / "space.yaml").write_text("name: needs\nrecipe: image_classification\ncustom: mine.py\n"
                                         "model: {arch: needy, channels: {int: [4, 8]}}\n"
                                         "optimizer: {name: plain, beta: 0.5}\n")
    assert load_space(tmp_path / "space.yaml", schema_for=autotune.recipes.load_schema).params[0].name == \
        "model.channels"


def test_keywords_of_names_a_registry_field():
    with pytest.raises(ValueError, match="keywords_of='size'"):
        Section(keywords_of="size", size=Field(int, default=1))
    with pytest.raises(ValueError, match=r"fields \['width'\] are keyword=True: give the section keywords_of"):
        Section(width=Field(int, default=None, nullable=True, keyword=True))


def test_drop_rate_given_to_a_timm_model_is_a_problem_naming_model_dropout(tmp_path, timm_cache):
    """`--set model.drop_rate=0.2` passed `check`, then `run` failed blaming the weights file: the recipe passes
    model.dropout to timm as drop_rate itself."""
    problems = _problems(tmp_path, """\
        name: drop
        recipe: image_classification
        model: {arch: resnet18, drop_rate: 0.2}
        """)
    assert problems == ["3: model.drop_rate: is set by the recipe itself; use model.dropout (passed to timm as "
                        "drop_rate)"]


# `keyword=True` fields (width and depth, momentum and nesterov): schema fields that only some of the functions the
# section names take; given, they are bound like the keys the schema does not list, left out they are not
def test_width_and_depth_given_to_a_timm_model_are_problems_at_their_lines(tmp_path, timm_cache):
    problems = _problems(tmp_path, """\
        name: sized
        recipe: image_classification
        data: {dataset: digits}
        model:
          arch: resnet18
          width: 64
          depth: 2
        """)
    refused = "model 'resnet18' takes no argument '{0}' (mlp and simple_cnn only); remove it, or search models with " \
              "the conditional form, e.g. model: {{choice: [{{arch: mlp, {0}: ...}}, {{arch: resnet18}}]}}"
    assert problems == ["6: model.width: " + refused.format("width"), "7: model.depth: " + refused.format("depth")]


def test_width_searched_beside_a_timm_option_of_the_arch_is_a_problem_naming_the_option(tmp_path, timm_cache):
    problems = _problems(tmp_path, """\
        name: sized
        recipe: image_classification
        data: {dataset: digits}
        model:
          arch: {choice: [simple_cnn, resnet18]}
          width: {choice: [16, 32]}
        """)
    assert problems == [
        "6: model.width: model 'resnet18' takes no argument 'width'; only 'simple_cnn' takes it: give it in a choice "
        "of model sections, with the arch it applies to, e.g. model: {choice: [{arch: simple_cnn, width: ...}, "
        "{arch: resnet18}]}"]


def test_a_timm_model_left_at_the_default_width_or_given_it_in_the_conditional_form_is_valid(tmp_path, timm_cache):
    for text in ("model: {arch: resnet18}",  # width and depth default to None: unset, not bound
                 "model: {arch: resnet18, width: null, depth: null}",
                 "model: {choice: [{arch: simple_cnn, width: {choice: [16, 32]}}, {arch: resnet18}]}"):
        space = tmp_path / "ok.yaml"
        space.write_text(f"name: ok\nrecipe: image_classification\ndata: {{dataset: digits}}\n{text}\n")
        load_space(space, schema_for=autotune.recipes.load_schema)


def test_a_key_the_named_optimizer_ignores_is_a_problem_at_its_line(tmp_path):
    problems = _problems(tmp_path, """\
        name: ignored
        recipe: image_classification
        data: {dataset: digits}
        optimizer:
          name: adamw
          lr: 1.0e-3
          momentum: {uniform: [0.5, 0.99]}
          nesterov: {choice: [true, false]}
        """)
    conditional = "remove it, or search optimizers with the conditional form, e.g. optimizer: {choice: [{name: sgd, " \
                  "%s: ...}, {name: adamw}]}"
    assert problems == [
        "7: optimizer.momentum: optimizer 'adamw' takes no argument 'momentum' (sgd only); " + conditional % "momentum",
        "8: optimizer.nesterov: optimizer 'adamw' takes no argument 'nesterov' (sgd only); " + conditional % "nesterov",
    ]


def test_a_key_shared_by_a_choice_of_optimizers_is_a_problem_naming_those_that_ignore_it(tmp_path):
    problems = _problems(tmp_path, """\
        name: shared
        recipe: image_classification
        data: {dataset: digits}
        optimizer:
          name: {choice: [sgd, adam, adamw]}
          momentum: 0.8
        """)
    assert problems == [
        "6: optimizer.momentum: optimizers 'adam' and 'adamw' take no argument 'momentum'; only 'sgd' takes it: give "
        "it in a choice of optimizer sections, with the name it applies to, e.g. optimizer: {choice: [{name: sgd, "
        "momentum: ...}, {name: adam}, {name: adamw}]}"]
    problems = _problems(tmp_path, """\
        name: option
        recipe: image_classification
        data: {dataset: digits}
        optimizer:
          choice:
            - {name: sgd, momentum: 0.9}
            - {name: adamw, nesterov: true}
        """)
    assert problems == ["7: optimizer.choice[1].nesterov: optimizer 'adamw' takes no argument 'nesterov' (sgd only); "
                        "remove it, or search optimizers with the conditional form, e.g. optimizer: {choice: [{name: "
                        "sgd, nesterov: ...}, {name: adamw}]}"]


def test_optimizer_keys_given_to_the_optimizer_that_takes_them_are_valid(tmp_path):
    space = tmp_path / "ok.yaml"
    space.write_text(textwrap.dedent("""\
        name: ok
        recipe: image_classification
        data: {dataset: digits}
        optimizer:
          choice:
            - {name: sgd, momentum: {uniform: [0.5, 0.99]}, nesterov: {choice: [true, false]}}
            - {name: adamw, lr: 1.0e-3}
        """))
    loaded = load_space(space, schema_for=autotune.recipes.load_schema)
    assert [p.name for p in loaded.params] == ["optimizer", "optimizer[sgd].momentum", "optimizer[sgd].nesterov"]
    adamw = loaded.config({"optimizer": "adamw"})["optimizer"]
    assert adamw["momentum"] is None and adamw["nesterov"] is None  # unset: no optimizer gets them
    space.write_text("name: ok\nrecipe: image_classification\ndata: {dataset: digits}\n"
                     "optimizer: {name: sgd, momentum: 0.8, nesterov: true}\n")
    assert load_space(space, schema_for=autotune.recipes.load_schema).config({})["optimizer"]["momentum"] == 0.8


def test_check_exits_2_on_an_ignored_optimizer_key(tmp_path, capsys):
    space = tmp_path / "space.yaml"
    space.write_text("name: ignored\nrecipe: image_classification\ndata: {dataset: digits}\n"
                     "optimizer: {name: adamw, momentum: 0.9}\n")
    assert main(["check", str(space)]) == 2
    assert (f"{space}:4: optimizer.momentum: optimizer 'adamw' takes no argument 'momentum' (sgd only); remove it"
            in capsys.readouterr().err)
