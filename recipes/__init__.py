"""autotune's recipes: one readable file each, that trains one configuration and reports each epoch.

A recipe is a module with two things required:

- `SCHEMA`: an `autotune.space.Schema` of the ingredients it reads, and what the engine needs of its trials:
  `budget`, the dotted key of the number of reports a trial makes (`train.epochs`: early stopping counts in it;
  none: the trials are searched with FIFO, and asking for early stopping is a `check` error), `metrics`, what each
  report holds and which way is better (the first is the default `search.metric`; `check` refuses others), and
  `tests`, the held-out twin `evaluate` gives of a validation metric (it decides `export.promote: if_better`);
- `train(config, report, *, data=None, checkpoint=None)`: trains one configuration, calling
  `report(metrics, checkpoint)` once per epoch; resumes from the `checkpoint` directory when given. The
  `checkpoint` reported is one of (the `Checkpoint` type below):
  - a function `save(directory)` that writes this epoch's checkpoint into the (empty) folder it is given. It is
    called at most once, before `report` returns, and only when the engine keeps this epoch's checkpoint (see
    `search.checkpoint_every` in docs/search-space.md), so a recipe pays for no checkpoint nobody keeps;
  - a folder the recipe has already written: the engine copies it when it keeps it; the recipe may delete it once
    `report` returns;
  - None: no checkpoint this epoch.

  Anything else (a state dict) is a broken report (`written`), which a search stops at.

and, each optional (without it, what needs it says so in one line, or does without):

- `load_data(data: dict) -> Data`: loads the data once (per node), separate from training, and hands it to every
  trial as `data=`; its `fingerprint` (a str attribute) lets `--if-data-changed` tell new data, and its
  `describe()` (one line) is what `autotune train` prints of it. Without it, `data` is None and each trial loads
  what it needs. A recipe that splits with `autotune.splits` (added samples move no other) says so with
  `SPLIT = autotune.splits.SCHEME`: a retrain then compares the current model on the new test split;
- `evaluate(path, data) -> dict`: metrics on the held-out test split, of a checkpoint or of an exported model
  directory (the engine measures the export it ships, and compares it with the current canonical model). Without
  it, an export has no test metrics and `promote: if_better` promotes;
- `export(checkpoint, data, out_dir) -> dict`: writes a self-contained, loadable model into `out_dir`
  and returns what the model card records about it. Without it, a search exports nothing (its best checkpoint
  stays in the run) and `autotune train --out` is refused;
- `dry_run(config, data)`: builds the model and runs one forward pass, so that a model that does not fit the data
  is reported before the search starts (`autotune.preflight`);
- `lr_find(config, data, *, start, end, steps) -> autotune.vision.lr_find.Sweep`: the learning-rate range test of
  `autotune lr-find`, on the space's default configuration (`data` as `load_data` gives it for that configuration,
  or None);
- `test_predictions(model_dir, data) -> ClassPredictions | ValuePredictions`: an exported model's predictions on
  the held-out test split (`data` as `load_data` gives it), which `autotune report` draws: a confusion matrix, the
  accuracy per class, each split's classes, and the misclassified samples when it is given the test images; or
  the predicted against the true values, and the residuals. Without it, the report says in one line that the
  recipe gives no test predictions;
- `input_example(model_dir) -> numpy.ndarray | None`: one input the exported model takes, which MLflow keeps with
  the model it logs (and infers the model's signature from). Without it, or None, the MLflow model has none;
- `load_model(model_dir) -> predictor`: the exported model loaded once for Python, with `predict(...)` and `card`;
  `autotune.load_model(model_dir)` calls the one of the recipe its card names. Without it, that says the recipe has
  none;
- `predict(model_dir, files, **options) -> Iterable[dict | autotune.errors.BadInput]`: `autotune predict`, a
  JSON-ready record per prediction, and a BadInput (its `source` the file) yielded, not raised, for each file it
  refuses, which is reported and skipped (a raised one ends the command); options: `top_k` when it takes one.
  Without it, `autotune predict` says the recipe has none;
- `serve(model_dir, **limits) -> ASGI app`: `autotune serve`, an app answering POST /predict (built on
  `autotune.serve`: GET /health and GET /model, body limits); the limits it takes are keywords (`max_bytes`, ...),
  and one it does not take is refused in one line. Without it, `autotune serve` says the recipe has none;
- `TRAINING_ONLY_DATA_KEYS`: data keys that `load_data` ignores, so searching them still shares one load of the
  data. Searching any other `data.` key makes each trial load its own data;
- `data_for(config) -> dict`: the data section a configuration loads, where it depends on more than
  `config["data"]` (the image recipe fills an image folder's size and resizing from a pretrained model's data
  config); `train` and `evaluate` load their own data when the `data` they are given was loaded with other
  settings.

Recipes never import ray. A `recipe:` in a space is a name of a module here, or a path to a `.py` file.

This module is the contract's public face, importable without torch: `Report` and `Checkpoint` type a recipe's
`train`, `ClassPredictions` and `ValuePredictions` its `test_predictions`, and `Recipe` is the protocol a recipe
module satisfies (`isinstance(module, Recipe)`, or a type checker).
"""
from __future__ import annotations

