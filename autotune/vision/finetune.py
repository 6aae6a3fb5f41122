"""Fine-tuning a network: its classifier (the head) apart from the rest (the backbone), a learning rate per part,
and a frozen backbone for the first epochs.

    groups = param_groups(model, lr=0.01, backbone_lr_mult=0.1)   # optimizer groups: backbone at 0.001, head 0.01
    freeze_backbone(model, True)    # after model.train(): only the head learns; the backbone's BatchNorm
                                    # statistics and dropout are frozen too, so none of its tensors changes

The head is what timm's `get_classifier()` returns, else the model's last `nn.Linear` (the built-in nets' classifier).
"""
from __future__ import annotations

from typing import Any

from torch import nn

from autotune.errors import UserError

__all__ = ["head", "param_groups", "freeze_backbone"]


def head(model: nn.Module) -> nn.Module:
    """The module that maps features to class logits."""
    get = getattr(model, "get_classifier", None)
    classifier = get() if callable(get) else None
    if isinstance(classifier, nn.Module) and any(True for _ in classifier.parameters()):
        return classifier
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise UserError(f"{type(model).__name__} has no classifier to fine-tune apart (no get_classifier(), no "
                        "nn.Linear): set train.freeze_epochs: 0 and optimizer.backbone_lr_mult: 1")
    return linears[-1]


def _split(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    own = {id(p) for p in head(model).parameters()}
    params = list(model.parameters())
    return [p for p in params if id(p) not in own], [p for p in params if id(p) in own]


def param_groups(model: nn.Module, lr: float, backbone_lr_mult: float) -> list[dict[str, Any]]:
    """Optimizer parameter groups: the backbone at `lr * backbone_lr_mult`, the head at `lr`; one group when the
    multiplier is 1 (the optimizer's state then reads as it always did)."""
    if backbone_lr_mult == 1:
        return [{"params": list(model.parameters()), "lr": lr}]
    backbone, classifier = _split(model)
    return [{"params": backbone, "lr": lr * backbone_lr_mult}, {"params": classifier, "lr": lr}]


def freeze_backbone(model: nn.Module, frozen: bool) -> None:
    """Freeze (or thaw) every part of `model` but its head: no gradients for its parameters and, frozen, its
    layers in eval mode (BatchNorm keeps its statistics, dropout is off). Call after `model.train()`."""
    classifier = set(head(model).modules())
    backbone, _ = _split(model)
    for param in backbone:
        param.requires_grad_(not frozen)
    if frozen:
        for module in model.modules():
            if module not in classifier and not any(True for _ in module.children()):
                module.eval()
