"""The search's charts: optimisation history, learning curves, parallel coordinates, parameter importance and the
Pareto front, each as a matplotlib `*_figure` (the PNG) and a plotly `*_chart` (the page's interactive chart); also
the look and the formatting the model's charts and the page share (colours, `_figure`, `_styled`, `_fmt`, `_short`)."""
from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from matplotlib.colors import Normalize
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import LogLocator, MaxNLocator
from plotly.subplots import make_subplots

from autotune.api import pareto_front
from autotune.engine.study import ParamRange, StudyData, param_importances, parallel_coordinate_figure
from autotune.engine.study import importance_figure as study_importance_figure
from autotune.report.run import Run, Skip, best_trial_id, finished, front_ids, target_trial
from autotune.report.style import (BLACK, BLUE, GREEN, GREY, ORANGE, PURPLE, RED, fmt, short, static_figure,
                                  styled)

IMPORTANCE = "importance (the parameters' shares add up to 1)"
MIN_TRIALS_FOR_IMPORTANCE = 3
TRIALS_PER_PARAMETER = 10  # complete trials per parameter below which the importance note says it is rough


# ------------------------------------------------------------------------------------------------ helpers
def _wrap(name: str, width: int = 14) -> str:
    """A long key path on two lines, broken at its last dot."""
    head, dot, tail = name.rpartition(".")
    return f"{head}.\n{tail}" if dot and len(name) > width else name


def _is_wide(values: pd.Series) -> bool:
    """Whether positive values span more than two decades (e.g. parameter counts): drawn on a log scale."""
    return bool(len(values) and values.min() > 0 and values.max() / values.min() > 100)


def _stopped(trials: pd.DataFrame) -> pd.Series:
    """Whether each trial ended before its last epoch without an error (trials.csv's `stopped_early`)."""
    return trials.get("stopped_early", pd.Series(False, index=trials.index)).fillna(False).astype(bool)


@dataclass(frozen=True)
class _End:
    """How a trial ended, as the charts draw it: its legend label, colour and marker (plotly's and matplotlib's);
    `after` for an end that comes after some epoch (the label says which)."""

    word: str
    color: str
    symbol: str
    marker: str
    after: bool = False
    note: str = ""

    def label(self, epochs: pd.Series) -> str:
        """The legend label of the trials that ended so, after `epochs` (theirs)."""
        numbers = sorted({int(e) for e in pd.to_numeric(epochs, errors="coerce").dropna()}) if self.after else []
        after = f" after epoch{'s' * (len(numbers) > 1)} {', '.join(map(str, numbers))}" if numbers else ""
        return self.word + after + self.note


DONE = _End("ran every epoch", BLUE, "circle", "o")
STOPPED = _End("stopped early by the scheduler", GREY, "triangle-down", "v")
STOPPED_OR_ENDED = _End("stopped early (by the scheduler, or as the search ended)", GREY, "triangle-down", "v")
TARGET = _End("reached the stop target (ended the search)", GREEN, "star", "*")
FAILED = _End("failed", BLACK, "diamond", "D", after=True)
INTERRUPTED = _End("interrupted", PURPLE, "triangle-right", ">", after=True, note=" (a resume continues it)")
COUNTED = ("every trial's reported epochs count, a failed or interrupted trial's too: the search exports the best "
           "checkpoint of them all")
CURVE_ENDS = (STOPPED, STOPPED_OR_ENDED, TARGET, FAILED, INTERRUPTED)  # the ends marked at a curve's last epoch


def trial_ends(run: Run) -> pd.Series:
    """How each trial ended (indexed like `run.trials`): an `_End`. A trial stopped before its last epoch is the
    scheduler's, unless it reached the search's stop target; when a setting ended the search (summary.json's
    `ended`), the trials still running then were stopped with it, which trials.csv does not tell apart."""
    status = run.trials["status"]
    ends = pd.Series(DONE, index=run.trials.index, dtype=object)
    ends[_stopped(run.trials)] = STOPPED_OR_ENDED if run.summary.get("ended") else STOPPED
    ends[run.trials["trial_id"].astype(str) == str(target_trial(run))] = TARGET
    ends[status == "INTERRUPTED"] = INTERRUPTED
    ends[status == "ERROR"] = FAILED
    return ends


