"""Tabular classification and regression: trains one configuration of a search space, as a trial or standalone.

Read it top to bottom: SCHEMA (the ingredients it understands) -> data -> model -> optimizer and schedule -> train
loop (one report per epoch, with a function that saves its checkpoint if the engine keeps it) -> evaluate -> export.
To change the recipe, copy this file and point a space at it (`recipe: my_recipe.py`); the helpers it uses live in
`autotune.tabular`.

The table is encoded once (numeric columns standardised with the train split's statistics, categorical ones as
vocabulary indices: `autotune.tabular.data`) and lives on the device as tensors, batched by slicing a seeded
permutation (no DataLoader). Category dropout (train.category_dropout) reads a share of each batch's categorical
cells as unknown or missing, so that a category training never saw predicts what a typical one does; class weights
(train.class_weight) weigh the training loss of a classifier only. A regression target is standardised for
training; its metrics and predictions are in its own units. The exported model.pt takes the encoded tensors;
`autotune.tabular.rows` encodes rows as here.

Torch, pandas and the helpers that use them are imported inside the functions that need them: importing the
recipe (to read its SCHEMA, as `autotune check` does) stays instant.
"""
from __future__ import annotations

import codecs
import json
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autotune.errors import Diverged, Problem, UserError
from autotune.recipes import ClassPredictions, Report, ValuePredictions
from autotune.space.schema import Field, Schema, Section, found, held_out, needed_with, positive
from autotune.splits import SCHEME
from autotune.tabular.catalog import DATASET_NAMES, DATASETS, TASK_RULE
from autotune.vision.optimizers import build as build_optimizer, nesterov_problems, warmup_throughout

if TYPE_CHECKING:
    import pandas as pd
    import torch
    from fastapi import FastAPI

    from autotune.errors import BadInput
    from autotune.tabular.data import Data, Preprocessing, Split
    from autotune.tabular.model import TabularMLP
    from autotune.tabular.rows import TabularPredictor
    from autotune.vision.lr_find import Sweep

log = logging.getLogger("autotune")
SPLIT = SCHEME  # split by autotune.splits' keys: added samples move no other (a retrain compares models)
EVAL_BATCH = 8192
CATEGORY_DROPOUT = 0.05  # train.category_dropout's default: bench/tabular_categories.py measures it
PROBABILITY_DIGITS = 6  # predict's probabilities, as the image recipe's (autotune.vision.inference.records)


def _missing_problems(config: Mapping[str, Any]) -> list[Problem]:
    """A Schema check of data.missing: it lists texts (not numbers YAML read from unquoted cells)."""
    missing = config.get("data", {}).get("missing")
    wrong = [item for item in missing if not isinstance(item, str)] if isinstance(missing, list) else []
    if wrong:
        return [Problem("data.missing", f"must list texts only, got {wrong[0]!r}", f"quote it: {str(wrong[0])!r}")]
    return []


def _csv_problems(config: Mapping[str, Any]) -> list[Problem]:
    """A Schema check of the keys that say how a CSV file is read (data.missing, data.encoding, data.decimal): they
    are refused with a bundled table, and data.encoding names a text encoding Python knows."""
    data = config.get("data", {})
    given = {"missing": data.get("missing") is not None, "encoding": data.get("encoding", "utf-8") != "utf-8",
             "decimal": data.get("decimal", ".") != "."}
    problems = [Problem(f"data.{key}", f"is read with dataset: csv only, not {data.get('dataset')}",
                        "remove it, or set data.dataset: csv") for key, is_set in given.items()
                if is_set and data.get("dataset") != "csv"]
    encoding = data.get("encoding", "utf-8")
    try:
        codecs.lookup(encoding)
        "".encode(encoding)  # a codec of bytes to bytes ("base64") is no text encoding
    except (LookupError, TypeError):
        problems.append(Problem("data.encoding", f"must be a text encoding Python knows, not {encoding!r}",
                                "use the file's encoding: utf-8, or cp1252 for a file Excel saved on Windows "
                                "(Python's codec names: latin-1, utf-16, ...)"))
    return problems


