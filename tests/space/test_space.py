"""load_space on valid inputs: every distribution, conditionals, interpolation, env, overrides, numbers."""
from __future__ import annotations

import dataclasses
import json
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import autotune.recipes
from autotune import registry
from autotune.errors import SpaceError, UserError
from autotune.space import (
    Choice, Grid, Int, LogUniform, Pow2, QUniform, Space, Uniform, import_custom, load_space,
)

RECIPE = str(Path(__file__).parent / "tiny_recipe.py")


def schema_for(name: str, base: str | None):
    return autotune.recipes.load(name, base).SCHEMA


def space(text: str, overrides: tuple[str, ...] = ()) -> Space:
    return load_space(f"recipe: {RECIPE}\n" + text, overrides, schema_for=schema_for)


EVERY = """\
data: {dataset: digits, val_fraction: 1e-1}
model:
  dropout: {uniform: [0.0, 0.5]}
  width: {int: {low: 8, high: 64, step: 8}}
  arch: {choice: [mlp, cnn]}
optimizer:
  lr: {loguniform: {low: 1e-4, high: 3e-1}}
  momentum: {quniform: [0.5, 0.9, 0.1]}
train:
  epochs: 3e1
  batch_size: {int: [16, 256, 1, true]}
"""


def test_every_distribution_is_parsed():
    params = {p.name: p.dist for p in space(EVERY).params}
    assert params == {
        "model.dropout": Uniform(0.0, 0.5),
        "model.width": Int(8, 64, 8),
        "model.arch": Choice(("mlp", "cnn"), ("mlp", "cnn")),
        "optimizer.lr": LogUniform(1e-4, 0.3),
        "optimizer.momentum": QUniform(0.5, 0.9, 0.1),
        "train.batch_size": Int(16, 256, 1, log=True),
    }


def test_scientific_notation_and_defaults():
    result = space(EVERY)
    values, how = result.defaults()
    assert values["optimizer.lr"] == pytest.approx((1e-4 * 0.3) ** 0.5) and how["optimizer.lr"] == "geometric mean"
    assert values["model.width"] == 40 and values["train.batch_size"] == 64 and values["model.arch"] == "mlp"
    config = result.config(values)
    assert config["train"] == {"epochs": 30, "batch_size": 64, "label": "run", "note": ""}
    assert config["data"] == {"dataset": "digits", "val_fraction": 0.1, "root": "~/data"}
    assert isinstance(config["train"]["epochs"], int)
    assert result.grid_size() is None


def test_pow2_samples_the_powers_of_two_and_defaults_to_their_geometric_mean():
    result = space("data: {dataset: digits}\nmodel: {width: {pow2: [16, 256]}}\n"
                   "train: {batch_size: {pow2: {low: 32, high: 128}, default: 128}}\n")
    params = {p.name: p for p in result.params}
    assert params["model.width"].dist == Pow2(16, 256) and params["model.width"].dist.labels == (16, 32, 64, 128, 256)
    values, how = result.defaults()
    assert values == {"model.width": 64, "train.batch_size": 128}
    assert how["model.width"] == "geometric mean, a power of two" and type(values["model.width"]) is int
    assert result.config({"model.width": 32, "train.batch_size": 64})["model"]["width"] == 32
    assert space("data: {dataset: digits}\nmodel: {width: {pow2: [16, 128]}}\n").defaults()[0] == {"model.width": 32}


CONDITIONAL = """\
data: {dataset: digits}
optimizer:
  choice:
    - {name: sgd, lr: {loguniform: [1e-3, 0.3]}, momentum: {uniform: [0.8, 0.99]}}
    - name: adamw
      lr: {loguniform: [1e-4, 1e-2]}
      weight_decay: {loguniform: [1e-6, 1e-2]}
model:
  head:
    choice:
      - linear
      - {kind: mlp, hidden: {choice: [{name: small, units: {int: [8, 32]}}, {name: big, units: 256}]}}
"""