import errno
import hashlib
import importlib
import logging
import inspect
import os
import pkgutil
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, runtime_checkable

from autotune.calls import failure
from autotune.errors import AutotuneError, MissingMetric, TrialError, UnknownNameError, UserError
from autotune.paths import expanded, out_of_space
from autotune.registry import close_matches
from autotune.space.schema import Schema
from autotune.user_code import UserCodeFailed, exec_file

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Checkpoint", "ClassPredictions", "Recipe", "Reference", "Report", "ValuePredictions", "available",
           "data_section", "call", "described", "fingerprint", "load", "load_data", "load_schema", "of_card", "reported",
           "split_sizes", "written"]

log = logging.getLogger("autotune")

Checkpoint: TypeAlias = "Callable[[str], None] | str | os.PathLike[str] | None"  # save(directory), a folder, or none
Report: TypeAlias = "Callable[[dict[str, float], Checkpoint], None]"  # report(metrics, checkpoint), once per epoch


@runtime_checkable
class Recipe(Protocol):
    """A recipe module: its `SCHEMA` and `train`, the two things required (the optional functions: above)."""

    SCHEMA: Schema

    def train(self, config: dict[str, Any], report: Report, *, data: Any = None,
              checkpoint: str | None = None) -> None: ...


@dataclass(frozen=True)
class Reference:
    """A simple model's predictions on the same held-out test samples, which the report scores beside the model's
    (the tabular recipe's: scikit-learn's LogisticRegression or Ridge, fitted on the same train rows)."""

    name: str  # what it is, as the report's sentence names it
    predicted: np.ndarray  # (N,): its class of each test sample (ClassPredictions), or its value (ValuePredictions)


@dataclass(frozen=True)
class ClassPredictions:
    """A classifier's predictions on the held-out test split, which a recipe's `test_predictions` returns."""

    labels: list[str]  # the class names, in the order of the class indices
    truth: np.ndarray  # (N,) int: each test sample's true class
    predicted: np.ndarray  # (N,) int: the class the model gives it
    confidence: np.ndarray  # (N,) float: the model's probability of that class
    counts: dict[str, np.ndarray]  # split ("train", "val", "test") -> its samples of each class, (len(labels),)
    images: np.ndarray | None = None  # the test samples as uint8 (N, C, H, W) images: the report shows those missed
    reference: Reference | None = None  # a simple model's classes of the test samples, scored beside the model's

    @classmethod
    def of(cls, labels: Sequence[str], probabilities: np.ndarray, splits: Mapping[str, np.ndarray],
           images: np.ndarray | None = None) -> ClassPredictions:
        """From the model's probabilities (N, classes) of the test samples and the true classes of each split's
        samples (`splits["test"]`: the test samples', in the order of `probabilities`)."""
        import numpy as np

        probabilities = np.asarray(probabilities)
        counts = {name: np.bincount(truth, minlength=len(labels)) for name, truth in splits.items()}
        return cls(list(labels), np.asarray(splits["test"]), probabilities.argmax(axis=1),
                   probabilities.max(axis=1), counts, images)

    def one_class(self) -> str:
        """Why the model is of no use where it predicts one class for every test sample while the test split holds
        others (it learned nothing that tells the classes apart: features without signal, a heavily imbalanced
        target), for a warning; "" otherwise."""
        import numpy as np

        predicted = np.unique(self.predicted)
        if len(predicted) != 1 or len(np.unique(self.truth)) < 2:
            return ""
        name, share = self.labels[int(predicted[0])], float(np.mean(self.truth == predicted[0]))
        return (f"the exported model predicts {name!r} for every one of the {len(self.truth)} test samples: it tells "
                f"no class apart (its test accuracy, {100 * share:.1f}%, is that class's share of the test split); "
                "search.metric: val_balanced_accuracy, which always predicting one class does not reward, "
                "train.class_weight: balanced, or features that tell the classes apart")


