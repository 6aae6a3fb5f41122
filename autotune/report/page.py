"""The HTML page: the summary section, each chart's section (its interactive chart, its PNG linked, or the PNG
embedded), plotly.js inline once; `write_report` writes it and the PNGs (and, asked for, each figure as a PDF or
SVG too)."""
from __future__ import annotations

import base64
import json
import html
import logging
import os
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import matplotlib
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from autotune.engine.summary import LISTED, epochs_run, status_word
from autotune.errors import UserError
from autotune.paths import expanded, write_whole
from autotune.recipes import ClassPredictions, ValuePredictions
from autotune.report.model_charts import (baseline, confusion_chart, confusion_figure, confusion_table,
                                          distribution_figure, distribution_table, evaluate_model,
                                          misclassified_figure, misclassified_table, per_class_figure,
                                          per_class_table, predicted_chart, predicted_figure, residuals_chart,
                                          residuals_figure, residuals_table, sample_noun)
from autotune.report.run import Run, Skip, best_trial_id, finished, front_ids, load_run, target_trial
from autotune.report.search_charts import (FAILED, INTERRUPTED, STOPPED, STOPPED_OR_ENDED, curves_chart,
                                           curves_figure, curves_table, history_chart, history_figure,
                                           history_table, importance_chart, hidden_objectives, importance_figure,
                                           importance_table, parallel_chart, parallel_figure, pareto_chart,
                                           pareto_figure, trial_ends)
from autotune.report.style import fallback_fonts, fmt

# what Ray adds to each reported result: bookkeeping, not metrics
RAY_KEYS = {"timestamp", "pid", "training_iteration", "iterations_since_restore", "done", "should_checkpoint",
            "date", "hostname", "node_ip", "node_id", "trial_id", "checkpoint_dir_name"}
log = logging.getLogger("autotune")
# Matplotlib's warning of a character no font draws (Matplotlib 3.8: "... missing from current font.")
_GLYPH = re.compile(r"Glyph (\d+) .*missing from (?:current )?font")

# the files a report writes besides report.html: only these, and only an earlier report's, are replaced or removed
FIGURES = ("history.png", "learning_curves.png", "parallel_coordinates.png", "importance.png", "pareto.png",
           "confusion_matrix.png", "per_class_accuracy.png", "misclassified.png", "class_distribution.png",
           "predicted_vs_true.png", "residuals.png")
VECTOR_FORMATS = ("pdf", "svg")  # what a report may also write of each figure: for print, scaled without blur
REPORT_HEAD = "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>autotune report: "  # every page's
_LINKED = re.compile(rb"href='([^'/]+\.(?:png|pdf|svg))'")  # a figure a page links (the files in its folder)


def figure_files(formats: Iterable[str] = ()) -> list[str]:
    """The names of the files a report writes besides report.html: each figure's PNG, and its copy in each of
    `formats` (VECTOR_FORMATS)."""
    return [str(Path(name).with_suffix(suffix)) for name in FIGURES
            for suffix in (".png", *(f".{form}" for form in formats))]


@dataclass
class Section:
    title: str
    text: str  # HTML
    figure: str | None = None  # PNG file name in the output folder: linked below `chart`, else embedded
    chart: str = ""  # HTML of the interactive plotly chart
    copies: tuple[str, ...] = ()  # the figure's PDF or SVG file names in the output folder, linked below it


def _table(rows: list[tuple[Any, ...]], head: tuple[str, ...] = ()) -> str:
    """A table of (name, value, ...) rows, the name in bold; `head` its header row, if any."""
    top = f"<tr>{''.join(f'<th>{html.escape(h)}</th>' for h in head)}</tr>" if head else ""
    body = "".join(f"<tr><th>{html.escape(str(k))}</th>{''.join(f'<td>{html.escape(fmt(v))}</td>' for v in rest)}"
                   "</tr>" for k, *rest in rows)
    return f"<table>{top}{body}</table>"


