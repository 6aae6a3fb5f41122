"""`autotune report RUN_DIR`: one HTML page about a finished search and its best model, with interactive plotly
charts (plotly.js inline, once: the page stands alone and opens offline), and each figure also as a PNG file beside
it (for CI artefacts and tickets).

    page = write_report("runs/digits")          # runs/digits/report/report.html, history.png, ...

What it shows: a summary; the optimisation history; the learning curve of every trial, marking where the scheduler
(ASHA) stopped it; parallel coordinates of the parameters against the metric; Optuna's parameter importance; the
Pareto front of a multi-objective search; and the model the run exported, on the held-out test split: a
classifier's confusion matrix, accuracy per class and class distribution of each split (and its misclassified
images, when the test samples are images); a regression model's predicted against true values and residuals.

It reads RUN_DIR/trials.csv, summary.json, study.db (the Optuna study, through `autotune.engine.study`) and
trial_*/progress.csv. The model section takes the model this run exported (never another run's model that has
since taken the canonical place), loads the recipe named in its card and the data named there (the recipe's
`load_data`), and draws what the recipe's `test_predictions` returns (`autotune.recipes.ClassPredictions` or
`ValuePredictions`); for a recipe without one it says so in a line. `autotune report runs/` reports the newest run
of a storage folder (`find_run`).

Each chart has two drawings: `*_chart` builds the plotly figure the page shows (hover names the trial and its
parameters; parallel coordinates and importance are Optuna's, through `autotune.engine.study`), `*_figure` the PNG,
drawn with matplotlib's object API (Agg canvas, so no display and no global backend change are needed). Per-class
accuracy, misclassified images and the class distribution are PNGs only, embedded in the page.
"""
from __future__ import annotations

import base64
import html
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize
from matplotlib.cm import ScalarMappable
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import LogLocator, MaxNLocator
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from autotune import recipes
from autotune.engine.study import ParamRange, StudyData, param_importances, parallel_coordinate_figure, read_study
from autotune.engine.study import importance_figure as study_importance_figure
from autotune.errors import UserError
from autotune.recipes import ClassPredictions, ValuePredictions

__all__ = ["FIGURES", "Run", "find_run", "load_run", "write_report"]

BLUE, ORANGE, RED, GREY = "#1f77b4", "#ff7f0e", "#d62728", "#9a9a9a"
IMPORTANCE = "importance (the parameters' shares add up to 1)"
MIN_TRIALS_FOR_IMPORTANCE = 3
MISCLASSIFIED_SHOWN = 24
# what Ray adds to each reported result: bookkeeping, not metrics
RAY_KEYS = {"timestamp", "pid", "training_iteration", "iterations_since_restore", "done", "should_checkpoint",
            "date", "hostname", "node_ip", "node_id", "trial_id", "checkpoint_dir_name"}
# the files a report writes besides report.html: only these are replaced or removed in its folder
FIGURES = ("history.png", "learning_curves.png", "parallel_coordinates.png", "importance.png", "pareto.png",
           "confusion_matrix.png", "per_class_accuracy.png", "misclassified.png", "class_distribution.png",
           "predicted_vs_true.png", "residuals.png")


@dataclass
class Run:
    """What a run directory holds, read once."""

    path: Path
    name: str
    summary: dict[str, Any]
    trials: pd.DataFrame  # one row per trial (trials.csv)
    metric: list[str]
    mode: list[str]
    histories: dict[str, pd.DataFrame]  # trial id -> one row per epoch
    study: StudyData | None = None  # the Optuna study, when study.db could be read
    model_dir: Path | None = None  # the model this run exported, when it is still there
    card: dict[str, Any] = field(default_factory=dict)
    no_model: str = ""  # why model_dir is None

    @property
    def params(self) -> list[str]:
        return [c for c in self.trials.columns if c.startswith("p:")]


@dataclass
class Section:
    title: str
    text: str  # HTML
    figure: str | None = None  # PNG file name in the output folder: linked below `chart`, else embedded
    chart: str = ""  # HTML of the interactive plotly chart


class _Skip(Exception):
    """A figure that cannot be drawn for this run; the message says why (shown in the report)."""


# ------------------------------------------------------------------------------------------------ reading
def find_run(folder: str | Path) -> tuple[Path, list[Path]]:
    """The run in `folder`: the folder itself when it is a run, else the newest run in it (a storage folder such
    as runs/, holding one folder per run); also the other runs found there, newest first."""
    path = Path(folder).expanduser()
    if (path / "trials.csv").is_file():
        return path, []
    runs = sorted((d for d in (path.iterdir() if path.is_dir() else ()) if (d / "trials.csv").is_file()),
                  key=lambda d: ((d / "trials.csv").stat().st_mtime, d.name), reverse=True)
    if not runs:
        raise UserError(f"{path} holds no trials.csv, nor does any folder in it: not the folder of a finished "
                        "autotune run (runs/<name>/, written by `autotune run`) or a storage folder of runs")
    return runs[0], runs[1:]


def load_run(run_dir: str | Path) -> Run:
    """Read a run directory written by `autotune run` / `autotune.fit`."""
    path = Path(run_dir).expanduser()
    if not (path / "trials.csv").is_file():
        raise UserError(f"{path} holds no trials.csv: not the folder of a finished autotune run "
                        "(runs/<name>/, written by `autotune run`)")
    summary = _read_json(path / "summary.json")
    trials = pd.read_csv(path / "trials.csv", dtype={"trial_id": str})
    name = summary.get("name") or path.name
    model_dir, card, no_model = _exported_model(summary)
    study = read_study(path / "study.db", name)
    metric = list(summary.get("metric") or card.get("search", {}).get("metric") or _metric_columns(trials))
    if study is not None and len(study.directions) == len(metric):
        mode = list(study.directions)
    else:
        mode = list(summary.get("mode") or card.get("search", {}).get("mode")
                    or ["min" if "loss" in m or "error" in m else "max" for m in metric])
    histories = {str(t): _history(path / f"trial_{t}") for t in trials["trial_id"]}
    return Run(path, name, summary, trials, metric, mode, histories, study, model_dir, card, no_model)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _metric_columns(trials: pd.DataFrame) -> list[str]:
    """The metric columns of trials.csv: the engine writes them between `stopped_early` and `seconds`."""
    columns = list(trials.columns)
    if "stopped_early" in columns and "seconds" in columns:
        found = columns[columns.index("stopped_early") + 1 : columns.index("seconds")]
        if found:
            return found
    raise UserError("cannot tell the search metric: neither summary.json nor the model card names it")


