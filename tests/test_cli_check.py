"""`autotune check`: every invalid input exits 2 with file:line: key.path and no traceback; valid ones print a table."""
from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from autotune import registry
from autotune.cli import main
from autotune.vision import models

REPO = Path(__file__).parents[1]
RECIPE = str(Path(__file__).parent / "space" / "tiny_recipe.py")


@pytest.fixture
def cli(cli, request, monkeypatch) -> Callable[..., tuple[int, str, str]]:
    """tests/conftest.py's `cli`; the registry does not load its built-in components (the tiny recipe needs none),
    unless the test checks real spaces through `real_cli`."""
    if "real_cli" not in request.fixturenames:
        monkeypatch.setattr(registry, "_builtins_loaded", True)
    return cli


def write(tmp_path: Path, text: str, name: str = "space.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text.replace("RECIPE", RECIPE))
    return path


OK = """\
name: t
recipe: RECIPE
data: {dataset: digits}
model: {dropout: {uniform: [0.0, 0.5]}}
optimizer: {lr: {loguniform: [1e-4, 1e-1]}}
train: {epochs: 3}
search: {metric: val_accuracy, mode: max, trials: 4}
"""


def ok_with(line: int, text: str) -> str:
    """OK with its line `line` (1-based) replaced by `text`."""
    lines = OK.splitlines()
    lines[line - 1] = text
    return "\n".join(lines) + "\n"


# (id, space text, --set overrides, key path, line, words the message must hold)
INVALID = [
    ("yaml-syntax", "recipe: RECIPE\ndata: {dataset: digits\ntrain: {epochs: 3}\n", [], "<root>", 3, "YAML syntax"),
    ("empty-file", "", [], "<root>", 1, "empty"),
    ("top-level-list", "- recipe\n- data\n", [], "<root>", 1, "mapping"),
    ("unknown-top-key", OK + "serch: {trials: 3}\n", [], "serch", 8, "did you mean 'search'"),
    ("unknown-ingredient-key", ok_with(6, "train: {epoch: 3}"), [], "train.epoch", 6, "did you mean 'epochs'"),
    ("unknown-distribution", ok_with(5, "optimizer: {lr: {logunifrom: [1e-4, 1e-1]}}"), [], "optimizer.lr", 5,
     "did you mean 'loguniform'"),
    ("low-above-high", ok_with(4, "model: {dropout: {uniform: [0.5, 0.1]}}"), [], "model.dropout.uniform", 4,
     "low <= high"),
    ("loguniform-zero", ok_with(5, "optimizer: {lr: {loguniform: [0, 1e-1]}}"), [], "optimizer.lr.loguniform", 5,
     "low > 0"),
    ("empty-choice", ok_with(6, "train: {batch_size: {choice: []}}"), [], "train.batch_size.choice", 6,
     "non-empty"),
    ("wrong-type", ok_with(6, "train: {epochs: ten}"), [], "train.epochs", 6, "expected an integer"),
    ("trials-zero", ok_with(7, "search: {trials: 0}"), [], "search.trials", 7, "must be >= 1"),
    ("negative-resources", OK, ["search.resources.cpu=-1"], "search.resources.cpu", 1, ">= 0"),
    ("negative-gpu", ok_with(7, "search: {resources: {cpu: 1, gpu: -0.5}}"), [], "search.resources.gpu", 7,
     ">= 0"),
    ("mode-maximize", ok_with(7, "search: {metric: val_accuracy, mode: maximize}"), [], "search.mode", 7,
     "max or min"),
    ("unknown-sampler", ok_with(7, "search: {sampler: tpee}"), [], "search.sampler", 7, "did you mean 'tpe'"),
    ("unknown-scheduler", ok_with(7, "search: {scheduler: ashaa}"), [], "search.scheduler", 7,
     "did you mean 'asha'"),
    ("interp-missing", ok_with(6, "train: {label: '${model.nope}'}"), [], "train.label", 6, "does not exist"),
    ("interp-cycle", ok_with(6, "train: {label: '${train.note}', note: '${train.label}'}"), [], "train.", 6,
     "cycle"),
    ("grid-under-tpe", ok_with(6, "train: {batch_size: {grid: [16, 32]}}"), [], "train.batch_size", 6,
     "sampler: grid"),
    ("custom-missing", OK + "custom: nothere.py\n", [], "custom", 8, "does not exist"),
    ("int-float-bounds", ok_with(4, "model: {width: {int: [1.5, 8]}}"), [], "model.width.int", 4,
     "integer low"),
    ("step-zero", ok_with(4, "model: {dropout: {quniform: [0.0, 0.5, 0]}}"), [], "model.dropout.quniform", 4,
     "step must be > 0"),
    ("dist-outside-field", ok_with(4, "model: {dropout: {uniform: [0.0, 2.0]}}"), [], "model.dropout.uniform", 4,
     "leaves the allowed"),
    ("constant-out-of-range", ok_with(4, "model: {dropout: 1.5}"), [], "model.dropout", 4, "within [0.0, 0.9]"),
    ("choice-option-type", ok_with(6, "train: {batch_size: {choice: [32, big]}}"), [],
     "train.batch_size.choice[1]", 6, "expected an integer"),
    ("choices-field", ok_with(4, "model: {arch: resnett}"), [], "model.arch", 4, "did you mean 'resnet'"),
    ("required-missing", ok_with(3, "data: {root: /tmp}"), [], "data.dataset", 3, "required"),
    ("conditional-option-key", ok_with(5, "optimizer: {choice: [{name: sgd}, {name: adamw, betas: 1}]}"), [],
     "optimizer.choice[1].betas", 5, "unknown key"),
    ("sampler-arg-name", ok_with(7, "search: {sampler: {tpe: {n_startup: 5}}}"), [], "search.sampler.tpe.n_startup",
     7, "did you mean 'n_startup_trials'"),
    ("scheduler-arg-type", ok_with(7, "search: {scheduler: {asha: {grace_period: soon}}}"), [],
     "search.scheduler.asha.grace_period", 7, "expected an integer"),
    ("time-budget", ok_with(7, "search: {time_budget: forever}"), [], "search.time_budget", 7, "duration"),
    ("nsga2-one-metric", ok_with(7, "search: {sampler: nsga2}"), [], "search.sampler", 7, "several metrics"),
    ("cmaes-two-metrics", ok_with(7, "search: {metric: [val_accuracy, val_loss], sampler: cmaes, scheduler: fifo}"),
     [], "search.sampler", 7, "one metric only"),
    ("max-failures", ok_with(7, "search: {max_failures: -1}"), [], "search.max_failures", 7, ">= 0"),
    ("promote", OK + "export: {promote: sometimes}\n", [], "export.promote", 8, "one of always"),
    ("min-improvement", OK + "export: {promote: if_better, min_improvement: -0.01}\n", [], "export.min_improvement",
     8, ">= 0"),
    ("duplicate-key", OK + "train: {epochs: 4}\n", [], "train", 8, "duplicate key"),
    ("env-unset", ok_with(6, "train: {label: '${env:AUTOTUNE_TEST_SURELY_UNSET}'}"), [], "train.label", 6,
     "not set"),
    ("override-unknown-key", OK, ["train.epoch=3"], "train.epoch", 1, "did you mean 'epochs'"),
    ("override-no-equals", OK, ["train.epochs=3", "train.epochs"], "train.epochs", 2, "KEY=VALUE"),
    ("override-bad-value", OK, ["model.dropout={uniform: [0, 2]}"], "model.dropout.uniform", 1, "leaves the allowed"),
    ("override-into-distribution", OK, ["model.dropout.uniform=1"], "model.dropout", 1, "distribution"),
    ("duplicate-option", ok_with(6, "train: {batch_size: {choice: [32, 32]}}"), [], "train.batch_size.choice[1]", 6,
     "duplicate option"),
    ("int-log-step", ok_with(4, "model: {width: {int: {low: 8, high: 64, step: 8, log: true}}}"), [],
     "model.width.int", 4, "log: true"),
    ("quniform-multiple", ok_with(4, "model: {dropout: {quniform: [0.0, 0.5, 0.2]}}"), [], "model.dropout.quniform",
     4, "multiple of step"),
    ("pow2-not-a-power", ok_with(4, "model: {width: {pow2: [12, 64]}}"), [], "model.width.pow2", 4,
     "pow2 needs low a power of two (1, 2, 4, 8, ...), but got low=12; e.g. low: 16"),
    ("pow2-fraction", ok_with(4, "model: {width: {pow2: [0.5, 64]}}"), [], "model.width.pow2", 4,
     "pow2 needs low a power of two"),
    ("pow2-step", ok_with(4, "model: {width: {pow2: [16, 64, 2]}}"), [], "model.width.pow2", 4,
     "pow2 takes [low, high]"),
    ("pow2-default", ok_with(4, "model: {width: {pow2: [16, 64], default: 48}}"), [], "model.width.default", 4,
     "must be a power of two (16, 32, 64)"),
    ("pow2-cmaes", ok_with(4, "model: {width: {pow2: [16, 64]}}").replace("trials: 4", "trials: 4, sampler: cmaes"),
     [], "model.width", 4, "model.width is a pow2"),
    ("section-not-mapping", ok_with(6, "train: 3"), [], "train", 6, "must be a mapping"),
    ("section-choice-constant", ok_with(5, "optimizer: {choice: [sgd, adamw]}"), [], "optimizer.choice[0]", 5,
     "mapping"),
    ("stop-not-mapping", ok_with(7, "search: {stop: 0.9}"), [], "search.stop", 7, "metric: threshold"),
    ("unknown-recipe", ok_with(2, "recipe: image_clasification"), [], "recipe", 2, "unknown recipe"),
    ("grid-sampler-uniform", ok_with(7, "search: {sampler: grid}"), [], "model.dropout", 4, "every parameter"),
    ("grid-sampler-conditional", ok_with(5, "optimizer: {choice: [{name: sgd}, {name: adamw}]}").replace(
        "trials: 4", "trials: 4, sampler: grid"), [], "optimizer.choice", 5, "conditional choice"),
    ("nullable", ok_with(6, "train: {epochs: null}"), [], "train.epochs", 6, "must not be null"),
    ("uniform-args", ok_with(4, "model: {dropout: {uniform: [0.1]}}"), [], "model.dropout.uniform", 4,
     "takes [low, high]"),
    ("override-creates-unknown-section", OK, ["trian.epochs=3"], "trian", 1, "did you mean 'train'"),
    ("override-not-yaml", OK, ["train.epochs=3", "train.epochs=["], "train.epochs", 2,
     ("1 problem in", "YAML syntax error")),
    ("override-unknown-option", ok_with(5, "optimizer: {choice: [{name: sgd}, {name: adamw}]}"),
     ["optimizer.name=adamx"], "optimizer", 1, ("has no option 'adamx'", "did you mean 'adamw'")),
    ("override-into-choice-of-values", OK, ["model.dropout=0.1", "train.batch_size={choice: [8, 16]}",
                                            "train.batch_size.x=1"], "train.batch_size", 3, "choice of values"),
    ("override-into-option-bad-value", ok_with(5, "optimizer: {choice: [{name: sgd, lr: 0.1}, {name: adamw}]}"),
     ["optimizer.lr=-1"], "optimizer.choice[1].lr", 1, "within [0.0, 10.0]"),
    ("export-dir-sampled", OK + "export: {dir: 'models/${name}-${model.dropout}'}\n", [], "export.dir", 8,
     ("parameter model.dropout, which is sampled per trial", "one setting for the whole search")),
    ("search-seed-sampled-option", ok_with(5, "optimizer: {choice: [{name: sgd}, {name: adamw}]}").replace(
        "trials: 4", "trials: 4, seed: '${optimizer.name}'"), [], "search.seed", 7, "parameter optimizer,"),
    ("int-step-multiple", ok_with(4, "model: {width: {int: [1, 10, 4]}}"), [], "model.width.int", 4,
     ("high - low must be a multiple of step", "e.g. high: 9")),
    ("stop-direction-contradicts", ok_with(7, "search: {metric: val_accuracy, stop: {val_accuracy: {min: 0.5}}}"),
     [], "search.stop.val_accuracy.min", 7, "searched with mode max"),
    ("stop-target-mapping", ok_with(7, "search: {stop: {val_loss: {below: 0.5}}}"), [], "search.stop.val_loss", 7,
     "{max: N} / {min: N}"),
    ("default-outside-range", ok_with(4, "model: {dropout: {uniform: [0.0, 0.5], default: 0.7}}"), [],
     "model.dropout.default", 4, ("range [0, 0.5] (got 0.7)", "widen the range")),
    ("default-off-step", ok_with(4, "model: {width: {int: [8, 64, 8], default: 13}}"), [], "model.width.default", 4,
     ("step grid 8, 16, ..., 64", "e.g. 16")),
    ("default-not-an-option", ok_with(6, "train: {batch_size: {choice: [16, 32], default: 64}}"), [],
     "train.batch_size.default", 6, "not one of the options (16, 32)"),
    ("default-option-name", ok_with(5, "optimizer: {choice: [{name: sgd}, {name: adamw}], default: adamx}"), [],
     "optimizer.default", 5, "did you mean 'adamw'"),
    ("default-wrong-type", ok_with(5, "optimizer: {lr: {loguniform: [1e-4, 1e-1], default: high}}"), [],
     "optimizer.lr.default", 5, "expected a number"),
    ("default-int-type", ok_with(4, "model: {width: {int: [8, 64], default: 12.5}}"), [], "model.width.default", 4,
     "expected an integer"),
    ("default-without-distribution", ok_with(6, "train: {epochs: {default: 3}}"), [], "train.epochs.default", 6,
     "beside a distribution"),
    ("override-default-outside", OK, ["optimizer.lr.default=0.5"], "optimizer.lr.default", 1, "range"),
    ("start-unknown-key", ok_with(7, "search: {start: [{model.dropuot: 0.1}]}"), [], "search.start[0].model.dropuot",
     7, ("not a searched parameter", "did you mean 'model.dropout'")),
    ("start-value-outside", ok_with(7, "search: {start: [{optimizer.lr: 0.5}]}"), [], "search.start[0].optimizer.lr",
     7, "range [0.0001, 0.1] (got 0.5)"),
    ("start-not-a-list", ok_with(7, "search: {start: {model.dropout: 0.1}}"), [], "search.start", 7,
     "list of configurations"),
    ("start-point-not-a-mapping", ok_with(7, "search: {start: [0.1]}"), [], "search.start[0]", 7, "mapping"),
    ("start-nested", ok_with(7, "search: {start: [{model: {dropout: 0.1}}]}"), [], "search.start[0].model", 7,
     "flat, as autotune check prints them: model.dropout"),
    ("start-inactive-option", ok_with(5, "optimizer: {choice: [{name: sgd}, {name: adamw, lr: {uniform: [0, 1]}}]}")
     .replace("trials: 4", "trials: 4, start: [{'optimizer[adamw].lr': 0.5}]"), [],
     "search.start[0].optimizer[adamw].lr", 7, "sampled only when optimizer=adamw"),
    ("start-under-grid", ok_with(7, "search: {sampler: grid, start: [{}]}"), [], "search.start", 7,
     "every combination"),
    ("yaml-tab", "recipe: RECIPE\ndata:\n\tdataset: digits\n", [], "<root>", 3,
     ("YAML syntax error", "; YAML indents with spaces, not tabs: replace the tab")),
    ("yaml-off-for-a-string", ok_with(6, "train: {epochs: 3, label: off}"), [], "train.label", 6,
     "expected a string (got False); YAML reads off, no, yes and on as booleans: quote it, e.g. 'off'"),
    ("yaml-bracket-key-in-braces", ok_with(7, "search: {start: [{optimizer[sgd].lr: 0.01}]}"), [], "<root>", 7,
     "quote a key or value that holds [ ]"),
    ("merge-duplicate-written-key", ok_with(5, "optimizer: {choice: [&s {lr: 0.1}, {<<: *s, lr: 0.2, lr: 0.3}]}"),
     [], "optimizer.choice[1].lr", 5, "duplicate key; keep only one of them"),
    ("distribution-dedented", ok_with(5, "optimizer:\n  name: sgd\n  lr:\n  loguniform: [0.01, 0.1]"), [],
     "optimizer.loguniform", 8, "a distribution beside the keys of optimizer, and 'lr' has no value; indent "
     "`loguniform:` under `lr:`, the key it belongs to"),
    ("merge-not-a-mapping", ok_with(5, "optimizer: {<<: 3}"), [], "optimizer.<<", 5, "merges a mapping or a list"),
]


@pytest.mark.parametrize("text, overrides, path, line, words", [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_space_exits_2_with_location(cli, tmp_path, text, overrides, path, line, words):
    space = write(tmp_path, text)
    argv = ["check", str(space)]
    for override in overrides:
        argv += ["--set", override]
    code, out, err = cli(*argv)
    assert code == 2
    where = "<--set>" if overrides else str(space)  # a problem an override brings is located in it
    assert f"{where}:{line}: {path}" in err, err
    for word in words if isinstance(words, tuple) else (words,):
        assert word in err, err
    assert "Traceback" not in out + err


def test_custom_file_error_is_shown(cli, tmp_path):
    (tmp_path / "my_functions.py").write_text("import math\nvalue = x + 1\n")
    code, out, err = cli("check", str(write(tmp_path, OK + "custom: my_functions.py\n")))
    assert code == 2
    assert f"{tmp_path / 'space.yaml'}:8: custom:" in err
    assert "NameError: name 'x' is not defined (line 2)" in err
    assert "Traceback" not in err


def test_all_problems_are_reported_at_once(cli, tmp_path):
    text = ok_with(6, "train: {epochs: ten, batch_size: {choice: []}}").replace("trials: 4", "trials: 0")
    code, _, err = cli("check", str(write(tmp_path, text)))
    assert code == 2
    assert err.count(f"{tmp_path / 'space.yaml'}:") == 3, err
    assert "3 problems" in err


def test_registry_names_are_checked_for_every_option(cli, tmp_path):
    (tmp_path / "blocks.py").write_text(
        "import autotune\n\n@autotune.register('tiny_block')\ndef bottleneck():\n    return 1\n")
    text = OK + "custom: blocks.py\n"
    code, out, _ = cli("check", str(write(tmp_path, ok_with(4, "model: {block: bottleneck}") + "custom: blocks.py\n")))
    assert code == 0, out
    code, _, err = cli("check", str(write(tmp_path, text)), "--set", "model.block={choice: [bottleneck, botleneck]}")
    assert code == 2
    assert "<--set>:1: model.block.choice[1]: unknown tiny_block 'botleneck'" in err
    assert "did you mean 'bottleneck'?" in err


def test_valid_space_prints_table(cli, tmp_path):
    text = ok_with(5, "optimizer: {choice: [{name: sgd, momentum: {uniform: [0.5, 0.9]}}, {name: adamw}]}")
    code, out, err = cli("check", str(write(tmp_path, text)), "--set", "train.epochs=5")
    assert code == 0, err
    assert "model.dropout" in out and "uniform" in out and "[0, 0.5]" in out
    assert "optimizer[sgd].momentum" in out and "optimizer=sgd" in out
    assert "sampler tpe" in out and "4 trials" in out


def test_the_table_shows_a_pow2_with_its_powers(cli, tmp_path):
    code, out, err = cli("check", str(write(tmp_path, ok_with(4, "model: {width: {pow2: [16, 256]}}"))))
    assert code == 0, err
    row = next(line for line in out.splitlines() if line.startswith("model.width"))
    assert row.split()[1:] == ["pow2", "16,", "32,", "64,", "128,", "256", "64", "(geometric", "mean,", "a", "power",
                               "of", "two)", "-"]
    code, out, err = cli("check", str(write(tmp_path, ok_with(4, "model: {width: {pow2: [1, 4096]}}"))))
    assert "pow2          1, 2, 4, ..., 4096 (13 powers)  64 (geometric mean, a power of two)" in out
    long_choice = ok_with(4, "model: {width: {choice: [1, 2, 3, 4, 5, 6, 7, 8, 9]}}")
    code, out, err = cli("check", str(write(tmp_path, long_choice)))
    assert "choice        1, 2, 3, 4, 5, 6, ... (9 options)  1 (first option)" in out  # a long choice, as before
    code, out, err = cli("check", str(write(tmp_path, ok_with(4, "model: {width: {pow2: [16, 64]}}"))), "--set",
                         "search.sampler=grid", "--set", "model.dropout=0.1", "--set", "optimizer.lr=0.01")
    assert code == 0, err
    assert "grid points: 3 (3 trials run, each point once; search.trials is 4)" in out


def test_the_table_shows_each_default_and_how_it_was_chosen(cli, tmp_path):
    text = ok_with(5, "optimizer: {lr: {loguniform: [1e-4, 1e-1], default: 0.01}}").replace(
        "trials: 4", "trials: 4, start: [{model.dropout: 0.3}]")
    code, out, err = cli("check", str(write(tmp_path, text)))
    assert code == 0, err
    rows = {line.split()[0]: line for line in out.splitlines()}
    assert "0.01 (given in the space)" in rows["optimizer.lr"] and "0.25 (midpoint)" in rows["model.dropout"]
    assert "first trials: 2 known configuration(s) (the default configuration, then search.start)" in out
    code, out, err = cli("check", str(write(tmp_path, OK)))
    assert "0.003162 (geometric mean)" in out and "first trials" not in out
    code, out, err = cli("check", str(write(tmp_path, text)), "--set", "search.trials=1")
    assert "warning: search.trials is 1: 1 of the known configurations do not run" in out
    code, out, err = cli("check", str(write(tmp_path, text)), "--set", "search.default_first=false")
    assert "first trials: 1 known configuration(s) (search.start), before the sampler proposes any" in out


def test_check_says_how_long_a_trial_runs_and_what_bounds_the_search(cli, tmp_path):
    code, out, err = cli("check", str(write(tmp_path, OK)), "--set", "train.epochs=6")
    assert code == 0, err
    assert "        a trial: at most 6 epochs (train.epochs); the trials together at most 24 epochs (4 trials x 6)\n" \
        in out
    code, out, err = cli("check", str(write(tmp_path, OK)), "--set", "search.epoch_budget=30", "--set",
                         "search.max_failures=2", "--set", "search.trials=20")
    assert "; the trials together at most 30 epochs (epoch_budget); a failed trial retried 2 time(s)" in out
    code, out, err = cli("check", str(write(tmp_path, OK)), "--set", "train.epochs=6", "--set", "search.trials=4",
                         "--set", "search.epoch_budget=500")  # a budget the search cannot reach ended nothing unsaid
    assert "; the trials together at most 24 epochs (4 trials x 6, under its epoch_budget of 500)\n" in out
    assert ("        disk: a trial keeps at most 3 checkpoints (keep_checkpoints 2, and its latest), the search at most "
            "12 (4 trials x 3), each the model's weights and optimizer state; on a small disk, set "
            "search.keep_checkpoints: 1 (docs/reliability.md, 'A full disk')\n") in out  # a bound before it runs
    code, out, err = cli("check", str(write(tmp_path, OK)), "--set", "search.keep_checkpoints=1")
    assert "disk: a trial keeps at most 2 checkpoints (keep_checkpoints 1, and its latest), the search at most 8 " in out
    code, out, err = cli("check", str(write(tmp_path, OK)), "--set", "search.resources={cpu: 2, custom: {licence: 1}}")
    assert "        resources per trial: 2 cpu, 0 gpu, 1 licence; max concurrent" in out, out + err


def test_the_export_line_says_a_recipe_without_export_exports_nothing(cli, tmp_path):
    """docs/recipes.md's smallest recipe defines no export(): `run` exports nothing, and `check` says so."""
    doc = (REPO / "docs" / "recipes.md").read_text()
    (tmp_path / "minimal.py").write_text(re.search(r"^```python\n(.*?)^```", doc, flags=re.S | re.M).group(1))
    (tmp_path / "line.yaml").write_text(re.search(r"^```yaml\n(.*?)^```", doc, flags=re.S | re.M).group(1))
    code, out, err = cli("check", str(tmp_path / "line.yaml"))
    assert code == 0, err
    assert out.rstrip().endswith("export: none (recipe 'minimal.py' defines no export())")
    code, out, err = cli("check", str(write(tmp_path, OK)))  # the tiny recipe has one
    assert out.rstrip().endswith("export: models/t (promote always)")
    code, out, err = cli("check", str(write(tmp_path, OK + "export: {promote: if_better, min_improvement: 0.005}\n")))
    assert out.rstrip().endswith("export: models/t (promote if_better, by more than 0.005)")
    code, out, err = cli("check", str(write(tmp_path, OK + "export: {min_improvement: 0.005}\n")))
    assert out.rstrip().endswith("export: models/t (promote always; a retrain, --if-data-changed, promotes if better "
                                 "by more than 0.005)")


def test_grid_points_are_printed(cli, tmp_path):
    text = ok_with(4, "model: {width: {grid: [8, 16, 32]}, arch: {grid: [mlp, cnn]}}")
    text = text.replace("optimizer: {lr: {loguniform: [1e-4, 1e-1]}}", "optimizer: {lr: 0.1}")
    code, out, err = cli("check", str(write(tmp_path, text)), "--set", "search.sampler=grid")
    assert code == 0, err
    assert "grid points: 6 (search.trials is 4: 2 points do not run)" in out
    code, out, err = cli("check", str(write(tmp_path, text)), "--set", "search.sampler=grid", "--set",
                         "search.trials=8")
    assert "grid points: 6 (6 trials run, each point once; search.trials is 8)" in out


def test_a_space_that_searches_nothing_is_warned_of(cli, tmp_path):
    """No distribution in the space: every trial would train the same configuration."""
    text = ok_with(5, "optimizer: {lr: 0.1}").replace("model: {dropout: {uniform: [0.0, 0.5]}}", "model: {}")
    code, out, err = cli("check", str(write(tmp_path, text)))
    assert code == 0, err
    assert ("warning: the space searches no parameter: each of its 4 trials trains the same configuration; put a "
            "distribution on a key to search it") in out
    code, out, err = cli("check", str(write(tmp_path, text)), "--set", "search.trials=1")
    assert "warning" not in out
    code, out, err = cli("check", str(write(tmp_path, OK)))
    assert "warning" not in out


def test_nsga2_with_fewer_trials_than_two_generations_is_warned_of(cli):
    """NSGA-II's first generation (population_size, 50 by default) is drawn at random: 4 to 6 trials of a
    several-objective search (its default sampler) never evolve, and check said nothing."""
    space = str(REPO / "examples" / "multi_objective.yaml")
    code, out, err = cli("check", space, "--set", "search.sampler=nsga2")
    assert code == 0, err
    assert ("warning: search.trials is 16 and nsga2's population_size 50: its first generation of 50 trials is drawn "
            "at random, so the search never evolves; raise search.trials to 100 or more, or set search.sampler: "
            "{nsga2: {population_size: 8}}") in out
    code, out, err = cli("check", space)  # the example's own population_size 8: 2 generations
    assert "warning" not in out and "scheduler fifo, seed 0" in out
    code, out, err = cli("check", space, "--set", "search.scheduler=auto")  # it said auto, and ran fifo
    assert "scheduler auto (fifo here: several objectives, so no trial is stopped early), seed 0" in out


def test_auto_says_what_it_runs_for_the_space(cli, tmp_path):
    """`scheduler auto` was all check said of the default scheduler: whether this space's trials are stopped early,
    from which epoch and how hard, was not shown (adaptive hyperband, or fifo for 1-epoch trials)."""
    code, out, err = cli("check", str(write(tmp_path, OK)), "--set", "search.scheduler=auto")
    assert code == 0, err
    assert "scheduler auto (hyperband(max_t=3, grace_period=1, reduction_factor=3, adaptive=True) here), seed" in out
    code, out, err = cli("check", str(write(tmp_path, OK)), "--set", "search.scheduler=auto", "--set", "train.epochs=1")
    assert "scheduler auto (fifo here: a trial runs 1 epoch, so no trial is stopped early), seed" in out


def test_merge_keys_override_and_x_keys_hold_anchors(cli, tmp_path):
    text = ok_with(5, "optimizer: {choice: [*sgd, {<<: *sgd, name: adamw, lr: {loguniform: [1e-4, 1e-2]}}]}")
    text = "x-optimizers:\n  sgd: &sgd {name: sgd, lr: {loguniform: [1e-3, 1e-1]}, weight_decay: 1e-4}\n" + text
    code, out, err = cli("check", str(write(tmp_path, text)))
    assert code == 0, err
    rows = {line.split()[0]: line for line in out.splitlines()}
    assert "[0.001, 0.1]" in rows["optimizer[sgd].lr"] and "[0.0001, 0.01]" in rows["optimizer[adamw].lr"]


def _subprocess(*argv: str) -> subprocess.CompletedProcess:
    code = "import sys; from autotune.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("text, path, line", [(ok_with(6, "train: {epochs: ten}"), "train.epochs", 6),
                                              ("", "<root>", 1)])
def test_invalid_space_in_a_real_process(tmp_path, text, path, line):
    space = write(tmp_path, text)
    result = _subprocess("check", str(space))
    assert result.returncode == 2
    assert f"{space}:{line}: {path}" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def _big_space(tmp_path: Path) -> Path:
    """A 200-line space of the shipped recipe: 60 optimizer options, a timm model among the archs."""
    lines = ["name: big", "recipe: image_classification", "data: {dataset: digits, augment: {choice: [none, light]}}",
             "model:", "  arch: {choice: [simple_cnn, mlp, resnet18]}", "  dropout: {uniform: [0.0, 0.5]}",
             "optimizer:", "  choice:"]
    for i in range(60):
        lines += [f"    - name: {('sgd', 'adam', 'adamw')[i % 3]}", f"      lr: {{loguniform: [1e-4, {i + 2}e-2]}}",
                  f"      weight_decay: {{loguniform: [1e-6, 1e-{i % 4 + 2}]}}"]
    lines += ["train: {epochs: 3, batch_size: {choice: [16, 32, 64]}}", "search: {trials: 10, sampler: tpe}"]
    lines += [f"# note {i}" for i in range(200 - len(lines))]
    assert len(lines) == 200
    space = tmp_path / "big.yaml"
    space.write_text("\n".join(lines) + "\n")
    return space


# `python -m autotune ARGS` in this interpreter, timed from its first line to its exit; then one JSON line on
# stderr: the seconds and which heavy modules got imported
_TIMED = """\
import json, runpy, sys, time
start = time.perf_counter()
sys.argv = ["autotune", *sys.argv[1:]]
try:
    runpy.run_module("autotune", run_name="__main__")
except SystemExit as end:
    code = end.code
print(json.dumps({"seconds": time.perf_counter() - start, "code": code,
                  "heavy": [m for m in ("torch", "timm", "ray", "optuna") if m in sys.modules]}), file=sys.stderr)
"""


def test_check_of_a_200_line_space_of_the_shipped_recipe_is_fast(tmp_path):
    """Issue: `autotune check` on a 200-line space takes under 1 s. Measured in a fresh `python -m autotune check`
    process, from the first line of `python -m autotune` to its exit (the interpreter's own start, ~30 ms, not
    counted), best of 3, with timm's model names cached (as after the first check); none of torch, timm, ray,
    optuna may be imported (importing torch alone takes ~1 s here)."""
    cache = tmp_path / "cache"
    (cache / "autotune").mkdir(parents=True)
    version = importlib.metadata.version("timm")
    (cache / "autotune" / f"timm-{version}-models.json").write_text(
        json.dumps({"models": ["resnet18", "resnet34"], "deprecated": []}))
    space = _big_space(tmp_path)
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    runs = []
    for _ in range(3):
        result = subprocess.run([sys.executable, "-c", _TIMED, "check", str(space)], capture_output=True, text=True,
                                timeout=60, env=env)
        runs.append(json.loads(result.stderr.strip().splitlines()[-1]))
        assert runs[-1]["code"] == 0, result.stderr
        assert "optimizer[59].weight_decay" in result.stdout and "resnet18" in result.stdout
        assert runs[-1]["heavy"] == [], runs[-1]
    seconds = min(run["seconds"] for run in runs)
    assert seconds < 1.0, f"autotune check took {seconds:.2f}s"


@pytest.fixture(scope="session")
def timm_cache(tmp_path_factory):
    """A cache folder of this test session holding timm's real model names (importing timm once); the tests that
    use it point XDG_CACHE_HOME at it themselves (`real_cli`), so that it is not set for the rest of the session."""
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(folder))
        models._timm_model_names.cache_clear()
        models._timm_model_names()
    yield folder
    models._timm_model_names.cache_clear()


