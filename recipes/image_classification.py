"""Image classification: trains one configuration of a search space, as a trial or standalone.

Read it top to bottom: SCHEMA (the ingredients it understands) -> data -> model -> optimizer and schedule ->
train loop (one report per epoch, with a function that saves its checkpoint if the engine keeps it) -> evaluate ->
export. To change the recipe, copy this file and point a space at it (`recipe: my_recipe.py`); the helpers it uses
live in `autotune.vision`.

Small datasets live on the device as uint8 tensors and are batched by slicing a seeded permutation; normalisation
and augmentation happen there too, in batch (airbench style: no DataLoader, no per-sample Python).

Torch and the helpers that use it are imported inside the functions that need them: importing the recipe (to read
its SCHEMA, as `autotune check` does) stays instant.
"""
from __future__ import annotations

import dataclasses
import inspect
import logging
import math
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autotune.errors import Diverged, Problem, UserError
from autotune.recipes import ClassPredictions, Report
from autotune.registry import get as registered
from autotune.space.schema import Field, Schema, Section, found, held_out, positive
from autotune.splits import SCHEME
from autotune.vision.lr_find import Sweep, range_test
from autotune.vision.datasets import INTERPOLATIONS
from autotune.vision.models import DROP_RATE, DROP_RATE_FIX, build
from autotune.vision.optimizers import build as build_optimizer, nesterov_problems, warmup_throughout
from autotune.vision.pretrained import check_value as check_pretrained
from autotune.vision.pretrained import data_config, normalization
from autotune.vision.pretrained import describe as describe_weights

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import numpy as np
    import torch
    from fastapi import FastAPI

    from autotune.errors import BadInput
    from autotune.vision.data import Data, Split
    from autotune.vision.predictor import Predictor


# ----------------------------------------------------------------------------------------------- ingredients
def frozen_throughout(config: dict[str, Any]) -> list[Problem]:
    """A SCHEMA warning: train.freeze_epochs at or above train.epochs keeps the backbone frozen in every epoch."""
    train = config.get("train", {})
    frozen, epochs = train.get("freeze_epochs") or 0, train.get("epochs")
    if not frozen or not isinstance(epochs, int) or frozen < epochs:
        return []
    return [Problem("train.freeze_epochs", f"is {frozen} and train.epochs {epochs}: the backbone stays frozen in "
                    "every epoch, so only the classifier trains",
                    f"lower it below train.epochs (e.g. {epochs // 2}), or leave it if only the classifier "
                    "should train")]


log = logging.getLogger("autotune")
SPLIT = SCHEME  # split by autotune.splits' keys: added samples move no other (a retrain compares models)