def _curve_mark(end: _End) -> tuple[str, str, str]:
    """Where a learning curve ends, its mark: (plotly symbol, colour, matplotlib marker); the scheduler's stop is a
    red x there, as the section's caption says."""
    return ("x", RED, "x") if end in (STOPPED, STOPPED_OR_ENDED) else (end.symbol, end.color, end.marker)


def _ended_how(end: _End, row: pd.Series) -> str:
    """A trial's end in its hover text."""
    epochs = fmt(row.get("epochs", "?"))
    if end is FAILED:
        error = html.escape(str(row.get("error") or "")[:200])
        return (f"failed after epoch {epochs}: {error}<br>its best epoch counts for the best so far (the search may "
                "export its checkpoint)")
    if end is INTERRUPTED:
        return f"interrupted after epoch {epochs}: a resume continues it"
    return f"{epochs} epochs" + ("" if end is DONE else f", {end.word}")


def _trial_hover(run: Run) -> pd.Series:
    """The hover text of each trial (indexed like `run.trials`): its id, how it ended and its sampled values."""
    texts = {}
    for (index, row), end in zip(run.trials.iterrows(), trial_ends(run)):
        lines = [f"<b>trial {html.escape(str(row['trial_id']))}</b>: {_ended_how(end, row)}"]
        lines += [f"{html.escape(c.removeprefix('p:'))} = {html.escape(fmt(row[c]))}" for c in run.params
                  if pd.notna(row[c])]
        texts[index] = "<br>".join(lines)
    return pd.Series(texts, dtype=str)


def _history_title(trials: pd.DataFrame, metric: str) -> str:
    """The title of a metric's history: what it leaves out (trials that reported no value of it)."""
    silent = trials.loc[pd.to_numeric(trials[metric], errors="coerce").isna(), "status"]
    words = {"ERROR": "failed", "INTERRUPTED": "interrupted"}
    counts = silent.map(lambda s: words.get(s, "ended")).value_counts()
    left_out = ", ".join(f"{n} {word}" for word, n in counts.items())
    return f"{metric} per trial" + (f" ({left_out} before reporting it, not shown)" if left_out else "")


def _best_so_far(values: pd.Series, mode: str) -> pd.Series:
    """The best value up to each trial (kept over a trial that reported none)."""
    return (values.cummax() if mode == "max" else values.cummin()).ffill()


def _curve_metrics(run: Run) -> list[str]:
    """The metrics of the learning curves: the objective, and a loss beside it when the trials reported one."""
    metrics = [run.metric[0]] + [m for m in ("val_loss", "train_loss") if m != run.metric[0]][:1]
    metrics = [m for m in metrics if any(m in h for h in run.histories.values())]
    if not metrics:
        raise Skip("no trial reported a metric per epoch (no progress.csv in the trial folders)")
    return metrics


def _ends_by_id(run: Run) -> dict[str, _End]:
    """Each trial's end by its id."""
    return dict(zip(run.trials["trial_id"].astype(str), trial_ends(run)))


def _steps(number: np.ndarray, best: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The best-so-far line's points: one per trial, and its last value again half a trial on (so that a single
    trial's line shows)."""
    return np.append(number, number[-1] + 0.5) if len(number) else number, np.append(best, best.iloc[-1:])


def _integer_ticks(count: int) -> dict[str, Any]:
    """A plotly axis of whole numbers (trials, epochs) up to `count`: ticks on a round step, never between."""
    step = next(s for s in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 10**9) if count / s <= 10)
    return {"tick0": 0, "dtick": step}


def _value_range(values: pd.Series) -> list[float] | None:
    """A y range around a metric that took one value (a one-trial run): a few percent either side; None (plotly's
    own) otherwise."""
    found = values.dropna()
    if found.empty or found.max() > found.min():
        return None
    value = float(found.iloc[0])
    pad = max(abs(value) * 0.05, 0.01)
    return [value - pad, value + pad]