@pytest.fixture
def real_cli(cli, timm_cache, monkeypatch) -> Callable[..., tuple[int, str, str]]:
    """`cli` with the real registry (built-ins, timm's model names from this session's cache)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(timm_cache))
    return cli


SHIPPED = sorted((REPO / "search_spaces").glob("*.yaml"))


def test_the_shipped_spaces_are_found():
    assert {p.stem for p in SHIPPED} >= {"digits", "mnist", "fashion_mnist", "cifar10"}


@pytest.mark.parametrize("space", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_space_passes_check(real_cli, space):
    code, out, err = real_cli("check", str(space))
    assert code == 0, err
    recipe = re.search(r"^recipe: (\w+)", space.read_text(), flags=re.M).group(1)
    assert out.startswith(f"{space.stem}: recipe {recipe}, ")
    assert space.read_text().startswith(f"# autotune run search_spaces/{space.name}\n")  # the command that runs it


DOC = (REPO / "docs" / "search-space.md").read_text()
# every ```yaml block of the docs that is a whole space (it names its recipe or itself)
DOC_SPACES = [b for b in re.findall(r"^```yaml\n(.*?)^```", DOC, flags=re.S | re.M)
              if re.search(r"^(recipe|name):", b, flags=re.M)]


def test_the_docs_hold_complete_spaces():
    assert DOC_SPACES and "# an example of every section" in DOC_SPACES[0]


@pytest.mark.parametrize("index", range(len(DOC_SPACES)))
def test_every_complete_space_in_the_docs_passes_check(real_cli, tmp_path, monkeypatch, index):
    text = DOC_SPACES[index]
    for custom in re.findall(r"^custom:\s*(\S+)", text, flags=re.M):  # the reader's own file: an empty one will do
        (tmp_path / custom).write_text('"""Functions of your own."""\n')
    monkeypatch.delenv("DATA_ROOT", raising=False)
    space = tmp_path / "space.yaml"
    space.write_text(text)
    code, out, err = real_cli("check", str(space))
    assert code == 0, err
    if index == 0:  # the docs show what check prints for the complete example
        shown = re.search(r"`autotune check` prints it as:\n\n```\n(.*?)```", DOC, flags=re.S)
        assert shown is not None and out == shown.group(1)


def test_output_to_a_reader_that_went_away_ends_quietly():
    """`autotune check space.yaml | head -1`: the pipe closed before the output is written ends the command with
    the shell's status for SIGPIPE (141), not a BrokenPipeError traceback."""
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line
    try:
        done = subprocess.run([sys.executable, "-c", "import sys; from autotune.cli import main; sys.exit(main())",
                               "check", str(REPO / "search_spaces" / "digits.yaml")],
                              stdout=write, stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write)
    assert done.returncode == 141 and done.stderr == "", done.stderr