def _order_problems(config: Mapping[str, Any]) -> list[Problem]:
    """A Schema check: data.key decides a split drawn by chance, which data.order (a split by time) replaces."""
    data = config.get("data", {})
    if data.get("order") is None or not data.get("key"):
        return []
    return [Problem("data.key", f"decides a split drawn by chance, but data.order ({data['order']!r}) splits the rows "
                    "by time", "remove data.key: the rows' times alone decide their split, so added columns or rows "
                    "move no earlier row into the test split")]


def _batch_norm_problems(config: Mapping[str, Any]) -> list[Problem]:
    """A Schema check: model.batch_norm normalises each training batch by its own mean and variance, which a batch of
    one row has not (torch refuses it in the first step of training and of lr-find)."""
    if not config.get("model", {}).get("batch_norm") or config.get("train", {}).get("batch_size") != 1:
        return []
    return [Problem("train.batch_size", "is 1, but model.batch_norm needs batches of at least 2 rows (it "
                    "normalises by the batch's mean and variance)",
                    "raise train.batch_size (e.g. 32), or set model.batch_norm: false")]


def _class_weight_problems(config: Mapping[str, Any]) -> list[Problem]:
    """A Schema check: train.class_weight balanced weighs classes, so it is refused with a table the config says is
    regression (data.task: regression, or the bundled diabetes). With data.task auto, `train` ignores it on a
    regression table, with a warning."""
    data = config.get("data", {})
    if config.get("train", {}).get("class_weight", "none") == "none":
        return []
    if data.get("task") == "regression":
        why = "data.task is regression"
    elif data.get("dataset") in DATASETS and DATASETS[data["dataset"]].startswith("regression"):
        why = f"data.dataset {data['dataset']} is a regression table"
    else:
        return []
    return [Problem("train.class_weight", f"weighs the classes of a classification table, but {why}",
                    "remove it, or set train.class_weight: none")]


