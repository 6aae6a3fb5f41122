"""Other sweep tools' ways of writing a distribution -> autotune's form, as the fix of a problem.

A W&B sweep writes a parameter as a mapping (`{values: [...]}`, `{distribution: log_uniform_values, min: , max: }`,
`{value: 64}`); Hydra's sweepers write it as text (`interval(0.1, 0.5)`, `tag(log, interval(1e-4, 1e-2))`,
`range(1, 5)`, `choice(a, b)`). Neither is a distribution here: without a translation such a value reaches the
key's type check (`expected a number (got {'distribution': ...})`) or, under a key of any type, the function as a
constant.
"""
from __future__ import annotations

import math
import re
from typing import Any

import yaml

from autotune.errors import Problem
from autotune.space._yaml import Locations, load_yaml

__all__ = ["foreign_distribution"]

# the keys of a W&B sweep's parameter
_WANDB_KEYS = frozenset({"values", "value", "distribution", "min", "max", "q", "mu", "sigma", "probabilities",
                         "parameters"})
_WANDB_MARKS = ("values", "distribution")  # keys no config's own mapping of a key of any type is likely to hold
_NORMAL = ("normal", "q_normal", "log_normal", "q_log_normal")
# the keys of a distribution in Hydra's Optuna sweeper's `search_space:` ({type: float, low: , high: , log: true})
_HYDRA_KEYS = frozenset({"type", "low", "high", "step", "log", "choices"})
_HYDRA = re.compile(r"^\s*(choice|range|interval|tag)\s*\((.*)\)\s*$", re.DOTALL)


def foreign_distribution(value: Any, typed: bool) -> tuple[str, str] | None:
    """(what is wrong, the fix: autotune's form) when `value` is a W&B sweep's parameter mapping or a
    Hydra sweeper's text; else None. `typed`: the key takes no mapping, so any W&B-shaped mapping is one (under a
    key of any type, only one holding `values:` or `distribution:` is)."""
    if isinstance(value, str):
        match = _HYDRA.match(value)
        return _hydra(match.group(1), match.group(2)) if match else None
    if isinstance(value, dict) and set(value) <= _HYDRA_KEYS and value.get("type") in ("float", "int", "categorical"):
        return "a Hydra Optuna sweeper's search_space entry, not a distribution here", _hydra_config(value)
    if not isinstance(value, dict) or not value or not set(value) <= _WANDB_KEYS:
        return None
    marks = _WANDB_MARKS if not typed else (*_WANDB_MARKS, "value", "parameters")
    if any(key in value for key in marks) or typed and {"min", "max"} <= set(value):
        return "a W&B sweep's parameter, not a distribution here", _wandb(value)
    return None


def _show(value: Any) -> str:
    """A value as YAML's flow style writes it: `[simple_cnn, mlp]`, `0.001`, `true`."""
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10**6)
    return text.strip().removesuffix("...").strip()


def _rounded(number: float) -> float:
    """`number` to 6 significant digits, as a fix shows it: 0.3, not 0.30000000000000004."""
    return float(f"{number:.6g}")


def _wandb(value: dict) -> str:
    """The fix for a W&B parameter mapping."""
    if "parameters" in value:
        return "W&B's nested parameters are written as the keys themselves here: put the keys under `parameters:` " \
               "directly under this key"
    if "value" in value:
        return f"a constant is written alone here: {_show(value['value'])}"
    if "values" in value:
        weights = "; options here are equally likely (no probabilities)" if "probabilities" in value else ""
        return f"use {{choice: {_show(value.get('values'))}}} (or {{grid: [...]}} with search.sampler: grid, " \
               f"W&B's method: grid){weights}"
    low, high, q = value.get("min"), value.get("max"), value.get("q", 1)
    kind = value.get("distribution") or ("int_uniform" if isinstance(low, int) and isinstance(high, int)
                                         else "uniform")  # as W&B infers it from the bounds
    if kind in _NORMAL:
        mu, sigma = value.get("mu", 0), value.get("sigma", 1)
        return f"no normal distribution here ({kind}): use {{uniform: [{_show(_rounded(mu - 2 * sigma))}, " \
               f"{_show(_rounded(mu + 2 * sigma))}]}} (mu +- 2 sigma) or a range you choose" \
            if isinstance(mu, (int, float)) and isinstance(sigma, (int, float)) else \
            f"no normal distribution here ({kind}): use uniform over a range around the mean"
    forms = {"uniform": f"{{uniform: [{_show(low)}, {_show(high)}]}}",
             "int_uniform": f"{{int: [{_show(low)}, {_show(high)}]}} (both ends included, as in W&B)",
             "log_uniform_values": f"{{loguniform: [{_show(low)}, {_show(high)}]}}",
             "q_uniform": f"{{quniform: [{_show(low)}, {_show(high)}, {_show(q)}]}} (high - low a multiple of q)"}
    if kind == "log_uniform" and isinstance(low, (int, float)) and isinstance(high, (int, float)):
        return f"W&B's log_uniform takes the natural logs of the bounds: use {{loguniform: " \
               f"[{_show(_rounded(math.exp(low)))}, {_show(_rounded(math.exp(high)))}]}}"
    if kind == "int_uniform" and "distribution" not in value:
        return f"use {{int: [{_show(low)}, {_show(high)}]}}, as W&B reads two integer bounds (both ends " \
               f"included), or {{uniform: [{_show(float(low))}, {_show(float(high))}]}} for a number"
    if kind in forms:
        return f"use {forms[kind]}"
    if kind in ("q_log_uniform", "q_log_uniform_values"):
        return "no log scale with a step here: use {loguniform: [low, high]}, {int: [low, high, 1, true]} for " \
               "integers, or a choice of the values"
    return f"W&B's distribution {kind!r} has no equivalent here: use uniform, loguniform, int, quniform or choice " \
           "(docs/coming-from.md)"


