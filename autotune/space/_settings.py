"""The `search:` and `export:` sections -> SearchSettings and ExportSettings, every problem collected."""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from autotune import registry
from autotune.errors import Problem
from autotune.space._parse import check_value
from autotune.space._yaml import Locations, Path
from autotune.space.points import complete_point
from autotune.space.schema import Field
from autotune.space.types import (Choice, ExportSettings, Grid, Label, MlflowSettings, Param, Pow2, Resources,
                                  SearchSettings, TrackingSettings, WandbSettings, default_values)

__all__ = ["SAMPLERS", "SCHEDULERS", "MULTI_OBJECTIVE_SAMPLERS", "parse_search", "parse_export", "check_sampler",
           "sampler_arguments"]


def _above(bound: float) -> Any:
    return lambda v: None if v > bound else f"must be > {bound}"


_COUNT = Field(int, low=0)
_POSITIVE = Field(int, low=1)
_FLAG = Field(bool)
_PROBABILITY = Field(float, low=0.0, high=1.0)

# sampler -> its arguments (Optuna's constructor keywords we pass on; the seed comes from search.seed)
SAMPLERS: dict[str, dict[str, Field]] = {
    "tpe": {"n_startup_trials": _COUNT, "n_ei_candidates": _POSITIVE, "multivariate": _FLAG, "group": _FLAG,
            "constant_liar": _FLAG, "consider_endpoints": _FLAG, "prior_weight": Field(float, check=_above(0))},
    "random": {},
    "cmaes": {"sigma0": Field(float, check=_above(0)), "n_startup_trials": _COUNT, "popsize": _POSITIVE,
              "restart_strategy": Field(str, choices=("ipop", "bipop")), "use_separable_cma": _FLAG,
              "with_margin": _FLAG, "lr_adapt": _FLAG, "consider_pruned_trials": _FLAG,
              "warn_independent_sampling": _FLAG},
    "gp": {"n_startup_trials": _COUNT, "deterministic_objective": _FLAG, "warn_independent_sampling": _FLAG},
    "qmc": {"qmc_type": Field(str, choices=("sobol", "halton")), "scramble": _FLAG,
            "warn_independent_sampling": _FLAG},
    "grid": {},
    "nsga2": {"population_size": Field(int, low=2), "mutation_prob": _PROBABILITY,
              "crossover_prob": _PROBABILITY, "swapping_prob": _PROBABILITY},
}
# sampler -> the pairs of arguments its Optuna constructor refuses together: (key, value, other key, value, fix)
_CONFLICTS: dict[str, tuple[tuple[str, bool, str, bool, str], ...]] = {
    "tpe": (("group", True, "multivariate", False, "set multivariate: true (the default), or leave group out"),),
    "cmaes": (("with_margin", True, "use_separable_cma", True, "drop one of the two"),
              ("lr_adapt", True, "with_margin", True, "drop one of the two"),
              ("lr_adapt", True, "use_separable_cma", True, "drop one of the two")),
}
# Optuna 5 samplers that handle several objectives (CmaEsSampler refuses them)
MULTI_OBJECTIVE_SAMPLERS = ("tpe", "random", "gp", "qmc", "grid", "nsga2")
# scheduler -> its arguments (Ray Tune's keywords; time is counted in reported epochs)
SCHEDULERS: dict[str, dict[str, Field]] = {
    "auto": {},  # adaptive asynchronous Hyperband from epoch 1, reduction factor 3; fifo where nothing can be stopped
    "asha": {"max_t": _POSITIVE, "grace_period": _POSITIVE, "reduction_factor": Field(float, check=_above(1)),
             "brackets": _POSITIVE},
    "hyperband": {"max_t": _POSITIVE, "grace_period": _POSITIVE, "reduction_factor": Field(float, check=_above(1)),
                  "adaptive": _FLAG},
    "median": {"grace_period": Field(float, low=0.0), "min_samples_required": _POSITIVE},
    "fifo": {},
}
# other libraries' names (Optuna's and Ray Tune's) for what autotune calls otherwise: the fix of an unknown name
# (lower-cased: Tune's class names too) or key
_FIFO = "use scheduler: fifo: it runs every trial to its end (no early stopping)"
_PBT = ("no population-based training here (a trial's hyperparameters do not change while it runs): asha or auto "
        "stop weak trials early")
