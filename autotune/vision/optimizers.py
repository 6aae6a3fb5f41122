"""Optimizers by name: `optimizer: {name: adamw, lr: 1.0e-3, weight_decay: 1.0e-2}`.

An optimizer factory takes the parameters to optimise, `lr`, `weight_decay` and keyword arguments of its own, and
returns a `torch.optim.Optimizer`. Add yours in a `custom:` file:

    @autotune.register("optimizer")
    def rmsprop(params, lr, weight_decay, **kwargs):
        return torch.optim.RMSprop(params, lr=lr, weight_decay=weight_decay)

Cheap to import: torch loads when an optimizer is built.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from autotune.errors import AutotuneError, Problem, UserError
from autotune.registry import get, register
from autotune.calls import failure, unknown_arguments

if TYPE_CHECKING:
    import torch

__all__ = ["build", "sgd", "adam", "adamw", "nesterov_problems", "warmup_throughout"]


@register("optimizer")
def sgd(params: Iterable[Any], lr: float, weight_decay: float = 0.0, momentum: float = 0.9,
        nesterov: bool = False) -> torch.optim.Optimizer:
    """SGD with momentum (Nesterov's with `nesterov: true`)."""
    import torch

    if nesterov and momentum <= 0:
        raise UserError("optimizer.nesterov needs optimizer.momentum > 0")
    return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)


def nesterov_problems(config: dict[str, Any]) -> list[Problem]:
    """A Schema check of the recipes: sgd's nesterov needs momentum > 0, which a trial would only find when it builds
    its optimizer (every trial of a search failed)."""
    opt = config.get("optimizer", {})
    momentum = opt.get("momentum")
    if opt.get("name") != "sgd" or opt.get("nesterov") is not True or momentum is None or momentum > 0:
        return []
    return [Problem("optimizer.nesterov", f"Nesterov momentum needs optimizer.momentum > 0, but it is {momentum:g}",
                    "raise optimizer.momentum (e.g. 0.9), or set optimizer.nesterov: false")]


def warmup_throughout(config: dict[str, Any]) -> list[Problem]:
    """A Schema warning of the recipes: a linear warm-up (schedule none or cosine) as long as train.epochs or longer
    ends with the learning rate still below optimizer.lr, so no step trains at the rate searched (onecycle caps its
    rise at 90% of the steps)."""
    opt, epochs = config.get("optimizer", {}), config.get("train", {}).get("epochs")
    warmup = opt.get("warmup_epochs") or 0
    if opt.get("schedule") == "onecycle" or not isinstance(epochs, int) or warmup < epochs:
        return []
    return [Problem("optimizer.warmup_epochs", f"is {warmup:g} and train.epochs {epochs}: the warm-up lasts the "
                    "whole training, so the learning rate stays below optimizer.lr to the last batch or never "
                    "reaches it",
                    f"lower it below train.epochs (e.g. {min(1.0, epochs / 2):g}), or use schedule: onecycle, whose "
                    "rise it sets")]


@register("optimizer")
def adam(params: Iterable[Any], lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """Adam; `weight_decay` is added to the gradient (L2)."""
    import torch

    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


@register("optimizer")
def adamw(params: Iterable[Any], lr: float, weight_decay: float = 0.01) -> torch.optim.Optimizer:
    """AdamW; `weight_decay` is decoupled from the gradient."""
    import torch

    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def build(name: str, params: Iterable[Any], lr: float, weight_decay: float, **options: Any) -> torch.optim.Optimizer:
    """The registered optimizer `name` over `params`. `options` are a recipe's other optimizer keys (sgd's momentum
    and nesterov, a registered optimizer's own), None meaning unset: one that is set and that the factory does not
    take is a UserError, as `check` reports it."""
    import torch

    factory = get("optimizer", name)
    kwargs = {k: v for k, v in options.items() if v is not None}
    unknown = unknown_arguments(factory, kwargs, hidden=("params",))
    if unknown:
        raise UserError(f"optimizer {name!r} cannot be built: it takes {unknown}; give a key only to the "
                        "optimizers that take it, with the conditional form `optimizer: {choice: [{name: sgd, "
                        "momentum: ...}, {name: adamw}]}`")
    try:
        optimizer = factory(params, lr=lr, weight_decay=weight_decay, **kwargs)
    except AutotuneError:
        raise
    except Exception as err:  # a user's factory (or torch refusing an argument)
        raise failure("optimizer", name, factory, err) from None
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise UserError(f"optimizer {name!r} returned {type(optimizer).__name__}, not a torch.optim.Optimizer: "
                        "an optimizer factory must return one")
    return optimizer