# ----------------------------------------------------------------------------------------------- ingredients
SCHEMA = Schema(
    data=Section(
        help="the table to learn from: a CSV or Parquet file, or one of scikit-learn's bundled tables",
        dataset=Field(str, default="breast_cancer", choices=DATASET_NAMES,
                      help="csv (a .csv or .parquet file: data.path and data.target) or a bundled table: "
                           + "; ".join(f"{name} ({what})" for name, what in DATASETS.items())),
        path=Field(str, default=None, nullable=True, path=True,
                   help="dataset csv: the .csv or .parquet file (~ expanded; relative to the working directory); a "
                        "CSV may separate its values by commas, or by semicolons, tabs or bars throughout"),
        target=Field(str, default=None, nullable=True,
                     help="the column to predict (dataset csv: required; the bundled tables: `target`); rows "
                          "whose target is missing are left out"),
        task=Field(str, default="auto", choices=("auto", "classification", "regression"), help=f"auto: {TASK_RULE}"),
        val_fraction=Field(float, default=0.1, low=0.0, high=0.9,
                           help="share of the rows held out for validation (each row with this chance)"),
        test_fraction=Field(float, default=0.1, low=0.0, high=0.9,
                            help="share of the rows held out for the final test"),
        split_seed=Field(int, default=0, help="seed of the train/val/test split: a row's split follows from its "
                                              "values and this seed, so added rows move no other (keep it fixed "
                                              "during a search)"),
        drop=Field(list, default=None, nullable=True,
                   help="columns not to learn from, e.g. [customer_id, 'Unnamed: 0'] (identifiers, a saved index, "
                        "anything that gives the target away); a column without values is left out by itself"),
        key=Field(list, default=None, nullable=True,
                  help="columns whose values identify a row and alone decide its split, e.g. [customer_id] (null: "
                       "every column, those of drop too): with it, adding or removing other columns moves no row "
                       "between splits"),
        order=Field(str, default=None, nullable=True,
                    help="a column of the rows' dates or times (or numbers that order them: a month's number) by "
                         "which to split instead: the latest rows are the test split (test_fraction of them), the "
                         "ones before them the validation split (val_fraction), so that the search ranks trials on "
                         "a future they did not train on; the rows of one date share a split; split_seed is then "
                         "unused. The column stays a feature unless data.drop names it"),
        missing=Field(list, default=None, nullable=True,
                      help="dataset csv: the texts a cell holds when its value is missing, instead of pandas' "
                           "default ones (null: \"\", NA, N/A, null, nan, ...); an empty cell is always missing. "
                           "E.g. [\"\", \"?\", \"-\"] keeps NA as a category (North America, not applicable). "
                           "The model card records them, and predict and serve read new rows with them. A .parquet "
                           "file's own nulls are its missing values: it ignores this, as pandas' read_parquet "
                           "ignores na_values"),
        encoding=Field(str, default="utf-8",
                       help="dataset csv: the CSV file's text encoding, a name Python's codecs know: utf-8 (with or "
                            "without a byte-order mark), cp1252 for a file Excel saved on Windows, latin-1, "
                            "utf-16, ... The model card records it, and predict reads new rows' CSV files with it"),
        decimal=Field(str, default=".", choices=(".", ","),
                      help="dataset csv: the mark between a number's whole and fractional parts in the CSV file: "
                           "\",\" for one a spreadsheet wrote in a decimal-comma locale (3269,59; French, German, "
                           "...), whose values are then separated by semicolons. The model card records it, and "
                           "predict reads new rows' CSV files with it"),
    ),
    model=Section(
        help="an MLP over the standardised numeric columns and one embedding per categorical column",
        width=Field(int, default=128, low=1, help="units of each hidden layer"),
        depth=Field(int, default=2, low=0, help="hidden layers (0: a linear model)"),
        dropout=Field(float, default=0.1, low=0.0, high=0.95, help="dropout after each hidden layer"),
        embedding_dim=Field(int, default=8, low=1,
                            help="dimensions of a categorical column's embedding: min(embedding_dim, its values + 2), "
                                 "the 2 for a missing value and an unknown one"),
        batch_norm=Field(bool, default=False, help="BatchNorm after each hidden layer's Linear"),
    ),
    optimizer=Section(
        help="further keys go to the optimizer factory (a registered optimizer's own arguments)",
        keywords_of="name",
        supplied=("params",),
        name=Field(str, default="adamw", registry="optimizer",
                   help="sgd, adam, adamw or a registered one of yours (`autotune ls optimizers`)"),
        lr=Field(float, default=1e-3, check=positive, help="peak learning rate"),
        momentum=Field(float, default=None, nullable=True, low=0.0, high=1.0, keyword=True,
                       help="sgd only (None: sgd's 0.9)"),
        nesterov=Field(bool, default=None, nullable=True, keyword=True,
                       help="sgd only; needs momentum > 0 (None: sgd's false)"),
        weight_decay=Field(float, default=1e-4, low=0.0),
        schedule=Field(str, default="cosine", choices=("none", "cosine", "onecycle"), help="learning-rate schedule"),
        warmup_epochs=Field(float, default=0.0, low=0.0, help="linear warm-up (onecycle: its rising phase)"),
    ),
    train=Section(
        epochs=Field(int, default=20, low=1),
        batch_size=Field(int, default=64, low=1),
        seed=Field(int, default=0, help="seed of initialisation, batch order and dropout"),
        device=Field(str, default="auto", choices=("auto", "cpu", "cuda")),
        category_dropout=Field(float, default=CATEGORY_DROPOUT, low=0.0, high=0.5,
                               help="category dropout: the chance of each categorical cell of a training batch to "
                                    "be read as an unknown category (or as missing, in half of the cases, in a "
                                    "column no training row misses). It trains those two embedding rows (they "
                                    "start at zero, the centre of the others), so that a category training never "
                                    "saw, or a missing one, predicts what a typical value does instead of an "
                                    "arbitrary value (0: off; no effect without categorical columns)"),
        class_weight=Field(str, default="none", choices=("none", "balanced"),
                           help="classification: balanced weighs each training row's loss by n_rows / (n_classes * "
                                "its class's rows), scikit-learn's meaning, so that rare classes count as much as "
                                "common ones; train_loss is the weighted loss, val_loss stays unweighted. Search "
                                "{choice: [none, balanced]} with search.metric val_balanced_accuracy (val_loss "
                                "favours none). Refused on a regression table the config names; ignored, with a "
                                "warning, on one that data.task auto finds"),
        grad_clip=Field(float, default=None, nullable=True, check=positive,
                        help="the largest gradient norm of a step: larger gradients are scaled down to it (null: off)"),
    ),
    budget="train.epochs",
    # val_loss first (the default search.metric): both tasks report it; accuracy, balanced accuracy (the mean of
    # the classes' recalls: always predicting a majority class scores 1/classes), macro-F1 (the mean of the
    # classes' F1 scores) and ROC AUC (of the probabilities, at no threshold) for classification, rmse, mae (in the
    # target's units) and r2 for regression
    metrics={"val_loss": "min", "val_accuracy": "max", "val_balanced_accuracy": "max", "val_f1_macro": "max",
             "val_roc_auc": "max", "val_rmse": "min", "val_mae": "min", "val_r2": "max", "train_loss": "min",
             "epoch_seconds": "min", "samples_per_second": "max", "num_parameters": "min"},
    tests={"val_loss": "test_loss", "val_accuracy": "test_accuracy", "val_balanced_accuracy": "test_balanced_accuracy",
           "val_f1_macro": "test_f1_macro", "val_roc_auc": "test_roc_auc", "val_rmse": "test_rmse",
           "val_mae": "test_mae", "val_r2": "test_r2"},
    checks=(held_out("val_fraction", "test_fraction"), needed_with("data.dataset", "csv", "data.path", "data.target"),
            _missing_problems, _csv_problems, _order_problems, _class_weight_problems, _batch_norm_problems,
            nesterov_problems),
    warnings=(warmup_throughout, found("data.path", only=("csv",))),
)