def _searched(run: Run, name: str) -> str:
    """Where the search sampled parameter `name` (the study's distribution): its choices, or its range and scale;
    "" without a study."""
    found = run.study.parameters.get(name) if run.study is not None else None
    if found is None:
        return ""
    if found.kind == "categorical":
        return "one of " + ", ".join(found.choices)
    scale = ", log scale" if found.log else ""
    return f"{fmt(found.low)} to {fmt(found.high)}{scale}{', whole numbers' if found.kind == 'int' else ''}"


def _frame_table(frame: pd.DataFrame) -> str:
    """A DataFrame as a table of the page, its columns' names the header row."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(v))}</td>" for v in row) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f"<table class='wide' tabindex='0'><tr>{head}</tr>{body}</table>"


RESUME = "autotune run SPACE --resume"  # summary.json does not keep the command: the CLI prints it at the Ctrl-C


def _how_it_ended(run: Run) -> str:
    """A line saying when the search ended before its trials: a setting (a stop target, a budget) ended it, or it
    was interrupted and a resume goes on; "" for a search that ran all its trials."""
    if run.summary.get("interrupted"):
        return _note(f"Interrupted: the search did not run all its trials; resume it with `{RESUME}` (the space file "
                     "and options it was started with: `autotune run` printed the whole command when it stopped).")
    ended = run.summary.get("ended")
    return _note(f"Ended early: {ended}.") if ended else ""


def _counts(run: Run) -> list[tuple[str, Any]]:
    """How many trials ended how, in the charts' words: stopped early (by the scheduler; also by the search's end,
    when a setting ended it), reached the stop target, failed, interrupted."""
    ends, target = trial_ends(run).value_counts(), target_trial(run)
    stopped = STOPPED_OR_ENDED if run.summary.get("ended") else STOPPED
    return [("trials", len(run.trials)), (stopped.word, int(ends.get(stopped, 0))),
            *([("reached the stop target", target)] if target else []), ("failed", int(ends.get(FAILED, 0))),
            *([(INTERRUPTED.word + " (a resume continues them)", int(ends[INTERRUPTED]))]
              if INTERRUPTED in ends else [])]


def _status(row: pd.Series, target: str | None) -> str:
    """A trial's end in the top trials' table: the summary's words, the stop target's trial said so."""
    if str(row["trial_id"]) == str(target):
        return "reached the stop target"
    return status_word(row["status"], row.get("stopped_early", False), row.get("epochs"))


Predictions = ClassPredictions | ValuePredictions


def _lead(run: Run, predictions: Predictions | None, unanalysed: str) -> str:
    """What a reader needs first: what was searched, which trial won (on the validation split), and how good the
    exported model is on the held-out test split, beside a baseline."""
    data = (run.card.get("config") or {}).get("data") or {}
    path = f" ({data['path']})" if data.get("path") else ""
    source = f" on {data['dataset']}{path}" if data.get("dataset") else ""
    params = ", ".join(name.removeprefix("p:") for name in run.params)
    objective = ", ".join(f"{m} ({d})" for m, d in zip(run.metric, run.mode))
    scores = [(m, v) for m in run.metric if (v := (run.summary.get("best_metrics") or {}).get(m)) is not None]
    front, best = front_ids(run), best_trial_id(run)
    won = f"no trial reported {run.metric[0]}" if best is None else f"trial {best}" + (
        ", exported as the model" if run.model_dir else "") + (
        f" (one of the {len(front)} trials of the Pareto front)" if front else "") + (
        f"; in the search: {_listed(scores)}" if scores else "")
    rows = [("Searched", f"{len(run.trials)} trials of {len(run.params)} parameters ({params}){source}, for "
                         f"{objective}"), ("Best", won)]
    tested = _listed(list((run.summary.get("test_metrics") or {}).items()))
    if predictions is not None:
        noun = sample_noun(predictions) if isinstance(predictions, ClassPredictions) else "samples"
        rows += [("Held-out test", f"{tested or 'no test metrics recorded'}, on {len(predictions.truth)} test "
                                   f"{noun} the search never saw"), ("Baseline", baseline(predictions))]
    else:
        rows += [("Held-out test", tested or "none"), ("Baseline", f"none: {unanalysed}")]
    items = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in rows)
    return f"<ul class='lead'>{items}</ul>"


def _listed(values: list[tuple[str, Any]]) -> str:
    """`name value, name value`, each value as the tables show it."""
    return ", ".join(f"{name} {fmt(value)}" for name, value in values)


def summary_section(run: Run, predictions: Predictions | None = None, unanalysed: str = "") -> Section:
    """The summary: the lead (`_lead`), the search's counts, the best configuration and its metrics, the top
    trials and the failed ones."""
    trials, summary = run.trials, run.summary
    counts = [
        *_counts(run),
        ("epochs run", epochs_run(trials)),
        ("search time (s)", summary.get("seconds", float("nan"))),
        ("objective", ", ".join(f"{m} ({d})" for m, d in zip(run.metric, run.mode))),
        *_how_searched(run.card),
        *([("warm start from", f"{summary['warm_start']} (its finished trials told to the sampler as history, not "
                                "run or counted here)")] if summary.get("warm_start") else []),
    ]
    best = [("best trial", best_trial_id(run), "")]
    best += [(k, v, _searched(run, k)) for k, v in (summary.get("best_params") or {}).items()]
    metrics = [(k, v) for k, v in (summary.get("best_metrics") or {}).items()
               if k not in RAY_KEYS and not k.startswith(("config/", "time_"))]
    metrics += list((summary.get("test_metrics") or {}).items())
    promotion = summary.get("promotion") or {}
    if promotion:
        metrics.append(("promoted", f"{promotion.get('promoted')} ({promotion.get('reason', '')})"))
        metrics += _versions(promotion, summary.get("model_dir"))
    columns = ["trial_id", "status", "epochs", *run.metric, *run.params]
    top = finished(run).sort_values(run.metric[0], ascending=run.mode[0] == "min").head(10)
    top = top.assign(status=[_status(row, target_trial(run)) for _, row in top.iterrows()])
    front = front_ids(run)
    if front is not None:  # several objectives: no trial is best on all, the front's trials are the candidates
        top = top.assign(**{"Pareto front": ["yes" if str(t) in front else "" for t in top["trial_id"]]})
        columns.insert(3 + len(run.metric), "Pareto front")
    top = top[[c for c in columns if c in top]].rename(columns=lambda c: c.removeprefix("p:"))
    text = (f"{_lead(run, predictions, unanalysed)}{_how_it_ended(run)}"
            f"<div class='row'><div><h3>search</h3>{_table(counts)}</div>"
            f"<div><h3>best configuration</h3>{_table(best, ('parameter', 'value', 'searched'))}</div>"
            f"<div><h3>its metrics</h3>{_table(metrics)}</div></div>"
            f"<h3>top trials</h3>{_frame_table(top)}")
    return Section("Summary", text + _failed_table(trials))


def _how_searched(card: dict[str, Any]) -> list[tuple[str, str]]:
    """How the search ran, from the exported model's card, for a reader who would run it again (a paper's
    appendix): the sampler and the scheduler with the arguments they ran with, the trials at a time, the seeds, the
    libraries' versions and the machine; none without a card."""
    search, config = card.get("search") or {}, card.get("config") or {}
    if not search:
        return []
    ran = search.get("scheduler_run") or {}
    scheduler = _called(search.get("scheduler"), search.get("scheduler_args"))
    if ran:
        scheduler += f", which ran as {_called(ran.get('name'), ran.get('args'))}"
    seeds = [("search", search.get("seed")), ("train", (config.get("train") or {}).get("seed")),
             ("data split", (config.get("data") or {}).get("split_seed"))]
    return [("sampler", _called(search.get("sampler"), search.get("sampler_args"))), ("scheduler", scheduler),
            ("trials at a time", search.get("max_concurrent") or "as the resources allowed"),
            ("seeds", ", ".join(f"{name} {seed}" for name, seed in seeds if seed is not None)),
            ("versions", ", ".join(f"{name} {version}" for name, version in (card.get("versions") or {}).items())),
            *([("machine", _hardware(card["machine"]))] if card.get("machine") else [])]


