"""The learning-rate range test (Smith 2017, as fastai runs it): train for about 100 batches while the learning
rate grows exponentially, record the smoothed loss, and suggest a rate a decade below the one of least loss.

    sweep = range_test(step, start=1e-6, end=1.0, steps=100)   # step(lr) -> the batch's loss, trained at lr
    sweep.suggestion, sweep.search_range                        # 3e-3, (3e-4, 3e-2)
    plot(sweep, "lr_find.png")

The sweep stops early once the smoothed loss is over 4x its minimum (it diverged) or not finite.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from autotune.errors import UserError

__all__ = ["Sweep", "range_test", "plot"]

# the exponential moving average of the loss, bias-corrected as fastai's, with a shorter memory (0.98 there): it
# trails the loss by about 9 batches (half a decade of a 100-batch sweep over 6 decades), not 49
SMOOTHING = 0.9
DIVERGED = 4.0  # the sweep stops when the smoothed loss exceeds this many times its minimum
EDGE = 3  # batches at either end of the sweep whose least loss says the rates worth trying lie beyond it
ROSE = 2.0  # a sweep whose last loss is this many times its least rose (diverged), not merely wavered
FELL = 0.9  # a least loss above this share of the first: no rate of the sweep trained the model


@dataclass(frozen=True)
class Sweep:
    lrs: list[float]  # the learning rate of each batch
    losses: list[float]  # the smoothed loss after each batch

    @property
    def least(self) -> int:
        """The batch of the least smoothed loss."""
        return min(range(len(self.losses)), key=self.losses.__getitem__)

    @property
    def best_lr(self) -> float:
        """The learning rate at the least smoothed loss."""
        return self.lrs[self.least]

    @property
    def still_falling(self) -> bool:
        """Whether the least loss came at the last batches of the sweep: the loss may fall further beyond its end."""
        return self.least >= len(self.losses) - EDGE

    @property
    def rose_from_start(self) -> bool:
        """Whether the least loss came at the first batches and the loss rose from there: every rate swept was too
        high, and the suggestion (below the first) was not tried."""
        return self.least < EDGE and self.losses[-1] >= ROSE * self.losses[self.least]

    @property
    def hardly_fell(self) -> bool:
        """Whether the least loss is hardly below the first: no rate of the sweep trained the model, and the
        suggestion follows the noise."""
        return self.losses[self.least] > FELL * self.losses[0]

    @property
    def suggestion(self) -> float:
        """A decade below the least loss: still falling fast, and safely short of where the loss turns up."""
        return self.best_lr / 10

    @property
    def search_range(self) -> tuple[float, float]:
        """A `loguniform` range for a search: a decade either side of the suggestion, at most the least loss."""
        return self.suggestion / 10, self.best_lr


def range_test(step: Callable[[float], float], *, start: float = 1e-6, end: float = 1.0,
               steps: int = 100) -> Sweep:
    """Call `step(lr)` (one training batch at that rate, returning its loss) for `steps` rates from `start` to
    `end`, spaced exponentially; the smoothed losses, up to where they diverge."""
    if not 0 < start < end or steps < 2:
        raise ValueError(f"need 0 < start < end and steps >= 2, got {start}, {end}, {steps}")
    growth = (end / start) ** (1 / (steps - 1))
    lrs: list[float] = []
    losses: list[float] = []
    average = 0.0
    for i in range(steps):
        lr = start * growth**i
        loss = step(lr)
        if not math.isfinite(loss):
            break
        average = SMOOTHING * average + (1 - SMOOTHING) * loss
        smoothed = average / (1 - SMOOTHING ** (i + 1))
        lrs.append(lr)
        losses.append(smoothed)
        if i > 10 and smoothed > DIVERGED * min(losses):
            break
    if len(losses) < 2:
        raise UserError("the loss was not finite from the first batches: lower the start learning rate "
                        f"(lr-find's --start, {start:g} here)")
    return Sweep(lrs, losses)


def plot(sweep: Sweep, path: str | Path) -> Path:
    """A PNG of the smoothed loss against the learning rate (log scale), the suggestion marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
    axes.plot(sweep.lrs, sweep.losses)
    axes.axvline(sweep.suggestion, color="tab:red", linestyle="--", label=f"suggested lr {sweep.suggestion:.2g}")
    axes.axvspan(*sweep.search_range, color="tab:green", alpha=0.12, label="search range")
    axes.set(xscale="log", xlabel="learning rate", ylabel="training loss (smoothed)", title="learning-rate range test")
    top = min(max(sweep.losses), sweep.losses[0] * 1.5)
    axes.set_ylim(min(sweep.losses) * 0.95, max(top, min(sweep.losses) * 1.05))
    axes.legend()
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path)
    plt.close(figure)
    return path
