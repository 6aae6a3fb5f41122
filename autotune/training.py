"""What every recipe's training loop needs, whatever it trains: the device, the learning-rate schedule, seeded
batch order, and the random states a checkpoint keeps so that a resumed trial continues exactly.

    device = pick_device("auto")
    schedule = make_schedule(optimizer, {"schedule": "cosine", "warmup_epochs": 1}, steps_per_epoch, epochs)
    for index in batch_indices(n, 128, generator=g, drop_last=True, device=device): ...
    state = {"rng": rng_state(device, g), ...}; restore_rng(state["rng"], device, g)
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch

from autotune.errors import UserError

__all__ = ["batch_indices", "make_schedule", "pick_device", "restore_rng", "rng_state"]


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
