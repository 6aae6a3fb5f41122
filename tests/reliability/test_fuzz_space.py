"""Property tests of the search-space loader: whatever it is given (YAML-ish text, nested documents with random
distributions, random `--set` overrides, odd paths), it returns a Space that works or raises autotune's own error.

A Space must also be usable: its defaults give a config, it has a fingerprint and a grid size. A SpaceError must
locate every problem (file, and line but in a dict), and no message may be empty.
"""
from __future__ import annotations

import math
import os
import string
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

import autotune.recipes
from autotune.errors import AutotuneError, SpaceError
from autotune.space import Space, load_space
from autotune.space._parse import DISTRIBUTIONS

TINY = str(Path(__file__).parents[1] / "space" / "tiny_recipe.py")
SCHEMAS = {  # how the CLI loads a space (a shipped recipe's schema, a recipe file's) and without any schema
    "none": None,
    "recipe": lambda name, base: autotune.recipes.load(name, base).SCHEMA,
}
# AUTOTUNE_FUZZ_EXAMPLES=5000 pytest tests/reliability/test_fuzz_space.py: a longer hunt than CI's
EXAMPLES = int(os.environ.get("AUTOTUNE_FUZZ_EXAMPLES", "150"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(source: Any, overrides: list[str] = (), schema: str = "recipe") -> Space | None:
    """load_space gives a working Space or raises an AutotuneError; anything else fails the test."""
    try:
        space = load_space(source, overrides, schema_for=SCHEMAS[schema])
    except SpaceError as err:
        event("SpaceError")
        lines = not isinstance(source, dict)  # a dict has no lines to name
        assert err.problems and all((p.line is not None) is lines and p.file for p in err.problems), err
        assert all(p.message for p in err.problems)
        return None
    except AutotuneError as err:
        event(type(err).__name__)
        assert str(err).strip()
        return None
    event("Space")
    for param in space.params:
        bounds = [getattr(param.dist, k) for k in ("low", "high", "step") if hasattr(param.dist, k)]
        assert all(math.isfinite(b) for b in bounds), param
    assert all(math.isfinite(x) and x >= 0 for x in (space.search.resources.cpu, space.search.resources.gpu))
    values, how = space.defaults()
    assert set(values) == set(how)
    assert isinstance(space.config(values), dict)
    assert len(space.fingerprint()) == 64
    size = space.grid_size()
    assert size is None or size >= 1
    return space


# ------------------------------------------------------------------------------------------ random YAML text
_TOKENS = st.sampled_from([
    ":", ": ", "{", "}", "[", "]", ",", "-", "- ", "#", "&a", "*a", "!!str", "!!python/object:os.system", "|", ">",
    "'", '"', "%YAML 1.2", "---", "...", "<<: ", "? ", "@", "`", "\t", " ", "  ", "\n", "\n  ", "\n    ",
    "${", "}", "${name}", "${env:HOME}", "${env:AUTOTUNE_FUZZ_UNSET}", "${model.arch}", "${a.b.c}",
    "recipe", "image_classification", "name", "custom", "data", "model", "optimizer", "train", "search", "export",
    *DISTRIBUTIONS, "low", "high", "step", "log",
    "dataset", "digits", "arch", "mlp", "lr", "epochs", "trials", "sampler", "scheduler", "tpe", "asha", "grid",
    "metric", "mode", "max", "resources", "cpu", "gpu", "time_budget", "dir", "promote", "stop",
    "0", "1", "-1", "1e-3", "3e4", "0.5", ".inf", "-.inf", ".nan", "null", "~", "true", "no", "0x1F", "1_000",
    "2001-12-14", "\u00e9", "\u2028", "\x00", "\ufeff",
])
_TEXT = st.one_of(
    st.lists(_TOKENS, max_size=40).map("".join),
    st.text(alphabet=string.printable, max_size=200),
    st.text(max_size=60),
)


@SETTINGS
@given(text=_TEXT, schema=st.sampled_from(sorted(SCHEMAS)))
@example(text="recipe: image_classification\nmodel: {dropout: {uniform: [.nan, 0.5]}}", schema="recipe")
@example(text="model: {width: {int: [1, .inf]}}", schema="none")
@example(text="custom: ~nosuchuser/x.py", schema="none")
@example(text="search: {trials: .inf, time_budget: .nan}", schema="none")
@example(text="a: &x [*x]", schema="none")
def test_random_text(text, schema):
    check(text if "\n" in text else text + "\n", schema=schema)


# ---------------------------------------------------------------- random documents with random distributions
_NUMBERS = st.one_of(st.integers(-3, 300), st.floats(allow_nan=True, allow_infinity=True),
                     st.sampled_from([0, 1, 1e-4, 0.1, 0.5, 0.9, 1e30, -0.0, 2**70]))
_STRINGS = st.sampled_from(["", " ", "mlp", "simple_cnn", "resnet18", "digits", "fake", "sgd", "adamw", "cosine",
                            "tpe", "random", "grid", "asha", "fifo", "max", "min", "val_accuracy", "val_loss",
                            "${name}", "${model.arch}", "${train.epochs}", "${search.trials}", "${env:HOME}",
                            "${env:AUTOTUNE_FUZZ_UNSET,3}", "${env:AUTOTUNE_FUZZ_UNSET}", "${nope}", "${}", "${",
                            "models/${name}", "1e-3", "90s", "2h", "~nosuchuser/x", "x" * 300, "a\x00b"])
_SCALARS = st.one_of(st.none(), st.booleans(), _NUMBERS, _STRINGS)
_KEYS = st.one_of(
    st.sampled_from(["name", "recipe", "custom", "data", "model", "optimizer", "train", "search", "export",
                     "dataset", "root", "val_fraction", "arch", "width", "depth", "dropout", "head", "lr", "momentum",
                     "weight_decay", "epochs", "batch_size", "label", "note", "trials", "metric", "mode", "sampler",
                     "scheduler", "seed", "max_concurrent", "time_budget", "resources", "cpu", "gpu", "stop",
                     "max_failures", "dir", "promote", "low", "high", "step", "log", "uniform", "choice"]),
    st.integers(-2, 3), st.none(), st.booleans(),
)


def _distribution(inner: st.SearchStrategy) -> st.SearchStrategy:
    """{kind: args} with args of the right shape, the wrong shape, or nonsense."""
    numeric = st.sampled_from([kind for kind in DISTRIBUTIONS if kind not in ("choice", "grid")])  # every one
    args = st.one_of(
        st.lists(_NUMBERS, min_size=0, max_size=4),
        st.lists(st.one_of(_NUMBERS, st.booleans(), _STRINGS), max_size=4),
        st.dictionaries(st.sampled_from(["low", "high", "step", "log", "x"]), st.one_of(_NUMBERS, st.booleans()),
                        max_size=4),
        _SCALARS,
    )
    options = st.lists(st.one_of(_SCALARS, inner), max_size=4)
    return st.one_of(
        st.builds(lambda k, a: {k: a}, numeric, args),
        st.builds(lambda o: {"choice": o}, st.one_of(options, _SCALARS)),
        st.builds(lambda o: {"grid": o}, st.one_of(options, _SCALARS)),
        st.builds(lambda k, a: {k: a}, st.sampled_from(["unifrom", "choise", "logunifrom"]), args),
    )


_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_KEYS, inner, max_size=4),
                            _distribution(inner)),
    max_leaves=25,
)
_SECTION = st.one_of(st.dictionaries(_KEYS, _VALUES, max_size=6), _distribution(st.dictionaries(_KEYS, _VALUES)),
                     _SCALARS)
