"""What every recipe's training loop needs, whatever it trains: the device, the learning-rate schedule, seeded
batch order, and checkpoints that keep the random states, so that a resumed trial continues exactly.

    device = pick_device("auto")
    schedule = make_schedule(optimizer, {"schedule": "cosine", "warmup_epochs": 1}, steps_per_epoch, epochs)
    parts = {"model": model, "optimizer": optimizer, "schedule": schedule}
    first = resume(load_checkpoint(checkpoint), parts, device, g) if checkpoint else 1
    for index in batch_indices(n, 128, generator=g, drop_last=True, device=device): ...
    report(metrics, checkpoint_saver(parts, epoch, device, g, config=config, metrics=metrics))
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from autotune.errors import UserError

__all__ = ["CHECKPOINT_FILE", "balanced_accuracy", "batch_indices", "check_same_data", "checkpoint_saver",
           "class_counts", "class_weights", "load_checkpoint", "macro_f1", "make_schedule", "pick_device", "restore_rng",
           "resume", "rng_state", "roc_auc", "save_scripted"]

CHECKPOINT_FILE = "checkpoint.pt"  # what a recipe's checkpoint folder holds


def pick_device(name: str) -> torch.device:
    """`auto` (CUDA when torch sees it, else the CPU), `cpu` or `cuda` (a UserError without a CUDA device)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("train.device is 'cuda' but torch sees no CUDA device; use device: auto or cpu")
    return torch.device(name)


