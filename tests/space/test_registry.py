"""The registry: duplicate names, built-ins registered before a user's file, the optimizer kind (built-ins, a custom
one checked in a space and built by the recipe), timm's model names read from a cache instead of importing timm."""
from __future__ import annotations

import importlib.metadata
import inspect
import json
import os
import subprocess
import sys
import types

import pytest

import autotune.recipes
from autotune import registry
from autotune.errors import SpaceError, UserError
from autotune.space import load_space
from autotune.vision import models, optimizers


@pytest.fixture
def empty_registry(monkeypatch):
    """A registry with no entries and no built-ins to load: only the test's own."""
    monkeypatch.setattr(registry, "_entries", {})
    monkeypatch.setattr(registry, "_fallbacks", {})
    monkeypatch.setattr(registry, "_builtins_loaded", True)


def widget() -> int:
    return 1


def other_widget() -> int:
    return 2


def test_a_name_registered_twice_is_an_error_naming_both(empty_registry):
    registry.register("widget")(widget)
    registry.register("widget")(widget)  # the same function again (a module imported twice) is fine
    with pytest.raises(UserError, match=r"widget 'widget' is registered twice: by widget \(test_registry\.py, line "
                                        r"\d+\) and by other_widget \(test_registry\.py, line \d+\); give the second "
                                        r"another name with register\('widget', name=...\)"):
        registry.register("widget", name="widget")(other_widget)
    assert registry.get("widget", "widget") is widget  # the first one stays
    registry.register("widget", name="other")(other_widget)
    assert registry.names("widget") == ["other", "widget"]


class Gadget:
    """A registered class: a model is often an nn.Module subclass."""


def test_a_class_registered_under_a_taken_name_is_named_by_its_file_and_line(empty_registry):
    """A class has no `__code__`: it was named by its module, which for a `custom:` file is a made-up one
    (`autotune_custom_custom_e06131826e.MLP`)."""
    registry.register("widget")(widget)
    line = inspect.getsourcelines(Gadget)[1]
    with pytest.raises(UserError, match=rf"by widget \(test_registry\.py, line \d+\) and by Gadget "
                                        rf"\(test_registry\.py, line {line}\)"):
        registry.register("widget", name="widget")(Gadget)


def _copy(fn):
    """`fn` as another process's unpickling makes it: a new function of the same module and name."""
    return types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)


def test_what_a_script_registered_is_restored_in_a_trial_once_per_trial(empty_registry, monkeypatch):
    """A trial worker restores the driver's registrations of the user's script; the worker runs several trials,
    each with a fresh copy of them. A name another function holds stays an error, in `restore` and `register`."""
    registry.register("widget")(widget)
    registry.register("widget", name="other")(other_widget)
    registry.register("widget", name="builtin")(optimizers.build)  # autotune's own: every process registers it
    assert registry.entries_outside([__name__]) == []  # as the space's custom file: a trial imports it itself
    entries = registry.entries_outside(["autotune_custom_mine"])
    assert entries == [("widget", "widget", widget), ("widget", "other", other_widget)]
    monkeypatch.setattr(registry, "_entries", {"widget": {"builtin": optimizers.build}})  # a fresh worker
    for _ in range(2):
        registry.restore([(kind, name, _copy(fn)) for kind, name, fn in entries])
    assert registry.names("widget") == ["builtin", "other", "widget"]
    assert registry.get("widget", "widget") is not widget and registry.get("widget", "widget")() == 1
    with pytest.raises(UserError, match=r"widget 'widget' is registered twice: by widget \(test_registry\.py, "
                                        r"line \d+\) and by other_widget"):
        registry.register("widget", name="widget")(other_widget)
    with pytest.raises(UserError, match="widget 'builtin' is registered twice: by autotune.vision.optimizers.build"):
        registry.restore([("widget", "builtin", widget)])


def test_a_notebook_cell_run_again_registers_its_function_again(empty_registry):
    """In `__main__` (a notebook, `python -i`), a cell that registers a function, run again, defines a new function
    of the same name: it replaces the earlier one. Another function under that name is still an error."""
    first, again = _copy(widget), _copy(widget)
    for fn in (first, again):
        fn.__module__ = "__main__"
        registry.register("widget")(fn)
    assert registry.get("widget", "widget") is again
    other = _copy(other_widget)
    other.__module__ = "__main__"
    with pytest.raises(UserError, match="widget 'widget' is registered twice"):
        registry.register("widget", name="widget")(other)


