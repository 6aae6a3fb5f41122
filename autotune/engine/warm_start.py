"""`autotune run SPACE --warm-start RUN_DIR`: an earlier run's finished trials become the new search's history.
RUN_DIR may also be an Optuna SQLite file (a study of the user's own Optuna script).

    history = read_history("runs/digits", space)        # UserError when RUN_DIR holds no usable study
    known = add_history(history, run_dir / "study.db", space)   # before the searcher opens that study

Each COMPLETE or PRUNED trial of RUN_DIR/study.db whose parameters fit the new space is copied into the new run's
study with its state, value(s), intermediate values and parameters (with the new space's distributions), marked
with the user attributes `warm_start_from` (RUN_DIR) and `warm_start_trial` (its number there). The sampler then
counts them as finished trials; they are not run again. A FAILED, RUNNING or WAITING trial is not copied. A
parameter the new space no longer searches must have the value the new space fixes at its key (else the trial ran
another configuration, and is skipped); a COMPLETE trial that ran fewer epochs than the new space gives it is
told PRUNED at its last epoch.

A choice whose options are not distinct primitives (nor mappings with distinct `name`s) is labelled by position
('0', '1', ...), and so are the conditional parameters under such a choice (`model[0].width`). Those labels are
translated through the earlier run's space (its space.json) to the option they stood for, then to the label of the
equal option of the new space; a trial whose option has no equal one, or whose run recorded no space to tell (and
searched another one), is skipped with the reason.
"""
from __future__ import annotations

import json
import logging
import warnings
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from autotune.engine.optuna_space import DefineByRun
from autotune.engine.export import source_digests
from autotune.engine.run_records import recorded_space, recorded_summary
from autotune.engine.storage import recorded_sources
from autotune.engine.study import WARM_START_FROM, open_study
from autotune.errors import AutotuneError, UserError
from autotune.model_dir import read_card
from autotune.paths import expanded
from autotune.run_options import option
from autotune.space import dist_kind
from autotune.space.loader import load_space
from autotune.space.points import complete_point, same_value
from autotune.space.schema import value_at
from autotune.space.types import Choice, Grid, Label, Param, Space, json_keys

__all__ = ["History", "read_history", "add_history", "told"]

log = logging.getLogger("autotune")

_FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
RAN_FEWER_EPOCHS = "warm_start_ran_fewer_epochs"  # a COMPLETE trial's user attribute when it is told PRUNED: its epochs


@dataclass
class History:
    """The trials of an earlier run that fit the new space, ready to add; and why the others were left out."""

    source: Path
    trials: list[optuna.trial.FrozenTrial] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> trials
    notes: Counter[str] = field(default_factory=Counter)  # where trials are told otherwise than they ran -> trials
    unfinished: int = 0  # FAILED, RUNNING or WAITING: never copied


STUDY_FILES = (".db", ".sqlite", ".sqlite3")  # an Optuna SQLite file given in place of a run folder


def _study_of(run_dir: Path, name: str) -> Any:
    """The Optuna study of the run folder `run_dir` (named after the folder, or the only one in its study.db), or
    of the Optuna SQLite file `run_dir` (a study of the user's own Optuna script: the one named `name`, this space's
    name, or the only one)."""
    db, given = run_dir / "study.db", option("warm_start", run_dir)
    if not run_dir.exists():
        raise UserError(f"{given}: there is no such run folder (it does not exist); give the folder of an earlier "
                        "run, e.g. runs/digits")
    if run_dir.is_file() and run_dir.suffix.lower() in STUDY_FILES:
        return _study_file(run_dir, name, given)
    if not run_dir.is_dir():
        raise UserError(f"{given}: it is a file, not a run folder; give the folder of an earlier run, e.g. "
                        f"runs/digits, or an Optuna study's SQLite file ({', '.join(STUDY_FILES)})")
    if not db.is_file():
        raise UserError(f"{given}: the folder holds no study.db; {_run_of_model(run_dir)}give the folder of an earlier "
                        "autotune run (runs/NAME), which holds its Optuna study")
    try:
        return open_study(db, run_dir.name)
    except LookupError as err:
        raise UserError(f"{given}: cannot read the Optuna study in {db} ({err}); give the folder of an earlier "
                        "autotune run") from None