_SEARCH = st.fixed_dictionaries({}, optional={
    "metric": st.one_of(_STRINGS, st.lists(_STRINGS, max_size=3)),
    "mode": st.one_of(_STRINGS, st.lists(_STRINGS, max_size=3)),
    "trials": _NUMBERS, "seed": _NUMBERS, "max_concurrent": st.one_of(st.none(), _NUMBERS),
    "sampler": st.one_of(_STRINGS, st.dictionaries(_STRINGS, st.dictionaries(_KEYS, _SCALARS, max_size=2), max_size=2)),
    "scheduler": st.one_of(_STRINGS, st.dictionaries(_STRINGS, st.dictionaries(_KEYS, _SCALARS, max_size=2),
                                                     max_size=2)),
    "time_budget": st.one_of(_NUMBERS, _STRINGS), "max_failures": _NUMBERS, "keep_checkpoints": _NUMBERS,
    "checkpoint_every": _NUMBERS,
    "resources": st.one_of(_SCALARS, st.dictionaries(st.sampled_from(["cpu", "gpu", "tpu"]), _SCALARS, max_size=2)),
    "stop": st.one_of(_SCALARS, st.dictionaries(_KEYS, _SCALARS, max_size=2)),
})
_DOCUMENTS = st.fixed_dictionaries(
    {"recipe": st.sampled_from(["image_classification", TINY, "image_clasification", "nope.py"])},
    optional={
        "name": _SCALARS, "data": _SECTION, "model": _SECTION, "optimizer": _SECTION, "train": _SECTION,
        "search": st.one_of(_SEARCH, _SCALARS),
        "export": st.one_of(_SCALARS, st.fixed_dictionaries({}, optional={"dir": _SCALARS, "promote": _SCALARS})),
        "custom": _SCALARS, "serch": _SCALARS,
    },
)