def test_conditional_names_and_conditions():
    params = {p.name: p for p in space(CONDITIONAL).params}
    assert list(params) == [
        "optimizer", "optimizer[sgd].lr", "optimizer[sgd].momentum", "optimizer[adamw].lr",
        "optimizer[adamw].weight_decay", "model.head", "model.head[1].hidden", "model.head[1].hidden[small].units",
    ]
    assert params["optimizer"].dist.labels == ("sgd", "adamw") and params["optimizer"].dist.conditional
    assert params["optimizer[adamw].weight_decay"].condition == (("optimizer", "adamw"),)
    assert params["model.head[1].hidden[small].units"].condition == (("model.head", "1"), ("model.head[1].hidden",
                                                                                          "small"))
    assert params["optimizer[adamw].weight_decay"].line == 8  # space() adds the recipe line on top


def test_config_carries_only_the_chosen_option():
    result = space(CONDITIONAL)
    values = {"optimizer": "adamw", "optimizer[adamw].lr": 1e-3, "optimizer[adamw].weight_decay": 1e-5,
              "optimizer[sgd].momentum": 0.9, "model.head": "0"}
    config = result.config(values)
    assert config["optimizer"] == {"name": "adamw", "lr": 1e-3, "weight_decay": 1e-5, "momentum": 0.9}  # default
    values["optimizer"] = "sgd"
    with pytest.raises(Exception, match="optimizer\\[sgd\\].lr"):
        result.config(values)
    config = result.config({**values, "optimizer[sgd].lr": 0.01})
    assert "weight_decay" not in {k for k, v in config["optimizer"].items() if v == 1e-5}
    assert config["optimizer"]["weight_decay"] == 0.0  # the schema default, not adamw's sample
    assert config["model"]["head"] == "linear"
    nested = result.config({**values, "optimizer[sgd].lr": 0.01, "model.head": "1", "model.head[1].hidden": "big"})
    assert nested["model"]["head"] == {"kind": "mlp", "hidden": {"name": "big", "units": 256}}


def test_defaults_follow_the_first_option():
    values, how = space(CONDITIONAL).defaults()
    assert values["optimizer"] == "sgd" and "optimizer[adamw].lr" not in values
    assert set(how) == set(values)


def test_interpolation_of_constants_and_sampled_values(monkeypatch):
    monkeypatch.setenv("AUTOTUNE_TEST_ROOT", "/data/x")
    monkeypatch.delenv("AUTOTUNE_TEST_EPOCHS", raising=False)
    result = space("""\
name: exp
data: {dataset: digits, root: "${env:AUTOTUNE_TEST_ROOT,/tmp}"}
model: {dropout: {uniform: [0.0, 0.5]}}
train: {epochs: "${env:AUTOTUNE_TEST_EPOCHS,7}", label: "${name}-${model.dropout}", batch_size: "${search.seed}"}
search: {seed: 5}
export: {dir: runs/${name}/model}
""")
    config = result.config({"model.dropout": 0.125})
    assert config["data"]["root"] == "/data/x"
    assert config["train"] == {"epochs": 7, "label": "exp-0.125", "note": "", "batch_size": 5}  # the seed's type
    assert result.export.dir == "runs/exp/model"
    assert space("data: {dataset: digits}\nname: n1\n").export.dir == "models/n1"


def test_overrides_set_values_and_distributions():
    result = space(EVERY, ("train.epochs=5", "model.dropout={uniform: [0, 0.2]}", "search.trials=8",
                           "optimizer.weight_decay=1e-4"))
    params = {p.name: p.dist for p in result.params}
    assert params["model.dropout"] == Uniform(0.0, 0.2)
    assert result.search.trials == 8
    config = result.config(result.defaults()[0])
    assert config["train"]["epochs"] == 5 and config["optimizer"]["weight_decay"] == 1e-4
    assert result.document["train"]["epochs"] == 5