@dataclass(frozen=True)
class ValuePredictions:
    """A regression model's predictions on the held-out test split, which a recipe's `test_predictions` returns."""

    target: str  # what the model predicts (a table's target column)
    truth: np.ndarray  # (N,) float: each test sample's true value
    predicted: np.ndarray  # (N,) float: the model's value for it
    reference: Reference | None = None  # a simple model's values of the test samples, scored beside the model's


_REQUIRED = ("SCHEMA", "train")
# How autotune calls each function of the contract: (the signature the docs give, positional arguments, keywords)
_CALLS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "train": ("train(config, report, *, data=None, checkpoint=None)", ("config", "report"), ("data", "checkpoint")),
    "load_data": ("load_data(data)", ("data",), ()),
    "evaluate": ("evaluate(path, data)", ("path", "data"), ()),
    "export": ("export(checkpoint, data, out_dir)", ("checkpoint", "data", "out_dir"), ()),
    "dry_run": ("dry_run(config, data)", ("config", "data"), ()),
    "lr_find": ("lr_find(config, data, *, start, end, steps)", ("config", "data"), ("start", "end", "steps")),
    "test_predictions": ("test_predictions(model_dir, data)", ("model_dir", "data"), ()),
    "input_example": ("input_example(model_dir)", ("model_dir",), ()),
    "load_model": ("load_model(model_dir)", ("model_dir",), ()),
    "predict": ("predict(model_dir, files, **options)", ("model_dir", "files"), ()),
    "serve": ("serve(model_dir, **limits)", ("model_dir",), ()),
    "data_for": ("data_for(config)", ("config",), ()),
    "reported": ("reported(config, data)", ("config", "data"), ()),
}


def data_section(recipe: ModuleType, config: dict[str, Any]) -> dict[str, Any]:
    """The data section `recipe.load_data` takes for `config`: its `data_for(config)`, else `config["data"]`."""
    data_for = getattr(recipe, "data_for", None)
    return data_for(config) if data_for is not None else config.get("data", {})


def load_data(recipe: ModuleType, section: dict[str, Any]) -> Any:
    """`recipe.load_data(section)`; None for a recipe without one (each trial loads what it needs itself)."""
    return call(recipe, "load_data", section) if hasattr(recipe, "load_data") else None


def described(data: Any) -> str:
    """The data a recipe loaded, in one line, as its `describe()` tells (else the name of its type): what `train`
    and `run` print before training, so that the user sees how the data was read (a table's task among it)."""
    describe = getattr(data, "describe", None)
    return f"data: {describe() if callable(describe) else type(data).__name__}"


def fingerprint(data: Any) -> str | None:
    """The data's `fingerprint` (the optional str attribute `load_data`'s data carries), None without one: what a
    model's card records of its data, whatever the recipe's export() returns, and what a retrain compares."""
    return str(getattr(data, "fingerprint", "") or "") or None


def split_sizes(data: Any) -> dict[str, int]:
    """The samples in each of the data's `train`, `val` and `test` splits, those it has with a length: what a model's
    card records beside the metrics measured on them (an accuracy over 68 test rows is uncertain by some 0.09)."""
    splits = {name: getattr(data, name, None) for name in ("train", "val", "test")}
    return {name: len(split) for name, split in splits.items() if hasattr(split, "__len__")}