def _run_of_model(folder: Path) -> str:
    """'it is an exported model, made by the run RUN: --warm-start RUN; ' when `folder` is a model folder whose card
    names the run that made it, else ''."""
    try:
        run = read_card(folder).get("run_dir")
    except UserError:
        return ""
    return f"it is an exported model, made by the run {run}: {option('warm_start', run)}; or " if run else ""


def _study_file(db: Path, name: str, given: str) -> Any:
    """The study named `name`, or the only one, in the Optuna SQLite file `db`."""
    try:
        return open_study(db, name)
    except LookupError as err:
        why = str(err)
    try:
        names = optuna.get_all_study_names(f"sqlite:///{db}")
    except Exception:  # noqa: BLE001  (not an Optuna file: `why` says so)
        names = []
    if len(names) > 1:
        why = f"it holds {len(names)} studies, {', '.join(map(repr, sorted(names)))}, none named {name!r} as this space"
    raise UserError(f"{given}: cannot read an Optuna study from it ({why}); give an Optuna SQLite file holding one "
                    f"study, or one named as the space (optuna.copy_study copies a study into a file of its own)")


def _earlier_metrics(run_dir: Path) -> list[str] | None:
    """The metric(s) the run in `run_dir` searched, as its summary.json or its recorded space names them; None when
    neither does (a run killed before its end, by an autotune that recorded no space)."""
    metric = (recorded_summary(run_dir) or {}).get("metric")
    if metric is None:
        metric = ((recorded_space(run_dir) or {}).get("search") or {}).get("metric")
    return [str(m) for m in metric] if isinstance(metric, list) else None


def _check_objectives(study: Any, space: Space, run_dir: Path) -> None:
    """The earlier run searched the same metrics in the same directions (its values become this search's);
    only the directions when its metrics' names are not recorded."""
    wanted = ["max" if mode == "max" else "min" for mode in space.search.mode]
    found = ["max" if d == optuna.study.StudyDirection.MAXIMIZE else "min" for d in study.directions]
    searched = ", ".join(f"{m} ({d})" for m, d in zip(space.search.metric, wanted))
    names, given = _earlier_metrics(run_dir) or study.metric_names, option("warm_start", run_dir)
    if names is not None and (names, found) != (list(space.search.metric), wanted):
        earlier = ", ".join(f"{m} ({d})" for m, d in zip(names, found))
        raise UserError(f"{given}: that run searched {earlier}, this space searches {searched}: "
                        "its values would be told to the sampler as this space's; warm-start from a run with the "
                        "same metric(s) and mode(s), or set search.metric and search.mode to that run's")
    if found != wanted:
        raise UserError(
            f"{given}: that run searched {len(found)} objective(s) ({', '.join(found)}), this space "
            f"searches {len(wanted)} ({', '.join(f'{m} {d}' for m, d in zip(space.search.metric, wanted))}); "
            "warm-start from a run with the same metric(s) and mode(s)")
    if names is None:
        log.warning("%s: the %s names no metric: only the direction of its objective(s) was checked against %s",
                    given, "study" if run_dir.is_file() else "run (no summary.json)", searched)


DATA_SOURCE = ("dataset", "path", "root", "target")  # the data keys that say which data a run trained on


def _check_recipe_and_data(space: Space, run_dir: Path) -> None:
    """The earlier run trained the same recipe (another recipe's values are another model's: refused) on the same
    data source (another dataset, file or target: warned, as the values are told as this data's; the same file
    with new rows, a retrain's case, is the same source). A run that recorded no space is not compared."""
    recorded = recorded_space(run_dir) or {}
    given = option("warm_start", run_dir)
    if recorded.get("recipe") not in (None, space.recipe):
        raise UserError(f"{given}: that run trained recipe {recorded['recipe']!r}, this space trains "
                        f"{space.recipe!r}: its values are another model's; warm-start from a run of the same recipe")
    then = (recorded.get("ingredients") or {}).get("data")
    now = json.loads(space.definition())["ingredients"].get("data") or {}
    if isinstance(then, dict):
        differ = [f"data.{key} {_text(then.get(key))} -> {_text(now.get(key))}" for key in DATA_SOURCE
                  if _text(then.get(key)) != _text(now.get(key))]
        if differ:
            log.warning("%s: that run trained on other data (%s): its values are told to the sampler as this "
                        "data's", given, ", ".join(differ))
    _check_code(space, run_dir)