def _exported_model(summary: dict[str, Any]) -> tuple[Path | None, dict[str, Any], str]:
    """The model this run exported: its version directory (kept even when not promoted), else the canonical
    directory if it still holds this run's model (its card names this run and its best trial). Returns the
    directory and its card, or None, {} and why there is none."""
    version = (summary.get("promotion") or {}).get("version_dir")
    canonical = summary.get("model_dir")
    if not version and not canonical:
        return None, {}, "the run exported no model (summary.json names no model directory)"
    trial, name = summary.get("best_trial_id"), summary.get("name")
    for candidate in (version, canonical):
        card = _read_json(Path(candidate) / "model.json") if candidate else {}
        if card and card.get("trial_id") == trial and card.get("name") == name:
            return Path(candidate), card, ""
    why = f"the model this run exported (trial {trial}) is no longer there"
    if version:
        why += f": its version {version} was removed"
    other = _read_json(Path(canonical) / "model.json") if canonical else {}
    if other:
        why += (f"; {canonical} now holds another model (trial {other.get('trial_id')} of run "
                f"{other.get('name')}), which this report does not describe")
    return None, {}, why


def _history(trial_dir: Path) -> pd.DataFrame:
    """A trial's metrics per epoch, from progress.csv (or result.json, one JSON object per line)."""
    try:
        frame = pd.read_csv(trial_dir / "progress.csv")
    except (OSError, ValueError):
        try:
            lines = (trial_dir / "result.json").read_text().splitlines()
            frame = pd.DataFrame([json.loads(line) for line in lines if line.strip()])
        except (OSError, ValueError):
            return pd.DataFrame()
    if "epoch" not in frame and "training_iteration" in frame:
        frame["epoch"] = frame["training_iteration"]
    return frame


# ------------------------------------------------------------------------------------------------ helpers
def _fmt(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            return "n/a"
        return f"{int(value):,}" if value.is_integer() and abs(value) >= 1000 else f"{value:.4g}"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return f"{value:,}" if abs(value) >= 10000 else str(value)
    return str(value)


def _short(text: str, width: int = 14) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _wrap(name: str, width: int = 14) -> str:
    """A long key path on two lines, broken at its last dot."""
    head, dot, tail = name.rpartition(".")
    return f"{head}.\n{tail}" if dot and len(name) > width else name


def _is_wide(values: pd.Series) -> bool:
    """Whether positive values span more than two decades (e.g. parameter counts): drawn on a log scale."""
    return bool(len(values) and values.min() > 0 and values.max() / values.min() > 100)


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _finished(run: Run) -> pd.DataFrame:
    """The trials that reported the first metric."""
    values = pd.to_numeric(run.trials[run.metric[0]], errors="coerce")
    return run.trials[values.notna() & (run.trials["status"] != "ERROR")]


def _best_trial_id(run: Run) -> str | None:
    return run.summary.get("best_trial_id") or run.card.get("trial_id")


def _stopped(trials: pd.DataFrame) -> pd.Series:
    """Whether the scheduler stopped each trial early."""
    return trials.get("stopped_early", pd.Series(False, index=trials.index)).fillna(False).astype(bool)


def _trial_hover(run: Run) -> pd.Series:
    """The hover text of each trial (indexed like `run.trials`): its id, the epochs it ran and its sampled values."""
    texts = {}
    for (index, row), stopped in zip(run.trials.iterrows(), _stopped(run.trials)):
        lines = [f"<b>trial {html.escape(str(row['trial_id']))}</b>: {_fmt(row.get('epochs', '?'))} epochs"
                 + (", stopped early" if stopped else "")]
        lines += [f"{html.escape(c.removeprefix('p:'))} = {html.escape(_fmt(row[c]))}" for c in run.params
                  if pd.notna(row[c])]
        texts[index] = "<br>".join(lines)
    return pd.Series(texts, dtype=str)


def _history_title(trials: pd.DataFrame, metric: str) -> str:
    failed = int((trials["status"] == "ERROR").sum())
    return f"{metric} per trial" + (f" ({failed} failed, not shown)" if failed else "")


def _best_so_far(values: pd.Series, mode: str) -> pd.Series:
    return values.cummax() if mode == "max" else values.cummin()


def _curve_metrics(run: Run) -> list[str]:
    """The metrics of the learning curves: the objective, and a loss beside it when the trials reported one."""
    metrics = [run.metric[0]] + [m for m in ("val_loss", "train_loss") if m != run.metric[0]][:1]
    metrics = [m for m in metrics if any(m in h for h in run.histories.values())]
    if not metrics:
        raise _Skip("no trial reported a metric per epoch (no progress.csv in the trial folders)")
    return metrics


def _stopped_ids(run: Run) -> set[str]:
    return set(run.trials["trial_id"].astype(str)[_stopped(run.trials)])


# ------------------------------------------------------------------------------------------------ figures
def history_figure(run: Run) -> Figure:
    """Each trial's best value in the order the trials started, and the best so far."""
    trials = run.trials.reset_index(drop=True)
    figure = _figure(7.5, 3.2 * len(run.metric))
    for ax, metric, mode in zip(figure.subplots(len(run.metric), 1, squeeze=False)[:, 0], run.metric, run.mode):
        values = pd.to_numeric(trials[metric], errors="coerce")
        number = np.arange(1, len(trials) + 1)
        stopped = _stopped(trials)
        full = values.notna() & ~stopped
        ax.scatter(number[full], values[full], color=BLUE, s=28, zorder=3, label="ran every epoch")
        if stopped.any():
            ax.scatter(number[stopped], values[stopped], color=GREY, marker="v", s=28, zorder=3,
                       label="stopped early by the scheduler")
        ax.step(number, _best_so_far(values, mode), where="post", color=ORANGE, linewidth=2, label="best so far")
        if _is_wide(values.dropna()):
            ax.set_yscale("log")
        ax.set(xlabel="trial (in the order they started)", ylabel=f"{metric} ({mode})",
               title=_history_title(trials, metric))
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
    figure.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=3, fontsize=8)
    return figure


def curves_figure(run: Run) -> Figure:
    """The per-epoch curve of every trial; an x where the scheduler stopped a trial; the best trial in orange."""
    metrics = _curve_metrics(run)
    stopped = _stopped_ids(run)
    best = _best_trial_id(run)
    figure = _figure(6.2 * len(metrics), 4.2)
    for ax, metric in zip(figure.subplots(1, len(metrics), squeeze=False)[0], metrics):
        for trial_id, history in run.histories.items():
            if metric not in history or history.empty:
                continue
            x, y = history["epoch"], history[metric]
            is_best = trial_id == best
            ax.plot(x, y, color=ORANGE if is_best else BLUE, alpha=1.0 if is_best else 0.45,
                    linewidth=2.5 if is_best else 1.0, zorder=4 if is_best else 2, marker="." if len(x) < 30 else None)
            if trial_id in stopped:
                ax.plot(x.iloc[-1], y.iloc[-1], "x", color=RED, markersize=7, markeredgewidth=2, zorder=5)
        ax.set(xlabel="epoch", ylabel=metric, title=f"{metric} per epoch, every trial")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=BLUE, alpha=0.6, label="a trial"),
               Line2D([], [], color=ORANGE, linewidth=2.5, label=f"best trial ({best})")]
    if stopped:
        handles.append(Line2D([], [], color=RED, marker="x", linestyle="", markeredgewidth=2,
                              label="stopped early by the scheduler"))
    figure.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=8)
    return figure