def make_schedule(optimizer: torch.optim.Optimizer, opt: dict[str, Any], steps_per_epoch: int,
                  epochs: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Stepped once per batch: linear warm-up, then constant (none) or cosine to zero; or one-cycle."""
    total = steps_per_epoch * epochs
    warmup = round(opt["warmup_epochs"] * steps_per_epoch)
    if opt["schedule"] == "onecycle":
        rising = min(warmup / total, 0.9) if warmup else 0.25
        peaks = [group["lr"] for group in optimizer.param_groups]  # each group's own (a backbone, a classifier)
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peaks, total_steps=total,
                                                   pct_start=rising, cycle_momentum=False)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if opt["schedule"] == "cosine":
            return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def batch_indices(n: int, batch_size: int, *, generator: torch.Generator | None = None, drop_last: bool = False,
                  device: torch.device | None = None) -> Iterator[torch.Tensor | slice]:
    """The rows of each batch of `n` samples: slices in order without a `generator`, else index tensors (on
    `device`) of a permutation drawn from it. `drop_last` drops a last partial batch when there is a full one."""
    order = torch.randperm(n, generator=generator).to(device) if generator is not None else None
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    for start in range(0, stop, batch_size):
        yield order[start:start + batch_size] if order is not None else slice(start, start + batch_size)


def rng_state(device: torch.device, generator: torch.Generator) -> dict[str, Any]:
    """torch's, CUDA's (on a CUDA device) and the batch generator's random states, for a checkpoint."""
    return {"torch": torch.get_rng_state(), "generator": generator.get_state(),
            "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def restore_rng(state: dict[str, Any], device: torch.device, generator: torch.Generator) -> None:
    """The random states of `rng_state`, back where they were: a resumed trial draws what it would have drawn."""
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state["cuda"] is not None:
        torch.cuda.set_rng_state(state["cuda"], device)


def checkpoint_saver(parts: dict[str, Any], epoch: int, device: torch.device, generator: torch.Generator,
                     **extra: Any) -> Callable[[str], None]:
    """The `save(directory)` a recipe reports an epoch with: it writes each of `parts`' state_dict() (model,
    optimizer, schedule, ...), the epoch, the random states and `extra` (config, metrics, the data's card) to
    directory/CHECKPOINT_FILE. The engine calls it only for the epochs whose checkpoint it keeps."""
    def save(directory: str) -> None:
        torch.save({**{name: part.state_dict() for name, part in parts.items()}, "epoch": epoch,
                    "rng": rng_state(device, generator), **extra}, Path(directory) / CHECKPOINT_FILE)

    return save


def save_scripted(scripted: torch.jit.ScriptModule, path: str | Path) -> None:
    """Write the TorchScript module `scripted` to `path` through memory: its own save() to a full disk throws in
    torch's C++ writer while it unwinds, which aborts the whole process (SIGABRT, no Python error to catch); a write
    of its bytes raises OSError (ENOSPC) like any other file's."""
    Path(path).write_bytes(scripted.save_to_buffer())


def load_checkpoint(checkpoint: str) -> dict[str, Any]:
    """What `checkpoint_saver` wrote into the folder `checkpoint`, on the CPU; a UserError if it holds none."""
    path = Path(checkpoint) / CHECKPOINT_FILE
    if not path.is_file():
        raise UserError(f"{checkpoint} holds no {CHECKPOINT_FILE}: not a checkpoint of this recipe")
    return torch.load(path, map_location="cpu", weights_only=True)


def resume(state: dict[str, Any], parts: dict[str, Any], device: torch.device, generator: torch.Generator) -> int:
    """Each of `parts` and the random states back as a checkpoint's `state` saved them; the epoch to train next."""
    for name, part in parts.items():
        part.load_state_dict(state[name])
    restore_rng(state["rng"], device, generator)
    return state["epoch"] + 1


def check_same_data(state: dict[str, Any], fingerprint: str) -> None:
    """A UserError unless the data of `fingerprint` is the data the checkpoint's `state` was trained on."""
    saved = state["data"]["data_fingerprint"]
    if saved != fingerprint:
        raise UserError(f"the data differs from the data this checkpoint was trained on, or is split otherwise "
                        f"(fingerprint {fingerprint[:12]} vs {saved[:12]}: it covers the samples, their labels and "
                        "the split)")


# ---------------------------------------------------------------------------------------------------- classes
def class_counts(predicted: torch.Tensor, y: torch.Tensor, classes: int) -> torch.Tensor:
    """(3, classes) int64: each class's samples in `y`, how many of them `predicted` got right, and how many samples
    `predicted` put in the class. Counts of batches add up: `balanced_accuracy` and `macro_f1` of their sum are the
    split's."""
    return torch.stack([torch.bincount(y, minlength=classes), torch.bincount(y[predicted == y], minlength=classes),
                        torch.bincount(predicted, minlength=classes)])


def balanced_accuracy(counts: torch.Tensor) -> float:
    """The mean of the recalls of the classes `counts` (`class_counts`) holds samples of, as scikit-learn's
    balanced_accuracy_score: always predicting one class scores 1 / those classes, however common it is."""
    samples, hits, _ = counts
    present = samples > 0
    return (hits[present].double() / samples[present]).mean().item()


def macro_f1(counts: torch.Tensor) -> float:
    """The mean of the F1 scores (2 right / (samples + predicted)) of the classes `counts` (`class_counts`) holds
    samples of or predicts, as scikit-learn's f1_score(average="macro"): a rare class counts as much as a common
    one, and a class never predicted scores 0, so always predicting a class that is 97 % of two scores 0.49."""
    samples, hits, predicted = counts
    present = samples + predicted > 0
    return (2 * hits[present].double() / (samples + predicted)[present]).mean().item()


def roc_auc(probabilities: torch.Tensor, y: torch.Tensor) -> float:
    """The area under the ROC curve of the class `probabilities` (N, classes) for the class indices `y`, as
    scikit-learn's roc_auc_score: of the second class's probability with two classes, else the mean of each class's
    against the others (multi_class="ovr", average="macro") over the classes `y` holds samples of. NaN when `y` holds
    one class only: no sample of another to rank it against (loading warns of such a validation split)."""
    from sklearn.metrics import roc_auc_score

    scores, truth = probabilities.double().cpu().numpy(), y.cpu().numpy()
    present = sorted(set(truth.tolist()))
    if len(present) < 2:
        return math.nan
    ranked = present[1:] if scores.shape[1] == 2 else present
    # float(): an older scikit-learn (1.3) returns a NumPy float, which the checkpoint's metrics would hold and
    # torch.load(weights_only=True) refuses to read back (the tabular export failed with an UnpicklingError)
    return float(sum(roc_auc_score(truth == c, scores[:, c]) for c in ranked) / len(ranked))


def class_weights(y: torch.Tensor, classes: int) -> torch.Tensor:
    """scikit-learn's balanced class weights of the class indices `y` (train.class_weight: balanced):
    n_samples / (classes * the class's samples), float32; a class without samples gets 0 (loading refuses a train
    split without one)."""
    counts = torch.bincount(y, minlength=classes).double()
    return torch.where(counts > 0, len(y) / (classes * counts.clamp(min=1)), 0.0).float()
