"""The tabular network: the numeric inputs and one embedding per categorical column, through an MLP.

    net = TabularMLP(numeric=30, cardinalities=[5, 12], outputs=2, width=128, depth=2)
    logits = net(numeric, categorical)                       # float32 (N, 30), int64 (N, 2) -> (N, 2)
    exported = in_target_units(net, preprocessing)           # model.pt: logits, or float64 values in target units
    categorical = drop_categories(categorical, 0.05, unmissed)   # training only: category dropout of a batch

A category the train split does not hold (a new store, a new country) is encoded as UNKNOWN, a missing one as
MISSING (`autotune.tabular.data`). Without training rows that hold them, their embedding rows would keep a random
initialisation, and such a row would get an arbitrary prediction. So they start at zero, the centre of the values'
random rows, and category dropout trains them on a share of the training cells: they learn what a typical value of
the column predicts (bench/tabular_categories.py measures it).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from autotune.tabular.data import MISSING, UNKNOWN, Preprocessing

__all__ = ["TabularMLP", "InTargetUnits", "in_target_units", "drop_categories"]


class TabularMLP(nn.Module):
    """`depth` hidden layers of `width` units (Linear, BatchNorm if `batch_norm`, ReLU, Dropout), then a Linear
    to `outputs`. Categorical column i is embedded in min(embedding_dim, cardinalities[i]) dimensions; the rows of
    its values start N(0, 1) (nn.Embedding's), those of MISSING and UNKNOWN at zero, the centre of the others."""

    def __init__(self, numeric: int, cardinalities: Sequence[int], outputs: int, *, width: int = 128, depth: int = 2,
                 dropout: float = 0.1, embedding_dim: int = 8, batch_norm: bool = False) -> None:
        super().__init__()
        self.embeddings = nn.ModuleList(nn.Embedding(n, min(embedding_dim, n)) for n in cardinalities)
        with torch.no_grad():
            for embedding in self.embeddings:
                embedding.weight[[MISSING, UNKNOWN]] = 0.0  # at the centre of the values' N(0, 1) rows
        size = numeric + sum(e.embedding_dim for e in self.embeddings)
        layers: list[nn.Module] = []
        for _ in range(depth):
            layers += [nn.Linear(size, width), *([nn.BatchNorm1d(width)] if batch_norm else []), nn.ReLU(),
                       nn.Dropout(dropout)]
            size = width
        self.layers = nn.Sequential(*layers, nn.Linear(size, outputs))

    def forward(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        parts = [numeric]
        for i, embedding in enumerate(self.embeddings):
            parts.append(embedding(categorical[:, i]))
        return self.layers(torch.cat(parts, dim=1))


class InTargetUnits(nn.Module):
    """The network's output as its task reads it: logits (N, classes) unchanged; or (N,) float64 values in the
    target's units (the network learns the standardised target in float32: here it is scaled back in float64, as a
    target of 123456789 + a few units needs; float32 holds it to a multiple of 8)."""

    def __init__(self, net: nn.Module, regression: bool, mean: float, std: float) -> None:
        super().__init__()
        self.net, self.regression, self.mean, self.std = net, regression, float(mean), float(std)

    def forward(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        out = self.net(numeric, categorical)
        if self.regression:
            return out[:, 0].double() * self.std + self.mean  # a Python float: a double, in TorchScript too
        return out


def in_target_units(net: nn.Module, preprocessing: Preprocessing) -> InTargetUnits:
    """`net` giving what evaluation measures and model.pt returns (`InTargetUnits`)."""
    regression = preprocessing.task == "regression"
    return InTargetUnits(net, regression, preprocessing.target_mean, preprocessing.target_std)


def drop_categories(categorical: torch.Tensor, p: float, unmissed: torch.Tensor) -> torch.Tensor:
    """Category dropout of a training batch's `categorical` codes: each cell, with chance `p`, becomes UNKNOWN; in
    a column that `unmissed` (bool, one per column) marks, one no training row misses, half of those cells become
    MISSING instead, so that both reserved rows learn what an unseen or missing category predicts. Drawn from
    torch's random state on the batch's device, as nn.Dropout is (a checkpoint keeps it); `categorical` itself is
    returned where p is 0 or there is no categorical column (nothing drawn)."""
    if p == 0 or categorical.shape[1] == 0:
        return categorical
    draw = torch.rand(categorical.shape, device=categorical.device)
    fill = torch.where((draw < p / 2) & unmissed, MISSING, UNKNOWN)
    return torch.where(draw < p, fill, categorical)