_BOHB = "the nearest here is auto with sampler: tpe (Hyperband brackets and a model-based sampler)"
_MEDIAN = "Tune's median stopping rule is median here"
_ASHA = "Tune's ASHA is asha here"
_HYPEROPT = "Hyperopt's TPE is tpe here (the same algorithm family)"
_GP = "the nearest here is gp (Bayesian optimisation with a Gaussian process)"
_NEVERGRAD = "the nearest here is cmaes (an evolution strategy, numbers only) or random"
_OPTUNA = "the samplers here are Optuna's: tpe (OptunaSearch's default), cmaes, gp, qmc, nsga2, random, grid"
_OPTUNA_CLASSES = {"TPESampler": "tpe", "RandomSampler": "random", "CmaEsSampler": "cmaes", "GPSampler": "gp",
                   "QMCSampler": "qmc", "GridSampler": "grid", "NSGAIISampler": "nsga2"}
_THEIR_NAMES: dict[str, dict[str, str]] = {"scheduler": {
    "none": _FIFO, "null": _FIFO, "nop": _FIFO, "fifoscheduler": _FIFO,
    "percentile": "the nearest here is median (it stops a trial below the median of the others at its epoch)",
    "successive_halving": "the nearest here is asha (asynchronous successive halving)",
    "pbt": _PBT, "pb2": _PBT, "populationbasedtraining": _PBT,
    "bohb": _BOHB, "hyperbandforbohb": _BOHB,
    "medianstoppingrule": _MEDIAN, "median_stopping_rule": _MEDIAN,
    "ashascheduler": _ASHA, "asynchyperbandscheduler": _ASHA,
    "hyperbandscheduler": "Tune's HyperBandScheduler is hyperband here (asynchronous)",
}, "sampler": {
    "hyperopt": _HYPEROPT, "hyperoptsearch": _HYPEROPT,
    "bayesopt": _GP, "bayesoptsearch": _GP, "ax": _GP, "axsearch": _GP,
    "nevergrad": _NEVERGRAD, "nevergradsearch": _NEVERGRAD,
    "optuna": _OPTUNA, "optunasearch": _OPTUNA,
    "bohb": _BOHB, "tunebohb": _BOHB,
    "bayes": "W&B's bayes is tpe here (Bayesian optimisation with a Parzen estimator; gp with a Gaussian process)",
    **{cls.lower(): f"Optuna's {cls} is {ours} here" for cls, ours in _OPTUNA_CLASSES.items()},
}, "metric": {  # of search.stop
    "training_iteration": "Tune's training_iteration is an epoch count here: set {budget} (or search.epoch_budget "
                          "for the epochs of the whole search)",
}}
# scikit-learn's names: its search estimators' arguments (GridSearchCV, RandomizedSearchCV) and its scorers
_SKLEARN_KEYS = {
    "n_iter": "scikit-learn's n_iter is search.trials here (the number of trials)",
    "scoring": "scikit-learn's scoring is search.metric here, on the validation split (roc_auc is val_roc_auc)",
    "n_jobs": "n_jobs (scikit-learn's, Optuna's, Hydra's sweeper's) is search.max_concurrent here (trials at a "
              "time; search.resources: the cores of each)",
    "random_state": "scikit-learn's random_state is search.seed here (the sampler's); data.split_seed seeds the split",
    "cv": "no cross-validation here: each trial is scored on one validation split (the recipe's data.val_fraction)",
    "refit": "no refit here: the exported model is the best trial's checkpoint at its best epoch, trained on the "
             "train split only (docs/coming-from.md); leave refit out",
    "param_distributions": "the distributions are written in the ingredient sections here (model.width: {choice: "
                           "[32, 64]}), not under search",
    "param_grid": "a grid is {grid: [...]} in the ingredient sections here, with search.sampler: grid",
}
# a scikit-learn scorer -> the metric it is, named without the split's prefix (`val_`); an error scorer's `neg_`
# sign is dropped: such a metric is minimised
_SKLEARN_SCORERS = {"accuracy": "accuracy", "balanced_accuracy": "balanced_accuracy", "roc_auc": "roc_auc",
                    "roc_auc_ovr": "roc_auc", "f1_macro": "f1_macro", "r2": "r2", "neg_log_loss": "loss",
                    "neg_mean_absolute_error": "mae", "neg_root_mean_squared_error": "rmse",
                    "neg_mean_squared_error": "rmse"}
