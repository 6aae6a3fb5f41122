"""`autotune run SPACE --warm-start RUN_DIR`: an earlier run's finished trials become the new search's history.

    history = read_history("runs/digits", space)        # UserError when RUN_DIR holds no usable study
    known = add_history(history, run_dir / "study.db", space)   # before the searcher opens that study

Each COMPLETE or PRUNED trial of RUN_DIR/study.db whose parameters fit the new space is copied into the new run's
study with its state, value(s), intermediate values and parameters (with the new space's distributions), marked
with the user attributes `warm_start_from` (RUN_DIR) and `warm_start_trial` (its number there). The sampler then
counts them as finished trials; they are not run again. A FAILED, RUNNING or WAITING trial is not copied.
"""
from __future__ import annotations

import json
import logging
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from autotune.engine.optuna_space import DefineByRun
from autotune.engine.storage import recorded_space
from autotune.engine.study import open_study
from autotune.errors import UserError
from autotune.run_options import option
from autotune.space.points import complete_point
from autotune.space.types import Label, Space

__all__ = ["History", "read_history", "add_history", "told"]

log = logging.getLogger("autotune")

_FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


@dataclass
class History:
    """The trials of an earlier run that fit the new space, ready to add; and why the others were left out."""

    source: Path
    trials: list[optuna.trial.FrozenTrial] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> trials
    unfinished: int = 0  # FAILED, RUNNING or WAITING: never copied


def _study_of(run_dir: Path) -> Any:
    """The Optuna study of the run folder `run_dir` (named after the folder, or the only one in its study.db)."""
    db, given = run_dir / "study.db", option("warm_start", run_dir)
    if not run_dir.exists():
        raise UserError(f"{given}: there is no such run folder (it does not exist); give the folder of an earlier "
                        "run, e.g. runs/digits")
    if not run_dir.is_dir():
        raise UserError(f"{given}: it is a file, not a run folder; give the folder of an earlier run, e.g. runs/digits")
    if not db.is_file():
        raise UserError(f"{given}: the folder holds no study.db; give the folder of an earlier autotune run "
                        "(runs/NAME), which holds its Optuna study")
    try:
        return open_study(db, run_dir.name)
    except LookupError as err:
        raise UserError(f"{given}: cannot read the Optuna study in {db} ({err}); give the folder of an earlier "
                        "autotune run") from None


def _earlier_metrics(run_dir: Path) -> list[str] | None:
    """The metric(s) the run in `run_dir` searched, as its summary.json or its recorded space names them; None when
    neither does (a run killed before its end, by an autotune that recorded no space)."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        summary = None
    metric = summary.get("metric") if isinstance(summary, dict) else None
    if metric is None:
        metric = ((recorded_space(run_dir) or {}).get("search") or {}).get("metric")
    return [str(m) for m in metric] if isinstance(metric, list) else None


def _check_objectives(study: Any, space: Space, run_dir: Path) -> None:
    """The earlier run searched the same metrics in the same directions (its values become this search's);
    only the directions when its metrics' names are not recorded."""
    wanted = ["max" if mode == "max" else "min" for mode in space.search.mode]
    found = ["max" if d == optuna.study.StudyDirection.MAXIMIZE else "min" for d in study.directions]
    searched = ", ".join(f"{m} ({d})" for m, d in zip(space.search.metric, wanted))
    names, given = _earlier_metrics(run_dir), option("warm_start", run_dir)
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
        log.warning("%s: the run names no metric (no summary.json): only the direction of its objective(s) was "
                    "checked against %s", given, searched)


def _fit(trial: optuna.trial.FrozenTrial, space: Space, source: Path) -> tuple[optuna.trial.FrozenTrial | None, str]:
    """`trial` as a trial of the new space, or None and why it does not fit. Parameters the new space no longer
    searches are dropped; one it searches and the trial lacks takes its `default:`, else the trial does not fit."""
    names = {param.name for param in space.params}
    values, problems = complete_point(space.params, {k: v for k, v in trial.params.items() if k in names},
                                      computed_defaults=False)
    if problems:
        name, message, _ = problems[0]
        return None, f"{name} {message}"
    fixed = optuna.trial.FixedTrial(values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a value at a range's edge: checked above, and by create_trial below
        DefineByRun(space.params)(fixed)
    try:
        return optuna.trial.create_trial(
            state=trial.state, values=trial.values, params=fixed.params, distributions=fixed.distributions,
            intermediate_values=trial.intermediate_values,
            user_attrs={**trial.user_attrs, "warm_start_from": str(source), "warm_start_trial": trial.number},
        ), ""
    except ValueError as err:
        return None, f"does not fit: {err}"


def read_history(run_dir: str | Path, space: Space) -> History:
    """The finished trials of the run in `run_dir` that fit `space`. Raises UserError when `run_dir` holds no
    readable study, or one of other metrics, directions or number of objectives."""
    source = Path(run_dir).expanduser().absolute()
    study = _study_of(source)
    _check_objectives(study, space, source)
    trials = study.get_trials(deepcopy=False)
    finished = [trial for trial in trials if trial.state in _FINISHED]
    history = History(source, unfinished=len(trials) - len(finished))
    for trial in finished:
        fitted, reason = _fit(trial, space, source)
        if fitted is None:
            history.skipped[reason] += 1
        else:
            history.trials.append(fitted)
    return history


def told(history: History) -> str:
    """What the history tells the sampler, as text (a warm start's seed is derived from it: the same history and
    seed propose the same configurations, wherever the run folder is)."""
    return json.dumps([[trial.params, trial.values, trial.state.name] for trial in history.trials], sort_keys=True,
                      default=str)


def _summary(history: History) -> str:
    skipped = sum(history.skipped.values())
    text = f"warm start from {history.source}: {len(history.trials)} finished trial(s) told to the sampler"
    if skipped:
        reasons = "; ".join(f"{count}: {reason}" for reason, count in history.skipped.most_common())
        text += f"; {skipped} skipped, their parameters no longer fit the space ({reasons})"
    if history.unfinished:
        text += f"; {history.unfinished} failed or unfinished, not copied"
    return text


def add_history(history: History, db: Path, space: Space) -> list[dict[str, Label]]:
    """Add `history` to the study of `space` in the SQLite file `db` (created); returns the parameters of the trials
    added, so that the search does not run those configurations again."""
    directions = ["maximize" if mode == "max" else "minimize" for mode in space.search.mode]
    study = optuna.create_study(storage=optuna.storages.RDBStorage(f"sqlite:///{db}"), study_name=space.name,
                                directions=directions)
    study.add_trials(history.trials)
    log.info("%s", _summary(history))
    return [dict(trial.params) for trial in history.trials]
