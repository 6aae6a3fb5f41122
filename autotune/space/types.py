"""The parsed, typed, immutable form of a search space: what the engine and the recipes consume.

A `Space` holds the ordered `params` (define-by-run order: a `choice` parameter comes before the parameters
that are conditional on it) and turns one set of sampled values into the resolved, nested trial config.
"""
from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Union

from autotune.errors import Problem, UserError
from autotune.space._frozen import freeze
from autotune.space._tree import InterpError, materialize, resolve
from autotune.space.schema import value_at

__all__ = [
    "Uniform", "LogUniform", "Int", "QUniform", "Pow2", "Choice", "Grid", "Distribution",
    "Param", "Resources", "SearchSettings", "ExportSettings", "Space", "Label", "default_value", "default_values",
    "param_default", "GIVEN", "scenarios", "varies", "json_keys", "option_texts", "positions",
]

Label = Union[str, int, float, bool, None]  # what a sampler can propose for a categorical (Optuna's rule)
# what `scheduler: auto` runs where trials can be stopped early, up to the most epochs a trial runs: measured in
# bench/quality.py (docs/search-space.md says why)
AUTO_SCHEDULER = {"grace_period": 1, "reduction_factor": 3, "adaptive": True}


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
class Pow2:
    """The powers of two from low to high, both ends included (both powers of two). A sampler proposes one of
    `labels`, the powers themselves, as for a choice of those numbers."""

    low: int
    high: int

    @property
    def labels(self) -> tuple[int, ...]:
        return tuple(2 ** exponent for exponent in range(self.low.bit_length() - 1, self.high.bit_length()))


@dataclass(frozen=True)
class Choice:
    """One of `options`. A sampler proposes one of `labels` (primitive stand-ins, same order).

    For a choice of constants the labels are the values themselves when they are primitives, else
    their positions as strings. For a choice of mappings (a conditional sub-space) each label names
    its option: the option's `name` key when it has a unique constant one, else its position.
    `conditional` is True for a choice of mappings. The options are read-only (mappings are FrozenDicts,
    lists tuples).
    """

    options: tuple[Any, ...]
    labels: tuple[Label, ...]
    conditional: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", freeze(self.options))