def with_defaults(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The config with every ingredient the schema knows filled in (a partial dict is fine standalone)."""
    return {name: {**section.defaults(), **config.get(name, {})} for name, section in SCHEMA.sections.items()}


# ------------------------------------------------------------------------------------------------------ data
def load_data(data: dict[str, Any]) -> Data:
    """Read, split and encode the table once (the engine calls this once per node and passes `data=` to each
    trial)."""
    from autotune.tabular.data import load

    return load(**with_defaults({"data": data})["data"])


# ----------------------------------------------------------------------------------------------------- model
def make_model(model: dict[str, Any], preprocessing: Preprocessing) -> TabularMLP:
    from autotune.tabular.model import TabularMLP

    return TabularMLP(preprocessing.num_numeric, preprocessing.cardinalities, preprocessing.outputs, **model)


def reported(config: dict[str, Any], data: Data) -> list[str]:
    """The metrics each report of `train` holds a value of for `data`: the preflight refuses a search of another
    before Ray starts (val_accuracy on a regression table failed the first trial; val_roc_auc, NaN on a validation
    split of one class, failed the search once every trial had run)."""
    task = data.preprocessing.task
    ranked = ("val_roc_auc",) if len(data.val.y.unique()) > 1 else ()
    measured = (("val_accuracy", "val_balanced_accuracy", "val_f1_macro", *ranked) if task == "classification"
                else ("val_rmse", "val_mae", "val_r2"))
    return ["val_loss", *measured, "train_loss", "epoch_seconds", "samples_per_second", "num_parameters"]


def dry_run(config: dict[str, Any], data: Data) -> None:
    """Build the model of `config` and run two training rows through it, without training: the engine's preflight
    calls this for the default configuration and each searched model option before a search starts."""
    import torch

    model = make_model(with_defaults(config)["model"], data.preprocessing).eval()
    with torch.no_grad():
        model(data.train.numeric[:2].cpu(), data.train.categorical[:2].cpu())


# ------------------------------------------------------------------------------------- optimizer and schedule
def make_optimizer(model: torch.nn.Module, opt: dict[str, Any]) -> torch.optim.Optimizer:
    """The registered optimizer `opt["name"]` over the model's parameters: it gets lr and weight_decay, and the
    section's other keys that are set (sgd's momentum and nesterov), refused if it does not take one; schedule and
    warmup_epochs are for make_schedule."""
    options = {k: v for k, v in opt.items() if k not in ("name", "lr", "weight_decay", "schedule", "warmup_epochs")}
    return build_optimizer(opt["name"], model.parameters(), opt["lr"], opt["weight_decay"], **options)


# -------------------------------------------------------------------------------------- learning-rate finder
def lr_find(config: dict[str, Any], data: Data | None = None, *, start: float = 1e-6, end: float = 1.0,
            steps: int = 100) -> Sweep:
    """The learning-rate range test (`autotune lr-find`) on `config`'s model, optimizer and training batches: `steps`
    batches at rates from `start` to `end`, each trained as `train` trains one (category dropout and class weights
    included). The model is thrown away."""
    import torch

    from autotune.training import pick_device
    from autotune.vision.lr_find import range_test

    config = with_defaults(config)
    opt, cfg = config["optimizer"], config["train"]
    device = pick_device(cfg["device"])
    torch.manual_seed(cfg["seed"])
    data = data if data is not None else load_data(config["data"])
    on_device = data.to(device)
    model = make_model(config["model"], data.preprocessing).to(device).train()
    optimizer = make_optimizer(model, {**opt, "lr": start})
    step = _training_step(model, optimizer, cfg, on_device.train, data.preprocessing)
    generator = torch.Generator().manual_seed(cfg["seed"])
    drop_last = len(data.train) >= cfg["batch_size"]

    def batches() -> Iterator[tuple[torch.Tensor, ...]]:
        while True:
            yield from on_device.train.batches(cfg["batch_size"], generator=generator, drop_last=drop_last)

    stream = batches()

    def at(lr: float) -> float:
        for group in optimizer.param_groups:
            group["lr"] = lr
        return step(next(stream)).item()

    return range_test(at, start=start, end=end, steps=steps)


# ------------------------------------------------------------------------------------------------ train loop
def _loss(outputs: torch.Tensor, y: torch.Tensor, preprocessing: Preprocessing,
          weights: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of the logits, or the squared error of the standardised target (standardised in float64, the
    target's own, then float32, the network's). `weights` (one per class): each row's cross-entropy times its
    class's weight, averaged over the rows (scikit-learn's sample weights)."""
    import torch.nn.functional as F

    if preprocessing.task == "classification":
        if weights is None:
            return F.cross_entropy(outputs, y)
        return F.cross_entropy(outputs, y, weight=weights, reduction="sum") / len(y)
    standardised = (y - preprocessing.target_mean) / preprocessing.target_std
    return F.mse_loss(outputs[:, 0], standardised.to(outputs.dtype))