def call(recipe: ModuleType, function: str, *args: Any, **kwargs: Any) -> Any:
    """`recipe.<function>(*args, **kwargs)`, where an exception of the recipe's own (not autotune's errors, which say
    what they mean) is one line naming the function, its file and line: `recipe function 'evaluate' (mine.py,
    line 40) failed: FileNotFoundError: ...` (the traceback, with `-v`)."""
    fn = getattr(recipe, function)
    try:
        return fn(*args, **kwargs)
    except AutotuneError:
        raise
    except Exception as err:  # the recipe's code: anything it raises
        raise failure("recipe function", function, fn, err) from err


NO_REPORT = ("the recipe's train() returned without calling report(metrics, checkpoint): report the metrics once "
             "per epoch")


def reported(metrics: Mapping[str, Any], searched: Sequence[str]) -> dict[str, Any]:
    """A report's metrics as the engine keeps them: a one-value tensor or NumPy number as the Python number it
    holds. TrialError (one line) when a value is a tensor or array of several values; MissingMetric when the report
    lacks a searched metric (`search.metric`) or holds one that is not a number: every report must hold those."""
    out = {}
    for name, value in metrics.items():
        if hasattr(value, "item") and not isinstance(value, (bool, int, float, str)):
            try:
                value = value.item()
            except (ValueError, RuntimeError):  # NumPy's and torch's word for more than one value
                raise TrialError(f"the reported metric {name!r} holds several values ({type(value).__name__}); "
                                 "report one number per metric") from None
        out[name] = value
    missing = [name for name in searched if name not in out]
    if missing:
        raise MissingMetric(f"the recipe reported {', '.join(out) or 'no metric'} but not {missing[0]!r}, the "
                            "searched metric (search.metric): report it every epoch, or search a metric the recipe "
                            "reports")
    for name in searched:
        if isinstance(out[name], bool) or not isinstance(out[name], (int, float)):
            raise MissingMetric(f"the recipe reported {name!r}, the searched metric (search.metric), as "
                                f"{out[name]!r} ({type(out[name]).__name__}), not a number: report a number every "
                                "epoch (NaN for an epoch without one)")
    return out


@contextmanager
def written(checkpoint: Callable[[str], None] | str | os.PathLike[str]) -> Iterator[str]:
    """The folder that holds a reported checkpoint: the recipe's own folder, or a temporary one that its
    `save(directory)` writes, removed on exit. Anything else (a state dict, a model): MissingMetric, a broken report,
    which a search stops at (every trial would report so)."""
    if isinstance(checkpoint, (str, os.PathLike)):
        yield os.fspath(checkpoint)
        return
    if not callable(checkpoint):
        raise MissingMetric("report(metrics, checkpoint): checkpoint must be a function save(directory), a folder, "
                            f"or None (got {type(checkpoint).__name__}); to keep a state dict, report a function "
                            "that writes it into the folder it is given, e.g. "
                            "`lambda directory: torch.save(state, f\"{directory}/model.pt\")`")
    directory = tempfile.mkdtemp(prefix="autotune-checkpoint-")
    try:
        try:
            checkpoint(directory)
        except Exception as err:
            full = _full_temp_disk(err, directory)
            if full is None:
                raise
            raise full from err
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _full_temp_disk(err: Exception, directory: str) -> OSError | None:
    """An ENOSPC error naming the temp folder when `err`, raised by the recipe's `save(directory)`, came from its
    disk being full (torch.save then raises a RuntimeError without an errno: "unexpected pos ..."); None when the
    disk has room, or `err` says it is full already."""
    if isinstance(err, OSError) and err.errno == errno.ENOSPC or not out_of_space(err, directory):
        return None
    free = shutil.disk_usage(directory).free
    return OSError(errno.ENOSPC, f"the disk of the temp folder {os.path.dirname(directory)} is full ({free} bytes "
                   f"free) where the recipe's save() wrote a checkpoint ({type(err).__name__}: {err}); free space "
                   "there, or set TMPDIR to a folder on a larger disk for the trials (on a cluster: for Ray on that "
                   "node)", directory)