def _check_code(space: Space, run_dir: Path) -> None:
    """A warning when the recipe's or the custom file's code was edited since the earlier run last ran it (its
    `recorded_sources`): its values, measured by the code before the edit, are told as today's code's. A run that
    recorded no code is not compared."""
    from autotune import recipes

    then = recorded_sources(run_dir)
    now = source_digests(recipes.load(space.recipe, space.base_dir), space.custom)
    for role in sorted(role for role, digest in now.items() if then.get(role, digest) != digest):
        log.warning("%s: the %s file was edited since that run ran it: its trials' values, measured by the code "
                    "before the edit, are told to the sampler as this code's; start without %s where the edit "
                    "changes what the trials measure", option("warm_start", run_dir), role, option("warm_start"))


def _text(value: Any) -> str:
    """`value` as JSON text, to compare options of two spaces (`16` and `16.0` are not the same option)."""
    return json.dumps(json_keys(value), sort_keys=True, default=repr)


def _by_name(params: tuple[Param, ...]) -> dict[str, Param]:
    return {param.name: param for param in params}


def _earlier_params(source: Path, space: Space) -> dict[str, Param] | None:
    """The parameters of the earlier run in `source` by name (define-by-run order), rebuilt from its space.json
    without the recipe's schema (names and labels do not depend on it); `space`'s own where that run searched the
    same ingredients; None where it recorded no space that can be read."""
    recorded = recorded_space(source) or {}
    ingredients = recorded.get("ingredients")
    if not isinstance(ingredients, dict):
        try:
            same = (source / "space.fingerprint").read_text().strip() == space.fingerprint()
        except OSError:
            same = False
        return _by_name(space.params) if same else None
    if _text(ingredients) == _text(json.loads(space.definition())["ingredients"]):
        return _by_name(space.params)
    try:
        return _by_name(load_space(ingredients).params)
    except AutotuneError:
        return None


def _positional(labels: tuple[Any, ...]) -> bool:
    """Whether `labels` are the positions of the options ('0', '1', ...)."""
    return tuple(labels) == tuple(str(i) for i in range(len(labels)))


def _options(dist: Choice | Grid) -> tuple[Any, ...]:
    return dist.options if isinstance(dist, Choice) else dist.values


def _relabelled(param: Param, value: Any, now: Param | None) -> tuple[Any, str]:
    """The label in `now` (the new space's parameter; None: it has none) of the option that `value` stands for in
    the earlier `param`, or why there is none; `value` itself where neither labels by position or `value` is no
    label of `param` (the new space's check judges it)."""
    before = param.dist
    if not isinstance(before, (Choice, Grid)) or now is None or not isinstance(now.dist, (Choice, Grid)):
        return value, ""
    if not (_positional(before.labels) or _positional(now.dist.labels)) or value not in before.labels:
        return value, ""
    option = _text(_options(before)[before.labels.index(value)])
    for label, candidate in zip(now.dist.labels, _options(now.dist)):
        if _text(candidate) == option:
            return label, ""
    return value, f"{param.name} {value!r} ({option}) is no longer one of its options"


def _renamed(param: Param, names: dict[str, str], labels: dict[str, Any]) -> str:
    """`param`'s name in the new space: the label in brackets of the choice it is conditional on becomes that
    choice's new label (`model[1].width` -> `model[0].width`). `names`: earlier name -> new name, `labels`: new name
    -> new label, of the choices before it."""
    if not param.condition or param.condition[-1][0] not in names:
        return param.name
    choice, label = param.condition[-1]
    prefix = f"{choice}[{label}]"
    if not param.name.startswith(prefix):
        return param.name
    return f"{names[choice]}[{labels[names[choice]]}]{param.name[len(prefix):]}"