@dataclass
class _Axis:
    values: np.ndarray  # each trial's value on [0, 1]; -0.12 where the trial did not sample it
    ticks: list[tuple[float, str]]  # (position, label)
    log: bool = False
    categorical: bool = False


NOT_SAMPLED = -0.12


def _numeric_ticks(low: float, high: float, log_scale: bool, integer: bool) -> list[tuple[float, str]]:
    """Labels for a numeric axis from `low` (position 0) to `high` (1): both ends and a few round values
    between them (1, 2, 5 per decade on a log scale)."""
    if not high > low:
        return [(0.5, _fmt(low))]
    scale = np.log10 if log_scale else (lambda v: v)
    if log_scale:
        inside = [v for v in LogLocator(base=10, subs=(1.0, 2.0, 5.0)).tick_values(low, high) if low < v < high]
        if len(inside) > 4:
            inside = [v for v in LogLocator(base=10, subs=(1.0,)).tick_values(low, high) if low < v < high]
    else:
        inside = [v for v in MaxNLocator(nbins=4, integer=integer).tick_values(low, high) if low < v < high]
    ticks = [(0.0, low), (1.0, high)]
    for value in inside:
        position = float((scale(value) - scale(low)) / (scale(high) - scale(low)))
        if all(abs(position - p) >= 0.1 for p, _ in ticks):  # no label on top of another
            ticks.append((position, value))
    return sorted((p, _fmt(float(v))) for p, v in ticks)


def _axis(run: Run, trials: pd.DataFrame, column: str) -> _Axis:
    """A parameter's axis: its values on [0, 1] and the ticks to label. A value the trial did not sample (a
    conditional parameter) is placed at NOT_SAMPLED, labelled "n/a"."""
    name = column.removeprefix("p:")
    raw = trials[column]
    distribution = run.study.parameters.get(name) if run.study is not None else None
    numeric = pd.to_numeric(raw, errors="coerce")
    categorical = (raw.notna() & numeric.isna()).any() or (distribution is not None
                                                             and distribution.kind == "categorical")
    if categorical:
        choices = list(distribution.choices if distribution else ()) or sorted(raw.dropna().astype(str).unique())
        choices += sorted(set(raw.dropna().astype(str)) - set(choices))
        place = {c: (i / (len(choices) - 1) if len(choices) > 1 else 0.5) for i, c in enumerate(choices)}
        axis = _Axis(np.array([place.get(str(v), np.nan) if pd.notna(v) else np.nan for v in raw], dtype=float),
                     [(p, _short(c)) for c, p in place.items()], categorical=True)
    else:
        found = distribution or ParamRange("float", float(numeric.min()), float(numeric.max()))
        low, high = float(found.low), float(found.high)
        log_scale = found.log and low > 0
        scale = np.log10 if log_scale else (lambda v: v)
        span = scale(high) - scale(low)
        values = (scale(numeric) - scale(low)) / span if span else numeric * 0 + 0.5
        axis = _Axis(np.array(values, dtype=float), _numeric_ticks(low, high, log_scale, found.kind == "int"),
                     log_scale)
    missing = np.isnan(axis.values)
    if missing.any():
        axis.values[missing] = NOT_SAMPLED
        axis.ticks.append((NOT_SAMPLED, "n/a"))
    return axis


def _fan_out(lines: np.ndarray, axes: list[_Axis], score: np.ndarray) -> np.ndarray:
    """Lines (axes x lines) through the same choice of a categorical axis, spread a little around it (ordered
    by score), so that lines sharing a stretch stay apart."""
    lines = lines.copy()
    for row, axis in enumerate(axes):
        if not axis.categorical:
            continue
        for value in np.unique(lines[row]):
            members = np.flatnonzero(lines[row] == value)
            if len(members) > 1:
                step = min(0.025, 0.08 / (len(members) - 1))
                ranked = members[np.argsort(score[members], kind="stable")]
                lines[row, ranked] += (np.arange(len(ranked)) - (len(ranked) - 1) / 2) * step
    return lines


def parallel_figure(run: Run) -> Figure:
    """One line per trial through one axis per parameter, ending at the metric, coloured by the metric. Trials
    with the same values everywhere share one line, labelled with their count."""
    trials = _finished(run)
    if not run.params:
        raise _Skip("the search sampled no parameter")
    if trials.empty:
        raise _Skip("no trial reported the metric")
    metric, mode = run.metric[0], run.mode[0]
    score = pd.to_numeric(trials[metric]).to_numpy(float)
    low, high = float(score.min()), float(score.max())
    axes = [_axis(run, trials, c) for c in run.params]
    axes.append(_Axis((score - low) / (high - low) if high > low else np.full(len(score), 0.5),
                      _numeric_ticks(low, high, False, False)))
    names = [c.removeprefix("p:") for c in run.params] + [metric]
    matrix = np.array([a.values for a in axes])  # axes x trials
    groups: dict[tuple[float, ...], list[int]] = {}
    for i in range(matrix.shape[1]):
        groups.setdefault(tuple(np.round(matrix[:, i], 9)), []).append(i)
    first = np.array([members[0] for members in groups.values()])
    counts = np.array([len(members) for members in groups.values()])
    lines = _fan_out(matrix[:, first], axes, score[first])
    figure = _figure(min(15.0, max(6.0, 1.45 * len(names) + 1.5)), 4.8)
    ax = figure.subplots()
    cmap = _colormap("viridis" if mode == "max" else "viridis_r")
    norm = Normalize(low, high if high > low else low + 1)
    last = len(names) - 1
    for j in np.argsort(score[first] if mode == "max" else -score[first], kind="stable"):  # the best on top
        ax.plot(range(len(names)), lines[:, j], color=cmap(norm(score[first[j]])), alpha=0.75,
                linewidth=1.4 + 0.8 * min(counts[j] - 1, 4))
        if counts[j] > 1:
            ax.text(last - 0.05, lines[last, j], f"{counts[j]} trials", fontsize=7, va="center", ha="right",
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.75, "pad": 0.5})
    for x, axis in enumerate(axes):
        ax.axvline(x, color="black", linewidth=0.8)
        for y, label in axis.ticks:
            ax.plot([x - 0.025, x], [y, y], color="black", linewidth=0.8)
            ax.text(x + 0.04, y, label, fontsize=7.5, va="center", ha="left",
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.75, "pad": 0.5})
    labels = [_wrap(n) + (" (log)" if a.log else "") for n, a in zip(names, axes)]
    ax.set_xticks(range(len(names)), labels, fontsize=8.5)
    ax.set_yticks([])
    ax.set_ylim(-0.2, 1.1)
    ax.set_xlim(-0.2, len(names) - 0.5)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    shared = int(counts[counts > 1].sum())
    ax.set_title(f"parameters of {len(trials)} trials against {metric}"
                 + (f"\n{shared} of them on shared lines (the same values everywhere)" if shared else ""))
    figure.colorbar(ScalarMappable(norm, cmap), ax=ax, label=metric, fraction=0.04)
    return figure