def test_search_settings_and_fingerprint():
    text = EVERY + ("search: {metric: [val_accuracy, val_loss], trials: 9, time_budget: 1h30m, "
                    "resources: {cpu: 2, gpu: 0.5}, stop: {val_accuracy: 0.99, val_loss: 0.1}}\n")
    result = space(text)
    search = result.search
    assert search.metric == ("val_accuracy", "val_loss") and search.mode == ("max", "min")
    assert search.sampler == "nsga2" and search.scheduler == "fifo" and search.multi_objective
    assert search.time_budget == 5400 and search.resources.gpu == 0.5
    assert search.stop == {"val_accuracy": 0.99, "val_loss": 0.1}
    assert search.stop_modes == {"val_accuracy": "max", "val_loss": "min"}  # the search modes
    assert search.checkpoint_every == 5 and space(text, ("search.checkpoint_every=1",)).search.checkpoint_every == 1
    same = ("search.trials=50", "search.time_budget=10s", "search.checkpoint_every=2",  # how, not what, it searches
            "search.trial_timeout=10m", "search.epoch_budget=100", "search.max_concurrent=1")
    assert search.trial_timeout is None and space(text, same).search.trial_timeout == 600
    assert result.fingerprint() == space(text, same).fingerprint()
    assert result.fingerprint() != space(text, ("search.seed=1",)).fingerprint()
    assert result.fingerprint() != space(text, ("model.dropout=0.1",)).fingerprint()


def test_custom_resources_are_named_under_custom_and_a_misplaced_one_says_where_it_goes():
    """search.resources held cpu and gpu only: a trial could not ask for a Ray custom resource (a licence, a node
    with much memory), which Ray Tune takes as custom_resources."""
    search = space(EVERY + "search: {resources: {cpu: 2, custom: {big_memory: 1, licence: 0.5}}}\n").search
    assert (search.resources.cpu, search.resources.custom) == (2, {"big_memory": 1.0, "licence": 0.5})
    assert space(EVERY).search.resources.custom == {}
    # a run started before custom resources existed keeps its fingerprint (resume compares it); custom changes it
    assert json.loads(space(EVERY).definition())["search"]["resources"] == {"cpu": 1.0, "gpu": 0.0}
    assert space(EVERY).fingerprint() != space(EVERY + "search: {resources: {custom: {licence: 1}}}\n").fingerprint()
    wrong = {"{big_memory: 1}": "search.resources.big_memory: unknown key; a Ray custom resource goes under custom, "
                                "e.g. resources: {custom: {big_memory: 1}}",
             "{custom: {GPU: 1}}": "search.resources.custom.GPU: GPU is not a custom resource (got 1); use "
                                   "search.resources.gpu",
             "{custom: {licence: -1}}": "search.resources.custom.licence: must be >= 0.0 (got -1.0)",
             "{custom: 2}": "search.resources.custom: must be a mapping of Ray custom resource names to amounts "
                            "(got 2); e.g. custom: {big_memory: 1}",
             "{num_gpus: 1}": "search.resources.num_gpus: unknown key; use gpu"}
    for resources, message in wrong.items():
        with pytest.raises(SpaceError) as err:
            space(EVERY + f"search: {{resources: {resources}}}\n")
        assert message in str(err.value), str(err.value)


@pytest.mark.parametrize("change", ["search.metric=val_loss", "search.sampler=random", "search.scheduler=fifo",
                                    "search.stop={val_accuracy: 0.9}", "train.epochs=20", "data.val_fraction=0.2",
                                    "search.sampler={tpe: {n_startup_trials: 3}}"])
def test_what_a_search_looks_for_and_how_it_proposes_changes_its_fingerprint(change):
    """A resume is refused when the fingerprint differs: another objective, sampler, scheduler, stop target or
    ingredient is another search, which a resumed study would mix with the first's trials."""
    text = EVERY + "search: {metric: val_accuracy, trials: 9}\n"
    assert space(text).fingerprint() != space(text, (change,)).fingerprint()


def test_a_stop_target_on_another_metric_says_its_direction():
    search = space("data: {dataset: digits}\nsearch: {metric: val_accuracy, stop: {val_loss: {min: 0.05}, "
                   "train_loss: {max: 2}, val_accuracy: {max: 0.9}}}\n").search
    assert search.stop == {"val_loss": 0.05, "train_loss": 2.0, "val_accuracy": 0.9}
    assert search.stop_modes == {"val_loss": "min", "train_loss": "max", "val_accuracy": "max"}
    assert space("data: {dataset: digits}\n").search.stop is None