def _is_position(trial: optuna.trial.FrozenTrial, name: str) -> bool:
    """Whether the trial's value of `name` is an option's position ('0', '1', ...)."""
    dist = trial.distributions.get(name)
    return isinstance(dist, optuna.distributions.CategoricalDistribution) and _positional(dist.choices)


def _ran(param: Param, value: Any) -> Any:
    """What a trial ran for `param`: the option that its label `value` names (a choice's or grid's), else `value`."""
    dist = param.dist
    if isinstance(dist, (Choice, Grid)) and value in dist.labels:
        return _options(dist)[dist.labels.index(value)]
    return value


def _unsearched(trial: optuna.trial.FrozenTrial, names: list[str], searched: dict[str, Param]) -> dict[str, Any]:
    """What the trial ran at those of its parameters `names` that the new space does not search and no space tells
    the conditions of, by name; an option's position is left out, as no space tells which option it stood for."""
    return {name: trial.params[name] for name in names if name not in searched and not _is_position(trial, name)}


def _unknown_positions(trial: optuna.trial.FrozenTrial, space: Space) -> tuple[dict[str, Any], dict[str, Any], str]:
    """The trial's parameters as they are and what it ran at those the new space does not search, or why not: one
    of them the new space searches is labelled by position, and the earlier run's options are not known (no
    space.json, and another space)."""
    searched = _by_name(space.params)
    for name, value in trial.params.items():
        if name in searched and _is_position(trial, name):
            return {}, {}, (f"{name} {value!r} is an option's position, and the run records no readable space.json "
                            "to tell which option")
    return dict(trial.params), _unsearched(trial, list(trial.params), searched), ""


def _widened(source: Path, space: Space, earlier: dict[str, Param]) -> dict[str, Label]:
    """The choices of sections that `space` searches where the earlier run in `source` had one section (a search of
    `--set optimizer.name=adamw`, then of every optimizer), each with the label of that section's option: the one
    option whose constants the earlier section holds alike (`name: adamw`). Its trials ran that option."""
    ingredients = (recorded_space(source) or {}).get("ingredients")
    found: dict[str, Label] = {}
    for param in space.params if isinstance(ingredients, dict) else ():
        then = value_at(ingredients, param.name)
        if param.condition or param.name in earlier or not isinstance(then, Mapping) \
                or not (isinstance(param.dist, Choice) and param.dist.conditional):
            continue
        fits = [label for label, option in zip(param.dist.labels, param.dist.options) if isinstance(option, Mapping)
                and all(_text(value) == _text(then.get(key)) for key, value in option.items() if not _drawn(value))]
        if len(fits) == 1:
            found[param.name] = fits[0]
    return found


def _drawn(value: Any) -> bool:
    """Whether `value`, a key's value in a section of the YAML, is a distribution."""
    return isinstance(value, Mapping) and dist_kind(dict(value)) is not None


def _under_option(name: str, widened: dict[str, Label]) -> str:
    """`name` under the option of the choice of sections `widened` says the trial ran (`optimizer.lr` ->
    `optimizer[adamw].lr`), else `name`."""
    for choice, label in widened.items():
        if name.startswith(f"{choice}."):
            return f"{choice}[{label}]{name[len(choice):]}"
    return name