SCHEMA = Schema(
    data=Section(
        help="what to train on; further keys go to the dataset function (e.g. image_folder's image_size)",
        keywords_of="dataset",
        supplied=("root", "download"),
        dataset=Field(str, default="digits", registry="dataset", help="a registered dataset (`autotune ls datasets`)"),
        root=Field(str, default="~/.cache/autotune/data", path=True,
                   help="where the dataset's files are (or are downloaded to; relative to the working directory)"),
        val_fraction=Field(float, default=0.1, low=0.0, high=0.9,
                           help="share of the training samples held out (each with this chance)"),
        test_fraction=Field(float, default=0.1, low=0.0, high=0.9,
                            help="share held out for the final test; ignored when the dataset has an official test set"),
        split_seed=Field(int, default=0, help="seed of the train/val/test split: a sample's split follows from "
                                              "its key (an image file's path) and this seed, so added samples "
                                              "move no other (keep it fixed during a search)"),
        augment=Field(str, default="none", choices=("none", "light", "resized_crop"),
                      help="light: random crop with padding; resized_crop: random-resized crop (fine-tuning); "
                           "each plus a horizontal flip where it keeps the label"),
        download=Field(bool, default=True, help="download mnist/fashion_mnist/cifar10 into root when missing"),
        interpolation=Field(str, default=None, nullable=True, choices=INTERPOLATIONS, keyword=True,
                            help="image_folder: how images are resized (None: a pretrained model's own, else "
                                 "bilinear)"),
        crop_pct=Field(float, default=None, nullable=True, high=1.0, check=positive, keyword=True,
                       help="image_folder: a share in (0, 1]: the shorter side resized to image_size / crop_pct and "
                            "the centre cut out (None: a pretrained model's own, else the whole image resized)"),
    ),
    model=Section(
        help="the network; further keys go to the model factory (e.g. timm's drop_path_rate)",
        keywords_of="arch",
        supplied={"in_chans": "", "num_classes": "", "input_size": "", DROP_RATE: DROP_RATE_FIX},
        arch=Field(str, default="simple_cnn", registry="model", help="simple_cnn, mlp or any timm model name"),
        width=Field(int, default=None, nullable=True, low=1, keyword=True,
                    help="simple_cnn channels / mlp units (None: the model's default; timm models: sized by name)"),
        depth=Field(int, default=None, nullable=True, low=1, keyword=True,
                    help="simple_cnn blocks / mlp hidden layers (None: the model's default)"),
        dropout=Field(float, default=0.0, low=0.0, high=0.95,
                      help="dropout before the classifier (a timm model's drop_rate)"),
        pretrained=Field((bool, str), default=False, check=check_pretrained, path=True,
                         help="timm models: false (from scratch), true (timm's weights for arch, e.g. "
                              "resnet50.a1_in1k) or a weights file (.safetensors, .pth, .bin; relative to the "
                              "working directory; it must exist when the space is read)"),
    ),
    optimizer=Section(
        help="further keys go to the optimizer factory (a registered optimizer's own arguments)",
        keywords_of="name",
        supplied=("params",),
        name=Field(str, default="sgd", registry="optimizer",
                   help="sgd, adam, adamw or a registered one of yours (`autotune ls optimizers`)"),
        lr=Field(float, default=0.01, check=positive, help="peak learning rate"),
        momentum=Field(float, default=None, nullable=True, low=0.0, high=1.0, keyword=True,
                       help="sgd only (None: sgd's 0.9)"),
        nesterov=Field(bool, default=None, nullable=True, keyword=True,
                       help="sgd only; needs momentum > 0 (None: sgd's false)"),
        weight_decay=Field(float, default=5e-4, low=0.0),
        schedule=Field(str, default="cosine", choices=("none", "cosine", "onecycle"), help="learning-rate schedule"),
        warmup_epochs=Field(float, default=0.0, low=0.0, help="linear warm-up (onecycle: its rising phase)"),
        backbone_lr_mult=Field(float, default=1.0, low=0.0,
                               help="the backbone's learning rate as a share of the classifier's (fine-tuning: 0.1)"),
    ),
    train=Section(
        epochs=Field(int, default=10, low=1),
        freeze_epochs=Field(int, default=0, low=0,
                            help="first epochs in which only the classifier trains (the backbone frozen, BatchNorm "
                                 "statistics too), then the whole network; at train.epochs or above, a warning"),
        batch_size=Field(int, default=128, low=1),
        label_smoothing=Field(float, default=0.0, low=0.0, high=0.9),
        class_weight=Field(str, default="none", choices=("none", "balanced"),
                           help="balanced weighs each training sample's loss by n_samples / (n_classes * its class's "
                                "samples), scikit-learn's meaning, so that rare classes count as much as common "
                                "ones (a folder of many good parts and few defects); train_loss is the weighted "
                                "loss, val_loss stays unweighted. Search {choice: [none, balanced]} with "
                                "search.metric val_balanced_accuracy"),
        grad_clip=Field(float, default=None, nullable=True, check=positive, help="max gradient norm (None: off)"),
        amp=Field(bool, default=True, help="mixed precision (bf16, else fp16) on CUDA; ignored on CPU"),
        seed=Field(int, default=0, help="seed of initialisation, batch order, augmentation and dropout"),
        device=Field(str, default="auto", choices=("auto", "cpu", "cuda")),
    ),
    budget="train.epochs",
    # val_balanced_accuracy: the mean of the classes' recalls (always predicting a common class scores 1/classes);
    # val_f1_macro: the mean of the classes' F1 scores (a class never predicted scores 0)
    metrics={"val_accuracy": "max", "val_loss": "min", "val_balanced_accuracy": "max", "val_f1_macro": "max",
             "train_loss": "min", "epoch_seconds": "min", "samples_per_second": "max", "num_parameters": "min"},
    tests={"val_accuracy": "test_accuracy", "val_loss": "test_loss", "val_balanced_accuracy": "test_balanced_accuracy",
           "val_f1_macro": "test_f1_macro"},
    # the built-in datasets without an official test set: their test split is drawn from the samples too
    checks=(held_out("val_fraction", "test_fraction", only=("digits", "fake", "image_folder")), nesterov_problems),
    warnings=(frozen_throughout, warmup_throughout, found("data.root", only=("idx", "image_folder"))),
)


