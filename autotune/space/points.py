"""Known configurations checked against a space: a `default:`, a `search.start` point, an earlier run's trial.

    value, error, fix = fit_value(param.dist, 0.05)        # error: None, or what is wrong (the rule)
    values, problems = complete_point(space.params, {"optimizer.lr": 0.05})

Imports neither ray nor torch.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from autotune.registry import close_matches
from autotune.space._frozen import freeze
from autotune.space.types import (Choice, Distribution, Grid, Int, Label, Param, Pow2, QUniform, option_texts,
                                  param_default)

__all__ = ["fit_value", "complete_point", "on_step_grid", "same_value"]


def on_step_grid(low: float, value: float, step: float) -> bool:
    """Whether `value` is low + k * step for a whole k (to float rounding): a bound or a value of `int`/`quniform`."""
    count = (value - low) / step
    return abs(count - round(count)) <= 1e-9 * max(1.0, abs(count))


def same_value(a: Any, b: Any) -> bool:
    """Equal, with true/false never equal to 1/0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _fit_option(dist: Choice | Grid, value: Any) -> tuple[Label, str | None, str]:
    """The label of the option `value` names: the option itself, or its label (a choice of mappings: its name or
    position)."""
    options = dist.options if isinstance(dist, Choice) else dist.values
    positions = dist.labels == tuple(str(i) for i in range(len(options)))
    for index, (option, label) in enumerate(zip(options, dist.labels)):
        by_position = positions and isinstance(dist, Choice) and dist.conditional and same_value(value, index)
        if same_value(value, label) or same_value(freeze(value), option) or by_position:
            return label, None, ""
    shown = ", ".join(option_texts(dist))
    hint = close_matches(str(value), [str(label) for label in dist.labels])
    fix = f"did you mean {hint[0]!r}?" if hint else (
        "name an option by its label (its `name`, or its position)" if isinstance(dist, Choice) and dist.conditional
        else "give one of the options")
    return value, f"is not one of the options ({shown})", fix


def fit_value(dist: Distribution, value: Any) -> tuple[Label, str | None, str]:
    """(`value` as `dist` samples it: a float, an int, a choice's label; what is wrong with it or None; how to fix).

    A value fits when it lies in the range (on the step grid of `int` and `quniform`, a power of two for `pow2`), or
    names an option."""
    if isinstance(dist, (Choice, Grid)):
        return _fit_option(dist, value)
    wanted = "an integer" if isinstance(dist, (Int, Pow2)) else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value, f"expected {wanted}", ""
    if not math.isfinite(value):
        return value, "must be a finite number", ""
    if isinstance(dist, (Int, Pow2)):
        if not float(value).is_integer():
            return value, "expected an integer", f"e.g. {round(value)}"
        value = int(value)
    else:
        value = float(value)
    if not dist.low <= value <= dist.high:
        return value, f"must be within the distribution's range [{dist.low:g}, {dist.high:g}]", \
            "give a value in the range, or widen the range"
    if isinstance(dist, (Int, QUniform)) and not on_step_grid(dist.low, value, dist.step):
        nearest = dist.low + round((value - dist.low) / dist.step) * dist.step
        return value, f"must be on the step grid {dist.low:g}, {dist.low + dist.step:g}, ..., {dist.high:g}", \
            f"e.g. {nearest:g}"
    if isinstance(dist, Pow2) and value not in dist.labels:
        return value, f"must be a power of two ({', '.join(map(str, dist.labels))})", \
            f"e.g. {min(dist.labels, key=lambda power: abs(power - value))}"
    return value, None, ""


def _condition_text(param: Param) -> str:
    return " and ".join(f"{name}={label}" for name, label in param.condition)


def complete_point(params: tuple[Param, ...], given: Mapping[str, Any], *, computed_defaults: bool = True
                   ) -> tuple[dict[str, Label], list[tuple[str, str, str]]]:
    """One value per active parameter (define-by-run order): `given` values, checked, else the parameter's default
    (`computed_defaults=False`: only a `default:` the space gives; a parameter without one is a problem). Returns the
    values and the problems, (parameter name, what is wrong, fix); a given name that is not a parameter of `params`
    is the caller's to report."""
    values: dict[str, Label] = {}
    problems: list[tuple[str, str, str]] = []
    for param in params:
        if not param.active(values):
            continue
        values[param.name] = param_default(param)[0]
        if param.name in given:
            value, error, fix = fit_value(param.dist, given[param.name])
            if error:
                problems.append((param.name, error, fix))
            else:
                values[param.name] = value
        elif not computed_defaults and not param.default:
            problems.append((param.name, "is missing, and the space gives it no default",
                             f"give it a `default:` beside its distribution, or a value for {param.name}"))
    for param in params:
        if param.name in given and param.name not in values:
            problems.append((param.name, f"is sampled only when {_condition_text(param)}, which this configuration "
                             "does not choose", f"choose it too ({_condition_text(param)}), or leave "
                             f"{param.name} out"))
    return values, problems