# the keys of a W&B sweep (method, goal, run_cap, early_terminate) and of Hydra's Optuna sweeper (direction,
# n_trials, params)
_SWEEP_KEYS = {
    "method": "W&B's method is search.sampler here: bayes is tpe, random is random, grid is grid (with "
              "{grid: [...]} values)",
    "goal": "W&B's goal is search.mode here: maximize is max, minimize is min",
    "direction": "Optuna's direction is search.mode here: maximize is max, minimize is min",
    "n_trials": "Optuna's n_trials is search.trials here (the number of trials)",
    "run_cap": "W&B's run_cap is search.trials here (the number of trials)",
    "early_terminate": "W&B's early_terminate is search.scheduler here: {type: hyperband, min_iter: 1, eta: 3} "
                       "(a run stopped at epochs 1, 3, 9, ... when behind the others there) is scheduler: {asha: "
                       "{grace_period: 1, reduction_factor: 3}}",
    "parameters": "the distributions are written in the ingredient sections here (model.width: {choice: [32, 64]}), "
                  "not under search",
    "params": "Hydra's sweeper params are written in the ingredient sections here (model.dropout: {uniform: "
              "[0.1, 0.5]}), not under search",
}
_RUNGS = {"min_resource": "Optuna's min_resource is grace_period here (the first rung, in epochs)",
          "max_resource": "Optuna's max_resource is max_t here (the most epochs a trial runs)",
          "min_iter": "W&B's min_iter is grace_period here (the first rung, in epochs)",
          "max_iter": "W&B's max_iter is max_t here (the most epochs a trial runs)",
          "eta": "W&B's eta is reduction_factor here"}
_SEED = "the sampler is seeded from search.seed: set search.seed instead"
# a section's, a sampler's or a scheduler's keys
_THEIR_KEYS: dict[str, dict[str, str]] = {
    "search": {"num_samples": "Tune's num_samples is search.trials here (the number of trials)",
               "search_alg": "Tune's search_alg is search.sampler here",
               "points_to_evaluate": "Tune's points_to_evaluate is search.start here",
               "max_concurrent_trials": "Tune's max_concurrent_trials is search.max_concurrent here",
               "time_budget_s": "Tune's time_budget_s is search.time_budget here",
               "resources_per_trial": "Tune's resources_per_trial is search.resources here",
               **_SKLEARN_KEYS, **_SWEEP_KEYS},
    **{name: {"seed": _SEED} for name in SAMPLERS},
    "tpe": {"seed": _SEED,
            "warn_independent_sampling": "tpe does not warn of independently sampled parameters (Optuna 4.9 "
                                         "deprecated the argument, off by default): leave it out"},
    "asha": _RUNGS, "hyperband": _RUNGS,
    "median": {"n_startup_trials": "Optuna's n_startup_trials is min_samples_required here (the fewest trials "
                                   "the median is taken over)",
               "n_warmup_steps": "Optuna's n_warmup_steps is grace_period here (the epochs before a trial may be "
                                 "stopped)"},
}
_SEARCH_KEYS = ("metric", "mode", "trials", "epoch_budget", "sampler", "scheduler", "max_concurrent", "time_budget",
                "trial_timeout", "seed", "resources", "stop", "max_failures", "keep_checkpoints", "checkpoint_every",
                "start", "default_first")
_PLAIN = {"trials": _POSITIVE, "epoch_budget": Field(int, low=1, nullable=True),
          "max_concurrent": Field(int, nullable=True, check=lambda v: None if v >= 1 else (
              "must be >= 1, or null for as many trials at a time as the resources allow (what scikit-learn's "
              "n_jobs=-1 means)")), "seed": _COUNT,
          "max_failures": _COUNT, "keep_checkpoints": _POSITIVE, "checkpoint_every": _POSITIVE,
          "default_first": _FLAG}
_EXPORT = {"dir": Field(str), "promote": Field(str, choices=("always", "if_better", "never")),
           "min_improvement": Field(float, low=0.0)}