def _translated(trial: optuna.trial.FrozenTrial, space: Space, earlier: dict[str, Param] | None,
                widened: dict[str, Label]) -> tuple[dict[str, Any], dict[str, Any], str]:
    """The trial's parameters named and labelled as `space` names them (`earlier`: the parameters of its run's
    space, None: unknown; `widened`: the choices of sections that run had one section of, `_widened`) and what it
    ran at the keys of those `space` does not search (key path -> value), or ({}, {}, why they cannot be)."""
    if earlier is None:
        return _unknown_positions(trial, space)
    now = _by_name(space.params)
    names: dict[str, str] = {}
    found: dict[str, Any] = dict(widened)
    ran: dict[str, Any] = {}
    for param in earlier.values():
        if param.name in trial.params:
            names[param.name] = name = _renamed(param, names, found)
            if name not in now and _under_option(name, widened) in now:  # a section then, an option now
                names[param.name] = name = _under_option(name, widened)
            if name not in now and param.key_path in now:  # its choice is a constant now: `optimizer.lr`
                names[param.name] = name = param.key_path
            if name not in now:
                ran[param.key_path] = _ran(param, trial.params[param.name])
            found[name], why = _relabelled(param, trial.params[param.name], now.get(name))
            if why:
                return {}, {}, why
    rest = [name for name in trial.params if name not in earlier]
    return {**{k: trial.params[k] for k in rest}, **found}, {**_unsearched(trial, rest, now), **ran}, ""


def _fixed_otherwise(ran: dict[str, Any], config: dict[str, Any]) -> str:
    """Why the trial ran another configuration than the new space's `config` (nested) at a key the earlier run
    searched and the new space fixes (`ran`: key path -> what the trial ran there), or ""."""
    for path, then in ran.items():
        why = _differs(path, then, value_at(config, path))
        if why:
            return why
    return ""


def _differs(path: str, then: Any, now: Any) -> str:
    """Why `then`, what a trial ran at `path`, is not `now`, what the new space fixes there, or "". An option of a
    choice of sections is compared by its constants (its distributions are parameters of their own); a key the new
    space no longer sets (or sets to null) is not compared."""
    if isinstance(then, Mapping) and isinstance(now, Mapping):
        found = (_differs(f"{path}.{key}", value, now.get(key)) for key, value in then.items()
                 if not isinstance(value, Mapping))
        return next((why for why in found if why), "")
    if now is None or same_value(then, now) or _text(then) == _text(now):
        return ""
    return f"{path} is {_text(now)} now (a constant, or the recipe's default), a value the trial did not run"


def _notes(given: dict[str, Any], values: dict[str, Label], ran: dict[str, Any], config: dict[str, Any]
           ) -> list[str]:
    """Where a trial is told otherwise than it ran: a parameter it did not search, told at its `default:`; a key it
    searched that the new space no longer sets, left out."""
    return [*(f"{name} told at its default {_text(value)}, not searched then" for name, value in values.items()
              if name not in given),
            *(f"{path} left out, no longer in the space" for path in ran if value_at(config, path) is None)]