def with_defaults(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The config with every ingredient the schema knows filled in (a partial dict is fine standalone)."""
    return {name: {**section.defaults(), **config.get(name, {})} for name, section in SCHEMA.sections.items()}


# ------------------------------------------------------------------------------------------------------ data
# data keys that only change training, not what load_data returns: a search over them still shares one load
TRAINING_ONLY_DATA_KEYS = ("augment",)


def _given_data(config: dict[str, Any]) -> dict[str, Any]:
    """The data section of `config` with the defaults filled in, less the dataset's own keys left unset (null:
    `interpolation` and `crop_pct`, which the dataset's defaults or a pretrained model's preprocessing fill)."""
    fields = SCHEMA.sections["data"].fields
    return {k: v for k, v in with_defaults(config)["data"].items()
            if not (v is None and k in fields and fields[k].keyword)}


def data_for(config: dict[str, Any]) -> dict[str, Any]:
    """The data section a configuration loads: a pretrained model's own preprocessing (timm's data config: input
    size, interpolation, centre crop) fills the keys of it that an image folder takes and the space leaves out."""
    data, model = _given_data(config), with_defaults(config)["model"]
    if model["pretrained"] is False:
        return data
    takes = inspect.signature(registered("dataset", data["dataset"])).parameters
    if "crop_pct" not in takes:  # a dataset of fixed-size tensors: nothing to resize
        return data
    return {**{k: v for k, v in data_config(model["arch"]).items() if k in takes}, **data}


def load_data(data: dict[str, Any]) -> Data:
    """Load and split the dataset once (the engine calls this once per node and passes `data=` to each trial)."""
    from autotune.vision.data import load

    settings = _load_settings(data)
    return dataclasses.replace(load(**settings), settings=settings)


def _load_settings(data: dict[str, Any]) -> dict[str, Any]:
    """The data keys that decide what `load_data` returns, defaults filled in."""
    return {k: v for k, v in _given_data({"data": data}).items() if k not in TRAINING_ONLY_DATA_KEYS}


def _data_of(config: dict[str, Any], data: Data | None) -> Data:
    """The data `config` trains on: `data` (the engine loads the default configuration's once per node), unless
    it was loaded with other values of the keys `data_for` derives (another pretrained model's resize)."""
    section = data_for(config)
    given = _given_data(config)
    derived = {k: v for k, v in section.items() if k not in given}
    if data is not None and (not data.settings or all(data.settings.get(k) == v for k, v in derived.items())):
        return data
    return load_data(section)


# ----------------------------------------------------------------------------------------------------- model
def make_model(model: dict[str, Any], input_shape: tuple[int, int, int], num_classes: int) -> torch.nn.Module:
    kwargs = {k: v for k, v in model.items() if k != "arch"}
    return build(model["arch"], input_shape, num_classes, **kwargs)


def normalized_as(model: torch.nn.Module, pretrained: bool | str, data: Data) -> Data:
    """`data` normalised as the model's pretrained weights expect (their mean and std), when it has them; the
    dataset's own mean and std otherwise. The card records the normalisation, so evaluation and export use it."""
    norm = normalization(model, data.input_shape[0]) if pretrained is not False else None
    return dataclasses.replace(data, mean=norm[0], std=norm[1]) if norm else data


def check_fits(model: torch.nn.Module, data: Data, arch: str) -> None:
    """Two training images through `model` (eval mode, on the CPU): a model that cannot take images of this size,
    or gives the wrong number of outputs, fails here in one line instead of inside the first epoch."""
    import torch

    from autotune.vision.data import prepare

    x = data.train.head(2)
    _, height, width = data.input_shape
    try:
        with torch.no_grad():
            logits = model.eval()(prepare(x, data))
    except Exception as err:  # whatever the model raises: timm asserts, torch RuntimeErrors, a user's module
        reason = (str(err).strip().splitlines() or [""])[0].rstrip(".")
        raise UserError(f"model {arch!r} does not fit {height}x{width} inputs: {type(err).__name__}: {reason}; "
                        "pick a smaller model or a larger image_size") from None
    if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (len(x), data.num_classes):
        got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise UserError(f"model {arch!r} returns {got} for {len(x)} images of {data.num_classes} classes; "
                        f"expected logits of shape ({len(x)}, {data.num_classes})")


def dry_run(config: dict[str, Any], data: Data) -> None:
    """Build the model of `config` and run two training images through it, without training: the engine's
    preflight calls this for the default configuration and each searched model option before a search starts."""
    from autotune.vision.finetune import head

    full = with_defaults(config)
    model = make_model(full["model"], data.input_shape, data.num_classes)
    check_fits(model, data, full["model"]["arch"])
    if full["train"]["freeze_epochs"] or full["optimizer"]["backbone_lr_mult"] != 1:
        head(model)  # fine-tuning needs the classifier apart


# ------------------------------------------------------------------------------------- optimizer and schedule
def make_optimizer(model: torch.nn.Module, opt: dict[str, Any]) -> torch.optim.Optimizer:
    """The registered optimizer `opt["name"]` over the model's parameters (the backbone's at `backbone_lr_mult`
    times the classifier's lr): it gets lr and weight_decay, and the section's other keys that are set (sgd's
    momentum and nesterov), refused if it does not take one; schedule and warmup_epochs are for make_schedule."""
    from autotune.vision.finetune import param_groups

    own = ("name", "lr", "weight_decay", "schedule", "warmup_epochs", "backbone_lr_mult")
    options = {k: v for k, v in opt.items() if k not in own}
    groups = param_groups(model, opt["lr"], opt.get("backbone_lr_mult", 1.0))
    return build_optimizer(opt["name"], groups, opt["lr"], opt["weight_decay"], **options)


# -------------------------------------------------------------------------------------- learning-rate finder
def lr_find(config: dict[str, Any], data: Data | None = None, *, start: float = 1e-6, end: float = 1.0,
            steps: int = 100) -> Sweep:
    """The learning-rate range test (`autotune lr-find`) on `config`'s model, optimizer and batches: `steps`
    batches at rates from `start` to `end` (the classifier's; the backbone at its `backbone_lr_mult` share, frozen
    if the configuration starts frozen). The model is thrown away."""
    import torch

    from autotune.training import pick_device
    from autotune.vision.finetune import freeze_backbone

    cfg_all = with_defaults(config)
    cfg, opt = cfg_all["train"], cfg_all["optimizer"]
    device = pick_device(cfg["device"])
    torch.manual_seed(cfg["seed"])
    data = _data_of(cfg_all, data)
    on_device = data.to(device)
    model = make_model(cfg_all["model"], data.input_shape, data.num_classes)
    data = normalized_as(model, cfg_all["model"]["pretrained"], data)  # what `prepare` normalises with
    check_fits(model, data, cfg_all["model"]["arch"])
    model = model.to(device).train()
    if cfg["freeze_epochs"]:
        freeze_backbone(model, True)
    optimizer = make_optimizer(model, {**opt, "lr": start})
    shares = [group["lr"] / start for group in optimizer.param_groups]
    generator = torch.Generator().manual_seed(cfg["seed"])
    step, _ = _training_step(model, optimizer, cfg_all, data, device, generator)
    drop_last = len(data.train) >= cfg["batch_size"]

    def batches():
        while True:
            yield from on_device.train.batches(cfg["batch_size"], generator=generator, drop_last=drop_last)

    stream = batches()

    def at(lr: float) -> float:
        for group, share in zip(optimizer.param_groups, shares):
            group["lr"] = lr * share
        return step(*next(stream)).item()

    return range_test(at, start=start, end=end, steps=steps)


def _training_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, config: dict[str, Any], data: Data,
                   device: torch.device, generator: torch.Generator,
                   ) -> tuple[Callable[[torch.Tensor, torch.Tensor], torch.Tensor], torch.amp.GradScaler]:
    """step(x, y) -> its loss: one optimizer step on a training batch, as `config` trains one (augmentation, mixed
    precision, label smoothing, class weights, gradient clipping); and its gradient scaler, a checkpoint's part."""
    import torch

    from autotune.vision.data import prepare

    cfg, augment = config["train"], config["data"]["augment"]
    amp = _amp_dtype(cfg["amp"], device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)
    weights = _training_weights(cfg["class_weight"], data, device)

    def step(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        x = prepare(x, data, augment=augment, generator=generator)
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            loss = _loss(model(x), y, cfg["label_smoothing"], weights)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if cfg["grad_clip"] is not None:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
        scaler.step(optimizer)
        scaler.update()
        return loss

    return step, scaler


# ------------------------------------------------------------------------------------------------ train loop
def train(config: dict[str, Any], report: Report, *, data: Data | None = None, checkpoint: str | None = None) -> None:
    """Train one configuration; after each epoch `report` its metrics and how to save its checkpoint."""
    import torch

    from autotune.training import checkpoint_saver, load_checkpoint, make_schedule, pick_device, resume
    from autotune.vision.finetune import freeze_backbone

    config = with_defaults(config)
    cfg_data, cfg_model, opt, cfg = config["data"], config["model"], config["optimizer"], config["train"]
    device = pick_device(cfg["device"])
    torch.manual_seed(cfg["seed"])
    data = _data_of(config, data)
    if len(data.val) == 0:
        raise UserError(f"data.val_fraction={cfg_data['val_fraction']} leaves no validation samples")
    on_device = data.to(device)  # in-memory splits move once; streamed ones stay on the CPU

    model = make_model(cfg_model, data.input_shape, data.num_classes)
    data = normalized_as(model, cfg_model["pretrained"], data)  # what `prepare` and the card normalise with
    check_fits(model, data, cfg_model["arch"])
    model = model.to(device)
    weights = describe_weights(cfg_model["arch"], cfg_model["pretrained"])  # for the card: source and digest
    optimizer = make_optimizer(model, opt)
    drop_last = len(data.train) >= cfg["batch_size"]
    steps_per_epoch = len(data.train) // cfg["batch_size"] if drop_last else 1
    schedule = make_schedule(optimizer, opt, steps_per_epoch, cfg["epochs"])
    amp = _amp_dtype(cfg["amp"], device)
    generator = torch.Generator().manual_seed(cfg["seed"])  # batch order and augmentation
    step, scaler = _training_step(model, optimizer, config, data, device, generator)

    parts = {"model": model, "optimizer": optimizer, "schedule": schedule, "scaler": scaler}
    first = resume(load_checkpoint(checkpoint), parts, device, generator) if checkpoint is not None else 1

    for epoch in range(first, cfg["epochs"] + 1):
        started = time.perf_counter()
        model.train()
        frozen = epoch <= cfg["freeze_epochs"]  # the phase follows the epoch, so a resumed trial is in the right one
        if cfg["freeze_epochs"]:
            freeze_backbone(model, frozen)
        loss_sum, seen = torch.zeros((), device=device), 0
        for x, y in on_device.train.batches(cfg["batch_size"], generator=generator, drop_last=drop_last):
            loss = step(x, y)
            schedule.step()
            loss_sum += loss.detach().float() * len(y)
            seen += len(y)
        train_seconds = time.perf_counter() - started
        train_loss = loss_sum.item() / seen
        val = _evaluate_split(model, on_device.val, data, device, amp)
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

        # the epoch's checkpoint, written only if the engine keeps it (phase: only the classifier trained, or all)
        report(metrics, checkpoint_saver(parts, epoch, device, generator, config=config, metrics=metrics,
                                         data=_data_card(data), pretrained=weights,
                                         phase="frozen" if frozen else "full"))


def _amp_dtype(enabled: bool, device: torch.device) -> torch.dtype | None:
    import torch

    if not enabled or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _evaluate_split(model: torch.nn.Module, split: Split, data: Data, device: torch.device,
                    amp: torch.dtype | None, *, normalize: bool = True) -> dict[str, float]:
    """The mean loss (unweighted), accuracy, balanced accuracy and macro-F1 of `model` on `split` (`normalize=False`:
    the model takes [0, 1] pixels)."""
    import torch
    import torch.nn.functional as F

    from autotune.training import balanced_accuracy, class_counts, macro_f1
    from autotune.vision.data import prepare

    model.eval()
    loss = torch.zeros((), device=device)
    counts = torch.zeros(3, data.num_classes, dtype=torch.int64, device=device)  # class_counts' rows
    for x, y in split.batches(1024):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with torch.no_grad(), torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            logits = model(prepare(x, data) if normalize else x.float() / 255).float()
        loss += F.cross_entropy(logits, y, reduction="sum")
        counts += class_counts(logits.argmax(1), y, data.num_classes)
    counts = counts.cpu()
    return {"loss": loss.item() / len(split), "accuracy": counts[1].sum().item() / len(split),
            "balanced_accuracy": balanced_accuracy(counts), "f1_macro": macro_f1(counts)}


def _loss(logits: torch.Tensor, y: torch.Tensor, label_smoothing: float,
          weights: torch.Tensor | None = None) -> torch.Tensor:
    """The training loss: cross-entropy with label smoothing; `weights` (one per class): each sample's times its
    class's weight, averaged over the samples (scikit-learn's sample weights)."""
    import torch.nn.functional as F

    if weights is None:
        return F.cross_entropy(logits, y, label_smoothing=label_smoothing)
    return F.cross_entropy(logits, y, weight=weights, label_smoothing=label_smoothing, reduction="sum") / len(y)


def _training_weights(choice: str, data: Data, device: torch.device) -> torch.Tensor | None:
    """The class weights of train.class_weight (`choice`) for the training split, on `device` (None: unweighted)."""
    from autotune.training import class_weights

    return None if choice == "none" else class_weights(data.train.y.cpu(), data.num_classes).to(device)


def _data_card(data: Data) -> dict[str, Any]:
    return {"labels": list(data.labels), "input_shape": list(data.input_shape), "resize": data.resize.as_dict(),
            "mean": list(data.mean), "std": list(data.std), "data_fingerprint": data.fingerprint,
            "dataset": data.name}



def _restore_model(state: dict[str, Any]) -> torch.nn.Module:
    card = state["data"]
    config = {**state["config"]["model"], "pretrained": False}  # the checkpoint holds every weight
    model = make_model(config, tuple(card["input_shape"]), len(card["labels"]))
    model.load_state_dict(state["model"])
    return model.eval()


# -------------------------------------------------------------------------------------------------- evaluate
def evaluate(checkpoint: str, data: Data | None = None) -> dict[str, float]:
    """test_accuracy, test_loss, test_balanced_accuracy and test_f1_macro on the held-out test split (never seen in
    train()) of a checkpoint, or of an exported model directory (its model.pt), so that a new export can be compared
    with the current one."""
    import torch

    from autotune.training import CHECKPOINT_FILE, check_same_data, load_checkpoint, pick_device

    if not (Path(checkpoint) / CHECKPOINT_FILE).is_file() and (Path(checkpoint) / "model.pt").is_file():
        if data is None:
            raise UserError(f"evaluating the exported model in {checkpoint} needs the data it was trained on")
        device = pick_device("auto")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            model = torch.jit.load(str(Path(checkpoint) / "model.pt"), map_location=device)
        test = _evaluate_split(model, data.test.to(device), data, device, None, normalize=False)
        return _tests(test)
    state = load_checkpoint(checkpoint)
    data = _data_of(state["config"], data)
    check_same_data(state, data.fingerprint)
    card = state["data"]  # normalised as in training (a pretrained model's own mean and std)
    data = dataclasses.replace(data, mean=tuple(card["mean"]), std=tuple(card["std"]))
    device = pick_device(state["config"]["train"]["device"])
    amp = _amp_dtype(state["config"]["train"]["amp"], device)
    test = _evaluate_split(_restore_model(state).to(device), data.test.to(device), data, device, amp)
    return _tests(test)


def _tests(measured: dict[str, float]) -> dict[str, float]:
    """The test metrics of `_evaluate_split`'s, accuracy first (as `train` prints them)."""
    return {f"test_{name}": measured[name] for name in ("accuracy", "loss", "balanced_accuracy", "f1_macro")}


# ---------------------------------------------------------------------------------------------------- export
def export(checkpoint: str, data: Data | None, out_dir: str) -> dict[str, Any]:
    """Write `model.pt` (TorchScript: float images in [0, 1], NCHW, normalisation built in -> logits) into
    `out_dir` and return the model card's fields."""
    from autotune.training import check_same_data, load_checkpoint, save_scripted
    from autotune.vision.nets import Normalized

    state = load_checkpoint(checkpoint)
    if data is not None:
        check_same_data(state, data.fingerprint)
    card = state["data"]
    model = Normalized(_restore_model(state), tuple(card["mean"]), tuple(card["std"])).eval()
    scripted = _traced(model, tuple(card["input_shape"]))
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    save_scripted(scripted, Path(out_dir) / "model.pt")
    return {
        **card,
        "arch": state["config"]["model"]["arch"],
        "inputs": _inputs(card),
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "epoch": state["epoch"],
        "pretrained": state.get("pretrained"),  # where the weights it was fine-tuned from came from, and their digest
    }


def _inputs(card: dict[str, Any]) -> str:
    """What model.pt takes and returns, in words for the card: its mean and std are inside it, not to apply again."""
    channels, height, width = card["input_shape"]
    return (f"model.pt(images: float32 (N, {channels}, {height}, {width}) in [0, 1], not normalised: the card's "
            f"mean and std are applied inside) -> logits (N, {len(card['labels'])}), in the order of labels")


def _traced(model: Any, shape: tuple[int, ...]) -> Any:
    """`model` (in eval mode) as TorchScript, traced on a random input and checked against the model itself on
    inputs of other values (black, white, another random one): a forward whose flow depends on its input's values
    (an `if` on a tensor) traces one branch only, and would predict wrongly; such a model is scripted instead, or
    refused when it cannot be."""
    import torch

    checks = [torch.zeros(2, *shape), torch.ones(2, *shape), torch.rand(2, *shape)]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript is deprecated, but still what loads anywhere; TracerWarnings
        traced = torch.jit.trace(model, torch.rand(1, *shape))
        if all(torch.allclose(traced(x), model(x), rtol=1e-4, atol=1e-5) for x in checks):
            return traced
        try:
            scripted = torch.jit.script(model)
        except Exception as err:  # noqa: BLE001  (TorchScript's compiler raises many kinds)
            raise UserError(f"the model's forward gives other outputs than its trace on inputs of other values (its "
                            f"flow depends on them, e.g. an `if` on a tensor), and TorchScript cannot script it "
                            f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}): make the "
                            "forward's flow independent of the input's values, or scriptable") from None
    log.info("the model's forward depends on its input's values: exported scripted, not traced")
    return scripted