# ------------------------------------------------------------------------------------------------ figures
def _groups(run: Run, trials: pd.DataFrame, values: pd.Series) -> list[tuple[_End, pd.Series, str]]:
    """The trials of a history drawn together, by how they ended: (end, which trials, legend label) for each end
    of a trial that reported a value."""
    ends = trial_ends(run).reset_index(drop=True)
    found = [(end, values.notna() & (ends == end)) for end in (DONE, *CURVE_ENDS)]
    return [(end, shown, end.label(trials["epochs"][shown] if "epochs" in trials else pd.Series(dtype=float)))
            for end, shown in found if shown.any()]


def history_table(run: Run) -> pd.DataFrame:
    """`history_figure`'s points as a table: each trial in the order the trials started, how it ended, its value of
    each objective and the best so far."""
    trials = run.trials.reset_index(drop=True)
    table = pd.DataFrame({"trial": trials["trial_id"].astype(str),
                          "ended": [end.word for end in trial_ends(run)]}, index=trials.index)
    for metric, mode in zip(run.metric, run.mode):
        values = pd.to_numeric(trials[metric], errors="coerce")
        table[metric] = values
        table[f"best {metric} so far"] = _best_so_far(values, mode)
    return table


def history_figure(run: Run) -> Figure:
    """Each trial's best value in the order the trials started, marked by how it ended, and the best so far."""
    trials = run.trials.reset_index(drop=True)
    figure = static_figure(7.5, 3.2 * len(run.metric))
    for ax, metric, mode in zip(figure.subplots(len(run.metric), 1, squeeze=False)[:, 0], run.metric, run.mode):
        values = pd.to_numeric(trials[metric], errors="coerce")
        number = np.arange(1, len(trials) + 1)
        for end, shown, label in _groups(run, trials, values):
            ax.scatter(number[shown], values[shown], color=end.color, marker=end.marker, s=28, zorder=3, label=label)
        ax.step(*_steps(number, _best_so_far(values, mode)), where="post", color=ORANGE, linewidth=2,
                label="best so far")
        if _is_wide(values.dropna()):
            ax.set_yscale("log")
        ax.set(xlabel="trial (in the order they started)", ylabel=f"{metric} ({mode})",
               title=_history_title(trials, metric))
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
    figure.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=3, fontsize=8)
    return figure


@dataclass(frozen=True)
class _Curve:
    """A trial's curve of one metric: its epochs and values (NaN where not finite), and how the trial ended."""

    trial_id: str
    epochs: np.ndarray
    values: np.ndarray
    end: _End

    @property
    def last(self) -> tuple[float, float] | None:
        """The last epoch with a finite value, and that value (where the drawn curve ends); None where the trial
        reported none (NaN or infinite at every epoch: a training that diverged)."""
        finite = np.flatnonzero(np.isfinite(self.values))
        return (float(self.epochs[finite[-1]]), float(self.values[finite[-1]])) if len(finite) else None

    @property
    def dotted(self) -> bool:
        """Whether its points are marked: a short curve's (a trial of one epoch is a point, not a line)."""
        return len(self.epochs) < 30


def _curves(run: Run, metric: str) -> tuple[list[_Curve], _Curve | None]:
    """The curves of `metric` of the trials that reported it: the other trials' and the best trial's (None when it
    reported none)."""
    ends, best = _ends_by_id(run), best_trial_id(run)
    others, top = [], None
    for trial_id, history in run.histories.items():
        if metric not in history or history.empty:
            continue
        values = pd.to_numeric(history[metric], errors="coerce").to_numpy(float)
        curve = _Curve(trial_id, history["epoch"].to_numpy(float), np.where(np.isfinite(values), values, np.nan),
                       ends.get(trial_id, DONE))
        if trial_id == best:
            top = curve
        else:
            others.append(curve)
    return others, top


def _marks(curves: list[_Curve]) -> dict[_End, list[_Curve]]:
    """The curves whose last finite point is marked (a trial that did not run every epoch), by how they ended."""
    marks: dict[_End, list[_Curve]] = {}
    for curve in curves:
        if curve.end is not DONE and curve.last is not None:
            marks.setdefault(curve.end, []).append(curve)
    return {end: marks[end] for end in CURVE_ENDS if end in marks}


