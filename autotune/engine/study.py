"""A finished run's Optuna study (RUN_DIR/study.db) as plain data, for readers such as `autotune report`.

    study = read_study("runs/digits/study.db", "digits")   # None when there is no readable study
    study.directions                 # ["max"], one per objective
    study.parameters["optimizer.lr"]  # ParamRange(kind="float", low=0.001, high=0.1, log=True)
    study.complete                   # one dict of sampled values per complete trial
    param_importances(study, ["optimizer.lr", "model.width"], objective=0)   # {"optimizer.lr": 0.8, ...}
    study_runs("runs")               # the run folders holding a study.db, the most recently written first
    run_progress(Path("runs/digits/study.db"), "digits", "max")  # Progress(ended=10, best=("3d9d97ca", 0.9847))
    trial_numbers(Path("runs/digits/study.db"), "digits", "autotune_trial_id")  # {"3d9d97ca": 0, ...}
    storage, name, trials = open_storage(Path("runs/digits/study.db"), "digits")   # for optuna-dashboard
    parallel_coordinate_figure(study, ["val_accuracy"])      # Optuna's plotly figures, for `autotune report`
    importance_figure(study, ["optimizer.lr", "model.width"], ["val_accuracy"])

Only this module (with the rest of `autotune.engine`) imports Optuna.
"""
from __future__ import annotations

import json
import logging
import sqlite3
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autotune.paths import expanded

__all__ = ["ParamRange", "Progress", "StudyData", "importance_figure", "open_storage", "open_study", "optuna_quiet",
           "param_importances", "parallel_coordinate_figure", "read_study", "run_progress", "study_runs",
           "trial_numbers"]

log = logging.getLogger("autotune")

WARM_START_FROM = "warm_start_from"  # the user attribute of a trial copied from an earlier run (--warm-start)


@dataclass(frozen=True)
class ParamRange:
    """Where a parameter was sampled: a numeric range (`low`..`high`, maybe on a log scale) or a list of choices."""

    kind: str  # "float" | "int" | "categorical"
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class StudyData:
    """What a study holds, copied out of Optuna's objects."""

    name: str
    directions: list[str]  # "max" or "min", one per objective
    parameters: dict[str, ParamRange] = field(default_factory=dict)  # every parameter any trial sampled
    complete: list[dict[str, Any]] = field(default_factory=list)  # the sampled values of each complete trial
    told: int = 0  # of the complete trials, those an earlier run ran (a warm start's history, not run in this one)
    trials: tuple[Any, ...] = field(default=(), repr=False, compare=False)  # the complete trials, Optuna's objects:
    # the figures and importances are drawn from them, the file read once


@dataclass(frozen=True)
class Progress:
    """How far a run got, as its study tells it while no summary does (a run killed before its end, or running)."""

    ended: int  # its trials that ended (complete, stopped early or failed); a warm start's told trials apart
    best: tuple[str, float] | None  # the best epoch's trial id and value of the first objective; None: none yet


def _optuna() -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


@contextmanager
def optuna_quiet() -> Iterator[None]:
    """Optuna's verbosity WARNING in the block: its INFO lines (a study created, each trial's value) would interleave
    with the search's own progress lines. The process's verbosity again after: a notebook's own `study.optimize` after
    `autotune.fit` logged nothing ("Trial 0 finished with value ..." gone), Optuna left at WARNING for good."""
    import optuna

    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


def _load(storage: str, name: str | None) -> Any:
    optuna = _optuna()
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return optuna.load_study(study_name=None, storage=storage)  # the only study, whatever its name


def _range(distribution: Any) -> ParamRange:
    optuna = _optuna()
    if isinstance(distribution, optuna.distributions.CategoricalDistribution):
        return ParamRange("categorical", choices=tuple(str(c) for c in distribution.choices))
    kind = "int" if isinstance(distribution, optuna.distributions.IntDistribution) else "float"
    return ParamRange(kind, float(distribution.low), float(distribution.high), bool(distribution.log))


def open_study(db: Path, name: str) -> Any:
    """The Optuna study named `name` (or the only one) in the existing SQLite file `db`. Raises LookupError saying
    why there is none to read."""
    try:
        return _load(f"sqlite:///{db}", name)
    except (KeyError, ValueError) as err:  # no study, or several and none named `name`
        raise LookupError(str(err).strip("'\"")) from None
    except Exception as err:  # not an Optuna SQLite file: sqlalchemy's DatabaseError, Optuna's schema RuntimeError
        raise LookupError(f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}") from None


def study_runs(folder: str | Path) -> list[Path]:
    """The run folders holding a study.db (finished or still running): `folder` itself when it holds one, else
    the folders in it that do (a storage folder such as runs/), the most recently written study first."""
    path = expanded(folder)
    if (path / "study.db").is_file():
        return [path]
    runs = [d for d in (path.iterdir() if path.is_dir() else ()) if (d / "study.db").is_file()]
    return sorted(runs, key=lambda d: ((d / "study.db").stat().st_mtime, d.name), reverse=True)


