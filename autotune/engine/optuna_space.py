"""The search space as Optuna sees it: a define-by-run function and the sampler named in `search.sampler`."""
from __future__ import annotations

import hashlib

import threading
import warnings
from typing import Any

import optuna

from autotune.space import sampler_arguments
from autotune.space.types import Choice, Grid, Int, LogUniform, Param, Pow2, QUniform, SearchSettings, Uniform

__all__ = ["DefineByRun", "grid_space", "make_sampler", "suggest"]


def suggest(trial: optuna.Trial, param: Param) -> Any:
    """Ask `trial` for one value of `param` (a label, for a choice)."""
    d = param.dist
    if isinstance(d, Uniform):
        return trial.suggest_float(param.name, d.low, d.high)
    if isinstance(d, LogUniform):
        return trial.suggest_float(param.name, d.low, d.high, log=True)
    if isinstance(d, QUniform):
        return trial.suggest_float(param.name, d.low, d.high, step=d.step)
    if isinstance(d, Int):
        return trial.suggest_int(param.name, d.low, d.high, step=d.step, log=d.log)
    if isinstance(d, (Choice, Grid, Pow2)):  # pow2: the powers themselves, as a choice of those numbers
        return trial.suggest_categorical(param.name, list(d.labels))
    raise TypeError(f"unknown distribution {d!r}")


class DefineByRun:
    """A define-by-run function (picklable, so a search can be saved and resumed): conditional parameters are
    suggested only when their option was chosen."""

    def __init__(self, params: tuple[Param, ...]) -> None:
        self.params = params

    def __call__(self, trial: optuna.Trial) -> None:
        values: dict[str, Any] = {}
        for param in self.params:
            if param.active(values):
                values[param.name] = suggest(trial, param)


def grid_space(params: tuple[Param, ...]) -> dict[str, list[Any]]:
    """Every searched parameter's values, for Optuna's GridSampler (grid, choice and pow2 distributions only)."""
    return {p.name: list(p.dist.labels) for p in params if isinstance(p.dist, (Choice, Grid, Pow2))}


_LOCK = type(threading.Lock())


class NSGAIISampler(optuna.samplers.NSGAIISampler):
    """NSGA-II that pickles: Ray saves the searcher, sampler included, with the run (to resume it), and Optuna 5.1's
    genetic samplers hold a threading.Lock. It is left out of the pickle and made anew when unpickled. (Named as
    Optuna's: the generation attribute it writes in the study carries the class name.)"""

    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if not isinstance(v, _LOCK)}
        state["_autotune_locks"] = [k for k, v in self.__dict__.items() if isinstance(v, _LOCK)]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        locks = state.pop("_autotune_locks", [])
        self.__dict__.update(state)
        self.__dict__.update({name: threading.Lock() for name in locks})


def derived_seed(seed: int, salt: str) -> int:
    """A sampler seed from `search.seed` and `salt` (a retrain's data, a warm start's history): a search that
    starts where another left off must not replay that search's proposals, which a sampler seeded alike makes."""
    return int(hashlib.sha256(f"{seed}:{salt}".encode()).hexdigest()[:8], 16)


def make_sampler(search: SearchSettings, params: tuple[Param, ...], seed: int | None = None,
                 ) -> optuna.samplers.BaseSampler:
    """The sampler named in `search.sampler`, seeded with `seed` (None: `search.seed`), with its arguments
    (`sampler_arguments`: the user's, and autotune's defaults). Optuna's warnings that an argument or sampler is
    experimental (multivariate TPE, GP) are not shown, and the caller's warning filters stay as they were."""
    kwargs: dict[str, Any] = {"seed": search.seed if seed is None else seed, **sampler_arguments(search, params)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return _sampler(search.sampler, params, kwargs)


def _sampler(name: str, params: tuple[Param, ...], kwargs: dict[str, Any]) -> optuna.samplers.BaseSampler:
    """The sampler `name` built with `kwargs`."""
    if name == "tpe":
        return optuna.samplers.TPESampler(**kwargs)
    if name == "random":
        return optuna.samplers.RandomSampler(**kwargs)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(**kwargs)
    if name == "gp":
        return optuna.samplers.GPSampler(**kwargs)
    if name == "qmc":
        return optuna.samplers.QMCSampler(**kwargs)
    if name == "nsga2":
        return NSGAIISampler(**kwargs)
    if name == "grid":
        return optuna.samplers.GridSampler(grid_space(params), **kwargs)
    raise ValueError(f"unknown sampler {name!r}")