CURVES_TABLE_TRIALS = 25  # the learning curves' table holds the trials of the best values (every trial's: trials.csv)


def curves_table(run: Run) -> pd.DataFrame:
    """`curves_figure`'s curves of the objective as a table: a row per trial, with how it ended and its value at each
    epoch (n/a at an epoch it did not run, or where the value was not finite); the best trial first, then those of
    the next best values, `CURVES_TABLE_TRIALS` in all (a search of 1,000 trials of 52 epochs made 0.7 MB of cells no
    one reads through)."""
    metric = _curve_metrics(run)[0]
    others, top = _curves(run, metric)
    sign = -1.0 if run.mode[0] == "max" and metric == run.metric[0] else 1.0  # the curves' metric: the objective or a loss
    ranked = sorted(others, key=lambda curve: _best_of(sign * curve.values))
    rows = [{"trial": curve.trial_id, "ended": curve.end.word,
             **{f"{metric}, epoch {int(epoch)}": value for epoch, value in zip(curve.epochs, curve.values)}}
            for curve in ([top] if top else []) + ranked]
    return pd.DataFrame(rows[:CURVES_TABLE_TRIALS])


def _best_of(values: np.ndarray) -> float:
    """The least finite value of `values` (inf where none is finite)."""
    finite = values[np.isfinite(values)]
    return float(finite.min()) if len(finite) else math.inf


def curves_figure(run: Run) -> Figure:
    """The per-epoch curve of every trial; its last epoch marked by how it ended (a red x where the scheduler
    stopped it); the best trial in orange. The other trials' curves are one collection of lines, so that a search
    of a thousand trials draws in a second."""
    metrics = _curve_metrics(run)
    ends = _ends_by_id(run)
    best = best_trial_id(run)
    figure = static_figure(6.2 * len(metrics), 4.2)
    for ax, metric in zip(figure.subplots(1, len(metrics), squeeze=False)[0], metrics):
        others, top = _curves(run, metric)
        ax.add_collection(LineCollection([np.column_stack([c.epochs, c.values]) for c in others], colors=BLUE,
                                         alpha=0.45, linewidths=1.0, zorder=2))
        dotted = [c for c in others if c.dotted]
        if dotted:
            ax.plot(np.concatenate([c.epochs for c in dotted]), np.concatenate([c.values for c in dotted]), ".",
                    color=BLUE, alpha=0.45, zorder=2)
        if top is not None:
            ax.plot(top.epochs, top.values, color=ORANGE, linewidth=2.5, zorder=4, marker="." if top.dotted else None)
        for end, marked in _marks(others + ([top] if top else [])).items():
            _, color, marker = _curve_mark(end)
            x, y = zip(*(c.last for c in marked))
            ax.plot(x, y, marker, color=color, markersize=7, markeredgewidth=2, linestyle="", zorder=5)
        ax.autoscale_view()
        ax.set(xlabel="epoch", ylabel=metric, title=f"{metric} per epoch, every trial")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=BLUE, alpha=0.6, label="a trial"),
               Line2D([], [], color=ORANGE, linewidth=2.5, label=f"best trial ({best})")]
    handles += [Line2D([], [], color=_curve_mark(end)[1], marker=_curve_mark(end)[2], linestyle="",
                       markeredgewidth=2, label=end.word + end.note)
                for end in CURVE_ENDS if end in ends.values()]
    figure.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=8)
    return figure


@dataclass
class _Axis:
    values: np.ndarray  # each trial's value on [0, 1]; -0.12 where the trial did not sample it
    ticks: list[tuple[float, str]]  # (position, label)
    log: bool = False
    categorical: bool = False


NOT_SAMPLED = -0.12


def _log_values(low: float, high: float, most: int) -> list[float]:
    """Round values strictly between `low` and `high` (positive) for a log axis: 1, 2 and 5 of each decade, or the
    decades alone where those would be more than `most`."""
    for subs in ((1.0, 2.0, 5.0), (1.0,)):
        values = [float(v) for v in LogLocator(base=10, subs=subs).tick_values(low, high) if low < v < high]
        if len(values) <= most:
            break
    return values