_TEXT = Field(str, nullable=True)
_TRACKERS = {
    "mlflow": (MlflowSettings, {"uri": _TEXT, "experiment": _TEXT, "register": _TEXT}),
    "wandb": (WandbSettings, {"project": _TEXT, "entity": _TEXT,
                              "mode": Field(str, nullable=True, choices=("online", "offline", "disabled"))}),
}
MAX_GRID_POINTS = 1_000_000  # the most points a grid search may have (Optuna builds them all in memory)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class _Reader:
    def __init__(self, locs: Locations, problems: list[Problem]) -> None:
        self.locs, self.problems = locs, problems

    def problem(self, path: Path, message: str, fix: str = "", *value: Any) -> None:
        self.problems.append(self.locs.problem(path, message, fix, value[0] if value else None, bool(value)))

    def mapping(self, value: Any, path: Path, known: tuple[str, ...] | Mapping[str, Any],
                theirs: Mapping[str, str] | None = None) -> dict:
        """`value` as a mapping whose keys are all `known` (unknown ones reported and dropped, with the fix
        `theirs` gives for another library's name of a key, else the closest known key)."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem(path, "must be a mapping", "", value)
            return {}
        out = {}
        for key, item in value.items():
            if key in known:
                out[key] = item
            else:
                self.problem((*path, key), "unknown key", (theirs or {}).get(str(key)) or _closest(key, known))
        return out

    def field(self, value: Any, field: Field, path: Path) -> Any:
        value, error, fix = check_value(value, field)
        if error:
            self.problem(path, error, fix, value)
            return None
        return value

    def named(self, value: Any, path: Path, table: dict[str, dict[str, Field]], what: str) -> tuple[str, dict] | None:
        """`tpe` or `{tpe: {n_startup_trials: 5}}` -> ("tpe", {...}), arguments checked."""
        args: Any = {}
        their = _their_form(value, what)
        if their:
            self.problem(path, f"not a {what} as written here", their, value)
            return None
        if isinstance(value, dict) and len(value) == 1:
            value, args = next(iter(value.items()))
        if not isinstance(value, str) or value not in table:
            hint = registry.close_matches(str(value), list(table))
            fix = _THEIR_NAMES.get(what, {}).get(str(value).lower()) or \
                (f"did you mean {hint[0]!r}?" if hint else f"use one of {', '.join(table)}")
            self.problem(path, f"unknown {what}; {what}s: {' | '.join(table)}", fix, value)
            return None
        args = self.mapping(args, (*path, value), table[value], _THEIR_KEYS.get(value))
        checked = {k: self.field(v, table[value][k], (*path, value, k)) for k, v in args.items()}
        return value, {k: v for k, v in checked.items() if v is not None}


def _their_form(value: Any, what: str) -> str:
    """The fix of another tool's mapping of a sampler (`what`) or a scheduler: Hydra's `{_target_:
    optuna.samplers.TPESampler, seed: 0}`, a W&B sweep's early_terminate `{type: hyperband, min_iter: 1, eta: 3}`;
    "" for any other value."""
    if not isinstance(value, dict) or "_target_" not in value and "type" not in value:
        return ""
    if what == "sampler" and "_target_" in value:
        ours = _OPTUNA_CLASSES.get(str(value["_target_"]).rsplit(".", 1)[-1], "tpe")
        return f"Hydra's _target_ mapping is the name here: sampler: {ours} (its arguments: {{{ours}: {{...}}}}; " \
               "its seed: search.seed)"
    if what != "scheduler" or "type" not in value:
        return ""
    args = {"grace_period": value.get("min_iter", 1), "reduction_factor": value.get("eta", 3)}
    if "max_iter" in value:
        args["max_t"] = value["max_iter"]
    shown = ", ".join(f"{key}: {item}" for key, item in args.items())
    return f"W&B's early_terminate mapping is the name here: scheduler: {{asha: {{{shown}}}}} (W&B's hyperband " \
           "stops a run at its brackets when behind the others there, as asha does at its rungs; min_iter, eta " \
           "and max_iter are grace_period, reduction_factor and max_t, in epochs)"


def _closest(key: Any, known: tuple[str, ...] | Mapping[str, Any]) -> str:
    """The fix of an unknown key: the closest known key, else the known keys."""
    hint = registry.close_matches(str(key), list(known))
    return f"did you mean {hint[0]!r}?" if hint else f"known keys: {', '.join(known) or 'none'}"


def _seconds(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) if value > 0 else None
    if isinstance(value, str):
        text = value.replace(" ", "")
        parts = _DURATION.findall(text)
        if parts and "".join(n + u for n, u in parts) == text:
            return sum(float(n) * _SECONDS[u] for n, u in parts)
    return None


_ERROR_WORDS = frozenset({"mae", "mse", "rmse", "msle", "rmsle", "mape", "smape", "nll", "perplexity", "ppl", "wer",
                          "cer", "brier"})  # a word of a metric's name that says it is an error: smaller is better


def guessed_mode(metric: str) -> str:
    """The direction of a metric no recipe declares, from its name: min for a loss or an error (a name holding
    `loss` or `error`, or a word of _ERROR_WORDS: val_mae, val_rmse, test_wer), else max."""
    words = set(re.split(r"[^a-z0-9]+", metric.lower()))
    return "min" if "loss" in metric or "error" in metric or words & _ERROR_WORDS else "max"


def _metric_fix(metric: Any) -> str:
    """The fix of a search.metric that is no name: W&B's `{name: val_accuracy, goal: maximize, target: 0.99}` is
    search's metric, mode and stop here."""
    if isinstance(metric, dict) and isinstance(metric.get("name"), str):
        mode = {"maximize": "max", "minimize": "min"}.get(str(metric.get("goal")))
        target = f", stop: {{{metric['name']}: {metric['target']}}}" if "target" in metric else ""
        return f"W&B's metric mapping is keys of search here: metric: {metric['name']}" + \
            (f", mode: {mode}" if mode else "") + target
    return "e.g. metric: val_accuracy"