def _hardware(machine: dict[str, Any]) -> str:
    """The card's `machine` in words: `AMD EPYC, 2 cores, 23.5 GiB RAM, no GPU, Linux-6.18...`."""
    gpus = ", ".join(machine.get("gpus") or []) or "no GPU"
    ram = f"{machine['ram_gib']} GiB RAM, " if machine.get("ram_gib") else ""
    return f"{machine.get('cpu')}, {machine.get('cores')} cores, {ram}{gpus}, {machine.get('os')}"


def _called(name: Any, args: dict[str, Any] | None) -> str:
    """`name(key=value, ...)`, as `autotune check` shows a sampler or scheduler; the name alone without arguments."""
    return f"{name}({', '.join(f'{k}={v}' for k, v in args.items())})" if args else str(name)


def _failed_table(trials: pd.DataFrame) -> str:
    """The failed trials and their errors: the first LISTED, and a line on where the others are."""
    failed = trials[trials["status"] == "ERROR"]
    if not len(failed):
        return ""
    more = len(failed) - LISTED
    note = (f"<p>+{more} more failed trials: trials.csv (status ERROR, their error in the error column).</p>"
            if more > 0 else "")
    return f"<h3>failed trials</h3>{_frame_table(failed[['trial_id', 'error']].head(LISTED).fillna(''))}{note}"