@pytest.mark.parametrize("word, candidates, closest", [
    ("val_f1", ["val_r2", "val_f1_macro", "val_loss"], ["val_f1_macro", "val_r2"]),  # a name cut short first
    ("val_bal", ["val_balanced_accuracy", "val_loss"], ["val_balanced_accuracy", "val_loss"]),
    ("VAL_F1", ["val_f1_macro", "val_f1_weighted_mean"], ["val_f1_macro", "val_f1_weighted_mean"]),  # shortest first
    ("lr", ["lr_decay", "l1"], []),  # too short to be a name cut short
    ("widgt", ["widget"], ["widget"]),
])
def test_close_matches_puts_a_name_cut_short_first(word, candidates, closest):
    assert registry.close_matches(word, candidates) == closest


def test_an_unknown_name_lists_the_closest(empty_registry):
    registry.register("widget")(widget)
    with pytest.raises(UserError, match="unknown widget 'widgt'; did you mean 'widget'"):
        registry.get("widget", "widgt")


SPACE = """\
name: clash
recipe: image_classification
custom: mine.py
data: {dataset: digits}
optimizer: {name: OPTIMIZER, lr: 0.05}
"""

CUSTOM = '''\
"""A user's file."""
import autotune


@autotune.register("model")
def mlp(in_chans, num_classes, input_size):
    return None
'''