def _log_axis(values: pd.Series) -> dict[str, Any]:
    """A plotly axis's settings for `values`: a log scale where they are wide (`_is_wide`), ticked at round values
    labelled in full (plotly's own labels all but a decade's first with a lone digit, so that a "5" is 0.05 and
    the next "5" 0.5); none otherwise."""
    found = values.dropna()
    if not _is_wide(found):
        return {}
    ticks = _log_values(float(found.min()), float(found.max()), 9)
    return {"type": "log", "tickvals": ticks, "ticktext": [fmt(v) for v in ticks]}


def _numeric_ticks(low: float, high: float, log_scale: bool, integer: bool) -> list[tuple[float, str]]:
    """Labels for a numeric axis from `low` (position 0) to `high` (1): both ends and a few round values
    between them (1, 2, 5 per decade on a log scale)."""
    if not high > low:
        return [(0.5, fmt(low))]
    scale = np.log10 if log_scale else (lambda v: v)
    if log_scale:
        inside = _log_values(low, high, 4)
    else:
        inside = [v for v in MaxNLocator(nbins=4, integer=integer).tick_values(low, high) if low < v < high]
    ticks = [(0.0, low), (1.0, high)]
    for value in inside:
        position = float((scale(value) - scale(low)) / (scale(high) - scale(low)))
        if all(abs(position - p) >= 0.1 for p, _ in ticks):  # no label on top of another
            ticks.append((position, value))
    return sorted((p, fmt(float(v))) for p, v in ticks)


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
        choices = list(distribution.choices if distribution else ())
        texts = [_choice_text(v, choices) if pd.notna(v) else None for v in raw]
        choices = choices or sorted({t for t in texts if t is not None})
        choices += sorted({t for t in texts if t is not None} - set(choices))
        place = {c: (i / (len(choices) - 1) if len(choices) > 1 else 0.5) for i, c in enumerate(choices)}
        axis = _Axis(np.array([np.nan if t is None else place[t] for t in texts], dtype=float),
                     [(p, short(c)) for c, p in place.items()], categorical=True)
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


def _choice_text(value: Any, choices: list[str]) -> str:
    """The choice (as the study's text of it) that `value`, read back from trials.csv, stands for: its text, else
    the choice equal to it as a number. A conditional parameter's column has blanks, so pandas reads its numbers as
    floats: 8.0 for the pow2 choice "8", 1.0 for the option at position "1"."""
    text = str(value)
    if text in choices or isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        return text
    return next((choice for choice in choices if _number(choice) == value), text)


def _number(text: str) -> float | None:
    """`text` as a number, or None."""
    try:
        return float(text)
    except ValueError:
        return None


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
    trials = finished(run)
    if not run.params:
        raise Skip("the search sampled no parameter")
    if trials.empty:
        raise Skip("no trial reported the metric")
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
    figure = static_figure(min(15.0, max(6.0, 1.45 * len(names) + 1.5)), 4.8)
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
        raise Skip("no Optuna study (study.db) in the run folder")
    complete = run.study.complete
    if len(complete) < MIN_TRIALS_FOR_IMPORTANCE:
        raise Skip(f"{len(complete)} complete trial(s): parameter importance needs at least "
                    f"{MIN_TRIALS_FOR_IMPORTANCE}")
    everywhere = set.intersection(*(set(t) for t in complete))
    conditional = sorted(set().union(*(set(t) for t in complete)) - everywhere)
    varied = {p for p in everywhere if len({repr(t[p]) for t in complete}) > 1}
    if not varied:
        raise Skip("no parameter took more than one value in every complete trial")
    rough = len(complete) < TRIALS_PER_PARAMETER * len(varied)
    note = f"From {complete_trials(run.study)}" + (": with few trials these are rough." if rough else ".")
    if conditional:
        note += (" Left out, because not every trial sampled them (conditional parameters): "
                 + ", ".join(conditional) + ".")
    return sorted(varied), note