# ---------------------------------------------------------------------------------------------------- report
def test_predictions(model_dir: str, data: Data) -> ClassPredictions:
    """The exported model's predictions on the held-out test split, with the test images: `autotune report` draws
    them (confusion matrix, accuracy per class, the misclassified images)."""
    from autotune.vision.exported import test_predictions as predicted

    return predicted(model_dir, data)


def input_example(model_dir: str) -> np.ndarray:
    """A black image of the exported model's input shape, float32 (1, C, H, W): the MLflow model's input example."""
    from autotune.vision.exported import input_example as example

    return example(model_dir)


# ------------------------------------------------------------------------------------------- predict and serve
def load_model(model_dir: str) -> Predictor:
    """`autotune.load_model`: the exported model, ready to predict images (`autotune.vision.predictor`)."""
    from autotune.vision import predictor

    return predictor.load_model(model_dir)


def predict(model_dir: str, files: list[str], *, top_k: int = 3) -> Iterator[dict[str, Any] | BadInput]:
    """`autotune predict`: a record per image file, and per image of a .npy array, {"file", "label",
    "probability", "top_k"} (folders: the images and .npy files under them); a BadInput naming each file it cannot
    read (`autotune.vision.inference.predict_files`)."""
    from autotune.vision.inference import predict_files

    return predict_files(load_model(model_dir), files, top_k)


def serve(model_dir: str, *, max_bytes: int | None = None, max_files: int | None = None,
          max_pixels: int | None = None) -> FastAPI:
    """`autotune serve`: the app answering image uploads (`autotune.vision.serving`). The limits (None: its
    defaults): the largest image file in bytes, the most images per request, the largest image in pixels."""
    from autotune.vision.serving import create_app

    return create_app(model_dir, max_bytes=max_bytes, max_files=max_files, max_pixels=max_pixels)