def parse_search(value: Any, locs: Locations, problems: list[Problem], params: tuple[Param, ...] = (), *,
                 declared: Mapping[str, str] | None = None, budget: str | None = "train.epochs",
                 recipe: str = "") -> SearchSettings:
    """SearchSettings from the (interpolated) `search:` mapping; defaults for what is absent. `params`: the
    space's parameters, which `search.start` points name. `declared`: the metrics the recipe reports and their
    directions (the first is the default metric; empty: undeclared, nothing checked; a mode against one is
    refused); `budget`: the recipe's budget key (None: nothing can be stopped early, so only fifo); `recipe`: its
    name, as the problems show it."""
    read = _Reader(locs, problems)
    given = read.mapping(value, ("search",), _SEARCH_KEYS, _THEIR_KEYS["search"])
    declared = dict(declared or {})
    out: dict[str, Any] = {}
    metric = given.get("metric", next(iter(declared), "val_accuracy"))
    metrics = tuple(metric) if isinstance(metric, list) else (metric,)
    if not metrics or not all(isinstance(m, str) and m for m in metrics):
        read.problem(("search", "metric"), "must be a metric name or a list of them", _metric_fix(metric), metric)
        metrics = (next(iter(declared), "val_accuracy"),)
    for name in metrics:
        _reported(read, ("search", "metric"), name, declared)
    for name in sorted(set(metrics), key=metrics.index):
        if metrics.count(name) > 1:
            read.problem(("search", "metric"), f"{name} is listed {metrics.count(name)} times",
                         "list each metric once", list(metrics))
    out["metric"] = metrics

    def default_mode(name: str) -> str:
        return declared.get(name) or guessed_mode(name)

    mode = given.get("mode")  # null: as left out, the recipe's (a shipped space's mode unset by --set search.mode=null)
    mode = [default_mode(m) for m in metrics] if mode is None else mode
    modes = tuple(mode) if isinstance(mode, list) else (mode,) * len(metrics)
    if not all(m in ("max", "min") for m in modes):
        read.problem(("search", "mode"), "must be max or min (a list of them, one per metric, for several metrics)",
                     "use mode: max or mode: min", mode)
        modes = tuple(default_mode(m) for m in metrics)
    elif len(modes) != len(metrics):
        read.problem(("search", "mode"), f"needs one mode per metric: {len(metrics)} metrics, {len(modes)} mode"
                     f"{'s' if len(modes) != 1 else ''}",
                     f"e.g. mode: [{', '.join(default_mode(m) for m in metrics)}]", mode)
        modes = tuple(default_mode(m) for m in metrics)
    elif given.get("mode") is not None:
        _against_declared(read, metrics, modes, declared, recipe, isinstance(mode, list))
    out["mode"] = modes
    for key, field in _PLAIN.items():
        if key in given:
            checked = read.field(given[key], field, ("search", key))
            if checked is not None or given[key] is None:
                out[key] = checked
    multi = len(metrics) > 1
    sampler = read.named(given.get("sampler", "nsga2" if multi else "tpe"), ("search", "sampler"), SAMPLERS,
                         "sampler")
    if sampler:
        out["sampler"], out["sampler_args"] = sampler
        _conflicts(read, *sampler)
    scheduler = read.named(given.get("scheduler", "fifo" if multi else "auto"), ("search", "scheduler"),
                           SCHEDULERS, "scheduler")
    if scheduler:
        out["scheduler"], out["scheduler_args"] = scheduler
    if multi and out.get("sampler", "tpe") not in MULTI_OBJECTIVE_SAMPLERS:
        read.problem(("search", "sampler"), f"sampler {out['sampler']} optimises one metric only, "
                     "but metric lists several", f"use one of {', '.join(MULTI_OBJECTIVE_SAMPLERS)}")
    if out.get("sampler") == "nsga2" and not multi:
        read.problem(("search", "sampler"), "nsga2 is for several metrics, but metric names one",
                     "use sampler: tpe, or list several metrics")
    if multi and out.get("scheduler", "fifo") not in ("fifo", "auto"):
        read.problem(("search", "scheduler"), "early stopping ranks trials by one metric, but metric lists several",
                     "use scheduler: fifo")
    elif budget is None and out.get("scheduler", "fifo") not in ("fifo", "auto"):
        read.problem(("search", "scheduler"), f"{out['scheduler']} stops trials at rungs counted in reports, but the "
                     "recipe declares no budget (the key of the number of reports a trial makes)",
                     "use scheduler: fifo, or declare budget= in the recipe's SCHEMA")
    for key in ("time_budget", "trial_timeout"):
        if given.get(key) is not None:
            seconds = _seconds(given[key])
            if seconds is None:
                read.problem(("search", key), "must be a positive duration", 'e.g. "90s", "30m", "2h" or 600',
                             given[key])
            out[key] = seconds
    out["resources"] = _resources(read, given.get("resources"))
    stop = given.get("stop")
    if isinstance(stop, dict):
        out["stop"], out["stop_modes"] = _stop(read, stop, dict(zip(metrics, modes)), declared, budget)
    elif stop is not None:
        read.problem(("search", "stop"), "must be a mapping of metric: threshold", "e.g. stop: {val_accuracy: 0.99}",
                     stop)
    out["start"] = _start(read, given.get("start"), params, out.get("sampler", "tpe"))
    return SearchSettings(**out)