def test_a_bare_stop_target_on_another_metric_is_reached_in_the_direction_its_recipe_declares(tmp_path):
    """`stop: {val_loss: 0.05}` beside `metric: val_accuracy` was refused as of an unknown direction, though the
    recipe declares val_loss minimised; a recipe that declares no direction still needs it given."""
    search = autotune.load_space("name: t\nrecipe: image_classification\ndata: {dataset: digits}\n"
                                 "search: {metric: val_accuracy, stop: {val_loss: 0.05}}\n").search
    assert (search.stop, search.stop_modes) == ({"val_loss": 0.05}, {"val_loss": "min"})
    toy = Path(__file__).parents[1] / "engine" / "toy_recipe.py"
    with pytest.raises(SpaceError, match="its recipe declares no direction for it, so whether the search stops above "
                                         r"or below the target is unknown \(got 0.5\); say which: \{score: \{min: 0.5\}\}"):
        autotune.load_space(f"name: t\nrecipe: {toy}\nmodel: {{x: {{uniform: [0, 1]}}}}\n"
                            "search: {metric: loss, mode: min, stop: {score: 0.5}}\n")

def test_one_override_given_as_a_string_is_one_override():
    """autotune.space.load_space (docs/search-space.md, "From Python") read "train.epochs=3" as 14 overrides, one per
    character, each a problem (`<--set>:1: t: an override is KEY=VALUE`); autotune.load_space took it whole."""
    text = "data: {dataset: digits}\ntrain: {epochs: 5}\n"
    assert space(text, "train.epochs=3").document["train"]["epochs"] == 3
    assert space(text, "train.epochs=3") == space(text, ("train.epochs=3",))


def test_an_override_inside_a_choice_sets_every_option():
    result = space(CONDITIONAL, ("optimizer.lr=0.05", "optimizer.momentum=0.5"))
    names = [p.name for p in result.params]
    assert names[:2] == ["optimizer", "optimizer[adamw].weight_decay"]  # lr and momentum are constants now
    for label in ("sgd", "adamw"):
        values = {"optimizer": label, "optimizer[adamw].weight_decay": 1e-4, "model.head": "0"}
        assert result.config(values)["optimizer"]["lr"] == 0.05
        assert result.config(values)["optimizer"]["momentum"] == 0.5
    assert result.document["optimizer"]["choice"][1]["lr"] == 0.05


def test_an_override_through_a_key_some_options_hold_reaches_only_those_options():
    """`--set model.head.name=big` under a choice of models of which one has a `head` choice: the override also made
    `head: {name: big}` in the models without one, a head they never had (a factory that takes no `head` refused
    it). It keeps the option `big` of the model that has the choice, and leaves the others as they were; a key of
    the options themselves (`model.dropout`) still reaches every one."""
    text = ("data: {dataset: digits}\nmodel:\n  choice:\n    - {arch: cnn, width: {int: [8, 32]}}\n"
            "    - {arch: mlp, head: {choice: [{name: small, units: 8}, {name: big, units: 256}]}}\n")
    result = space(text, ("model.head.name=big", "model.dropout=0.1"))
    cnn, mlp = result.document["model"]["choice"]
    assert "head" not in cnn and mlp["head"] == {"name": "big", "units": 256}
    assert cnn["dropout"] == mlp["dropout"] == 0.1
    assert [p.name for p in result.params] == ["model", "model[0].width"]


def test_a_name_override_keeps_the_option_of_that_name():
    result = space(CONDITIONAL, ("optimizer.name=adamw", "optimizer.lr=3e-3"))
    names = [p.name for p in result.params]
    assert names[:1] == ["optimizer.weight_decay"] and "optimizer" not in names
    assert result.config({**result.defaults()[0]})["optimizer"]["lr"] == 3e-3
    assert result.config(result.defaults()[0])["optimizer"]["name"] == "adamw"
    # in either order, and at any depth: head option 1 holds the choice `hidden` (small | big)
    other = space(CONDITIONAL, ("optimizer.lr=3e-3", "optimizer.name=adamw", "model.head.hidden.name=big"))
    assert [p.name for p in other.params] == [*names[:1], "model.head"]
    assert other.config({**other.defaults()[0], "model.head": "1"})["model"]["head"]["hidden"] == \
        {"name": "big", "units": 256}
    # a problem inside the kept option is still reported at its line in the file
    bad = CONDITIONAL.replace("weight_decay: {loguniform: [1e-6, 1e-2]}", "weight_decay: {loguniform: [0, 1e-2]}")
    with pytest.raises(SpaceError) as caught:
        space(bad, ("optimizer.name=adamw",))
    (problem,) = caught.value.problems
    assert (problem.path, problem.line) == ("optimizer.weight_decay.loguniform", 8)