def _colormap(name: str) -> Any:
    from matplotlib import colormaps

    return colormaps[name]


def _importance_params(run: Run) -> tuple[list[str], str]:
    """The parameters whose importance can be told (sampled by every complete trial, with more than one value),
    and a note on the trials it comes from and the parameters it leaves out."""
    if run.study is None:
        raise _Skip("no Optuna study (study.db) in the run folder")
    complete = run.study.complete
    if len(complete) < MIN_TRIALS_FOR_IMPORTANCE:
        raise _Skip(f"{len(complete)} complete trial(s): parameter importance needs at least "
                    f"{MIN_TRIALS_FOR_IMPORTANCE}")
    everywhere = set.intersection(*(set(t) for t in complete))
    conditional = sorted(set().union(*(set(t) for t in complete)) - everywhere)
    varied = {p for p in everywhere if len({repr(t[p]) for t in complete}) > 1}
    if not varied:
        raise _Skip("no parameter took more than one value in every complete trial")
    note = f"From {len(complete)} complete trials: with few trials these are rough."
    if conditional:
        note += (" Left out, because not every trial sampled them (conditional parameters): "
                 + ", ".join(conditional) + ".")
    return sorted(varied), note


def importance_figure(run: Run) -> tuple[Figure, str]:
    """Optuna's parameter importance for each objective, and a note on what it leaves out."""
    params, note = _importance_params(run)
    results = [(metric, param_importances(run.study, params, objective=index))
               for index, metric in enumerate(run.metric)]
    figure = _figure(5.2 * len(results), 0.45 * len(params) + 1.6)
    for ax, (metric, importances) in zip(figure.subplots(1, len(results), squeeze=False)[0], results):
        names = list(importances)[::-1]
        values = [importances[n] for n in names]
        ax.barh(names, values, color=BLUE)
        for y, v in enumerate(values):
            ax.text(v, y, f" {v:.2f}", va="center", fontsize=8)
        ax.set(xlabel=IMPORTANCE, title=f"for {metric}", xlim=(0, 1.12))
        ax.grid(axis="x", alpha=0.3)
    return figure, note


@dataclass
class _Pareto:
    trials: pd.DataFrame  # the trials that reported the first metric
    x: pd.Series  # their first objective
    y: pd.Series  # and their second
    on_front: np.ndarray  # whether each is on the Pareto front (summary.json)
    exported: pd.Series  # whether each is the trial the run exported


def _pareto(run: Run) -> _Pareto:
    trials = _finished(run)
    front_ids = {str(p.get("trial_id")) for p in run.summary.get("pareto") or []}
    return _Pareto(trials, pd.to_numeric(trials[run.metric[0]], errors="coerce"),
                   pd.to_numeric(trials[run.metric[1]], errors="coerce"),
                   trials["trial_id"].astype(str).isin(front_ids).to_numpy(),
                   trials["trial_id"].astype(str) == str(_best_trial_id(run)))


def pareto_figure(run: Run) -> Figure:
    """Every trial on the first two objectives; the Pareto front joined; the exported model circled."""
    p, (x_name, y_name) = _pareto(run), run.metric[:2]
    figure = _figure(6.5, 4.5)
    ax = figure.subplots()
    ax.scatter(p.x[~p.on_front], p.y[~p.on_front], color=GREY, s=30, label="a trial")
    order = np.argsort(p.x[p.on_front].to_numpy())
    ax.plot(p.x[p.on_front].to_numpy()[order], p.y[p.on_front].to_numpy()[order], "o-", color=ORANGE,
            markersize=7, label="Pareto front")
    ax.scatter(p.x[p.exported], p.y[p.exported], s=180, facecolors="none", edgecolors=RED, linewidths=2,
               label=f"exported (the best {x_name} on the front)")
    if _is_wide(p.x):
        ax.set_xscale("log")
    if _is_wide(p.y):
        ax.set_yscale("log")
    ax.set(xlabel=f"{x_name} ({run.mode[0]})", ylabel=f"{y_name} ({run.mode[1]})",
           title="trade-off between the objectives")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return figure


# ------------------------------------------------------------------------------------- interactive charts
def _styled(figure: go.Figure, title: str | None, height: int) -> go.Figure:
    """The look every chart of the page shares; `title` None for a chart whose subplots have titles."""
    figure.update_layout(title={"text": title, "x": 0.02, "y": 0.99, "yanchor": "top"}, height=height,
                         template="plotly_white", margin={"l": 60, "r": 30, "t": 80, "b": 50},
                         legend={"orientation": "h", "x": 0, "y": -0.15, "yanchor": "top"})
    return figure


def _hovered(label: str) -> str:
    """A hover template: the point's trial (its hover text), then `label` (plotly's %{...} placeholders)."""
    return "%{hovertext}<br>" + label + "<extra></extra>"


def history_chart(run: Run) -> go.Figure:
    """`history_figure`, interactive: hover names each trial and its parameters."""
    trials = run.trials.reset_index(drop=True)
    hover = _trial_hover(run).reset_index(drop=True)
    number = np.arange(1, len(trials) + 1)
    stopped = _stopped(trials)
    figure = make_subplots(rows=len(run.metric), cols=1, shared_xaxes=True, vertical_spacing=0.12,
                           subplot_titles=[_history_title(trials, m) for m in run.metric])
    for row, (metric, mode) in enumerate(zip(run.metric, run.mode), 1):
        values = pd.to_numeric(trials[metric], errors="coerce")
        groups = [(values.notna() & ~stopped, "ran every epoch", {"color": BLUE, "size": 8}),
                  (stopped, "stopped early by the scheduler", {"color": GREY, "size": 9, "symbol": "triangle-down"})]
        for shown, name, marker in (group for group in groups if group[0].any()):
            figure.add_trace(go.Scatter(x=number[shown], y=values[shown], hovertext=hover[shown], mode="markers",
                                        marker=marker, name=name, legendgroup=name, showlegend=row == 1,
                                        hovertemplate=_hovered(f"{metric}: %{{y:.4g}}")), row=row, col=1)
        figure.add_trace(go.Scatter(x=number, y=_best_so_far(values, mode), mode="lines", name="best so far",
                                    line={"color": ORANGE, "width": 2, "shape": "hv"}, legendgroup="best",
                                    showlegend=row == 1, hovertemplate=f"best {metric} so far: %{{y:.4g}}"),
                         row=row, col=1)
        figure.update_yaxes(title_text=f"{metric} ({mode})", type="log" if _is_wide(values.dropna()) else None,
                            row=row, col=1)
    figure.update_xaxes(title_text="trial (in the order they started)", row=len(run.metric), col=1)
    return _styled(figure, None, 140 + 300 * len(run.metric))