def _conflicts(read: _Reader, name: str, args: Mapping[str, Any]) -> None:
    """A problem at the first key of each pair of sampler `name`'s `args` that its Optuna constructor refuses
    together (else `autotune run` would fail after Ray started)."""
    for key, value, other, other_value, fix in _CONFLICTS.get(name, ()):
        if args.get(key) == value and args.get(other) == other_value:
            read.problem(("search", "sampler", name, key), f"Optuna's {name} sampler refuses {key}: "
                         f"{str(value).lower()} with {other}: {str(other_value).lower()}", fix)


def sampler_arguments(search: SearchSettings, params: tuple[Param, ...]) -> dict[str, Any]:
    """The arguments `search.sampler` is built with, the seed aside: the user's, and for tpe autotune's defaults
    where they are not given: multivariate true, and with it group true where `params` has conditional parameters
    (TPE then models the parameters of each option together)."""
    args = dict(search.sampler_args)
    if search.sampler == "tpe":
        args.setdefault("multivariate", True)
        if args["multivariate"] and any(p.condition for p in params):
            args.setdefault("group", True)
    return args


def _against_declared(read: _Reader, metrics: tuple[str, ...], modes: tuple[str, ...], declared: Mapping[str, str],
                      recipe: str, listed: bool) -> None:
    """A problem at search.mode for each mode that contradicts the direction the recipe declares for its metric:
    `mode: max` on val_loss would export the worst model. `listed`: the modes were given as a list (named by
    position)."""
    words = {"max": "maximised", "min": "minimised"}
    by = f"recipe {recipe!r}" if recipe else "the recipe"
    for index, (name, mode) in enumerate(zip(metrics, modes)):
        wanted = declared.get(name)
        if wanted is None or wanted == mode:
            continue
        path: Path = ("search", "mode", index) if listed else ("search", "mode")
        shown = f"search.mode[{index}]" if listed else "search.mode"
        use = f"[{', '.join(declared.get(m, g) for m, g in zip(metrics, modes))}]" if len(metrics) > 1 else wanted
        fix = f"use mode: {use}, or leave mode out (or null: --set search.mode=null): it follows the recipe"
        read.problem(path, f"{name} is {words[wanted]} by {by} (it declares {wanted}), but {shown} is {mode}",
                     fix, mode)


def _reported(read: _Reader, path: Path, name: str, declared: Mapping[str, str]) -> bool:
    """Whether the recipe reports metric `name` (or declares none); else the problem, with the closest name."""
    if not declared or name in declared:
        return True
    hint = registry.close_matches(name, list(declared))
    read.problem(path, "not a metric the recipe reports",
                 _scorer_fix(name, declared) or (f"did you mean {hint[0]!r}? " if hint else "") +
                 f"it reports {', '.join(declared)}", name)
    return False


def _scorer_fix(name: str, declared: Mapping[str, str]) -> str:
    """The fix of a scikit-learn scorer's name given as a metric: the recipe's validation metric it is ("" where
    the recipe reports none such)."""
    ours = f"val_{_SKLEARN_SCORERS.get(name, '')}"
    if ours not in declared:
        return ""
    sign = (" (lower is better: no negated score here, and search.mode follows the recipe)"
            if name.startswith("neg_") else "")
    return f"scikit-learn's scorer {name!r} is {ours} here, on the validation split{sign}"


def _start_example(params: tuple[Param, ...]) -> str:
    """A start point of this space's own parameters (up to two, at their defaults), as the fix shows it."""
    values = default_values(params)[0]
    if not values:
        return "remove search.start: the space searches no parameters"
    shown = [f"{name}: {value:.3g}" if isinstance(value, float) else f"{name}: {value}"
             for name, value in list(values.items())[:2]]
    return f"e.g. start: [{{{', '.join(shown)}}}]"


def _start(read: _Reader, value: Any, params: tuple[Param, ...], sampler: str) -> tuple[dict[str, Label], ...]:
    """`search.start:` -> the known configurations to evaluate first, each completed with the defaults. A point
    maps parameter names, as `autotune check` prints them, to values."""
    path: Path = ("search", "start")
    if value is None:
        return ()
    if not isinstance(value, list):
        read.problem(path, "must be a list of configurations (parameter name: value)", _start_example(params), value)
        return ()
    if value and sampler == "grid":
        read.problem(path, "sampler grid tries every combination: a start point would only run twice",
                     "remove search.start, or use another sampler")
        return ()
    points = []
    for index, point in enumerate(value):
        if not isinstance(point, dict):
            read.problem((*path, index), "a start point is a mapping of parameter names to values",
                         _start_example(params), point)
            continue
        known = {key: item for key, item in point.items() if _start_key(read, (*path, index), key, item, params)}
        values, found = complete_point(params, known)
        for name, message, fix in found:
            read.problem((*path, index, name), message, fix, *([known[name]] if name in known else []))
        points.append(values)
    return tuple(points)