@SETTINGS
@given(document=_DOCUMENTS, schema=st.sampled_from(sorted(SCHEMAS)))
def test_random_documents(document, schema):
    check(document, schema=schema)  # as a dict (the Python API) ...
    try:
        text = yaml.safe_dump(document, allow_unicode=True)
    except yaml.YAMLError:
        return
    check(text if "\n" in text else text + "\n", schema=schema)  # ... and as the YAML a user would write


# --------------------------------------------------------------------------------------------- random --set
_PATHS = st.lists(st.one_of(_KEYS.map(str), st.sampled_from(["", "choice", "0", "1", "uniform", " "])), max_size=4)
_PLAUSIBLE = st.builds(
    lambda k, v: f"{k}={v}",
    st.sampled_from(["train.epochs", "train.batch_size", "model.dropout", "model.arch", "model.width",
                     "optimizer.choice.0.lr", "optimizer.choice", "search.sampler", "search.trials", "search.seed",
                     "search.scheduler", "search.metric", "export.dir", "data.samples", "name"]),
    st.sampled_from(["3", "0", "-1", "0.5", "1e-3", "mlp", "random", "fifo", "grid", "val_loss", "[a, b]", "null",
                     "{uniform: [0, 0.3]}", "{choice: [8, 16]}", "{int: [1, 4]}", "{loguniform: [1e-4, 1e-1]}",
                     "{grid: [1, 2]}", "{choice: [{name: sgd}, {name: adam, lr: 0.1}]}", "${name}", "${env:HOME}",
                     "models/${name}", "'${model.arch}'", ".nan", "{}", "[]"]),
)
_OVERRIDES = st.one_of(
    _PLAUSIBLE,
    st.builds(lambda p, v: ".".join(p) + "=" + v, _PATHS, _TEXT),
    st.builds(lambda p, v: ".".join(p) + "=" + yaml.safe_dump(v, default_flow_style=True).strip(), _PATHS, _VALUES),
    st.text(max_size=30),
)
BASE = """\
name: fuzz
recipe: image_classification
data: {dataset: fake, samples: 40}
model:
  arch: {choice: [simple_cnn, mlp]}
  dropout: {uniform: [0.0, 0.5]}
optimizer:
  choice:
    - {name: sgd, lr: {loguniform: [1e-3, 1e-1]}}
    - {name: adamw, lr: 1e-3}
train: {epochs: 2, batch_size: {choice: [16, 32]}}
search: {trials: 4, metric: val_accuracy}
export: {dir: "models/${name}"}
"""


@SETTINGS
@given(overrides=st.lists(_OVERRIDES, max_size=4), schema=st.sampled_from(sorted(SCHEMAS)))
@example(overrides=["=3"], schema="recipe")
@example(overrides=["search.trials=.inf"], schema="recipe")
@example(overrides=["train.epochs=.nan"], schema="none")
@example(overrides=["train.epochs=.inf"], schema="none")
@example(overrides=["model.dropout.uniform.0=1"], schema="recipe")
@example(overrides=["optimizer.choice.5.lr=1"], schema="recipe")
@example(overrides=["name.x=1"], schema="recipe")
def test_random_overrides(overrides, schema):
    check(BASE, overrides, schema=schema)


# ----------------------------------------------------------------------------------------------- odd sources
@settings(max_examples=60, deadline=None)
@given(name=st.one_of(st.text(max_size=20).filter(lambda t: "\n" not in t), st.just("x" * 400),
                      st.sampled_from(["~nosuchuser/space.yaml", ".", "/", "/dev/null", "a\x00b", "~"])))
def test_random_paths(name):
    check(name)


def test_the_base_space_is_valid():
    space = load_space(BASE, schema_for=SCHEMAS["recipe"])
    assert [p.name for p in space.params][:2] == ["model.arch", "model.dropout"]
    assert space.config(space.defaults()[0])["model"]["dropout"] == 0.25