def curves_chart(run: Run) -> go.Figure:
    """`curves_figure`, interactive: one line per trial (hover: the trial, its parameters, the epoch's value)."""
    metrics = _curve_metrics(run)
    stopped = _stopped_ids(run)
    best = _best_trial_id(run)
    hover = dict(zip(run.trials["trial_id"].astype(str), _trial_hover(run)))
    figure = make_subplots(rows=1, cols=len(metrics), subplot_titles=[f"{m} per epoch, every trial" for m in metrics])
    for col, metric in enumerate(metrics, 1):
        ends = []
        for trial_id, history in sorted(run.histories.items(), key=lambda item: item[0] == best):  # the best on top
            if metric not in history or history.empty:
                continue
            is_best = trial_id == best
            text = hover.get(trial_id, f"trial {html.escape(trial_id)}")
            figure.add_trace(go.Scatter(
                x=history["epoch"], y=history[metric], hovertext=[text] * len(history),
                mode="lines+markers" if len(history) < 30 else "lines", opacity=1.0 if is_best else 0.5,
                line={"color": ORANGE if is_best else BLUE, "width": 3 if is_best else 1.2}, marker={"size": 5},
                name=f"best trial ({best})" if is_best else f"trial {trial_id}", showlegend=is_best and col == 1,
                hovertemplate=_hovered(f"epoch %{{x}}: {metric} %{{y:.4g}}")), row=1, col=col)
            if trial_id in stopped:
                ends.append((history["epoch"].iloc[-1], history[metric].iloc[-1], text))
        if ends:
            x, y, text = zip(*ends)
            figure.add_trace(go.Scatter(x=x, y=y, hovertext=text, mode="markers", showlegend=col == 1,
                                        marker={"symbol": "x", "color": RED, "size": 10},
                                        name="stopped early by the scheduler", legendgroup="stopped",
                                        hovertemplate=_hovered(f"stopped at epoch %{{x}}: {metric} %{{y:.4g}}")),
                             row=1, col=col)
        figure.update_yaxes(title_text=metric, row=1, col=col)
        figure.update_xaxes(title_text="epoch", row=1, col=col)
    return _styled(figure, None, 480)


def parallel_chart(run: Run) -> go.Figure:
    """Optuna's parallel coordinates of the trials complete in the study (one objective: those that ran every
    epoch; the engine tells Optuna a trial stopped early is PRUNED)."""
    if run.study is None:
        raise _Skip("no Optuna study (study.db) in the run folder")
    if not run.study.complete:
        raise _Skip("no trial is complete in the Optuna study (none ran every epoch)")
    figure = parallel_coordinate_figure(run.study, run.metric)
    return _styled(figure, f"parameters of the {len(run.study.complete)} complete trials against "
                           + " and ".join(run.metric), 480)


def importance_chart(run: Run) -> go.Figure:
    """Optuna's parameter importance, one group of bars per objective."""
    params, _ = _importance_params(run)
    figure = study_importance_figure(run.study, params, run.metric)
    figure.update_layout(barmode="group", xaxis_title=IMPORTANCE, yaxis_title=None)
    return _styled(figure, "for " + ", ".join(run.metric), 180 + 40 * len(params) * len(run.metric))


def pareto_chart(run: Run) -> go.Figure:
    """`pareto_figure`, interactive: hover names each trial and its parameters."""
    p, (x_name, y_name) = _pareto(run), run.metric[:2]
    hover = _trial_hover(run)[p.trials.index]
    front = np.flatnonzero(p.on_front)[np.argsort(p.x[p.on_front].to_numpy())]  # joined from left to right
    point = _hovered(f"{x_name} %{{x:.4g}}, {y_name} %{{y:.4g}}")
    figure = go.Figure([
        go.Scatter(x=p.x[~p.on_front], y=p.y[~p.on_front], hovertext=hover[~p.on_front], mode="markers",
                   marker={"color": GREY, "size": 8}, name="a trial", hovertemplate=point),
        go.Scatter(x=p.x.iloc[front], y=p.y.iloc[front], hovertext=hover.iloc[front], mode="lines+markers",
                   line={"color": ORANGE}, marker={"size": 9}, name="Pareto front", hovertemplate=point),
        go.Scatter(x=p.x[p.exported], y=p.y[p.exported], hovertext=hover[p.exported], mode="markers",
                   marker={"symbol": "circle-open", "color": RED, "size": 20, "line": {"width": 2}},
                   name=f"exported (the best {x_name} on the front)", hovertemplate=point),
    ])
    figure.update_xaxes(title_text=f"{x_name} ({run.mode[0]})", type="log" if _is_wide(p.x) else None)
    figure.update_yaxes(title_text=f"{y_name} ({run.mode[1]})", type="log" if _is_wide(p.y) else None)
    return _styled(figure, "trade-off between the objectives", 480)


# ------------------------------------------------------------------------------------------- best model
def evaluate_model(run: Run) -> tuple[ClassPredictions | ValuePredictions, str]:
    """The exported model's predictions on the held-out test split: its recipe's `test_predictions`, on the data
    named in its card. Also a note when that data has changed since the model was trained."""
    if run.model_dir is None:
        raise _Skip(run.no_model)
    card, name = run.card, run.card.get("recipe")
    try:
        recipe = recipes.of_card(card)
    except Exception as err:  # a recipe file moved or broken: the rest of the report still helps
        raise _Skip(f"could not load recipe {name!r} ({type(err).__name__}: {err})") from None
    predict = getattr(recipe, "test_predictions", None)
    if predict is None:
        raise _Skip(f"recipe {name!r} gives no test predictions (it defines no test_predictions(model_dir, data))")
    try:
        data = recipes.load_data(recipe, recipes.data_section(recipe, card["config"]))
    except Exception as err:  # the data may be gone or need a download: the rest of the report still helps
        raise _Skip(f"could not load the data the model was trained on ({type(err).__name__}: {err})") from None
    try:
        predictions = predict(str(run.model_dir), data)
    except Exception as err:  # the recipe's own code
        raise _Skip(f"recipe {name!r} could not predict the test split ({type(err).__name__}: {err})") from None
    if not isinstance(predictions, (ClassPredictions, ValuePredictions)):
        raise _Skip(f"recipe {name!r}'s test_predictions returned a {type(predictions).__name__}, not "
                    "autotune.recipes.ClassPredictions or ValuePredictions")
    if len(predictions.truth) == 0:
        raise _Skip(f"recipe {name!r}'s test predictions hold no sample")
    fingerprint = getattr(data, "fingerprint", None)
    changed = fingerprint is not None and card.get("data_fingerprint") not in (None, fingerprint)
    note = "The data differs from the data the model was trained on (its fingerprint changed). " if changed else ""
    return predictions, note