@dataclass(frozen=True)
class Grid:
    """Every one of `values`, exhaustively (needs `search.sampler: grid`). `labels` as for Choice."""

    values: tuple[Any, ...]
    labels: tuple[Label, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", freeze(self.values))


Distribution = Union[Uniform, LogUniform, Int, QUniform, Pow2, Choice, Grid]


@dataclass(frozen=True)
class Param:
    """One searched parameter.

    `name` is stable and unique: the dotted key path (`optimizer.lr`), with the option label in brackets
    under a conditional choice (`optimizer[adamw].weight_decay`). `condition` lists (choice param name,
    label) pairs that must all hold for this parameter to be sampled. `default` holds the `default:` the space
    gives beside the distribution (a label for a choice), as a one-item tuple: () when it gives none (a default may
    itself be null).
    """

    name: str
    dist: Distribution
    condition: tuple[tuple[str, Label], ...] = ()
    line: int | None = None
    default: tuple[Label, ...] = ()

    def active(self, values: Mapping[str, Any]) -> bool:
        """Whether this parameter is sampled, given the values sampled before it."""
        return all(name in values and values[name] == label for name, label in self.condition)

    @property
    def key_path(self) -> str:
        """The dotted key of this parameter in a trial's config: its name without the labels of the choices it is
        conditional on (`optimizer[adamw].lr` -> `optimizer.lr`)."""
        name = self.name
        for choice, label in reversed(self.condition):
            name = name.replace(f"{choice}[{label}]", choice, 1)
        return name


@dataclass(frozen=True)
class Resources:
    """What one trial holds while it runs: CPUs, GPUs (a share: 0.25 lets four trials use one), and `custom`, a
    Ray custom resource's amount by name (`ray start --resources='{"big_memory": 1}'` gives a node one)."""

    cpu: float = 1.0
    gpu: float = 0.0
    custom: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchSettings:
    metric: tuple[str, ...] = ("val_accuracy",)
    mode: tuple[str, ...] = ("max",)  # "max" | "min", one per metric
    trials: int = 20
    epoch_budget: int | None = None  # the trials together run at most this many epochs
    sampler: str = "tpe"  # tpe | random | cmaes | gp | qmc | grid | nsga2
    sampler_args: Mapping[str, Any] = field(default_factory=dict)
    scheduler: str = "auto"  # auto | asha | hyperband | median | fifo
    scheduler_args: Mapping[str, Any] = field(default_factory=dict)
    max_concurrent: int | None = None  # None: as many as the resources allow
    time_budget: float | None = None  # seconds
    trial_timeout: float | None = None  # seconds without a report after which a trial fails
    seed: int = 0
    resources: Resources = field(default_factory=Resources)
    stop: Mapping[str, float] | None = None  # metric -> target, e.g. {"val_accuracy": 0.99}
    # metric -> "max" (the target is reached at >= target) or "min" (at <=), one per stop metric
    stop_modes: Mapping[str, str] | None = None
    max_failures: int = 0  # retries of a failed trial, from its last checkpoint
    keep_checkpoints: int = 2  # best checkpoints kept per trial (the latest is always kept too)
    # `search.start`: known configurations to evaluate first, each completed with the defaults (labels for choices)
    start: tuple[Mapping[str, Label], ...] = ()
    # the default configuration (where a parameter gives a `default:`) is the first trial; false: the sampler's
    # own first, so that search seeds differ from their first trial (a comparison of samplers or seeds)
    default_first: bool = True
    # a running trial's checkpoint at least every this many epochs, so that a kill or a failure loses fewer
    # (besides the epochs that may be exported: better than every checkpoint of the search before them)
    checkpoint_every: int = 5

    def __post_init__(self) -> None:
        for name in ("sampler_args", "scheduler_args", "stop", "stop_modes", "start"):
            object.__setattr__(self, name, freeze(getattr(self, name)))

    @property
    def multi_objective(self) -> bool:
        return len(self.metric) > 1


@dataclass(frozen=True)
class ExportSettings:
    dir: str = "models/default"  # after interpolation, relative to the working directory
    promote: str = "always"  # always | if_better | never
    min_improvement: float = 0.0  # if_better: by how much the new model's held-out metric must beat the current's


@dataclass(frozen=True)
class MlflowSettings:
    uri: str | None = None  # None: MLFLOW_TRACKING_URI, else MLflow's own default (./mlruns)
    experiment: str | None = None  # None: the space's name
    register: str | None = None  # a registered model name: each promoted export becomes a version, alias champion


@dataclass(frozen=True)
class WandbSettings:
    project: str | None = None  # None: WANDB_PROJECT, else the space's name
    entity: str | None = None
    mode: str | None = None  # online | offline | disabled; None: WANDB_MODE, else online


@dataclass(frozen=True)
class TrackingSettings:
    """Where a search's trials are also recorded, besides TensorBoard and the Optuna study (`tracking:`)."""

    mlflow: MlflowSettings | None = None
    wandb: WandbSettings | None = None
    off: frozenset[str] = frozenset()  # the trackers turned off (`mlflow: false`), whatever the environment says


def varies(dist: Distribution) -> bool:
    """Whether `dist` can take more than one value (`{choice: [16]}` and `{uniform: [0.2, 0.2]}` cannot)."""
    if isinstance(dist, Choice):
        return len(dist.options) > 1
    if isinstance(dist, Grid):
        return len(dist.values) > 1
    return dist.low < dist.high


def default_value(dist: Distribution) -> tuple[Label, str]:
    """The value a standalone run uses for `dist`, and how it was chosen."""
    if isinstance(dist, (Choice, Grid)):
        return dist.labels[0], "first option"
    if isinstance(dist, Pow2):
        middle = (dist.low.bit_length() + dist.high.bit_length()) // 2 - 1  # the lower of two on a tie
        return 2 ** middle, "geometric mean, a power of two"
    if isinstance(dist, LogUniform) or isinstance(dist, Int) and dist.log:
        value: float = math.sqrt(dist.low * dist.high)
        how = "geometric mean"
    else:
        value, how = (dist.low + dist.high) / 2, "midpoint"
    if isinstance(dist, (Int, QUniform)):
        value = dist.low + round((value - dist.low) / dist.step) * dist.step
        value = min(value, dist.high)
        how += " on the step grid" if dist.step != 1 else ", rounded"
    if isinstance(dist, Int):
        return int(value), how
    return float(value), how


GIVEN = "given in the space"


def param_default(param: Param) -> tuple[Label, str]:
    """The `default:` the space gives `param`, else `default_value` of its distribution; and how it was chosen."""
    if param.default:
        return param.default[0], GIVEN
    return default_value(param.dist)


def default_values(params: tuple[Param, ...], forced: Mapping[str, Label] | None = None
                   ) -> tuple[dict[str, Label], dict[str, str]]:
    """One value per active parameter (in order), `forced` values first, else `param_default`."""
    forced = forced or {}
    values: dict[str, Label] = {}
    how: dict[str, str] = {}
    for param in params:
        if param.active(values):
            if param.name in forced:
                values[param.name], how[param.name] = forced[param.name], "given"
            else:
                values[param.name], how[param.name] = param_default(param)
    return values, how


def scenarios(params: tuple[Param, ...]) -> list[tuple[str, dict[str, Label]]]:
    """Sampled values that between them take every option of every choice and grid and the top of every range: the
    defaults, then the defaults with one parameter forced (with the options its condition needs). Each comes with
    what it forces (`optimizer=adamw`; "" for the defaults)."""
    defaults = default_values(params)[0]
    found = [("", defaults)]
    seen = {tuple(defaults.items())}
    for param in params:
        dist = param.dist
        for value in dist.labels if isinstance(dist, (Choice, Grid)) else (dist.high,):
            values = default_values(params, {**dict(param.condition), param.name: value})[0]
            if tuple(values.items()) not in seen:
                seen.add(tuple(values.items()))
                found.append((f"{param.name}={value}", values))
    return found


def option_texts(dist: Choice | Grid) -> list[str]:
    """Each option of `dist` as `autotune check` shows it: its label, with what a position stands for among options
    of constants labelled by position (`0=null`, `1=[128]`)."""
    constants = _constants(dist)
    return [f"{label}={_constant(value)}" if _positional(dist) and constants else str(label)
            for label, value in zip(dist.labels, constants or dist.labels)]


def positions(params: tuple[Param, ...]) -> dict[str, str]:
    """What each label stands for, by parameter, where a choice or grid of constants labels its options by position
    (`train.grad_clip`: "0=null, 1=1.0"): the labels are what trials.csv and the summary's table show."""
    return {param.name: ", ".join(option_texts(param.dist)) for param in params
            if isinstance(param.dist, (Choice, Grid)) and _constants(param.dist) and _positional(param.dist)}


def _constants(dist: Choice | Grid) -> tuple[Any, ...]:
    """The options of `dist` when they are constants, else () (a choice of mappings)."""
    return dist.values if isinstance(dist, Grid) else () if dist.conditional else dist.options


def _positional(dist: Choice | Grid) -> bool:
    """Whether `dist` labels its options by position ('0', '1', ...)."""
    return list(dist.labels) == [str(i) for i in range(len(dist.labels))]


def _constant(value: Any) -> str:
    """A choice's constant as the space writes it: `null`, `true`, `[1, 2]`, `relu`, `["都市"]`."""
    return value if isinstance(value, str) else json.dumps(json_keys(value), default=str, ensure_ascii=False)


def json_keys(value: Any) -> Any:
    """`value` with every mapping key a string, so that json can sort them (`1` becomes "<int>1")."""
    if isinstance(value, Mapping):
        return {k if isinstance(k, str) else f"<{type(k).__name__}>{k}": json_keys(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_keys(v) for v in value]
    return value


@dataclass(frozen=True)
class Space:
    """A validated search space: its parameters (define-by-run order), search and export settings.

    `document` is the file as read, with the overrides applied (read-only: FrozenDicts and tuples). `template` is
    the config of the ingredient sections with markers where sampled values go; `namespace` holds the top-level
    values that `${...}` may refer to (name, recipe, search, export, tracking).
    """

    name: str
    recipe: str
    source: str | None
    base_dir: str | None
    custom: str | None
    params: tuple[Param, ...]
    search: SearchSettings
    export: ExportSettings
    document: Mapping[str, Any]
    tracking: TrackingSettings = field(default_factory=TrackingSettings)
    # from the recipe's schema: the dotted key of a trial's number of reports (None: the recipe declares none, and
    # nothing stops early) and the metrics its reports hold with their direction (empty: undeclared)
    budget: str | None = "train.epochs"
    metrics: Mapping[str, str] = field(default_factory=dict)
    tests: Mapping[str, str] = field(default_factory=dict)  # validation metric -> its held-out twin
    template: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    namespace: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # what the recipe's `Schema.warnings` found, located: shown by `check`, `train` and `lr-find`, logged by `fit`
    warnings: tuple[Problem, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "document", freeze(self.document))
        object.__setattr__(self, "metrics", freeze(self.metrics))
        object.__setattr__(self, "tests", freeze(self.tests))

    def test_twin(self) -> tuple[str, str]:
        """The held-out test metric that mirrors the searched one, and its direction: the recipe's declared twin
        (`val_accuracy` -> `test_accuracy`), else the first twin it declares; undeclared, `val_x` -> `test_x`."""
        metric, mode = self.search.metric[0], self.search.mode[0]
        if not self.tests:
            return f"test_{metric.removeprefix('val_')}", mode
        if metric in self.tests:
            return self.tests[metric], mode
        first = next(iter(self.tests))
        return self.tests[first], self.metrics.get(first, mode)

    def planned(self, config: Mapping[str, Any]) -> int | None:
        """The reports (epochs) a trial of the nested `config` makes at most: the value at `budget`; None when the
        recipe declares no budget or the config holds no finite number there."""
        value = value_at(config, self.budget) if self.budget else None
        number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        return int(value) if number else None

    def stops_nothing(self) -> str:
        """Why `scheduler: auto` stops no trial early in this space, so that it runs fifo ("" where it can, or where
        the scheduler is named): early stopping ranks trials by one metric, at epochs of the recipe's budget key."""
        if self.search.scheduler != "auto":
            return ""
        if self.search.multi_objective:
            return "several objectives"
        if self.budget is None:
            return "the recipe declares no budget"
        return "a trial runs 1 epoch" if self.most_planned() < 2 else ""

    def scheduler_run(self) -> tuple[str, Mapping[str, Any]]:
        """The scheduler the search runs and its arguments: `auto` resolved for this space (fifo where it
        `stops_nothing`, else adaptive hyperband from epoch 1 to the most epochs a trial runs); else the one named,
        with the arguments given."""
        if self.search.scheduler != "auto":
            return self.search.scheduler, self.search.scheduler_args
        if self.stops_nothing():
            return "fifo", {}
        return "hyperband", {"max_t": self.most_planned(), **AUTO_SCHEDULER}

    def most_planned(self) -> int:
        """The most reports (epochs) any trial can make: over the top of every range and every option of every choice
        or grid (`epochs: {choice: [5, 10]}`, or `train:` options with epochs of their own); 1 without a budget."""
        return max(self.planned(self.config(values)) or 1 for _, values in scenarios(self.params))

    def config(self, values: Mapping[str, Label]) -> dict[str, Any]:
        """The nested trial config of the ingredient sections for sampled `values` (labels for choices)."""
        active: dict[str, Label] = {}
        for param in self.params:
            if param.active(active):
                if param.name not in values:
                    raise UserError(f"no value for parameter {param.name!r}; give one value per active parameter")
                label = values[param.name]
                if isinstance(param.dist, (Choice, Grid)) and label not in param.dist.labels:
                    raise UserError(f"parameter {param.name!r} has no option {label!r}; "
                                    f"options: {', '.join(map(repr, param.dist.labels))}")
                active[param.name] = label
        tree = materialize(dict(self.template), active)
        try:
            return resolve(tree, {**self.namespace, **tree})
        except InterpError as err:
            raise UserError(f"{err.marker.where}: {err.message}; {err.fix}") from None

    def defaults(self) -> tuple[dict[str, Label], dict[str, str]]:
        """One value per active parameter for a standalone run, and per parameter how it was chosen."""
        return default_values(self.params)

    def first_points(self, before: Iterable[Mapping[str, Label]] = ()) -> list[dict[str, Label]]:
        """The configurations a search evaluates before its sampler proposes any, each once: `before` (a retrain's
        current model), the default configuration when a parameter gives a `default:` (and `search.default_first`
        is not false), then `search.start`. Under `sampler: grid` only `before`: the grid evaluates every point
        anyway."""
        points = [dict(point) for point in before]
        if self.search.sampler != "grid":
            if self.search.default_first and any(param.default for param in self.params):
                points.append(self.defaults()[0])
            points += [dict(point) for point in self.search.start]
        return [point for i, point in enumerate(points) if point not in points[:i]]

    def same_trials(self) -> str | None:
        """Why every trial would train the one same configuration (the space searches no parameter that can vary),
        or None."""
        if any(varies(param.dist) for param in self.params) or self.search.trials <= 1:
            return None
        return (f"the space searches no parameter: each of its {self.search.trials} trials trains the same "
                f"configuration; put a distribution on a key to search it, e.g. lr: {{loguniform: [1.0e-4, 0.1]}}, "
                f"or train the one configuration with `autotune train`")

    def one_value(self) -> list[Problem]:
        """A warning at each distribution that can take one value only (`{choice: [16]}`, `{int: [2, 2]}`): a
        constant written as a distribution, which a sampler would search in vain."""
        found = []
        for param in self.params:
            if not varies(param.dist):
                dist = param.dist
                value = dist.options[0] if isinstance(dist, Choice) else dist.values[0] if isinstance(dist, Grid) \
                    else dist.low
                shown = f", e.g. {param.name.rpartition('.')[2]}: {value}" if isinstance(value, (int, float, str)) \
                    else ""
                found.append(Problem(param.name, "can take one value only", f"write the value as a constant{shown}",
                                     self.source, param.line))
        return found

    def grid_size(self) -> int | None:
        """The number of grid points (every `grid`, and under `sampler: grid` every choice and pow2, combined), or
        None."""
        grid = self.search.sampler == "grid"
        sizes = [len(p.dist.labels) for p in self.params
                 if isinstance(p.dist, Grid) or grid and isinstance(p.dist, (Choice, Pow2))]
        return math.prod(sizes) if sizes else None

    def definition(self) -> str:
        """What defines the search, as JSON text: the recipe, the ingredients (their `default:`s too: the default
        configuration is the first trial), the search settings but its budget and how often running trials are
        checkpointed (`search.start` included). A resumed search must have the same."""
        search = asdict(self.search)
        for key in ("trials", "epoch_budget", "time_budget", "trial_timeout", "max_concurrent", "checkpoint_every"):
            search.pop(key)
        if not search["start"]:  # a space without start points keeps the fingerprint it had before `start` existed
            search.pop("start")
        if search["default_first"]:  # and one that runs its default first, as before `default_first` existed
            search.pop("default_first")
        if not search["resources"]["custom"]:  # and one without custom resources, as before they existed
            search["resources"].pop("custom")
        ingredients = {k: self.document.get(k) for k in self.template}
        return json.dumps(json_keys({"recipe": self.recipe, "ingredients": ingredients, "search": search}),
                          sort_keys=True, default=repr)

    def fingerprint(self) -> str:
        """sha256 of the search's `definition()`."""
        return hashlib.sha256(self.definition().encode()).hexdigest()