def _hydra_config(value: dict) -> str:
    """The fix for Hydra's Optuna sweeper's `{type: float, low: 1e-4, high: 1e-2, log: true}` form."""
    if value["type"] == "categorical":
        return f"use {{choice: {_show(value.get('choices'))}}}"
    low, high, step, log = (_show(value.get(key)) for key in ("low", "high", "step", "log"))
    if value["type"] == "int":
        form = f"{{int: [{low}, {high}, 1, true]}}" if value.get("log") else \
            f"{{int: [{low}, {high}, {step}]}}" if "step" in value else f"{{int: [{low}, {high}]}}"
    else:
        form = f"{{loguniform: [{low}, {high}]}}" if value.get("log") else \
            f"{{quniform: [{low}, {high}, {step}]}}" if "step" in value else f"{{uniform: [{low}, {high}]}}"
    return f"use {form}"


def _arguments(text: str) -> list[str]:
    """`a, tag(log, interval(1, 2)), b` -> its top-level comma-separated parts."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(text[start:index].strip())
            start = index + 1
    parts.append(text[start:].strip())
    return [part for part in parts if part]


def _scalar(text: str) -> Any:
    """One argument of a Hydra sweep as a value, read as the space reads YAML: `1e-4` a number, `mlp` text."""
    problems: list[Problem] = []
    value = load_yaml(text, None, Locations(None), problems)
    return text if problems else value


def _numbers(args: list[str]) -> list[int | float] | None:
    values = [_scalar(arg) for arg in args]
    return values if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values) else None


def _hydra(kind: str, inside: str) -> tuple[str, str]:
    """(what is wrong, the fix) for Hydra's `kind(inside)`."""
    args = _arguments(inside)
    head = "a Hydra sweep's text, not a distribution here"
    if kind == "choice":
        return head, f"use {{choice: {_show([_scalar(arg) for arg in args])}}}"
    log = kind == "tag" and len(args) == 2 and args[0] == "log"
    interval = _HYDRA.match(args[1]) if log else None
    if kind == "interval" or interval is not None and interval.group(1) == "interval":
        bounds = _numbers(_arguments(interval.group(2)) if interval else args)
        if bounds is not None and len(bounds) == 2:
            both_int = all(isinstance(b, int) for b in bounds)
            low, high = map(_show, bounds)
            form = (f"{{int: [{low}, {high}, 1, true]}}" if both_int else f"{{loguniform: [{low}, {high}]}}") if log \
                else (f"{{int: [{low}, {high}]}}" if both_int else f"{{uniform: [{low}, {high}]}}")
            floats = f"{{loguniform: [{low}.0, {high}.0]}}" if log else f"{{uniform: [{low}.0, {high}.0]}}"
            ints = f" (two integers draw an integer, as in Hydra's Optuna sweeper; {floats} draws a number)" \
                if both_int else ""
            return head, f"use {form}{ints}"
    bounds = _numbers(args) if kind == "range" else None
    if bounds is not None and len(bounds) in (2, 3):
        step = bounds[2] if len(bounds) == 3 else 1
        low, high = bounds[0], bounds[1]
        form = "int" if all(isinstance(b, int) for b in (low, high, step)) else "quniform"
        args_shown = ", ".join(map(_show, (low, high) if form == "int" and step == 1 else (low, high, step)))
        return head, f"use {{{form}: [{args_shown}]}} (both ends included, as " \
               f"Hydra's Optuna sweeper reads range; its basic sweeper stops before {_show(high)})"
    return head, "use {choice: [...]}, {uniform: [low, high]}, {loguniform: [low, high]} or " \
           "{int: [low, high]} (docs/coming-from.md)"