@pytest.mark.parametrize("given, kept", [(None, "0"), ("1", "1")])
def test_ray_s_worker_lines_are_not_coloured_where_stdout_is_no_terminal(monkeypatch, given, kept):
    """`autotune -v run ... > log` wrote Ray's worker lines with colour codes (`\\x1b[36m(_trial pid=...)`): where stdout
    is no terminal (pytest's capture here) Ray is told not to colour them; a value the user set is kept."""
    monkeypatch.setenv("RAY_COLOR_PREFIX", given or "")  # restored after the test, as it was
    if given is None:
        monkeypatch.delenv("RAY_COLOR_PREFIX")
    assert main(["check", str(REPO / "search_spaces" / "digits.yaml")]) == 0
    assert os.environ["RAY_COLOR_PREFIX"] == kept


@pytest.mark.parametrize("no_color, kept", [("1", "0"), ("", None)])
def test_ray_s_worker_lines_are_not_coloured_at_a_terminal_under_no_color(monkeypatch, no_color, kept):
    """At a terminal, NO_COLOR=1 (no-color.org) still let Ray colour its worker lines under -v
    (`\\x1b[36m(_trial pid=...)\\x1b[0m`): it now tells Ray not to, as where stdout is no terminal; an empty
    NO_COLOR is unset, as the convention says."""
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setenv("NO_COLOR", no_color)
    monkeypatch.setenv("RAY_COLOR_PREFIX", "")  # restored after the test, as it was
    monkeypatch.delenv("RAY_COLOR_PREFIX")
    assert main(["check", str(REPO / "search_spaces" / "digits.yaml")]) == 0
    assert os.environ.get("RAY_COLOR_PREFIX") == kept