def complete_trials(study: StudyData) -> str:
    """How many complete trials the study's charts draw, and how many of them an earlier run ran (--warm-start)."""
    told = f" ({study.told} of them an earlier run's, told to the sampler by --warm-start)" if study.told else ""
    return f"{len(study.complete)} complete trials{told}"


def _importances(run: Run) -> tuple[list[str], str, list[tuple[str, dict[str, float]]]]:
    """The parameters of the importance (`_importance_params`), its note, and each objective's importances."""
    params, note = _importance_params(run)
    return params, note, [(metric, param_importances(run.study, params, objective=index))
                          for index, metric in enumerate(run.metric)]


def importance_table(run: Run) -> pd.DataFrame:
    """`importance_figure`'s numbers as a table: a row per parameter, a column per objective, the most important
    for the first objective first."""
    _, _, results = _importances(run)
    order = list(results[0][1])
    return pd.DataFrame({"parameter": order, **{f"importance for {metric}": [importances[name] for name in order]
                                                for metric, importances in results}})


def importance_figure(run: Run) -> tuple[Figure, str]:
    """Optuna's parameter importance for each objective, and a note on what it leaves out."""
    params, note, results = _importances(run)
    figure = static_figure(5.2 * len(results), 0.45 * len(params) + 1.6)
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
    on_front: np.ndarray  # whether each is on the Pareto front of the two objectives drawn
    through_hidden: np.ndarray  # on the front of every objective (summary.json) only through one not drawn
    exported: pd.Series  # whether each is the trial the run exported


def _pareto(run: Run) -> _Pareto:
    """The trials on the first two objectives, and which are on the front of those two; with more objectives,
    which others are on the front of all of them (summary.json's), only through an objective not drawn."""
    trials = finished(run)
    ids = trials["trial_id"].astype(str)
    drawn = pareto_front(trials, tuple(run.metric[:2]), tuple(run.mode[:2]))
    on_front = ids.isin({str(row["trial_id"]) for row in drawn}).to_numpy()
    on_all = ids.isin(front_ids(run) or set()).to_numpy()
    return _Pareto(trials, pd.to_numeric(trials[run.metric[0]], errors="coerce"),
                   pd.to_numeric(trials[run.metric[1]], errors="coerce"), on_front,
                   on_all & ~on_front if len(run.metric) > 2 else np.zeros(len(trials), dtype=bool),
                   ids == str(best_trial_id(run)))


def hidden_objectives(run: Run) -> str:
    """The objectives the Pareto chart does not draw (all but the first two), as words: "" when it draws all."""
    return ", ".join(f"{m} ({g})" for m, g in zip(run.metric[2:], run.mode[2:]))


def pareto_figure(run: Run) -> Figure:
    """Every trial on the first two objectives; the Pareto front of those two joined; the trials on the front of all
    the objectives only through one not drawn marked apart; the exported model circled."""
    p, (x_name, y_name) = _pareto(run), run.metric[:2]
    figure = static_figure(6.5, 4.5)
    ax = figure.subplots()
    rest = ~p.on_front & ~p.through_hidden
    ax.scatter(p.x[rest], p.y[rest], color=GREY, s=30, label="a trial")
    order = np.argsort(p.x[p.on_front].to_numpy())
    ax.plot(p.x[p.on_front].to_numpy()[order], p.y[p.on_front].to_numpy()[order], "o-", color=ORANGE,
            markersize=7, label="Pareto front")
    if p.through_hidden.any():
        ax.scatter(p.x[p.through_hidden], p.y[p.through_hidden], marker="D", s=40, facecolors="none",
                   edgecolors=ORANGE, label=f"on the front through {hidden_objectives(run)}")
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
def _hovered(label: str) -> str:
    """A hover template: the point's trial (its hover text), then `label` (plotly's %{...} placeholders)."""
    return "%{hovertext}<br>" + label + "<extra></extra>"