def test_a_custom_file_that_reuses_a_built_in_name_is_reported_at_its_line(tmp_path):
    """In a fresh process, where the built-ins are not loaded yet when the custom file registers `mlp`."""
    (tmp_path / "mine.py").write_text(CUSTOM)
    (tmp_path / "space.yaml").write_text(SPACE.replace("OPTIMIZER", "sgd"))
    result = subprocess.run([sys.executable, "-m", "autotune", "check", str(tmp_path / "space.yaml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert (f"{tmp_path / 'space.yaml'}:3: custom: custom file mine.py failed to import: model 'mlp' is registered "
            "twice: by autotune.vision.models.mlp and by mlp (mine.py, line 5)") in result.stderr
    assert "Traceback" not in result.stderr and "recipe:" not in result.stderr


OPTIMIZERS = '''\
import autotune
import torch


@autotune.register("optimizer")
def rmsprop(params, lr, weight_decay, **kwargs):
    assert not kwargs, kwargs  # the recipe's momentum and nesterov, unset (None), reach no factory
    return torch.optim.RMSprop(params, lr=lr, weight_decay=weight_decay)


@autotune.register("optimizer")
def returns_a_dict(params, lr, weight_decay):
    return {"lr": lr}


@autotune.register("optimizer")
def needs_a_gpu(params, lr, weight_decay):
    raise RuntimeError("this optimizer needs CUDA")
'''


RAISES = OPTIMIZERS.splitlines().index('    raise RuntimeError("this optimizer needs CUDA")') + 1


@pytest.fixture(scope="module")
def custom_folder(tmp_path_factory):
    """A folder holding `my_optimizers.py` (imported once: its names stay registered for the session)."""
    folder = tmp_path_factory.mktemp("custom")
    (folder / "my_optimizers.py").write_text(OPTIMIZERS)
    autotune.space.import_custom(folder / "my_optimizers.py")
    return folder


def test_a_custom_optimizer_is_a_name_the_schema_accepts(custom_folder):
    space_file = custom_folder / "space.yaml"
    space_file.write_text(SPACE.replace("mine.py", "my_optimizers.py").replace("OPTIMIZER", "rmsprop"))
    space = load_space(space_file, schema_for=autotune.recipes.load_schema)
    assert space.config({})["optimizer"]["name"] == "rmsprop"
    with pytest.raises(SpaceError, match=r"<--set>:1: optimizer.name: unknown optimizer 'rmsprp'; "
                                         r"did you mean 'rmsprop'"):
        load_space(space_file, ["optimizer.name=rmsprp"], schema_for=autotune.recipes.load_schema)


def _model():
    import torch

    return torch.nn.Linear(3, 2)  # a model: make_optimizer takes the model, to group its parameters


def test_the_recipe_builds_optimizers_through_the_registry(custom_folder):
    import torch

    from autotune.recipes import image_classification as recipe

    keys = {"lr": 0.1, "momentum": None, "nesterov": None, "weight_decay": 1e-3, "schedule": "none",
            "warmup_epochs": 0.0}  # momentum and nesterov unset, as the schema leaves them
    sgd = recipe.make_optimizer(_model(), {"name": "sgd", **keys, "momentum": 0.5, "nesterov": True})
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["momentum"] == 0.5 and sgd.defaults["nesterov"]
    default_sgd = recipe.make_optimizer(_model(), {"name": "sgd", **keys})
    assert default_sgd.defaults["momentum"] == 0.9 and not default_sgd.defaults["nesterov"]  # sgd's own defaults
    adamw = recipe.make_optimizer(_model(), {"name": "adamw", **keys})
    assert isinstance(adamw, torch.optim.AdamW) and adamw.defaults["weight_decay"] == 1e-3
    assert type(recipe.make_optimizer(_model(), {"name": "adam", **keys})) is torch.optim.Adam
    rmsprop = recipe.make_optimizer(_model(), {"name": "rmsprop", **keys})
    assert isinstance(rmsprop, torch.optim.RMSprop) and rmsprop.defaults["lr"] == 0.1


def test_the_recipe_refuses_a_key_the_optimizer_ignores(custom_folder):
    """The last line of defence behind `check`: adamw given sgd's momentum was trained without it."""
    from autotune.recipes import image_classification as recipe

    config = {"name": "adamw", "lr": 0.1, "weight_decay": 0.0, "momentum": 0.5, "nesterov": None}
    with pytest.raises(UserError, match=r"optimizer 'adamw' cannot be built: it takes no argument 'momentum'; its "
                                        r"arguments: lr, weight_decay; give a key only to the optimizers that take "
                                        r"it, with the conditional form"):
        recipe.make_optimizer(_model(), config)
    with pytest.raises(UserError, match="no argument 'dampening'"):  # a key no schema field lists, the same
        recipe.make_optimizer(_model(), {**config, "name": "sgd", "dampening": 0.1})


@pytest.mark.parametrize("name, options, message", [
    ("sgd", {"momentum": 0.0, "nesterov": True}, "optimizer.nesterov needs optimizer.momentum > 0"),
    ("returns_a_dict", {}, "optimizer 'returns_a_dict' returned dict, not a torch.optim.Optimizer"),
    ("needs_a_gpu", {}, rf"optimizer 'needs_a_gpu' \(my_optimizers.py, line {RAISES}\) failed: RuntimeError: this "
                        "optimizer needs CUDA"),
    ("sgdd", {}, "unknown optimizer 'sgdd'; did you mean 'sgd'"),
])
def test_an_optimizer_that_cannot_be_built_is_one_line(custom_folder, name, options, message):
    with pytest.raises(UserError, match=message):
        optimizers.build(name, _model().parameters(), 0.1, 0.0, **options)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache folder for timm's model names, in this process and in the processes it starts."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    models._timm_model_names.cache_clear()
    yield tmp_path / "cache" / "autotune" / f"timm-{importlib.metadata.version('timm')}-models.json"
    models._timm_model_names.cache_clear()


# in a fresh interpreter: what the registry says of some model names, and whether timm got imported
_LOOKUP = """\
import json, sys
from autotune import registry
print(json.dumps({"exists": {n: registry.exists("model", n) for n in sys.argv[1:]},
                  "hint": registry.check_name("model", "resnet181"), "res": registry.names("model", "resnet1*",
                  include_fallback=True), "timm": "timm" in sys.modules}))
"""


def lookup(*names: str) -> dict:
    result = subprocess.run([sys.executable, "-c", _LOOKUP, *names], capture_output=True, text=True, timeout=60,
                            env=os.environ.copy())
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_timm_names_are_cached_per_timm_version(cache):
    cache.parent.mkdir(parents=True)
    cache.write_text("{not json")  # damaged (or written by something else): made again
    assert lookup("resnet18")["exists"] == {"resnet18": True}  # this lookup imports timm and writes the cache
    cached = json.loads(cache.read_text())
    assert "resnet18" in cached["models"] and "gluon_resnet50_v1b" in cached["deprecated"]
    found = lookup("resnet18", "resnet18.a1_in1k", "gluon_resnet50_v1b", "simple_cnn", "resnet181")
    assert found["exists"] == {"resnet18": True, "resnet18.a1_in1k": True, "gluon_resnet50_v1b": True,
                               "simple_cnn": True, "resnet181": False}
    assert found["timm"] is False  # read from the cache
    assert "did you mean 'resnet18'" in found["hint"]
    assert "resnet18" in found["res"] and "gluon_resnet50_v1b" not in found["res"]


def test_the_cache_file_is_what_lookups_read(cache):
    cache.parent.mkdir(parents=True)
    cache.write_text(json.dumps({"models": ["made_up_net"], "deprecated": ["old_net"]}))
    (cache.parent / "timm-0.0.1-models.json").write_text(json.dumps({"models": ["resnet18"], "deprecated": []}))
    found = lookup("made_up_net", "old_net", "resnet18")
    assert found["exists"] == {"made_up_net": True, "old_net": True, "resnet18": False}  # another version's file
    assert found["timm"] is False and found["res"] == []