def _samples(p: ClassPredictions) -> str:
    """What the test samples are, in words."""
    return "images" if p.images is not None else "samples"


def _confusion(p: ClassPredictions) -> tuple[np.ndarray, np.ndarray]:
    """The confusion matrix (true class x predicted class) as counts, and as the share of each true class."""
    k = len(p.labels)
    matrix = np.zeros((k, k), dtype=int)
    np.add.at(matrix, (p.truth, p.predicted), 1)
    return matrix, matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)


def confusion_figure(p: ClassPredictions) -> Figure:
    k = len(p.labels)
    matrix, share = _confusion(p)
    size = min(14.0, 2.5 + 0.4 * k)
    figure = _figure(size + 1.2, size)
    ax = figure.subplots()
    shown = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    if k <= 25:
        for i in range(k):
            for j in range(k):
                if matrix[i, j]:
                    ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8 if k <= 15 else 6,
                            color="white" if share[i, j] > 0.5 else "black")
    ticks = [_short(label) for label in p.labels] if k <= 40 else []
    ax.set_xticks(range(k) if ticks else [], ticks, rotation=45 if max(map(len, ticks), default=0) > 2 else 0,
                  ha="right" if max(map(len, ticks), default=0) > 2 else "center")
    ax.set_yticks(range(k) if ticks else [], ticks)
    ax.set(xlabel="predicted", ylabel="true", title=f"confusion matrix, {len(p.truth)} test {_samples(p)}")
    figure.colorbar(shown, ax=ax, label="share of the true class", fraction=0.046)
    return figure


def confusion_chart(p: ClassPredictions) -> go.Figure:
    """`confusion_figure`, interactive: hover gives the true and predicted class, the count and the share."""
    k = len(p.labels)
    matrix, share = _confusion(p)
    labels = [str(label) for label in p.labels]
    figure = go.Figure(go.Heatmap(
        z=share, x=labels, y=labels, customdata=matrix, text=np.where(matrix > 0, matrix, "").astype(str),
        texttemplate="%{text}" if k <= 25 else None, colorscale="Blues", zmin=0, zmax=1,
        colorbar={"title": {"text": "share of the true class", "side": "right"}},
        hovertemplate=f"true %{{y}}, predicted %{{x}}: %{{customdata}} {_samples(p)} (%{{z:.0%}} of the true class)"
                      "<extra></extra>"))
    figure.update_xaxes(title_text="predicted", type="category", constrain="domain")
    figure.update_yaxes(title_text="true", type="category", autorange="reversed", scaleanchor="x")
    return _styled(figure, f"confusion matrix, {len(p.truth)} test {_samples(p)}", min(900, 220 + 32 * k))


def per_class_figure(p: ClassPredictions) -> Figure:
    k = len(p.labels)
    correct = np.bincount(p.truth, weights=p.truth == p.predicted, minlength=k)
    total = np.bincount(p.truth, minlength=k)
    accuracy = np.divide(correct, total, out=np.full(k, np.nan), where=total > 0)
    figure = _figure(6.5, min(16.0, 1.2 + 0.3 * k))
    ax = figure.subplots()
    y = np.arange(k)[::-1]
    ax.barh(y, np.nan_to_num(accuracy), color=[BLUE if t else GREY for t in total])
    for yi, a, t in zip(y, accuracy, total):
        ax.text(1.02, yi, f"{a:.0%} of {t}" if t else f"no test {_samples(p)}", va="center", fontsize=7.5)
    overall = float((p.truth == p.predicted).mean()) if len(p.truth) else float("nan")
    ax.axvline(overall, color=ORANGE, linestyle="--")
    ax.set_yticks(y, [_short(label, 20) for label in p.labels], fontsize=8 if k <= 30 else 6)
    ax.set(xlim=(0, 1.2), xticks=np.linspace(0, 1, 6), xlabel="accuracy on the test split", ylabel="class",
           title=f"accuracy per class (dashed: overall, {overall:.1%})")
    ax.grid(axis="x", alpha=0.3)
    return figure


def misclassified_figure(p: ClassPredictions) -> Figure:
    """The test images the model labelled wrongly (of `p.images`), the most confident first."""
    wrong = np.flatnonzero(p.truth != p.predicted)
    if len(wrong) == 0:
        raise _Skip("every test image was classified correctly")
    shown = wrong[np.argsort(-p.confidence[wrong], kind="stable")][:MISCLASSIFIED_SHOWN]  # most confident first
    columns = min(6, len(shown))
    rows = math.ceil(len(shown) / columns)
    figure = _figure(max(5.0, 1.75 * columns), 1.95 * rows + 0.3)
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False).ravel())
    for ax in axes:
        ax.axis("off")
    for ax, i in zip(axes, shown):
        image = p.images[i]
        grey = image.shape[0] == 1
        ax.imshow(image[0] if grey else image.transpose(1, 2, 0), cmap="gray" if grey else None, vmin=0, vmax=255,
                  interpolation="nearest")
        ax.set_title(f"true {_short(p.labels[p.truth[i]], 9)}\npred {_short(p.labels[p.predicted[i]], 9)} "
                     f"({p.confidence[i]:.0%})", fontsize=8)
    figure.suptitle(f"{len(shown)} of {len(wrong)} misclassified, most confident first", fontsize=10)
    return figure


def distribution_figure(p: ClassPredictions) -> Figure:
    k = len(p.labels)
    figure = _figure(min(16.0, max(6.5, 0.55 * k + 2)), 3.8)
    ax = figure.subplots()
    width = 0.27
    for offset, (split, color) in zip((-width, 0, width), (("train", BLUE), ("val", ORANGE), ("test", "#2ca02c"))):
        counts = p.counts[split]
        ax.bar(np.arange(k) + offset, counts, width, color=color, label=f"{split} ({int(counts.sum())})")
    ax.set_xticks(range(k), [_short(label) for label in p.labels] if k <= 40 else [""] * k,
                  rotation=45 if max(map(len, p.labels)) > 2 else 0,
                  ha="right" if max(map(len, p.labels)) > 2 else "center")
    ax.set(xlabel="class", ylabel=_samples(p), title="class distribution of each split")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    return figure


@dataclass
class _Errors:
    residuals: np.ndarray  # predicted - true, per test sample
    rmse: float
    r2: float  # NaN when the true values do not vary


