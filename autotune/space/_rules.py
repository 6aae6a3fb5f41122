"""The rules over a whole space that no single key shows, checked before anything runs: the space's name as one
folder's name, and over the config of every scenario (the default trial, every option of every choice, the top of
every range) the recipe's `Schema.checks` (and its `Schema.warnings`, which do not stop the space) and the grace
period and max_t of early stopping against the epochs a trial runs; and the keys that only a search reads (SEARCH_ONLY),
whose problems a command without a search only warns of.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from autotune.errors import Problem
from autotune.space.schema import Check
from autotune.space.types import Choice, Label, Param, Space, scenarios

__all__ = ["SEARCH_ONLY", "folder_name", "scenario_configs", "scenario_problems", "search_only", "space_problems"]

# The keys that only a search reads, each with the value that lifts a problem at it and what it is: `train` and
# `lr-find`, which run the default configuration without a search, warn of such a problem and load the space with
# the key lifted (a --set may leave start points naming parameters it made constant, or a trial's epochs below the
# scheduler's grace period); `check` and `run` refuse it.
SEARCH_ONLY: dict[str, tuple[str, str]] = {
    "search.start": ("null", "the search's start points"),
    "search.scheduler": ("fifo", "the search's early stopping"),
}

_UNSAFE = re.compile(r'[/\\:*?"<>|\x00-\x1f\x7f]')  # characters a folder name cannot hold on some system
# The most bytes the engine adds to the name in a file name of its own: a retrain's run, NAME-data-<8 hex digits>
# (autotune.api), set aside as NAME-data-<8 hex digits>.orphaned (autotune.engine.storage); .NAME-data-<...>.lock,
# .NAME.versions and .NAME.link-<6 hex digits> are shorter. A file name holds 255 bytes at most.
_ADDED = len("-data-01234567.orphaned")
_NAME_MAX = 255 - _ADDED


def folder_name(name: str) -> tuple[str, str] | None:
    """(what is wrong, fix) with the space's `name` as the one folder it names (runs/NAME, models/NAME), or None."""
    bad = sorted(set(_UNSAFE.findall(name)))
    size = len(name.encode("utf-8", "surrogateescape"))  # a --set from a command line may hold a non-UTF-8 byte
    if bad:
        wrong = f"holds {', '.join(map(repr, bad))}"
    elif name in (".", ".."):
        wrong = f"is {name!r}"
    elif name != name.strip():
        wrong = "starts or ends with a space"
    elif size > _NAME_MAX:
        wrong = (f"is {size} bytes long, more than {_NAME_MAX}: the files a run makes add up to {_ADDED} bytes to it "
                 f"(a retrain's NAME-data-<fingerprint>.orphaned, .NAME.lock), and a file name holds 255 at most")
    else:
        return None
    parts = [part.strip() for part in _UNSAFE.split(name) if part.strip() not in ("", ".", "..")]
    return (f"names the run's folder and the model's (runs/NAME, models/NAME), so it must be one folder name, but "
            f"it {wrong}", f"use letters, digits, '-', '_' and '.', e.g. name: {'-'.join(parts)[:100] or 'my_search'}")


def search_only(problem: Problem) -> str | None:
    """The key of SEARCH_ONLY that `problem` is at (or below), else None: a problem for every command."""
    return next((key for key in SEARCH_ONLY if problem.path == key or problem.path.startswith((f"{key}.", f"{key}["))),
                None)


# (what a scenario forces, "" for the defaults; its trial config; the option each choice of mappings takes in it, by
# the choice's key path)
Configs = list[tuple[str, dict[str, Any], dict[str, int]]]


def scenario_configs(space: Space) -> Configs:
    """The trial config of every scenario of `space`, with what it forces and the options it takes."""
    return [(forced, space.config(values), _options_taken(space.params, values))
            for forced, values in scenarios(space.params)]


def _options_taken(params: tuple[Param, ...], values: Mapping[str, Label]) -> dict[str, int]:
    """The position of the option each choice of mappings takes for the sampled `values`, by its key path."""
    return {param.key_path: param.dist.labels.index(values[param.name]) for param in params
            if isinstance(param.dist, Choice) and param.dist.conditional and param.name in values}


def written(path: str, taken: Mapping[str, int]) -> tuple[Any, ...]:
    """A trial config's dotted key `path` as the space file writes it, through the options `taken`
    (`_options_taken`): `optimizer.lr` is ("optimizer", "choice", 1, "lr") where the second optimizer is taken."""
    parts = path.split(".")
    found: list[Any] = []
    for end, part in enumerate(parts, start=1):
        found.append(part)
        if ".".join(parts[:end]) in taken:
            found += ["choice", taken[".".join(parts[:end])]]
    return tuple(found)


Located = list[tuple[Problem, tuple[Any, ...]]]  # problems at a dotted key path, each with where the file writes it