def available() -> list[str]:
    """Names of the recipes shipped in this package."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def _locate(name: str, base: str | Path | None) -> tuple[Path, str]:
    """(the recipe's file, its module name) for a shipped recipe name or a `.py` path relative to `base`."""
    if name.endswith(".py"):
        path = expanded(name)
        if not path.is_absolute() and base is not None:
            path = Path(base) / path
        if not path.is_file():
            raise UserError(f"recipe file {str(path)!r} does not exist")
        digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
        return path, f"autotune_recipe_{path.stem}_{digest}"
    if name not in available():
        hint = close_matches(name, available())
        fix = f"did you mean {hint[0]!r}?" if hint else f"the shipped recipes are {', '.join(available())}"
        raise UnknownNameError(f"unknown recipe {name!r}; {fix}")
    return Path(__file__).with_name(f"{name}.py"), f"{__name__}.{name}"


def _lacks(name: str, defined: Any) -> None:
    missing = [attr for attr in _REQUIRED if attr not in defined]
    if missing:
        raise UserError(f"recipe {name!r} lacks {', '.join(missing)}: a recipe must define {', '.join(_REQUIRED)}")


def _check_calls(name: str, module: ModuleType) -> None:
    """Each function of the contract that the recipe defines takes the arguments autotune gives it; else a UserError
    naming the function, its file and line, and the signature to give it (before a search calls it in a trial)."""
    for function, (shown, args, keywords) in _CALLS.items():
        fn = getattr(module, function, None)
        if not callable(fn):
            continue
        try:
            signature = inspect.signature(fn)
        except (TypeError, ValueError):  # no signature to read (a builtin): called as it is
            continue
        try:
            signature.bind(*args, **{k: None for k in keywords})
        except TypeError as err:
            code = getattr(inspect.unwrap(fn), "__code__", None)
            where = f" ({Path(code.co_filename).name}, line {code.co_firstlineno})" if code else ""
            raise UserError(f"recipe {name!r}: {function}{signature}{where} cannot be called as autotune calls it "
                            f"({err}); define it as {shown}") from None


def load(name: str, base: str | Path | None = None) -> ModuleType:
    """Import the recipe `name` (a shipped recipe, or a `.py` path relative to `base`)."""
    path, module_name = _locate(name, base)
    if name.endswith(".py"):
        try:
            module = exec_file(path, module_name)
        except UserCodeFailed as err:  # the user's file: one line naming it, not a traceback
            where = f"{path}:{err.line}" if err.line else str(path)
            raise UserError(f"recipe {name!r} cannot be imported: {where}: {err.text}") from err
    else:
        module = importlib.import_module(module_name)
    _lacks(name, vars(module))
    _check_calls(name, module)
    return module


def of_card(card: Mapping[str, Any], *, custom_needed: bool = True) -> ModuleType:
    """The recipe that made the exported model of `card` (its model.json), the space's custom modules imported
    first, as in the search. A card that names no recipe is an image classifier's, from before cards named one.
    `custom_needed` False (to predict, serve or load the model): a shipped recipe's exported model is TorchScript,
    which needs none of the custom file's code, so a custom file that is gone (the model copied to another machine),
    fails to import (edited since), or registers names another model's file registered in this process is a
    warning, not an error. A `.py` recipe's model may need its custom file: always an error."""
    recipe = card.get("recipe", "image_classification")
    if card.get("custom"):
        from autotune.space import import_custom

        try:
            import_custom(card["custom"])
        except UserError as err:
            if custom_needed or recipe.endswith(".py"):
                raise
            log.warning("the model's custom file is not imported (%s): its %s model needs none of its code to "
                        "predict", err, recipe)
    return load(recipe, card.get("base_dir"))


def load_schema(name: str, base: str | Path | None = None) -> Schema:
    """The `SCHEMA` of recipe `name`: every command reads it this way, by importing the recipe. A recipe keeps that
    import light by importing torch inside its functions (as the shipped ones do), so `autotune check` stays
    instant."""
    schema = load(name, base).SCHEMA
    if not isinstance(schema, Schema):
        raise UserError(f"recipe {name!r}: SCHEMA is a {type(schema).__name__}, not an autotune.space.Schema")
    return schema