def open_storage(db: Path, name: str) -> tuple[Any, str, int]:
    """The Optuna storage of the existing SQLite file `db`, to hand to a viewer such as optuna-dashboard, with the
    name and number of trials of its study named `name` (or the only one). Raises LookupError as `open_study`."""
    study = open_study(db, name)
    storage = _optuna().storages.RDBStorage(f"sqlite:///{db}", skip_table_creation=True)
    return storage, study.study_name, len(study.get_trials(deepcopy=False))


def run_progress(db: Path, name: str, direction: str) -> Progress | None:
    """How far the run whose study is the SQLite file `db` got (`Progress`), its epochs ranked by `direction` ("max"
    or "min"; the first trial to reach the best value names it); None when there is no study to read. Several
    objectives have no epochs in the study: no best."""
    try:
        study = open_study(db, name)
    except LookupError:
        return None
    trials = [t for t in study.get_trials(deepcopy=False) if WARM_START_FROM not in t.user_attrs]
    epochs = [(value, str(t.user_attrs.get("autotune_trial_id", t.number))) for t in trials
              for value in t.intermediate_values.values() if np.isfinite(value)]
    value, trial = (max if direction == "max" else min)(epochs, key=lambda epoch: epoch[0], default=(None, None))
    return Progress(sum(t.state.is_finished() for t in trials), None if trial is None else (trial, value))


def trial_numbers(db: Path, name: str, attribute: str) -> dict[str, int]:
    """The value of each trial's user attribute `attribute` (a string) -> the trial's number, in the study named
    `name` (or the only one) of the SQLite file `db`; {} where it cannot be read. One query on Optuna's tables (its
    schema, not a public API): Optuna's own reads load every trial whole, 1.5 s for 2,500 trials, which a search
    cut short by Ctrl-C read twice before its summary."""
    query = ("SELECT s.study_name, a.value_json, t.number FROM trial_user_attributes a "
             "JOIN trials t ON t.trial_id = a.trial_id JOIN studies s ON s.study_id = t.study_id WHERE a.key = ?")
    try:
        with closing(sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)) as connection:
            rows = connection.execute(query, (attribute,)).fetchall()
            studies = [row[0] for row in connection.execute("SELECT study_name FROM studies")]
    except sqlite3.Error:
        return {}
    chosen = name if name in studies else studies[0] if len(studies) == 1 else None
    return {json.loads(value): number for study, value, number in rows if study == chosen}


def read_study(db: str | Path, name: str) -> StudyData | None:
    """The study named `name` (or the only one) in the SQLite file `db`; None when there is none to read."""
    db = Path(db)
    if not db.is_file():
        return None
    try:
        study = open_study(db, name)
    except LookupError as err:
        log.warning("cannot read the Optuna study in %s: %s", db, err)
        return None
    optuna = _optuna()
    trials = study.get_trials(deepcopy=False)
    parameters: dict[str, ParamRange] = {}
    for trial in trials:
        parameters.update({key: _range(d) for key, d in trial.distributions.items()})
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    directions = ["max" if d == optuna.study.StudyDirection.MAXIMIZE else "min" for d in study.directions]
    told = sum(WARM_START_FROM in t.user_attrs for t in complete)
    return StudyData(study.study_name, directions, parameters, [dict(t.params) for t in complete], told,
                     tuple(complete))


def _minimised(study: StudyData, objective: int) -> Callable[[Any], float]:
    """Objective number `objective` of the study as a value to minimise: the importance evaluator (PED-ANOVA,
    `_evaluator`) takes the low values of a given target for the good ones, whatever the direction."""
    sign = -1.0 if study.directions[objective] == "max" else 1.0
    return lambda trial: sign * trial.values[objective]


def _evaluator() -> Any:
    """Optuna's PED-ANOVA importance evaluator, Optuna 5's default, named: Optuna 4's default is fANOVA, a random
    forest fitted anew at each call (the report's chart and its table gave a parameter different importances) that
    measures how much a parameter moves the objective, not whether it decides the good values."""
    return _optuna().importance.PedAnovaImportanceEvaluator()