def test_text_the_terminal_cannot_encode_is_escaped_not_a_traceback(tmp_path):
    """Under an ASCII-only output encoding (PYTHONIOENCODING=ascii, a Latin-1 locale), an accented run name is
    written escaped; `print` failed with UnicodeEncodeError (after a search's export, for `run`)."""
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    done = subprocess.run([sys.executable, "-m", "autotune", "check", str(REPO / "search_spaces" / "digits.yaml"),
                           "--set", "name=été"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert done.stdout.startswith("\\xe9t\\xe9: recipe image_classification")


def test_a_fraction_of_a_megabyte_is_a_memory_limit(cli, tmp_path):
    """data.memory_limit_mb is a number (`float`), but its default was the whole number 1024, so check refused 0.5
    as not a whole number."""
    (tmp_path / "photos" / "a").mkdir(parents=True)
    code, out, err = cli("check", str(REPO / "search_spaces" / "digits.yaml"), "--set", "data.dataset=image_folder",
                         "--set", f"data.root={tmp_path / 'photos'}", "--set", "data.memory_limit_mb=0.5")
    assert code == 0, err


def test_check_says_what_a_positional_label_stands_for(tmp_path, capsys):
    """A choice holding null (or equal values, 1 and true) is recorded by position: `check` shows each position's
    value, as the space writes it, so that trials.csv's and the study's `0` and `1` can be read."""
    space = tmp_path / "labels.yaml"
    space.write_text("recipe: image_classification\ndata: {dataset: digits}\n"
                     "model: {arch: mlp, width: {choice: [null, 32]}}\ntrain: {epochs: 1}\n")
    assert main(["check", str(space)]) == 0
    assert re.search(r"^model\.width +choice +0=null, 1=32 ", capsys.readouterr().out, re.M)


@pytest.mark.parametrize("recipe_args, key, wrote", [
    (("tabular.yaml", "data.dataset=csv", "data.target=y"), "data.path", "trian.csv"),
    (("digits.yaml", "data.dataset=image_folder"), "data.root", "photso"),
    (("digits.yaml", "data.dataset=idx"), "data.root", "mnsit"),
])
def test_check_names_a_data_path_that_does_not_exist(cli, tmp_path, monkeypatch, recipe_args, key, wrote):
    """`check` said nothing of a mistyped data file or folder, which only `run` found when it loaded the data: it
    warns (the file may be written later, so the exit status stays 0) and names a close name beside it."""
    (tmp_path / "train.csv").write_text("x,y\n1,0\n")
    (tmp_path / "photos").mkdir()
    (tmp_path / "mnist").mkdir()
    monkeypatch.chdir(tmp_path)
    space, *sets = recipe_args
    argv = ["check", str(REPO / "search_spaces" / space), *(a for s in sets for a in ("--set", s))]
    code, out, err = cli(*argv, "--set", f"{key}={wrote}")
    assert code == 0, err
    right = {"trian.csv": "train.csv", "photso": "photos", "mnsit": "mnist"}[wrote]
    line = len(sets) + 1  # the --set that gives the path
    assert (f"warning: <--set>:{line}: {key}: {tmp_path / wrote} does not exist (yet); did you mean "
            f"{tmp_path / right}?") in out.splitlines(), out
    code, out, err = cli(*argv, "--set", f"{key}={right}")
    assert code == 0 and "does not exist" not in out, out


def test_the_table_lines_up_options_of_wide_characters_in_terminal_cells(real_cli):
    """A choice of Chinese file names ('表.csv', two cells a character) pushed the default column right of its
    header by one cell a wide character; columns are measured in terminal cells (`summary.text_width`)."""
    from autotune.engine.summary import text_width

    code, out, err = real_cli("check", "search_spaces/tabular.yaml", "--set", "data.path={choice: [表.csv, 表二.csv]}")
    assert code == 0, err
    header, row = (line for line in out.splitlines() if line.startswith(("parameter", "data.path")))
    assert text_width(header[:header.index("default")]) == text_width(row[:row.index("表.csv (first")])


def test_the_table_shows_a_choice_of_lists_with_their_text_as_written(real_cli):
    """A choice of columns to drop, named in Chinese and Turkish, read 0=["\\u90fd\\u5e02"]: the options' text is
    shown as written."""
    code, out, err = real_cli("check", "search_spaces/tabular.yaml", "--set", "data.drop={choice: [[都市], [Ülke İ]]}")
    assert code == 0, err
    assert '0=["都市"], 1=["Ülke İ"]' in out and "\\u" not in out