def history_chart(run: Run) -> go.Figure:
    """`history_figure`, interactive: hover names each trial, how it ended and its parameters."""
    trials = run.trials.reset_index(drop=True)
    hover = _trial_hover(run).reset_index(drop=True)
    number = np.arange(1, len(trials) + 1)
    figure = make_subplots(rows=len(run.metric), cols=1, shared_xaxes=True, vertical_spacing=0.12,
                           subplot_titles=[_history_title(trials, m) for m in run.metric])
    for row, (metric, mode) in enumerate(zip(run.metric, run.mode), 1):
        values = pd.to_numeric(trials[metric], errors="coerce")
        for end, shown, label in _groups(run, trials, values):
            figure.add_trace(go.Scatter(x=number[shown], y=values[shown], hovertext=hover[shown], mode="markers",
                                        marker={"color": end.color, "size": 8 if end is DONE else 10,
                                                "symbol": end.symbol},
                                        name=label, legendgroup=label, showlegend=row == 1,
                                        hovertemplate=_hovered(f"{metric}: %{{y:.4g}}")), row=row, col=1)
        x, y = _steps(number, _best_so_far(values, mode))
        figure.add_trace(go.Scatter(x=x, y=y, mode="lines", name="best so far",
                                    line={"color": ORANGE, "width": 2, "shape": "hv"}, legendgroup="best",
                                    showlegend=row == 1,
                                    hovertemplate=f"best {metric} so far: %{{y:.4g}}<br>({COUNTED})<extra></extra>"),
                         row=row, col=1)
        figure.update_yaxes(title_text=f"{metric} ({mode})", **_log_axis(values), range=_value_range(values),
                            row=row, col=1)
    figure.update_xaxes(range=[0.5, len(trials) + 0.5], **_integer_ticks(len(trials)))
    figure.update_xaxes(title_text="trial (in the order they started)", row=len(run.metric), col=1)
    return styled(figure, None, 140 + 300 * len(run.metric))


def _joined(curves: list[_Curve], hover: dict[str, str]) -> dict[str, Any]:
    """Several trials' curves as one plotly line (a gap between two trials): the x, y, hover text and marker size
    (5 on a short curve's points, 0 elsewhere) of each point."""
    gap = np.array([np.nan])
    x = np.concatenate([part for c in curves for part in (c.epochs, gap)]) if curves else gap[:0]
    y = np.concatenate([part for c in curves for part in (c.values, gap)]) if curves else gap[:0]
    text = [t for c in curves for t in [hover.get(c.trial_id, f"trial {html.escape(c.trial_id)}")] * len(c.epochs)
            + [""]]
    size = np.concatenate([np.full(len(c.epochs) + 1, 5 if c.dotted else 0) for c in curves]) if curves else []
    return {"x": x, "y": y, "hovertext": text, "marker": {"size": size}}


def _mode(curves: list[_Curve]) -> str:
    """A plotly line's mode: markers too where some of its curves are short."""
    return "lines+markers" if any(c.dotted for c in curves) else "lines"


def curves_chart(run: Run) -> go.Figure:
    """`curves_figure`, interactive: hover names the trial, its parameters and the epoch's value. The other trials'
    curves are one line with gaps, not a trace each: a search of a thousand trials makes a page of a few megabytes
    that a browser draws at once."""
    metrics = _curve_metrics(run)
    best = best_trial_id(run)
    hover = dict(zip(run.trials["trial_id"].astype(str), _trial_hover(run)))
    figure = make_subplots(rows=1, cols=len(metrics))  # no titles: each y axis names its metric (titles overlapped)
    for col, metric in enumerate(metrics, 1):
        others, top = _curves(run, metric)
        label = _hovered(f"epoch %{{x}}: {metric} %{{y:.4g}}")
        if others:
            figure.add_trace(go.Scatter(
                **_joined(others, hover), mode=_mode(others), opacity=0.5, line={"color": BLUE, "width": 1.2},
                name=f"a trial ({len(others)})", legendgroup="trials", showlegend=col == 1, hovertemplate=label),
                row=1, col=col)
        if top is not None:
            figure.add_trace(go.Scatter(
                **_joined([top], hover), mode=_mode([top]), line={"color": ORANGE, "width": 3},
                name=f"best trial ({best})", legendgroup="best", showlegend=col == 1, hovertemplate=label),
                row=1, col=col)
        for end, marked in _marks(others + ([top] if top else [])).items():
            x, y = zip(*(c.last for c in marked))
            symbol, color, _ = _curve_mark(end)
            figure.add_trace(go.Scatter(x=x, y=y, hovertext=[hover.get(c.trial_id, "") for c in marked],
                                        mode="markers", showlegend=col == 1,
                                        marker={"symbol": symbol, "color": color, "size": 10},
                                        name=end.word + end.note, legendgroup=end.word,
                                        hovertemplate=_hovered(f"last epoch %{{x}}: {metric} %{{y:.4g}}")),
                             row=1, col=col)
        figure.update_yaxes(title_text=metric, row=1, col=col)
        figure.update_xaxes(title_text="epoch", row=1, col=col)
    epochs = max((h["epoch"].max() for h in run.histories.values() if "epoch" in h and len(h)), default=1)
    figure.update_xaxes(**_integer_ticks(int(epochs)))
    return styled(figure, None, 480)