def _start_key(read: _Reader, path: Path, key: Any, item: Any, params: tuple[Param, ...]) -> bool:
    """Whether `key` of a start point names a searched parameter (else the problem is reported)."""
    names = [param.name for param in params]
    if key in names:
        return True
    inner = [name for name in names if name.startswith((f"{key}.", f"{key}["))]
    if isinstance(item, dict) and inner:
        flat = [f"{key}.{sub}" for sub in item if f"{key}.{sub}" in names] + inner
        fix = f"write the parameter names flat, as autotune check prints them: {flat[0]}: ..."
    else:
        hint = [name for name in names if _OPTION.sub("", name) == key] or registry.close_matches(str(key), names)
        fix = f"did you mean {' or '.join(map(repr, hint))}?" if hint else \
            f"searched parameters: {', '.join(names) or 'none'}"
    read.problem((*path, key), "is not a searched parameter", fix)
    return False


_OPTION = re.compile(r"\[[^\]]*\]")  # the option label of a conditional parameter's name: `optimizer[sgd].lr`


def _stop(read: _Reader, stop: dict, modes: dict[str, str], declared: Mapping[str, str], budget: str | None
          ) -> tuple[dict[str, float], dict[str, str]]:
    """`stop:` -> (metric -> target, metric -> "max" | "min"). A search metric's target is reached in its search
    mode, another metric's in the direction its recipe declares; else the direction must be given: `{val_loss: {min:
    0.05}}` (reached at <= 0.05). Each must be a
    metric the recipe reports (`declared`, when it declares them); Tune's training_iteration never is (the fix names
    the recipe's `budget` key)."""
    targets: dict[str, float] = {}
    directions: dict[str, str] = {}
    for metric, value in stop.items():
        name, path = str(metric), ("search", "stop", metric)
        theirs = _THEIR_NAMES["metric"].get(name)
        if theirs:
            read.problem(path, "not a metric the recipe reports",
                         theirs.format(budget=budget or "the recipe's own length setting"), name)
            continue
        if not _reported(read, path, name, declared):
            continue
        mode = modes.get(name)
        if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in ("max", "min"):
            given, value = next(iter(value.items()))
            if mode is not None and given != mode:
                read.problem((*path, given), f"{name} is searched with mode {mode}, so its target is reached at "
                             f"{'>=' if mode == 'max' else '<='} the target, not {'>=' if given == 'max' else '<='}",
                             f"give the target alone: stop: {{{name}: {value}}}")
                continue
            mode, path = given, (*path, given)
        elif isinstance(value, dict):
            read.problem(path, "a stop target is a number, or {max: N} / {min: N} (stop at >= N / <= N)",
                         "e.g. stop: {val_accuracy: 0.99} or {val_loss: {min: 0.05}}", value)
            continue
        elif mode is None and declared.get(name) is not None:  # reached in the direction the recipe declares
            mode = declared[name]
        elif mode is None:
            read.problem(path, f"{name} is not a search metric and its recipe declares no direction for it, so "
                         "whether the search stops above or below the target is unknown", f"say which: {{{name}: {{min: {value}}}}} stops once {name} <= {value}, "
                         f"{{max: {value}}} once it is >= {value}", value)
            continue
        target = read.field(value, Field(float), path)
        if target is not None:
            targets[name], directions[name] = target, mode
    return targets, directions


def check_sampler(search: SearchSettings, params: tuple[Param, ...], locs: Locations, problems: list[Problem],
                  schema_paths: dict[str, Path]) -> None:
    """The rules that tie the sampler to the parameters: grid needs grids only, cmaes numbers only."""
    read = _Reader(locs, problems)
    for param in params:
        path = schema_paths.get(param.name, ("search", "sampler"))
        if isinstance(param.dist, Grid) and search.sampler != "grid":
            read.problem(path, f"grid needs search.sampler: grid, but the sampler is {search.sampler}",
                         "set search.sampler: grid, or use choice instead of grid")
        elif search.sampler == "grid" and not _enumerable(param):
            kind = "conditional choice" if isinstance(param.dist, Choice) else type(param.dist).__name__.lower()
            read.problem(path, f"search.sampler: grid tries every combination, so every parameter must be a grid, "
                         f"a choice of constants or a pow2; {param.name} is a {kind}",
                         "make it a grid, or use another sampler")
        elif search.sampler == "cmaes" and isinstance(param.dist, (Choice, Pow2)):
            kind = "pow2 (proposed as a choice of the powers)" if isinstance(param.dist, Pow2) else "choice"
            read.problem(path, f"cmaes samples numbers only; {param.name} is a {kind}",
                         "use sampler: tpe (or gp), or make it a numeric distribution")
    _grid_points(search, params, read)