def _errors(p: ValuePredictions) -> _Errors:
    """How far the predictions are from the true values."""
    truth, predicted = np.asarray(p.truth, float), np.asarray(p.predicted, float)
    residuals = predicted - truth
    spread = float(np.square(truth - truth.mean()).sum())
    squared = float(np.square(residuals).sum())
    return _Errors(residuals, math.sqrt(squared / len(truth)), 1 - squared / spread if spread > 0 else math.nan)


def _predicted_title(p: ValuePredictions, newline: str) -> str:
    e = _errors(p)
    return (f"{p.target}: predicted against true{newline}{len(p.truth)} test samples, RMSE {_fmt(e.rmse)}, "
            f"R² {_fmt(e.r2)}")


def _diagonal(p: ValuePredictions) -> tuple[float, float]:
    """The range both axes of the predicted-against-true plot span: the diagonal is a perfect prediction."""
    both = np.concatenate([np.asarray(p.truth, float), np.asarray(p.predicted, float)])
    return float(both.min()), float(both.max())


def predicted_figure(p: ValuePredictions) -> Figure:
    """Each test sample's predicted value against its true one; the diagonal, a perfect prediction."""
    low, high = _diagonal(p)
    figure = _figure(6.0, 5.2)
    ax = figure.subplots()
    ax.plot([low, high], [low, high], color=GREY, linestyle="--", label="perfect prediction")
    ax.scatter(p.truth, p.predicted, color=BLUE, s=18, alpha=0.7, label="a test sample")
    ax.set(xlabel=f"true {p.target}", ylabel=f"predicted {p.target}", title=_predicted_title(p, "\n"))
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return figure


def predicted_chart(p: ValuePredictions) -> go.Figure:
    """`predicted_figure`, interactive: hover gives a sample's true and predicted value."""
    low, high = _diagonal(p)
    figure = go.Figure([
        go.Scatter(x=[low, high], y=[low, high], mode="lines", line={"color": GREY, "dash": "dash"},
                   name="perfect prediction", hoverinfo="skip"),
        go.Scatter(x=p.truth, y=p.predicted, mode="markers", marker={"color": BLUE, "size": 7, "opacity": 0.7},
                   name="a test sample", hovertemplate="true %{x:.4g}, predicted %{y:.4g}<extra></extra>"),
    ])
    figure.update_xaxes(title_text=f"true {p.target}", constrain="domain")
    figure.update_yaxes(title_text=f"predicted {p.target}", scaleanchor="x")
    return _styled(figure, _predicted_title(p, ", "), 560)


def _residuals_title(p: ValuePredictions) -> str:
    e = _errors(p)
    return (f"residuals (predicted − true) of {len(e.residuals)} test samples: mean {_fmt(float(e.residuals.mean()))}"
            f", std {_fmt(float(e.residuals.std()))}")


def _histogram(residuals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(counts, edges) of the residuals in 10 to 50 bins of one width: both drawings show these."""
    return np.histogram(residuals, bins=int(min(50, max(10, math.sqrt(len(residuals))))))


def residuals_figure(p: ValuePredictions) -> Figure:
    """How far the predictions miss: a histogram of predicted − true; the dashed line, no error."""
    counts, edges = _histogram(_errors(p).residuals)
    figure = _figure(6.5, 3.8)
    ax = figure.subplots()
    ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color=BLUE, edgecolor="white")
    ax.axvline(0, color=ORANGE, linestyle="--")
    ax.set(xlabel=f"predicted − true {p.target}", ylabel="test samples", title=_residuals_title(p))
    ax.grid(axis="y", alpha=0.3)
    return figure


def residuals_chart(p: ValuePredictions) -> go.Figure:
    """`residuals_figure`, interactive: hover gives a bar's range and its count."""
    counts, edges = _histogram(_errors(p).residuals)
    figure = go.Figure(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=counts, width=np.diff(edges),
                              customdata=np.column_stack([edges[:-1], edges[1:]]), name="test samples",
                              marker={"color": BLUE, "line": {"color": "white", "width": 1}},
                              hovertemplate="%{customdata[0]:.4g} to %{customdata[1]:.4g}: %{y} samples"
                                            "<extra></extra>"))
    figure.add_vline(x=0, line={"color": ORANGE, "dash": "dash"})
    figure.update_xaxes(title_text=f"predicted − true {p.target}")
    figure.update_yaxes(title_text="test samples")
    return _styled(figure, _residuals_title(p), 420)


# ---------------------------------------------------------------------------------------------------- page
def _table(rows: list[tuple[str, Any]]) -> str:
    body = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _frame_table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f"<table class='wide'><tr>{head}</tr>{body}</table>"


