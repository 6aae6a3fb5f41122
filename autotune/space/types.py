"""The parsed, typed, immutable form of a search space: what the engine and the recipes consume.

A `Space` holds the ordered `params` (define-by-run order: a `choice` parameter comes before the parameters
that are conditional on it) and turns one set of sampled values into the resolved, nested trial config.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Union

__all__ = [
    "Uniform", "LogUniform", "Int", "QUniform", "Choice", "Grid", "Distribution",
    "Param", "Resources", "SearchSettings", "ExportSettings", "Space",
]

Label = Union[str, int, float, bool, None]  # what a sampler can propose for a categorical (Optuna's rule)


@dataclass(frozen=True)
class Uniform:
    low: float
    high: float


@dataclass(frozen=True)
class LogUniform:
    low: float
    high: float


@dataclass(frozen=True)
class Int:
    """Integers from low to high inclusive, every `step`, optionally on a log scale."""

    low: int
    high: int
    step: int = 1
    log: bool = False


@dataclass(frozen=True)
class QUniform:
    """Floats from low to high in multiples of `step` above low."""

    low: float
    high: float
    step: float


@dataclass(frozen=True)
class Choice:
    """One of `options`. A sampler proposes one of `labels` (primitive stand-ins, same order).

    For a choice of constants the labels are the values themselves when they are primitives, else
    their positions as strings. For a choice of mappings (a conditional sub-space) each label names
    its option: the option's `name` key when it has a unique constant one, else its position.
    `conditional` is True for a choice of mappings.
    """

    options: tuple[Any, ...]
    labels: tuple[Label, ...]
    conditional: bool = False


@dataclass(frozen=True)
class Grid:
    """Every one of `values`, exhaustively (needs `search.sampler: grid`). `labels` as for Choice."""

    values: tuple[Any, ...]
    labels: tuple[Label, ...]


Distribution = Union[Uniform, LogUniform, Int, QUniform, Choice, Grid]


@dataclass(frozen=True)
class Param:
    """One searched parameter.

    `name` is stable and unique: the dotted key path (`optimizer.lr`), with the option label in brackets
    under a conditional choice (`optimizer[adamw].weight_decay`). `condition` lists (choice param name,
    label) pairs that must all hold for this parameter to be sampled.
    """

    name: str
    dist: Distribution
    condition: tuple[tuple[str, Label], ...] = ()
    line: int | None = None

    def active(self, values: Mapping[str, Any]) -> bool:
        """Whether this parameter is sampled, given the values sampled before it."""
        return all(name in values and values[name] == label for name, label in self.condition)


@dataclass(frozen=True)
class Resources:
    cpu: float = 1.0
    gpu: float = 0.0


@dataclass(frozen=True)
class SearchSettings:
    metric: tuple[str, ...] = ("val_accuracy",)
    mode: tuple[str, ...] = ("max",)  # "max" | "min", one per metric
    trials: int = 20
    sampler: str = "tpe"  # tpe | random | cmaes | gp | qmc | grid | nsga2
    sampler_args: Mapping[str, Any] = field(default_factory=dict)
    scheduler: str = "asha"  # asha | hyperband | median | fifo
    scheduler_args: Mapping[str, Any] = field(default_factory=dict)
    max_concurrent: int | None = None  # None: as many as the resources allow
    time_budget: float | None = None  # seconds
    seed: int = 0
    resources: Resources = field(default_factory=Resources)
    stop: Mapping[str, float] | None = None  # e.g. {"val_accuracy": 0.99}
    max_failures: int = 0  # retries of a failed trial, from its last checkpoint
    keep_checkpoints: int = 2  # best checkpoints kept per trial (the latest is always kept too)

    @property
    def multi_objective(self) -> bool:
        return len(self.metric) > 1


@dataclass(frozen=True)
class ExportSettings:
    dir: str = "models/default"  # after interpolation, relative to the working directory
    promote: str = "always"  # always | if_better | never