def space_problems(space: Space, checks: tuple[Check, ...], configs: Configs) -> Located:
    """The problems of `checks` over the `configs` of every scenario (`scenario_problems`), then the grace
    period's."""
    return [*scenario_problems(configs, checks), *_as_written(_grace_period(space, space.most_planned()))]


def space_warnings(space: Space, warnings: tuple[Check, ...], configs: Configs) -> Located:
    """What the recipe's `warnings` find over the `configs` of every scenario, then early stopping that judges
    trials only at their last epoch."""
    return [*scenario_problems(configs, warnings), *_as_written(_stops_nothing(space, space.most_planned()))]


def _as_written(problems: list[Problem]) -> Located:
    return [(problem, tuple(problem.path.split("."))) for problem in problems]


def scenario_problems(configs: Configs, checks: tuple[Check, ...]) -> Located:
    """The problems of `checks` over the `configs` of every scenario, each once (a scenario's own ones say what it
    forces), each with where the file writes its key in the first scenario that has it: inside the option a
    choice of mappings takes there (`optimizer.choice[1].warmup_epochs`), not at the choice."""
    found: dict[tuple[str, str], tuple[Problem, tuple[Any, ...]]] = {}
    for forced, config, taken in configs:
        for problem in _checked(checks, config):
            if (problem.path, problem.message) not in found:
                found[problem.path, problem.message] = (
                    replace(problem, message=f"{problem.message} (when {forced})") if forced else problem,
                    written(problem.path, taken))
    return list(found.values())


def _checked(checks: tuple[Check, ...], config: dict[str, Any]) -> list[Problem]:
    """The problems each of the recipe's `checks` finds in one trial's `config`."""
    found: list[Problem] = []
    for check in checks:
        try:
            found += check(config)
        except Exception as err:  # a user's recipe: its own error, without our traceback
            found.append(Problem("recipe", f"a check of the recipe's SCHEMA failed: {type(err).__name__}: {err}",
                                 "fix the recipe file"))
    return found


def _grace_period(space: Space, most: int) -> list[Problem]:
    """The problems of early-stopping settings under which a trial of at most `most` epochs is never stopped: an
    asha or median grace period past a trial's last epoch, hyperband's at it or past it (or asha's and hyperband's
    `max_t`: Ray ends a trial there), and a `max_t` above `most`, at search.scheduler.NAME.KEY."""
    name, args = space.search.scheduler, space.search.scheduler_args
    if name not in ("asha", "hyperband", "median") or space.budget is None:
        return []
    max_t = args.get("max_t", most)
    limit, raise_it = (max_t, "max_t") if max_t < most else (most, space.budget)
    # median judges a trial from epoch grace_period on (a float; epochs are 1, 2, ...): at the last, it ends anyway
    first = max(1, math.ceil(args.get("grace_period", 1)))
    found = [] if max_t <= most else [_max_t_problem(name, max_t, most, space.budget)]
    # asha's and median's first judgement at a trial's last epoch stops nothing but is allowed (a quick
    # `--set train.epochs=1` of a shipped space); past it, it is never reached. Hyperband's brackets would all stop
    # nothing at it.
    if first > limit or (name == "hyperband" and first == limit):
        starts = "grace_period is" if name == "asha" else f"{name} starts stopping trials at grace_period"
        found.append(Problem(f"search.scheduler.{name}.grace_period", f"{starts} {args.get('grace_period', 1):g} "
                             f"but a trial runs at most {limit} epoch(s): nothing would be stopped",
                             f"lower grace_period, raise {raise_it}, or use scheduler: fifo"))
    return found


def _stops_nothing(space: Space, most: int) -> list[Problem]:
    """A warning where asha or median judges trials first at their last epoch (allowed, as a quick
    `--set train.epochs=1` of a shipped space sets it): the scheduler then stops no trial."""
    name, args = space.search.scheduler, space.search.scheduler_args
    if name not in ("asha", "median") or space.budget is None:
        return []
    limit = min(args.get("max_t", most), most)
    first = max(1, math.ceil(args.get("grace_period", 1)))
    if first != limit:
        return []
    return [Problem(f"search.scheduler.{name}.grace_period", f"{name} judges a trial first at epoch {first}, its "
                    f"last: it stops no trial, and every trial runs all its epochs", f"raise {space.budget} above "
                    f"{first} for early stopping, or use scheduler: fifo to say that none is wanted")]


def _max_t_problem(name: str, max_t: int, most: int, budget: str) -> Problem:
    """The problem of a `max_t` above the `most` epochs a trial runs: Ray caps a trial at max_t, it never lengthens
    one, so a max_t from a Tune script (where it is often the trial's length) only moves rungs and brackets past the
    last epoch, where they judge no trial."""
    return Problem(f"search.scheduler.{name}.max_t", f"max_t is {max_t} but a trial runs at most {most} epoch(s) "
                   f"({budget}): max_t only caps a trial (it never lengthens one), and a rung past epoch {most} "
                   "judges no trial", f"leave max_t out (it defaults to {most}), or set {budget} to {max_t} for "
                   "longer trials")