def test_a_space_is_read_only_and_survives_pickling():
    result = space(CONDITIONAL + "search: {sampler: {tpe: {n_startup_trials: 3}}, stop: {val_accuracy: 0.9}}\n")
    copied = pickle.loads(pickle.dumps(result))
    assert copied == result and copied.fingerprint() == result.fingerprint()
    values = {"optimizer": "adamw", "optimizer[adamw].lr": 1e-3, "optimizer[adamw].weight_decay": 1e-5,
              "model.head": "0"}
    assert copied.config(values) == result.config(values)
    options = result.params[0].dist.options
    assert options[0] == {"name": "sgd", "lr": {"loguniform": (1e-3, 0.3)}, "momentum": {"uniform": (0.8, 0.99)}}
    changes = [
        lambda: options[0].__setitem__("name", "adam"),
        lambda: result.document.__setitem__("name", "other"),
        lambda: result.document["optimizer"]["choice"].append({}),
        lambda: result.document["model"]["head"].pop("choice"),
        lambda: result.search.sampler_args.__setitem__("n_startup_trials", 5),
        lambda: result.search.stop.__setitem__("val_loss", 0.1),
        lambda: setattr(result, "name", "other"),
    ]
    for change in changes:
        with pytest.raises((TypeError, AttributeError, dataclasses.FrozenInstanceError)):
            change()
    assert hash(result.params) == hash(copied.params)


def test_grid_size_and_sampler_args():
    result = space("data: {dataset: digits}\nmodel: {width: {grid: [8, 16]}, arch: {choice: [mlp, cnn, resnet]}}\n"
                   "search: {sampler: grid, scheduler: {median: {grace_period: 2}}}\n")
    assert result.grid_size() == 6
    assert isinstance(result.params[0].dist, Grid)
    assert result.search.scheduler_args == {"grace_period": 2.0}
    sampled = space("data: {dataset: digits}\nsearch: {sampler: {tpe: {n_startup_trials: 5, multivariate: true}}}\n")
    assert sampled.search.sampler_args == {"n_startup_trials": 5, "multivariate": True}


def test_sources_dict_string_and_file(tmp_path):
    document = {"recipe": RECIPE, "data": {"dataset": "digits"}, "model": {"dropout": {"uniform": [0, 0.5]}}}
    from_dict = load_space(document, schema_for=schema_for)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(document))
    from_file = load_space(path, schema_for=schema_for)
    assert [(p.name, p.dist) for p in from_dict.params] == [(p.name, p.dist) for p in from_file.params]
    assert from_file.source == str(path.resolve()) and from_file.name == "s" and from_dict.source is None
    assert document["model"]["dropout"] == {"uniform": [0, 0.5]}  # not modified


def test_a_dict_s_problem_names_no_line_a_string_s_names_its_line():
    """A dict has no lines: `<dict>: model.dropout.uniform: ...`, not `<dict>:1:`."""
    bad = {"recipe": RECIPE, "data": {"dataset": "digits"}, "model": {"dropout": {"uniform": [0.5, 0.1]}}}
    with pytest.raises(SpaceError) as from_dict:
        load_space(bad, schema_for=schema_for)
    assert str(from_dict.value.problems[0]).startswith("<dict>: model.dropout.uniform: ")
    with pytest.raises(SpaceError) as from_string:
        load_space(yaml.safe_dump(bad, default_flow_style=False), schema_for=schema_for)
    assert re.match(r"<string>:\d+: model.dropout.uniform: ", str(from_string.value.problems[0]))


def test_without_schema_any_mapping_section_is_accepted():
    result = load_space("recipe: whatever\nfancy: {x: {uniform: [0, 1]}, y: [1, 2]}\n")
    assert [p.name for p in result.params] == ["fancy.x"]
    assert result.config({"fancy.x": 0.5}) == {"fancy": {"x": 0.5, "y": [1, 2]}}
    with pytest.raises(SpaceError, match="fancy.z: the override names a key"):
        load_space("recipe: whatever\nfancy: {x: 1}\n", ["fancy.z=2"])