def summary_section(run: Run) -> Section:
    trials, summary = run.trials, run.summary
    counts = [
        ("trials", len(trials)),
        ("stopped early by the scheduler", int(trials.get("stopped_early", pd.Series(dtype=bool)).fillna(False).sum())),
        ("failed", int((trials["status"] == "ERROR").sum())),
        ("search time (s)", summary.get("seconds", float("nan"))),
        ("objective", ", ".join(f"{m} ({d})" for m, d in zip(run.metric, run.mode))),
    ]
    best = [("best trial", _best_trial_id(run))]
    best += [(k, v) for k, v in (summary.get("best_params") or {}).items()]
    metrics = [(k, v) for k, v in (summary.get("best_metrics") or {}).items()
               if k not in RAY_KEYS and not k.startswith(("config/", "time_"))]
    metrics += list((summary.get("test_metrics") or {}).items())
    promotion = summary.get("promotion") or {}
    if promotion:
        metrics.append(("promoted", f"{promotion.get('promoted')} ({promotion.get('reason', '')})"))
    columns = ["trial_id", "status", "epochs", *run.metric, *run.params]
    top = _finished(run).sort_values(run.metric[0], ascending=run.mode[0] == "min").head(10)
    top = top[[c for c in columns if c in top]].rename(columns=lambda c: c.removeprefix("p:"))
    text = (f"<div class='row'><div><h3>search</h3>{_table(counts)}</div>"
            f"<div><h3>best configuration</h3>{_table(best)}</div>"
            f"<div><h3>its metrics</h3>{_table(metrics)}</div></div>"
            f"<h3>top trials</h3>{_frame_table(top)}")
    failed = trials[trials["status"] == "ERROR"]
    if len(failed):
        text += f"<h3>failed trials</h3>{_frame_table(failed[['trial_id', 'error']].fillna(''))}"
    return Section("Summary", text)


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:2em auto;max-width:1150px;
padding:0 1em;color:#222;line-height:1.45}
h1{margin-bottom:0.1em} .meta{color:#666;margin-top:0} nav a{margin-right:1em}
section{margin:2.2em 0;border-top:1px solid #ddd} img{max-width:100%;height:auto;border:1px solid #eee}
table{border-collapse:collapse;font-size:0.88em;margin:0.4em 0} th,td{padding:0.2em 0.7em;text-align:left;
border-bottom:1px solid #eee} table.wide{display:block;overflow-x:auto}
.row{display:flex;flex-wrap:wrap;gap:2em} .note{color:#8a6d3b;background:#fcf8e3;padding:0.4em 0.8em}
"""


CHART_CONFIG = {"displaylogo": False}
CHART_HELP = ("Charts: hover a point for its trial and values; drag to zoom, double-click to zoom out; click a legend "
              "entry to hide it. Each chart's PNG is linked below it.")


def _chart_html(figure: go.Figure, div_id: str) -> str:
    """The chart's <div> and the script that draws it (plotly.js itself is in the page's head, once)."""
    return figure.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config=CHART_CONFIG,
                          default_height=f"{figure.layout.height}px")


def _shown(section: Section, out: Path) -> str:
    """The section's interactive chart with a link to its PNG, else its PNG embedded (the page stands alone)."""
    if not section.figure:
        return ""
    name = html.escape(section.figure)
    if section.chart:
        return f"{section.chart}<p class='png'>PNG: <a href='{name}'>{name}</a></p>"
    data = base64.b64encode((out / section.figure).read_bytes()).decode()
    return (f"<p><a href='{name}'><img alt='{html.escape(section.title)}' "
            f"src='data:image/png;base64,{data}'></a></p>")


def _page(run: Run, sections: list[Section], out: Path) -> str:
    parts = [f"<section id='s{number}'><h2>{html.escape(section.title)}</h2>{section.text}{_shown(section, out)}"
             "</section>" for number, section in enumerate(sections, 1)]
    nav = " ".join(f"<a href='#s{i}'>{html.escape(s.title)}</a>" for i, s in enumerate(sections, 1))
    charts = any(s.chart for s in sections)
    plotly = f"<script>{get_plotlyjs()}</script>" if charts else ""
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    model = f", model {html.escape(str(run.model_dir))}" if run.model_dir else ""
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>autotune report: {html.escape(run.name)}</title><style>{CSS}</style>{plotly}</head><body>"
            f"<h1>autotune report: {html.escape(run.name)}</h1>"
            f"<p class='meta'>run {html.escape(str(run.path.resolve()))}{model}; written {created}</p>"
            f"<nav>{nav}</nav>{f'<p class=meta>{CHART_HELP}</p>' if charts else ''}{''.join(parts)}</body></html>\n")


def _note(text: str) -> str:
    return f"<p class='note'>{html.escape(text)}</p>"


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write report.html and its PNGs into `out` (default RUN_DIR/report); returns the HTML file's path."""
    run = load_run(run_dir)
    out = Path(out).expanduser() if out is not None else run.path / "report"
    out.mkdir(parents=True, exist_ok=True)
    for name in FIGURES:  # an older report's figures: this one writes again only those it can draw
        (out / name).unlink(missing_ok=True)
    sections = [summary_section(run)]

    def add(title: str, caption: str, draw: Any, *args: Any, png: str, chart: Any = None) -> None:
        """A section: the PNG drawn by `draw`, and the interactive chart drawn by `chart` (the PNG alone when
        there is none, or when it cannot be drawn)."""
        try:
            drawn = draw(*args)
        except _Skip as why:
            sections.append(Section(title, _note(f"Not drawn: {why}")))
            return
        figure, extra = drawn if isinstance(drawn, tuple) else (drawn, "")
        figure.savefig(out / png)
        text = f"<p>{html.escape(caption + (' ' + extra if extra else ''))}</p>"
        shown = ""
        if chart is not None:
            try:
                shown = _chart_html(chart(*args), f"chart-{png.removesuffix('.png')}")
            except _Skip as why:
                text += _note(f"No interactive chart: {why}. The PNG instead.")
        sections.append(Section(title, text, png, shown))

    add("Optimisation history", "Each trial's best value of the objective, in the order the trials started; "
        "the line is the best value so far.", history_figure, run, png="history.png", chart=history_chart)
    add("Learning curves", "Every trial's validation curve per epoch: a trial the scheduler stopped early ends "
        "sooner, at a red x (ASHA compares trials at the same epoch and stops the weaker ones).", curves_figure, run,
        png="learning_curves.png", chart=curves_chart)
    add("Parallel coordinates", "Each line is a trial, through the value it sampled for each parameter, ending at "
        "its objective; colour = the objective. The interactive chart is Optuna's, of the trials complete in the "
        "study: with one objective, those that ran every epoch (one stopped early holds the value of an earlier "
        "epoch); with several, one axis per objective, coloured by Pareto rank. parallel_coordinates.png draws "
        "every trial that reported, on axes scaled from the lowest to the highest value of the search range: 'n/a' "
        "where a trial did not sample a parameter (a conditional one); lines through the same choice spread a "
        "little around it; trials with the same values everywhere on one thicker line, labelled with their count.",
        parallel_figure, run, png="parallel_coordinates.png", chart=parallel_chart)
    add("Parameter importance", "How much each parameter decides whether a trial reaches the best values of the "
        "objective (Optuna's get_param_importances, with its default evaluator).", importance_figure, run,
        png="importance.png", chart=importance_chart)
    if len(run.metric) > 1:
        add("Pareto front", "Every trial on the first two objectives; the Pareto front joins the trials no other "
            "trial beats on both.", pareto_figure, run, png="pareto.png", chart=pareto_chart)
    try:
        predictions, note = evaluate_model(run)
    except _Skip as why:
        sections.append(Section("Best model", _note(f"Not analysed: {why}")))
    else:
        if note:
            sections.append(Section("Best model", _note(note)))
        model = f"The exported model ({run.model_dir}) on the held-out test split"
        if isinstance(predictions, ClassPredictions):
            samples = _samples(predictions)
            add("Confusion matrix", f"{model}: counts, coloured by the share of each true class.", confusion_figure,
                predictions, png="confusion_matrix.png", chart=confusion_chart)
            add("Accuracy per class", f"The share of each class's test {samples} labelled correctly.",
                per_class_figure, predictions, png="per_class_accuracy.png")
            if predictions.images is not None:
                add("Misclassified test images", "True and predicted label, with the model's confidence in its "
                    "answer.", misclassified_figure, predictions, png="misclassified.png")
            add("Class distribution", f"{samples.capitalize()} per class in each split (train, validation, test).",
                distribution_figure, predictions, png="class_distribution.png")
        else:
            add("Predicted against true values", f"{model}: each sample's predicted {predictions.target} against "
                "its true value; on the dashed diagonal, a prediction is exact.", predicted_figure, predictions,
                png="predicted_vs_true.png", chart=predicted_chart)
            add("Residuals", "How far the predictions miss: predicted − true, over the test samples (left of the "
                "dashed line: too low; right: too high).", residuals_figure, predictions, png="residuals.png",
                chart=residuals_chart)
    page = out / "report.html"
    page.write_text(_page(run, sections, out))
    return page