def parallel_chart(run: Run) -> go.Figure:
    """Optuna's parallel coordinates of the trials complete in the study (one objective: those that ran every
    epoch; the engine tells Optuna a trial stopped early is PRUNED)."""
    if run.study is None:
        raise Skip("no Optuna study (study.db) in the run folder")
    if not run.study.complete:
        raise Skip("no trial is complete in the Optuna study (none ran every epoch)")
    figure = parallel_coordinate_figure(run.study, run.metric)
    return styled(figure, f"parameters of the {complete_trials(run.study)} against "
                           + " and ".join(run.metric), 480)


PATTERNS = ("", "/", ".", "x", "-", "|", "+", "\\")  # plotly's bar fills, an objective each


def importance_chart(run: Run) -> go.Figure:
    """Optuna's parameter importance, one group of bars per objective."""
    params, _ = _importance_params(run)
    figure = study_importance_figure(run.study, params, run.metric)
    for trace, pattern in zip(figure.data, PATTERNS):  # each objective's bars told apart in grey too
        trace.marker.pattern.shape = pattern
    figure.update_layout(barmode="group", xaxis_title=IMPORTANCE, yaxis_title=None)
    return styled(figure, "for " + ", ".join(run.metric), 180 + 40 * len(params) * len(run.metric))


def pareto_chart(run: Run) -> go.Figure:
    """`pareto_figure`, interactive: hover names each trial and its parameters."""
    p, (x_name, y_name) = _pareto(run), run.metric[:2]
    hover = _trial_hover(run)[p.trials.index]
    front = np.flatnonzero(p.on_front)[np.argsort(p.x[p.on_front].to_numpy())]  # joined from left to right
    point = _hovered(f"{x_name} %{{x:.4g}}, {y_name} %{{y:.4g}}")
    rest, hidden = ~p.on_front & ~p.through_hidden, p.through_hidden
    figure = go.Figure([
        go.Scatter(x=p.x[rest], y=p.y[rest], hovertext=hover[rest], mode="markers",
                   marker={"color": GREY, "size": 8}, name="a trial", hovertemplate=point),
        go.Scatter(x=p.x.iloc[front], y=p.y.iloc[front], hovertext=hover.iloc[front], mode="lines+markers",
                   line={"color": ORANGE}, marker={"size": 9}, name="Pareto front", hovertemplate=point),
        *([go.Scatter(x=p.x[hidden], y=p.y[hidden], hovertext=hover[hidden], mode="markers",
                      marker={"symbol": "diamond-open", "color": ORANGE, "size": 10},
                      name=f"on the front through {hidden_objectives(run)}", hovertemplate=point)]
          if hidden.any() else []),
        go.Scatter(x=p.x[p.exported], y=p.y[p.exported], hovertext=hover[p.exported], mode="markers",
                   marker={"symbol": "circle-open", "color": RED, "size": 20, "line": {"width": 2}},
                   name=f"exported (the best {x_name} on the front)", hovertemplate=point),
    ])
    figure.update_xaxes(title_text=f"{x_name} ({run.mode[0]})", **_log_axis(p.x))
    figure.update_yaxes(title_text=f"{y_name} ({run.mode[1]})", **_log_axis(p.y))
    return styled(figure, "trade-off between the objectives", 480)