def _versions(promotion: dict, model_dir: str | None) -> list[tuple[str, str]]:
    """The version this run exported, the one it replaced or kept, and the canonical model's now."""
    mine = Path(promotion["version_dir"]).name if promotion.get("version_dir") else None
    rows = [("model version", mine)] if mine else []
    if promotion.get("replaced") or promotion.get("kept"):
        word = "replaced" if promotion.get("replaced") else "kept"
        rows.append((f"{word} version", promotion[word]))
    try:
        now = json.loads((Path(model_dir) / "model.json").read_text()).get("version") if model_dir else None
    except (OSError, ValueError, AttributeError):
        now = None
    if now:
        rows.append(("canonical model now", "this version" if now == mine else f"version {now}"))
    return rows


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:2em auto;max-width:1150px;
padding:0 1em;color:#222;line-height:1.45;overflow-wrap:break-word}
h1{margin-bottom:0.1em} .meta{color:#666;margin-top:0} nav a{margin-right:1em}
section{margin:2.2em 0;border-top:1px solid #ddd}
img{max-width:100%;height:auto;border:1px solid #eee;box-sizing:border-box}
table{border-collapse:collapse;font-size:0.88em;margin:0.4em 0} th,td{padding:0.2em 0.7em;text-align:left;
border-bottom:1px solid #eee} table.wide{display:block;overflow-x:auto}
.row{display:flex;flex-wrap:wrap;gap:2em} .lead{font-size:1.05em;padding-left:1.2em}
.note{color:#8a6d3b;background:#fcf8e3;padding:0.4em 0.8em} .print{display:none}
@media print{body{margin:0;max-width:none} .help,.screen{display:none} .print{display:block}
table.wide{display:table;font-size:0.7em} table.wide th,table.wide td{padding:0.2em 0.3em}
table.wide th{overflow-wrap:anywhere}
section.drawn,tr,.row>div,.lead{break-inside:avoid} h2,h3{break-after:avoid}}
"""


# plotly.js shows a "Share chart..." button by default, which uploads the chart's data (trials, parameters, errors,
# class names) to Plotly Cloud: a page meant to open offline, and to keep its data, has none
CHART_CONFIG = {"displaylogo": False, "showSendToCloud": False}
CHART_HELP = ("Charts: hover a point for its trial and values; drag to zoom, double-click to zoom out; click a legend "
              "entry to hide it. Each chart's PNG is linked below it; most charts' numbers also open as a table "
              "above them.")


def _chart_html(figure: go.Figure, div_id: str) -> str:
    """The chart's <div> and the script that draws it (plotly.js itself is in the page's head, once)."""
    return figure.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config=CHART_CONFIG,
                          default_height=f"{figure.layout.height}px")


def _shown(section: Section, out: Path) -> str:
    """The section's interactive chart with a link to its PNG, and the PNG embedded for print (a chart prints cut
    at the width it was drawn for, and what hovering shows is lost); else its PNG embedded. Its PDF or SVG copies
    are linked below it. The page stands alone."""
    if not section.figure:
        return ""
    name = html.escape(section.figure)
    data = base64.b64encode((out / section.figure).read_bytes()).decode()
    image = f"<img alt='{html.escape(section.title)}' src='data:image/png;base64,{data}'>"
    copies = [f"{Path(copy).suffix[1:].upper()}: <a href='{html.escape(copy)}'>{html.escape(copy)}</a>"
              for copy in section.copies]
    if section.chart:
        links = ", ".join([f"PNG: <a href='{name}'>{name}</a>", *copies])
        return f"<div class='screen'>{section.chart}<p>{links}</p></div><div class='print'>{image}</div>"
    return f"<p><a href='{name}'>{image}</a></p>" + (f"<p class='screen'>{', '.join(copies)}</p>" if copies else "")


def _page(run: Run, sections: list[Section], out: Path) -> str:
    parts = [f"<section id='s{number}'{' class=drawn' * bool(section.figure)}><h2>{html.escape(section.title)}</h2>"
             f"{section.text}{_shown(section, out)}</section>" for number, section in enumerate(sections, 1)]
    nav = " ".join(f"<a href='#s{i}'>{html.escape(s.title)}</a>" for i, s in enumerate(sections, 1))
    charts = any(s.chart for s in sections)
    plotly = f"<script>{get_plotlyjs()}</script>" if charts else ""
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    model = f", model {html.escape(str(run.model_dir))}" if run.model_dir else ""
    help_line = f"<p class='meta help'>{CHART_HELP}</p>"  # of the interactive charts: not printed
    return (f"{REPORT_HEAD}{html.escape(run.name)}</title><meta name='viewport' content='width=device-width, "
            f"initial-scale=1'><style>{CSS}</style>{plotly}</head><body>"
            f"<header><h1>autotune report: {html.escape(run.name)}</h1>"
            f"<p class='meta'>run {html.escape(str(run.path.resolve()))}{model}; written {created}</p>"
            f"<nav aria-label='sections'>{nav}</nav>{help_line if charts else ''}</header>"
            f"<main>{''.join(parts)}</main></body></html>\n")


def _numbers(title: str, frame: pd.DataFrame | None) -> str:
    """The numbers of chart `title` as a table, folded under a line that opens it and names the chart (a screen
    reader lists these lines together): what a screen reader reads of a chart (plotly's and the PNG's pixels say
    nothing to it), and the values without hovering; "" for None."""
    if frame is None:
        return ""
    return (f"<details class='screen'><summary>{html.escape(title)}: the numbers, as a table</summary>"
            f"{_frame_table(frame)}</details>")


def _note(text: str) -> str:
    return f"<p class='note'>{html.escape(text)}</p>"


def _earlier_figures(out: Path, formats: Iterable[str] = ()) -> list[str]:
    """The figures an earlier autotune report wrote in `out`: those its report.html links (none without one). A
    report.html autotune did not write, or a file named as a figure this report writes (its PNG, its copy in each of
    `formats`) that no earlier report there links (the user's, or one an interrupted report left): a UserError,
    since this report would overwrite it."""
    page = out / "report.html"
    linked: set[str] = set()
    if os.path.lexists(page):
        try:
            text = page.read_bytes()
        except OSError as err:  # a folder, a link to nothing, no permission
            raise UserError(f"cannot read {page} ({err.strerror or err}), which a report there would replace; give "
                            "another folder with --out") from None
        if not text.startswith(REPORT_HEAD.encode()):
            raise UserError(f"{page} is not a page autotune report wrote, and it is not overwritten; give another "
                            "folder with --out (or move the file)")
        linked = {name.decode() for name in _LINKED.findall(text)}
    foreign = [name for name in figure_files(formats) if os.path.lexists(out / name) and name not in linked]
    if foreign:
        raise UserError(f"{out} holds {', '.join(foreign)}, which no autotune report there links (a file of yours, or "
                        "left by an interrupted report), and a report would overwrite it; give another folder with "
                        "--out (or move the file)")
    return [name for name in figure_files(VECTOR_FORMATS) if name in linked]


def write_report(run_dir: str | Path, out: str | Path | None = None, formats: Iterable[str] = ()) -> Path:
    """Write report.html and its PNGs into `out` (default RUN_DIR/report), and each figure also in each of
    `formats` (VECTOR_FORMATS: `history.pdf` beside `history.png`, for a paper); returns the HTML file's path. An
    earlier report's page and figures there are replaced or removed; in a folder `out` names, a file of anyone
    else's is never touched: a UserError when it would be overwritten (`_earlier_figures`)."""
    formats = tuple(dict.fromkeys(formats))
    unknown = [form for form in formats if form not in VECTOR_FORMATS]
    if unknown:
        raise UserError(f"formats: {', '.join(map(repr, unknown))} is no figure format of the report; give "
                        f"{' or '.join(map(repr, VECTOR_FORMATS))} (the PNGs are always written)")
    run = load_run(run_dir)
    out = expanded(out) if out is not None else run.path / "report"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # a file there or above it, no permission
        raise UserError(f"cannot write the report into {out} ({err.strerror or err}: {err.filename or out}); "
                        "give a folder you can write with --out") from None
    # an older report's figures: this one writes again only those it can draw. The run's own report folder holds
    # only reports' files (an interrupted report's too); a folder given with --out may hold the user's
    own = out.resolve() == (run.path / "report").resolve()
    for name in figure_files(VECTOR_FORMATS) if own else _earlier_figures(out, formats):
        (out / name).unlink(missing_ok=True)
    warned: list[str] = []
    try:
        predictions, note = evaluate_model(run, warned)
    except Skip as why:
        predictions, note, unanalysed = None, "", str(why)
    else:
        unanalysed = ""
    sections = [summary_section(run, predictions, unanalysed)]
    missing_glyphs: set[str] = set()
    fonts: list[str] = []  # installed fonts that draw what Matplotlib's own lacks (`_drawn`)

    def add(title: str, caption: str, draw: Any, *args: Any, png: str, chart: Any = None, table: Any = None) -> None:
        """A section: the PNG drawn by `draw`, the interactive chart drawn by `chart` (the PNG alone when there is
        none, or when it cannot be drawn), and the numbers the chart shows as a table, from `table` (`_numbers`)."""
        copies = tuple(f"{Path(png).stem}.{form}" for form in formats)
        try:
            extra = _drawn(lambda: draw(*args), run, out / png, [out / copy for copy in copies], fonts,
                           missing_glyphs)
        except Skip as why:
            sections.append(Section(title, _note(f"Not drawn: {why}")))
            return
        text = f"<p>{html.escape(caption + (' ' + extra if extra else ''))}</p>"
        text += _numbers(title, table(*args)) if table is not None else ""
        shown = ""
        if chart is not None:
            try:
                shown = _chart_html(chart(*args), f"chart-{png.removesuffix('.png')}")
            except Skip as why:
                text += _note(f"No interactive chart: {why}. The PNG instead.")
        sections.append(Section(title, text, png, shown, copies))

    add("Optimisation history", "Each trial's best value of the objective, in the order the trials started, "
        "marked by how it ended (a failed or interrupted trial: the best of the epochs it reported); the line is "
        "the best value so far, over every reported epoch: a failed trial's best epoch counts, as when the search "
        "picks the checkpoint to export.", history_figure, run, png="history.png", chart=history_chart,
        table=history_table)
    add("Learning curves", "Every trial's validation curve per epoch: a trial the scheduler stopped early ends "
        "sooner, at a red x (ASHA compares trials at the same epoch and stops the weaker ones); a failed trial's "
        "curve ends at a black diamond, an interrupted one's at a purple triangle, and the trial that reached the "
        "search's stop target at a green star.", curves_figure, run, png="learning_curves.png", chart=curves_chart,
        table=curves_table)
    add("Parallel coordinates", "Each line is a trial, through the value it sampled for each parameter, ending at "
        "its objective; colour = the objective. The interactive chart is Optuna's, of the trials complete in the "
        "study: with one objective, those that ran every epoch (one stopped early holds the value of an earlier "
        "epoch); with several, one axis per objective, coloured by Pareto rank. parallel_coordinates.png draws "
        "every trial that reported, on axes scaled from the lowest to the highest value of the search range: 'n/a' "
        "where a trial did not sample a parameter (a conditional one); lines through the same choice spread a "
        "little around it; trials with the same values everywhere on one thicker line, labelled with their count.",
        parallel_figure, run, png="parallel_coordinates.png", chart=parallel_chart)
    add("Parameter importance", "How much each parameter decides whether a trial reaches the best values of the "
        "objective (Optuna's get_param_importances, with its PED-ANOVA evaluator).", importance_figure, run,
        png="importance.png", chart=importance_chart, table=importance_table)
    if len(run.metric) > 1:
        hidden = hidden_objectives(run)
        add("Pareto front", "Every trial on the first two objectives; the Pareto front joins the trials no other "
            "trial beats on both." + (f" Not drawn: {hidden}; the trials on the front of all {len(run.metric)} "
            "objectives only through them are marked apart (open diamonds)." if hidden else "")
            + " `autotune export RUN_DIR --trial ID` exports a trial of the front as a model.",
            pareto_figure, run, png="pareto.png", chart=pareto_chart)
    if predictions is None:
        sections.append(Section("Best model", _note(f"Not analysed: {unanalysed}")))
    else:
        useless = predictions.one_class() if isinstance(predictions, ClassPredictions) else ""
        note += f"Warning: {useless}." if useless else ""
        if note:
            sections.append(Section("Best model", _note(note)))
        model = f"The exported model ({run.model_dir}) on the held-out test split"
        if isinstance(predictions, ClassPredictions):
            samples = sample_noun(predictions)
            add("Confusion matrix", f"{model}: counts, coloured by the share of each true class.", confusion_figure,
                predictions, png="confusion_matrix.png", chart=confusion_chart, table=confusion_table)
            add("Accuracy per class", f"The share of each class's test {samples} labelled correctly.",
                per_class_figure, predictions, png="per_class_accuracy.png", table=per_class_table)
            if predictions.images is not None:
                add("Misclassified test images", "True and predicted label, with the model's confidence in its "
                    "answer.", misclassified_figure, predictions, png="misclassified.png",
                    table=misclassified_table)
            add("Class distribution", f"{samples.capitalize()} per class in each split (train, validation, test).",
                distribution_figure, predictions, png="class_distribution.png", table=distribution_table)
        else:
            add("Predicted against true values", f"{model}: each sample's predicted {predictions.target} against "
                "its true value; on the dashed diagonal, a prediction is exact.", predicted_figure, predictions,
                png="predicted_vs_true.png", chart=predicted_chart)
            add("Residuals", "How far the predictions miss: predicted − true, over the test samples (left of the "
                "dashed line: too low; right: too high).", residuals_figure, predictions, png="residuals.png",
                chart=residuals_chart, table=residuals_table)
    if warned:
        sections.insert(1, _data_warnings(warned))  # beside the summary: it may explain its scores
    if missing_glyphs:
        log.warning("the PNGs show a box for %s (no font installed here draws it; install one that does, e.g. Noto "
                    "Sans CJK for Chinese, Japanese or Korean, and the report draws with it); the report's "
                    "interactive charts show it", " ".join(sorted(missing_glyphs)))
    page = out / "report.html"
    write_whole(page, _page(run, sections, out))  # a full disk leaves no page cut short
    return page


def _data_warnings(warned: list[str]) -> Section:
    """The section listing what loading the model's data warned of, as `autotune run` and `train` printed it: a
    column that gives the target away, or that the model reads otherwise than it looks, explains a score."""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in warned)
    return Section("Data warnings", "<p>Loading the data the model was trained on warned of these, as the search "
                   f"did when it loaded it:</p><ul>{items}</ul>")


def _signed(figure: Any, run: Run) -> None:
    """The run's name and the model's version in small grey type at the figure's top left, or at its bottom left
    when the figure has a title of its own there (a row of the figure's layout either way: it covers nothing), so
    that a PNG attached alone to a ticket says which search it shows."""
    version = f", model version {run.card['version']}" if run.card.get("version") else ""
    place = figure.supxlabel if figure.get_suptitle() else figure.suptitle
    place(f"autotune run {run.name}{version}", x=0.005, ha="left", fontsize=7, color="#777777")


def _drawn(draw: Any, run: Run, path: Path, copies: list[Path], fonts: list[str], missing_glyphs: set[str]) -> str:
    """Draw the figure `draw` returns (with its caption's extra words, or alone), write it as each of `copies` (a
    PDF or SVG: the format is the suffix's), then sign it (`_signed`) and write it as the PNG `path`, with
    Matplotlib's font followed by `fonts`; returns the extra words. The copies are for a paper, whose caption says
    what a figure shows: they carry no signature. When the figure lacks characters that an installed font draws (a
    Chinese class name, Noto Sans CJK), that font joins `fonts` and the figure is drawn again; the characters no
    font draws are added to `missing_glyphs`. A PDF embeds its fonts as TrueType (Matplotlib's default, Type 3, is
    what conferences' PDF checks refuse)."""
    while True:
        with matplotlib.rc_context({"font.family": [*matplotlib.rcParams["font.family"], *fonts], "pdf.fonttype": 42}):
            drawn = draw()
            figure, extra = drawn if isinstance(drawn, tuple) else (drawn, "")
            # in the context too: Matplotlib makes some tick labels as it draws
            lacking = set().union(*(_save(figure, copy) for copy in copies))
            _signed(figure, run)
            lacking |= _save(figure, path)
        more = [family for family in fallback_fonts(sorted(lacking)) if family not in fonts]
        if not more:
            missing_glyphs.update(lacking)
            return extra
        fonts.extend(more)


def _save(figure: Any, path: Path) -> set[str]:
    """Write `figure` as `path` (a PNG, PDF or SVG); returns the characters its fonts lack (an emoji in a class
    name), which are said in one line rather than Matplotlib's warning per character and figure, with its source
    line."""
    lacking: set[str] = set()
    with warnings.catch_warnings(record=True) as caught:
        warnings.filterwarnings("always", message=_GLYPH.pattern)
        figure.savefig(path)
    for warning in caught:
        found = _GLYPH.match(str(warning.message))
        if found:
            lacking.add(chr(int(found.group(1))))
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return lacking