def _training_weights(choice: str, split: Split, preprocessing: Preprocessing) -> torch.Tensor | None:
    """The class weights of train.class_weight (`choice`) for the training split (None: unweighted); a warning where
    data.task auto found a regression table (the schema refuses one the config names)."""
    if choice == "none":
        return None
    if preprocessing.task != "classification":
        log.warning("train.class_weight: %s is ignored: the table is regression (data.task auto); remove it or set "
                    "it to none to silence this warning", choice)
        return None
    from autotune.training import class_weights

    return class_weights(split.y, preprocessing.outputs)


def _training_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, cfg: Mapping[str, Any], split: Split,
                   preprocessing: Preprocessing) -> Callable[[tuple[torch.Tensor, ...]], torch.Tensor]:
    """step(batch) -> its loss: one optimizer step on a (numeric, categorical, y) batch of `split` (the training
    split), with the category dropout, class weights and gradient clipping of the train section `cfg`."""
    import torch

    from autotune.tabular.data import MISSING
    from autotune.tabular.model import drop_categories

    weights = _training_weights(cfg["class_weight"], split, preprocessing)
    unmissed = (split.categorical != MISSING).all(0)  # columns no training row misses (drop_categories)

    def step(batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        numeric, categorical, y = batch
        categorical = drop_categories(categorical, cfg["category_dropout"], unmissed)
        loss = _loss(model(numeric, categorical), y, preprocessing, weights)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg["grad_clip"] is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
        optimizer.step()
        return loss

    return step


def train(config: dict[str, Any], report: Report, *, data: Data | None = None, checkpoint: str | None = None) -> None:
    """Train one configuration; after each epoch `report` its metrics and how to save its checkpoint."""
    import torch

    from autotune.tabular.model import in_target_units
    from autotune.training import checkpoint_saver, load_checkpoint, make_schedule, pick_device, resume

    config = with_defaults(config)
    opt, cfg = config["optimizer"], config["train"]
    device = pick_device(cfg["device"])
    torch.manual_seed(cfg["seed"])
    data = data if data is not None else load_data(config["data"])
    on_device = data.to(device)
    preprocessing = data.preprocessing

    model = make_model(config["model"], preprocessing).to(device)
    optimizer = make_optimizer(model, opt)
    step = _training_step(model, optimizer, cfg, on_device.train, preprocessing)
    drop_last = len(data.train) >= cfg["batch_size"]
    steps_per_epoch = len(data.train) // cfg["batch_size"] if drop_last else 1
    schedule = make_schedule(optimizer, opt, steps_per_epoch, cfg["epochs"])
    generator = torch.Generator().manual_seed(cfg["seed"])  # batch order

    parts = {"model": model, "optimizer": optimizer, "schedule": schedule}
    first = resume(load_checkpoint(checkpoint), parts, device, generator) if checkpoint is not None else 1

    for epoch in range(first, cfg["epochs"] + 1):
        started = time.perf_counter()
        model.train()
        loss_sum, seen = torch.zeros((), device=device), 0
        for batch in on_device.train.batches(cfg["batch_size"], generator=generator, drop_last=drop_last):
            loss = step(batch)
            schedule.step()
            loss_sum += loss.detach() * len(batch[2])
            seen += len(batch[2])
        train_seconds = time.perf_counter() - started
        train_loss = loss_sum.item() / seen
        val = _measure(in_target_units(model, preprocessing), on_device.val, preprocessing)
        if not (math.isfinite(train_loss) and math.isfinite(val["loss"])):
            which = "training" if not math.isfinite(train_loss) else "validation"
            raise Diverged(f"non-finite {which} loss at epoch {epoch} (lr={opt['lr']:g}): lower optimizer.lr "
                           "or set train.grad_clip")
        metrics = {
            "epoch": epoch,
            "train_loss": train_loss,
            **{f"val_{name}": value for name, value in val.items()},
            "epoch_seconds": time.perf_counter() - started,
            "samples_per_second": seen / train_seconds,
            "num_parameters": sum(p.numel() for p in model.parameters()),  # a second objective (size)
        }

        # the epoch's checkpoint, written only if the engine keeps it
        report(metrics, checkpoint_saver(parts, epoch, device, generator, config=config, metrics=metrics,
                                         data=_data_card(data)))


def _measure(model: torch.nn.Module, split: Split, preprocessing: Preprocessing) -> dict[str, float]:
    """loss, accuracy, balanced accuracy, macro-F1 and ROC AUC (classification), or loss, rmse, mae and r2
    (regression: rmse and mae in the target's units) of `model` (logits, or values in the target's units:
    `in_target_units`) on `split`; loss is the training loss."""
    import torch
    import torch.nn.functional as F

    from autotune.training import balanced_accuracy, class_counts, macro_f1, roc_auc

    model.eval()
    with torch.no_grad():
        outputs = torch.cat([model(numeric, categorical) for numeric, categorical, _ in split.batches(EVAL_BATCH)])
    outputs, y = outputs.double(), split.y
    if preprocessing.task == "classification":
        predicted = outputs.argmax(1)
        counts = class_counts(predicted, y, outputs.shape[1])
        return {"loss": F.cross_entropy(outputs, y).item(), "accuracy": (predicted == y).double().mean().item(),
                "balanced_accuracy": balanced_accuracy(counts), "f1_macro": macro_f1(counts),
                "roc_auc": roc_auc(outputs.softmax(1), y)}
    error = outputs - y.double()
    squared = error.square().sum().item()
    spread = (y.double() - y.double().mean()).square().sum().item()
    return {"loss": (error / preprocessing.target_std).square().mean().item(), "rmse": math.sqrt(squared / len(y)),
            "mae": error.abs().mean().item(), "r2": 1 - squared / spread if spread > 0 else math.nan}


def _data_card(data: Data) -> dict[str, Any]:
    return {**data.preprocessing.as_card(), "data_fingerprint": data.fingerprint, "dataset": data.name}



def _restore_model(state: dict[str, Any]) -> torch.nn.Module:
    """The checkpoint's network, giving logits or values in the target's units (`in_target_units`)."""
    from autotune.tabular.data import Preprocessing
    from autotune.tabular.model import in_target_units

    preprocessing = Preprocessing.from_card(state["data"])
    net = make_model(state["config"]["model"], preprocessing)
    net.load_state_dict(state["model"])
    return in_target_units(net, preprocessing).eval()


# -------------------------------------------------------------------------------------------------- evaluate
def evaluate(checkpoint: str, data: Data | None = None) -> dict[str, float]:
    """test_accuracy, test_balanced_accuracy, test_f1_macro, test_roc_auc and test_loss (classification), or
    test_rmse, test_mae, test_r2 and test_loss (regression) on the held-out test split (never seen in train()) of a
    checkpoint, or of an exported model directory (its model.pt, given the rows as its card encodes them), so that a
    new export can be compared with the current one."""
    import torch

    from autotune.tabular.data import Preprocessing
    from autotune.training import CHECKPOINT_FILE, check_same_data, load_checkpoint

    if not (Path(checkpoint) / CHECKPOINT_FILE).is_file() and (Path(checkpoint) / "model.pt").is_file():
        if data is None:
            raise UserError(f"evaluating the exported model in {checkpoint} needs the data it was trained on")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            model = torch.jit.load(str(Path(checkpoint) / "model.pt"), map_location="cpu")
        card = Path(checkpoint) / "model.json"  # none yet while the engine tests a new export in its folder
        preprocessing = (Preprocessing.from_card(json.loads(card.read_text())) if card.is_file()
                         else data.preprocessing)  # a current model: scored as it was trained, its own encoding
        # a regression loss in the scale of the data it is tested on, not of the model's own training target: the
        # current model and a new one trained on other rows are compared on one scale
        scale = replace(preprocessing, target_std=data.preprocessing.target_std)
        measured = _measure(model, data.test_for(preprocessing), scale)
    else:
        state = load_checkpoint(checkpoint)
        data = data if data is not None else load_data(state["config"]["data"])
        check_same_data(state, data.fingerprint)
        measured = _measure(_restore_model(state), data.test, Preprocessing.from_card(state["data"]))
    return {f"test_{name}": value for name, value in measured.items()}


# ---------------------------------------------------------------------------------------------------- export
def _inputs(preprocessing: Preprocessing) -> str:
    """What model.pt takes and returns, in words for the card."""
    returns = (f"logits (N, {preprocessing.outputs})" if preprocessing.task == "classification"
               else f"float64 values (N,) of {preprocessing.target!r} in its own units")
    return (f"model.pt(numeric: float32 (N, {preprocessing.num_numeric}), categorical: int64 "
            f"(N, {len(preprocessing.categories)})) -> {returns}; the inputs are encoded from this card's columns, "
            "scalers and categories, as docs/using-the-model.md says under 'Without autotune'")


def export(checkpoint: str, data: Data | None, out_dir: str) -> dict[str, Any]:
    """Write `model.pt` (TorchScript: the encoded numeric and categorical tensors -> logits, or values in the
    target's units) into `out_dir` and return the model card's fields, the preprocessing among them."""
    import torch

    from autotune.tabular.data import Preprocessing
    from autotune.training import check_same_data, load_checkpoint, save_scripted

    state = load_checkpoint(checkpoint)
    if data is not None:
        check_same_data(state, data.fingerprint)
    model = _restore_model(state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated, but still what loads anywhere
        scripted = torch.jit.script(model)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    save_scripted(scripted, Path(out_dir) / "model.pt")
    return {
        **state["data"],
        "inputs": _inputs(Preprocessing.from_card(state["data"])),
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "epoch": state["epoch"],
    }


# ---------------------------------------------------------------------------------------------------- report
def input_example(model_dir: str) -> pd.DataFrame:
    """One row the exported model reads (a DataFrame of its columns: numbers at their training median, categories
    at their first value, but none of a column of nearly a value per training row): the MLflow model's input
    example. Rows, not tensors, so an MLflow search logs the model as one that predicts rows with `load_model`
    (model.pt takes two encoded tensors)."""
    from autotune.tabular.exported import input_example as example

    return example(model_dir)


def test_predictions(model_dir: str, data: Data) -> ClassPredictions | ValuePredictions:
    """The exported model's predictions on the held-out test split: `autotune report` draws them (a confusion
    matrix and the accuracy per class, or the predicted against the true values and the residuals)."""
    from autotune.tabular.exported import test_predictions as predicted

    return predicted(model_dir, data)


# ------------------------------------------------------------------------------------------- predict and serve
def load_model(model_dir: str) -> TabularPredictor:
    """`autotune.load_model`: the exported model, loaded once: `.predict(rows)` -> a record per row, `.card`."""
    from autotune.tabular.rows import TabularPredictor

    return TabularPredictor(model_dir)


def predict(model_dir: str, files: list[str], *, top_k: int | None = None, keep: Sequence[str] = ()
            ) -> Iterator[dict[str, Any] | BadInput]:
    """`autotune predict`: the rows of .csv/.parquet `files` (read as training read its table), one record each:
    {"file", "row", "label", "probability"} (with `top_k`, also "top_k": the k most probable labels), or {"file",
    "row", "value"} for regression; probabilities rounded as the image recipe's predict prints them (`rounded`).
    With `keep` (`--keep`), each record also holds "kept": {column: value} of those columns of its row, to join it
    back (an id the model does not read). A file it cannot read, or without a column of `keep`, is a BadInput
    naming the file, and so is each row it refuses (a BadRow naming the row and the column), in that row's place;
    the other rows and files are still predicted. A file is read and predicted `CHUNK_ROWS` rows at a time: a part
    of it that cannot be read is a BadInput that says from which row on its rows were not predicted."""
    model = load_model(model_dir)
    model.check_top_k(top_k)
    for file in files:
        yield from _file_records(model, file, top_k, list(dict.fromkeys(keep)))


def _file_records(model: TabularPredictor, file: str, top_k: int | None, keep: list[str]
                  ) -> Iterator[dict[str, Any] | BadInput]:
    """The records of one file's rows (`predict`), a chunk of rows at a time. A row that holds no value (a line of
    separators only, as a spreadsheet writes below its data) is no row to predict: a warning names such rows."""
    from autotune.errors import BadInput
    from autotune.tabular.rows import blank, kept_values

    row, blanks = 0, []  # the number of the file's next row; those of the rows that hold no value
    try:
        for rows in model.read_chunks(file):
            kept = kept_values(rows, keep)
            for read, values, record in zip(rows, kept, model.predict_each(rows, top_k=top_k, first=row)):
                if blank(read):
                    blanks.append(row)
                elif isinstance(record, BadInput):  # a row it refuses: the others are still predicted
                    yield BadInput(str(record), source=file)
                else:
                    yield {"file": file, "row": row, **({"kept": values} if keep else {}), **rounded(record)}
                row += 1
    except UserError as err:
        not_predicted = f" (rows from {row} on were not predicted)" if row else ""
        yield BadInput(f"{err}{not_predicted}", source=file)
    if blanks:
        many = len(blanks) > 1
        shown = ", ".join(map(str, blanks[:5])) + (f" and {len(blanks) - 5} more" if len(blanks) > 5 else "")
        log.warning("%s: %d %s no value, not predicted (%s %s: lines of separators only, as a spreadsheet writes "
                    "below its data)", file, len(blanks), "rows hold" if many else "row holds",
                    "rows" if many else "row", shown)


def rounded(record: dict[str, Any]) -> dict[str, Any]:
    """A prediction as `predict` prints it: its probabilities (and those of its "top_k") rounded to
    PROBABILITY_DIGITS; the Python API (`load_model(...).predict`) and serve give them as computed."""
    if "probability" not in record:
        return record
    printed = {**record, "probability": round(record["probability"], PROBABILITY_DIGITS)}
    if "top_k" in record:
        printed["top_k"] = [{**label, "probability": round(label["probability"], PROBABILITY_DIGITS)}
                            for label in record["top_k"]]
    return printed


def serve(model_dir: str, *, max_bytes: int | None = None, max_rows: int | None = None) -> FastAPI:
    """`autotune serve`: the app answering JSON rows (`autotune.tabular.serving`). The limits (None: its defaults):
    the largest request body in bytes, the most rows per request."""
    from autotune.tabular.serving import create_app

    return create_app(model_dir, max_bytes=max_bytes, max_rows=max_rows)