def param_importances(study: StudyData, params: Sequence[str], objective: int = 0) -> dict[str, float]:
    """Optuna's importance of each of `params` for objective number `objective`, most important first."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # experimental-feature and single-value warnings: the report explains
        found = _optuna().importance.get_param_importances(_complete(study), params=list(params),
                                                           target=_minimised(study, objective), evaluator=_evaluator())
    return {key: float(value) for key, value in found.items()}


def _complete(study: StudyData, metrics: Sequence[str] = ()) -> Any:
    """An in-memory Optuna study of the study's complete trials (what Optuna's importances and figures read), its
    objectives named `metrics` where given (Optuna's figures label them so); the run's study.db is only read."""
    optuna = _optuna()
    copy = optuna.create_study(directions=["maximize" if d == "max" else "minimize" for d in study.directions])
    if metrics:
        copy.set_metric_names(list(metrics))
    copy.add_trials(study.trials)
    return copy


PARALLEL_COLORS = "Viridis"  # as the report's PNG: its low end stays visible on a white page (Optuna's Blues fades)


def parallel_coordinate_figure(study: StudyData, metrics: Sequence[str]) -> Any:
    """Optuna's parallel coordinates (a plotly figure) of the study's complete trials: one axis per objective,
    named by `metrics`, and one per parameter; coloured by the objective (several: by Pareto rank) on Viridis, the
    best yellow. When every trial has the same colour (one value, one Pareto rank), they share one colour and there
    is no colour bar."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # set_metric_names is experimental
        figure = _optuna().visualization.plot_parallel_coordinate(_complete(study, metrics), target_name=metrics[0])
    _recolour(figure, PARALLEL_COLORS)
    _named_in_full(figure, sorted(set().union(*study.complete)))
    return figure


def _named_in_full(figure: Any, params: list[str]) -> None:
    """Optuna's parallel coordinates with each parameter's axis named in full, on two lines where it is long: Optuna
    cuts a name of 20 characters or more to its first 17 and "...", so that the axes of a choice of sections
    (`optimizer[adamw].lr`, `optimizer[adamw].weight_decay`, `optimizer[adamw].warmup_epochs`) read alike. Its
    parameter axes come last, in the order of their names (`params`); a figure drawn otherwise is left as it is."""
    shown = list(figure.layout.xaxis.ticktext or ())
    if not params or len(shown) < len(params) or any(
            text not in (name, f"{name[:17]}...") for text, name in zip(shown[-len(params):], params)):
        return
    figure.layout.xaxis.ticktext = [*shown[:-len(params)], *map(_two_lines, params)]


def _two_lines(name: str) -> str:
    """A parameter's name of 20 characters or more broken before its last key (`optimizer[adamw].<br>lr`)."""
    head, dot, key = name.rpartition(".")
    return f"{head}.<br>{key}" if dot and len(name) >= 20 else name


def _recolour(figure: Any, colorscale: str) -> None:
    """Optuna's parallel coordinates on `colorscale`: each line takes the colour at its place on Optuna's own scale
    (read back from the colour, which Optuna samples from the colour bar's scale), less faded than Optuna's (its
    opacity 0.5 pales the light end), and the colour bar the new scale.
    The colour bar is hidden when every line is at one place (Optuna's bar would run from value - 0.5 to + 0.5)."""
    from plotly.colors import get_colorscale, sample_colorscale, unlabel_rgb

    if any(trace.type == "parcoords" for trace in figure.data):
        _recolour_parcoords(figure, colorscale)
        return
    bar = next((trace for trace in figure.data if trace.marker is not None and trace.marker.showscale), None)
    lines = [trace for trace in figure.data if trace.mode == "lines"]
    if bar is None or not lines:
        return
    places = np.linspace(0.0, 1.0, 1001)
    old = np.array([unlabel_rgb(c) for c in sample_colorscale([list(stop) for stop in bar.marker.colorscale],
                                                                 places)])
    new = get_colorscale(colorscale)
    for trace in lines:
        place = places[np.argmin(((old - unlabel_rgb(trace.line.color)) ** 2).sum(axis=1))]
        trace.update(line={"color": sample_colorscale(new, [place])[0], "width": 2}, opacity=0.85)
    bar.marker.colorscale = colorscale
    bar.marker.showscale = len({trace.line.color for trace in lines}) > 1


def _recolour_parcoords(figure: Any, colorscale: str) -> None:
    """Optuna 4's parallel coordinates (one plotly Parcoords, its lines coloured by the objective on Optuna's scale,
    which Optuna 5 draws as lines and a colour bar) on `colorscale`, the colour bar hidden when every line has one
    value."""
    for trace in figure.data:
        values = trace.line.color
        trace.line.colorscale = colorscale
        trace.line.showscale = values is not None and len(set(values)) > 1


def importance_figure(study: StudyData, params: Sequence[str], metrics: Sequence[str]) -> Any:
    """Optuna's parameter importance (a plotly figure) of `params`, as `param_importances`: one group of bars per
    objective, named by `metrics`."""
    optuna, complete = _optuna(), _complete(study)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # as in `param_importances`
        figures = [optuna.visualization.plot_param_importances(complete, params=list(params), target_name=metric,
                                                               target=_minimised(study, index), evaluator=_evaluator())
                   for index, metric in enumerate(metrics)]
    figures[0].add_traces([trace for figure in figures[1:] for trace in figure.data])
    return figures[0]