def _fit(trial: optuna.trial.FrozenTrial, space: Space, source: Path, earlier: dict[str, Param] | None,
         widened: dict[str, Label]) -> tuple[optuna.trial.FrozenTrial | None, str, list[str]]:
    """`trial` as a trial of the new space and where it is told otherwise than it ran (`_notes`), or None and why
    it does not fit. A parameter the new space no longer searches is dropped when the new space leaves its key out,
    and must have the value the new space fixes there; one it searches and the trial lacks takes its `default:`,
    else the trial does not fit."""
    given, ran, why = _translated(trial, space, earlier, widened)
    if why:
        return None, why, []
    names = {param.name for param in space.params}
    given = {k: v for k, v in given.items() if k in names}
    values, problems = complete_point(space.params, given, computed_defaults=False)
    config = space.config(values)  # a value with a problem holds the parameter's default
    why = _fixed_otherwise({k: v for k, v in ran.items() if k != space.budget}, config)  # fewer epochs: `_state`
    if why:
        return None, why, []
    if problems:
        name, message, _ = problems[0]
        return None, f"{name} {message}", []
    fewer = _ran_fewer(trial, space, config)
    shorter = [f"told as stopped early (PRUNED): it ran fewer epochs than {space.budget} gives it now"] if fewer else []
    fixed = optuna.trial.FixedTrial(values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a value at a range's edge: checked above, and by create_trial below
        DefineByRun(space.params)(fixed)
    try:
        return optuna.trial.create_trial(
            state=optuna.trial.TrialState.PRUNED if fewer else trial.state, values=trial.values,
            params=fixed.params, distributions=fixed.distributions, intermediate_values=trial.intermediate_values,
            user_attrs={**trial.user_attrs, WARM_START_FROM: str(source), "warm_start_trial": trial.number,
                        **({RAN_FEWER_EPOCHS: fewer} if fewer else {})},
        ), "", [*_notes(given, values, ran, config), *shorter]
    except ValueError as err:
        return None, f"does not fit: {err}", []


def _ran_fewer(trial: optuna.trial.FrozenTrial, space: Space, config: dict[str, Any]) -> int | None:
    """The epochs a COMPLETE trial ran (its last intermediate value's) where they are fewer than the new space gives
    its configuration `config`, else None. Such a trial is told PRUNED there, as a trial the new search stops early
    is, so that the sampler does not take its value for a final one."""
    reached, planned = max(trial.intermediate_values, default=None), space.planned(config)
    if trial.state != optuna.trial.TrialState.COMPLETE or reached is None or planned is None or reached >= planned:
        return None
    return reached


def read_history(run_dir: str | Path, space: Space) -> History:
    """The finished trials of the run in `run_dir` that fit `space`. Raises UserError when `run_dir` holds no
    readable study, or one of other metrics, directions or number of objectives."""
    source = expanded(run_dir).absolute()
    study = _study_of(source, space.name)
    _check_objectives(study, space, source)
    _check_recipe_and_data(space, source)
    trials = study.get_trials(deepcopy=False)
    finished = [trial for trial in trials if trial.state in _FINISHED]
    history = History(source, unfinished=len(trials) - len(finished))
    earlier = _earlier_params(source, space)
    widened = _widened(source, space, earlier) if earlier is not None else {}
    for trial in finished:
        fitted, reason, notes = _fit(trial, space, source, earlier, widened)
        if fitted is None:
            history.skipped[reason] += 1
        else:
            history.trials.append(fitted)
            history.notes.update(notes)
    return history


def told(history: History) -> str:
    """What the history tells the sampler, as text (a warm start's seed is derived from it: the same history and
    seed propose the same configurations, wherever the run folder is)."""
    return json.dumps([[trial.params, trial.values, trial.state.name] for trial in history.trials], sort_keys=True,
                      default=str)


def _summary(history: History) -> str:
    skipped = sum(history.skipped.values())
    text = f"warm start from {history.source}: {len(history.trials)} finished trial(s) told to the sampler"
    if history.notes:
        text += f" ({'; '.join(f'{count}: {note}' for note, count in history.notes.most_common())})"
    if skipped:
        reasons = "; ".join(f"{count}: {reason}" for reason, count in history.skipped.most_common())
        text += f"; {skipped} skipped, their parameters no longer fit the space ({reasons})"
        if not history.trials:
            text += ("; the search starts from nothing: to start from them, give the space room for the values the "
                     "reasons name (a range, an option, a `default:` for a new parameter) under the parameter names "
                     "the earlier trials have (autotune check lists this space's)")
    if history.unfinished:
        text += f"; {history.unfinished} failed or unfinished, not copied"
    return text


def add_history(history: History, db: Path, space: Space) -> list[dict[str, Label]]:
    """Add `history` to the study of `space` in the SQLite file `db` (created); returns the parameters of the trials
    added, so that the search does not run those configurations again: all but those told as stopped early because
    they ran fewer epochs than the new space gives them (a default configuration among them runs again, longer)."""
    directions = ["maximize" if mode == "max" else "minimize" for mode in space.search.mode]
    study = optuna.create_study(storage=optuna.storages.RDBStorage(f"sqlite:///{db}"), study_name=space.name,
                                directions=directions)
    study.add_trials(history.trials)
    # nothing told of a history that has finished trials: the search starts cold, which the user did not ask for
    (log.warning if history.skipped and not history.trials else log.info)("%s", _summary(history))
    return [dict(trial.params) for trial in history.trials if RAN_FEWER_EPOCHS not in trial.user_attrs]