def _grid_points(search: SearchSettings, params: tuple[Param, ...], read: _Reader) -> None:
    """A problem at search.sampler where the grid has more than MAX_GRID_POINTS points: Optuna's grid sampler
    builds the whole product in memory (10^7 points took 83 s and 3 GB). Counted from the sizes, never built."""
    if search.sampler != "grid" or not params or not all(map(_enumerable, params)):
        return
    sizes = [len(param.dist.labels) for param in params]  # type: ignore[union-attr]
    points = math.prod(sizes)
    if points > MAX_GRID_POINTS:
        read.problem(("search", "sampler"), f"the grid has {points:,} points ({' x '.join(map(str, sizes))}), more "
                     f"than the {MAX_GRID_POINTS:,} a grid search may have: Optuna's grid sampler builds every point "
                     "in memory",
                     "use sampler: random (or tpe), with choice instead of grid: it samples search.trials points")


def _enumerable(param: Param) -> bool:
    return isinstance(param.dist, (Grid, Pow2)) or isinstance(param.dist, Choice) and not param.dist.conditional


def _resources(read: _Reader, given: Any) -> Resources:
    """search.resources: `cpu` and `gpu` amounts, and `custom`, a mapping of Ray custom resources' names to
    amounts (not CPU, GPU or memory, which Ray counts apart)."""
    path, known = ("search", "resources"), ("cpu", "gpu", "custom")
    theirs = {"num_cpus": "use cpu", "num_gpus": "use gpu", "custom_resources": "use custom"}
    theirs |= {str(key): f"a Ray custom resource goes under custom, e.g. resources: {{custom: {{{key}: {amount}}}}}"
               for key, amount in (given.items() if isinstance(given, dict) else ())
               if key not in known and key not in theirs and not registry.close_matches(str(key), list(known))}
    resources = read.mapping(given, path, known, theirs)
    amounts = {k: read.field(v, Field(float, low=0.0), (*path, k)) for k, v in resources.items() if k != "custom"}
    custom = resources.get("custom")
    if custom is not None and not (isinstance(custom, dict) and custom):
        read.problem((*path, "custom"), "must be a mapping of Ray custom resource names to amounts",
                     'e.g. custom: {big_memory: 1}', custom)
        custom = {}
    named = {}
    for name, amount in (custom or {}).items():
        if str(name).lower() in ("cpu", "gpu", "memory"):
            read.problem((*path, "custom", name), f"{name} is not a custom resource",
                         f"use search.resources.{str(name).lower()}" if str(name).lower() != "memory" else
                         "Ray's memory resource is not searched here: leave it out", amount)
        elif (value := read.field(amount, Field(float, low=0.0), (*path, "custom", name))) is not None:
            named[str(name)] = value
    return Resources(**{k: v for k, v in amounts.items() if v is not None}, custom=named)


def parse_export(value: Any, name: str, locs: Locations, problems: list[Problem]) -> ExportSettings:
    """ExportSettings from the (interpolated) `export:` mapping; dir defaults to models/<name>."""
    read = _Reader(locs, problems)
    given = read.mapping(value, ("export",), _EXPORT)
    out = {"dir": f"models/{name}"}
    for key, item in given.items():
        checked = read.field(item, _EXPORT[key], ("export", key))
        if checked is not None:
            out[key] = checked
    return ExportSettings(**out)


def parse_tracking(value: Any, locs: Locations, problems: list[Problem]) -> TrackingSettings:
    """TrackingSettings from the `tracking:` mapping: `mlflow:` and `wandb:`, each a mapping of its settings
    (`{}` or `true` for the defaults; `false`: off, even where its environment variable would turn it on; null or
    absent: as the environment says)."""
    read = _Reader(locs, problems)
    given = read.mapping(value, ("tracking",), _TRACKERS)
    out: dict[str, Any] = {"off": frozenset(name for name, item in given.items() if item is False)}
    for name, item in given.items():
        cls, fields = _TRACKERS[name]
        if item is False or item is None:
            continue
        settings = read.mapping({} if item is True else item, ("tracking", name), fields)
        checked = {k: read.field(v, fields[k], ("tracking", name, k)) for k, v in settings.items()}
        out[name] = cls(**{k: v for k, v in checked.items() if v is not None})
    return TrackingSettings(**out)