def test_import_custom_is_idempotent(tmp_path):
    file = tmp_path / "mine.py"
    file.write_text("COUNT = []\nCOUNT.append(1)\n")
    assert import_custom(file) is import_custom(str(file))
    assert import_custom(file).COUNT == [1]


EDITED = """\
import autotune


@autotune.register("model")
def {name}(in_chans, num_classes, input_size):
    return {value}
"""


def test_an_edited_custom_file_is_imported_afresh_with_its_new_registrations(tmp_path, monkeypatch):
    """A notebook's second search, after its custom file was edited: the new code, not the first import's; a name
    it no longer registers is gone, and an unchanged file is not run again. The edits keep the file's size within
    the same second, where Python would trust a cached .pyc of the first text."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # Python's default, whatever the environment says
    file = tmp_path / "edited.py"
    file.write_text(EDITED.format(name="edited_net", value=1))
    first = import_custom(file)
    assert import_custom(file) is first and registry.get("model", "edited_net")(1, 2, 3) == 1
    file.write_text(EDITED.format(name="edited_net", value=2))  # the same name, other code: no "registered twice"
    assert import_custom(file) is not first and registry.get("model", "edited_net")(1, 2, 3) == 2
    file.write_text(EDITED.format(name="renamed_net", value=3))
    import_custom(file)
    assert registry.exists("model", "renamed_net") and not registry.exists("model", "edited_net")


def test_a_user_file_is_compiled_as_an_import_would_compile_it(tmp_path):
    """No compiler flag of autotune's own (`from __future__ import annotations`) reaches the file: a FastAPI route
    in a recipe's serve() reads its parameters' annotations as classes."""
    file = tmp_path / "annotated.py"
    file.write_text("def f(x: int) -> str:\n    return str(x)\n")
    assert import_custom(file).f.__annotations__ == {"x": int, "return": str}


def test_a_custom_file_that_raised_leaves_no_registrations_behind(tmp_path):
    file = tmp_path / "halfway.py"
    file.write_text(EDITED.format(name="halfway_net", value=1) + "raise ValueError('not yet')\n")
    with pytest.raises(UserError, match=r"halfway.py failed to import: ValueError: not yet \(line 7\)"):
        import_custom(file)
    assert not registry.exists("model", "halfway_net")
    file.write_text(EDITED.format(name="halfway_net", value=1))  # corrected: imports without "registered twice"
    import_custom(file)
    assert registry.exists("model", "halfway_net")


def test_space_package_imports_neither_torch_nor_ray():
    code = (f"import sys, autotune.space, autotune.recipes; from autotune.space import load_space; "
            f"s = load_space({EVERY!r}.replace('data:', 'recipe: {RECIPE}\\ndata:', 1), "
            f"schema_for=lambda n, b: autotune.recipes.load(n, b).SCHEMA); s.config(s.defaults()[0]); "
            f"heavy = [m for m in ('torch', 'ray', 'optuna') if m in sys.modules]; assert not heavy, heavy")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(-10, 10), st.sampled_from(
    ["mlp", "uniform", "${name}", "${model.x}", "1e-3", "grid", "choice", "sgd"]))
_keys = st.sampled_from(["name", "data", "model", "train", "search", "export", "uniform", "loguniform", "int",
                         "choice", "grid", "dataset", "dropout", "epochs", "trials", "sampler", "low", "high", "x"])
_documents = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(_keys, inner, max_size=4)), max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(_documents)
def test_random_documents_give_a_space_or_a_space_error(document):
    text = yaml.safe_dump(document)
    for source in (text if "\n" in text else text + "\n", document if isinstance(document, dict) else {"x": document}):
        for schema in (None, lambda name, base: schema_for(RECIPE, None)):
            try:
                result = load_space(source, schema_for=schema)
            except SpaceError as err:
                assert all((p.line is None) is isinstance(source, dict) for p in err.problems)  # a dict: no lines
            else:
                result.config(result.defaults()[0])
