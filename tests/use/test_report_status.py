"""`autotune report` on runs that did not simply finish: failed and interrupted trials, a search ended by its stop
target or interrupted, tiny runs, a model folder or a running run given as RUN_DIR; and the colours of Optuna's
parallel coordinates. The runs are written by hand in the engine's formats (trials.csv, summary.json, each trial's
progress.csv): no search runs here."""
from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from plotly.colors import unlabel_rgb

from autotune.engine.study import parallel_coordinate_figure, read_study
from autotune.errors import UserError
from autotune.report import find_run, load_run, write_report
from autotune.report.search_charts import curves_chart, curves_figure, history_chart, history_figure

# (trial id, status, epochs, stopped_early, val_accuracy per epoch, error)
TRIALS = [("aaaa0001", "TERMINATED", 3, False, [0.5, 0.6, 0.7], ""),
          ("aaaa0002", "ERROR", 1, False, [0.9], "flaky: it blew up"),
          ("aaaa0003", "TERMINATED", 1, True, [0.3], ""),
          ("aaaa0004", "INTERRUPTED", 2, False, [0.4, 0.8], ""),
          ("aaaa0005", "ERROR", 0, False, [], "failed at once")]


def write_run(folder: Path, trials=TRIALS, **summary) -> Path:
    """A run folder as the engine leaves it (no study.db, no model): trials.csv, summary.json, progress.csv."""
    folder.mkdir(parents=True)
    rows = []
    for trial_id, status, epochs, stopped, values, error in trials:
        rows.append({"trial_id": trial_id, "status": status, "epochs": epochs, "stopped_early": stopped,
                     "val_accuracy": max(values) if values else np.nan, "seconds": 1.0, "node_id": "n",
                     "error": error, "p:optimizer.lr": 0.01 * (len(rows) + 1), "path": str(folder / trial_id)})
        (folder / f"trial_{trial_id}").mkdir()
        if values:
            pd.DataFrame({"epoch": range(1, len(values) + 1), "val_accuracy": values}).to_csv(
                folder / f"trial_{trial_id}" / "progress.csv", index=False)
    pd.DataFrame(rows).to_csv(folder / "trials.csv", index=False)
    best = max(rows, key=lambda r: -1 if np.isnan(r["val_accuracy"]) else r["val_accuracy"])
    (folder / "summary.json").write_text(json.dumps({
        "name": folder.name, "metric": ["val_accuracy"], "mode": ["max"], "best_trial_id": best["trial_id"],
        "model_dir": None, "promotion": {}, "seconds": 5.0, "interrupted": False, "ended": None, **summary}))
    return folder


def traces(figure) -> dict:
    """A plotly figure's traces by name (the first of each name)."""
    found = {}
    for trace in figure.data:
        found.setdefault(trace.name, trace)
    return found


def legend(figure) -> list[str]:
    return [text.get_text() for text in figure.legends[0].get_texts()]


@pytest.fixture
def mixed(tmp_path):
    return load_run(write_run(tmp_path / "mixed"))


def test_failed_and_interrupted_trials_are_drawn_as_they_ended(mixed):
    """The failed trial (0.9 at epoch 1) was a "ran every epoch" dot and the title said it was not shown."""
    chart = history_chart(mixed)
    drawn = traces(chart)
    assert list(drawn["ran every epoch"]["x"]) == [1]
    assert list(drawn["failed after epoch 1"]["x"]) == [2] and list(drawn["failed after epoch 1"]["y"]) == [0.9]
    assert list(drawn["stopped early by the scheduler"]["x"]) == [3]
    assert list(drawn["interrupted after epoch 2 (a resume continues it)"]["x"]) == [4]
    title = chart.layout.annotations[0].text
    assert title == "val_accuracy per trial (1 failed before reporting it, not shown)"
    # the best so far is the search's: every reported epoch, the failed trial's too, as the export ranks them
    assert list(drawn["best so far"]["y"])[:5] == [0.7, 0.9, 0.9, 0.9, 0.9]
    assert "a failed or interrupted trial's too" in drawn["best so far"]["hovertemplate"]
    hover = " ".join(drawn["failed after epoch 1"]["hovertext"])
    assert "failed after epoch 1: flaky: it blew up" in hover and "may export its checkpoint" in hover
    labels = legend(history_figure(mixed))
    assert {"ran every epoch", "failed after epoch 1", "interrupted after epoch 2 (a resume continues it)",
            "stopped early by the scheduler", "best so far"} <= set(labels)


def test_learning_curves_mark_how_each_trial_ended(mixed):
    """The failed trial's one epoch was a lone unmarked point; the interrupted trial's curve ended unmarked."""
    drawn = traces(curves_chart(mixed))
    assert (list(drawn["failed"]["x"]), list(drawn["failed"]["y"])) == ([1], [0.9])
    assert list(drawn["interrupted (a resume continues it)"]["x"]) == [2]
    assert list(drawn["stopped early by the scheduler"]["x"]) == [1]
    assert {"failed", "interrupted (a resume continues it)"} <= set(legend(curves_figure(mixed)))


def test_the_curves_of_many_trials_are_a_few_traces_each_trial_hovered(tmp_path):
    """A search of 1,000 trials drew 2,002 plotly traces (one per trial and metric): 3.8 MB of the page, 18 s to
    build and 2 to 5 s for a browser to draw. The other trials are now one line with gaps."""
    trials = [(f"dddd{i:04d}", "TERMINATED", 3 if i % 4 == 0 else 1, i % 4 != 0,
               [0.3 + i / 1000, 0.5, 0.6][: 3 if i % 4 == 0 else 1], "") for i in range(300)]
    run = load_run(write_run(tmp_path / "many", trials))
    chart = curves_chart(run)
    assert [t.name for t in chart.data] == ["a trial (299)", f"best trial ({run.summary['best_trial_id']})",
                                            "stopped early by the scheduler"]
    points = [text.split("</b>")[0] for trace in chart.data[:2] for text, x in zip(trace.hovertext, trace.x)
              if np.isfinite(x)]
    for trial_id, _, epochs, *_ in trials:
        assert points.count(f"<b>trial {trial_id}") == epochs
    assert len(traces(chart)["stopped early by the scheduler"]["x"]) == 225
    assert len(curves_figure(run).axes[0].collections[0].get_segments()) == 299


def test_a_log_axis_labels_its_ticks_in_full(tmp_path):
    """A metric over three decades was labelled by plotly "2 5 0.01 2 5 0.1 2 5": which 5 was 0.05?"""
    trials = [(f"ffff000{i}", "TERMINATED", 1, False, [value], "") for i, value in enumerate([0.002, 0.9, 0.05])]
    axis = history_chart(load_run(write_run(tmp_path / "wide", trials))).layout.yaxis
    assert axis.type == "log"
    assert list(axis.ticktext) == ["0.005", "0.01", "0.02", "0.05", "0.1", "0.2", "0.5"]
    assert list(axis.tickvals) == pytest.approx([0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5])
    narrow = history_chart(load_run(write_run(tmp_path / "narrow", trials[1:]))).layout.yaxis
    assert narrow.type is None and narrow.tickvals is None


@pytest.mark.parametrize("best", ["eeee0000", None])
def test_the_lead_of_a_run_without_a_model_says_none_was_exported(tmp_path, best):
    """The lead said 'trial eeee0000, exported as the model' of a run that exported none, and 'trial None' of one
    whose trials all failed before reporting."""
    trials = [("eeee0000", "TERMINATED", 2, False, [0.5, 0.6], "")]
    page = write_report(write_run(tmp_path / "plain", trials, best_trial_id=best)).read_text()
    lead = page.split("<ul class='lead'>", 1)[1].split("</ul>", 1)[0]
    shown = "trial eeee0000" if best else "no trial reported val_accuracy"
    assert f"<li><b>Best</b>: {shown}" in lead and "exported" not in lead.split("<b>Baseline</b>")[0]
    assert "<li><b>Baseline</b>: none: the run exported no model" in lead


def test_the_page_lists_ten_failed_trials_and_says_where_the_others_are(tmp_path):
    """200 failed trials of a 1,000-trial search were a table of 200 rows in the summary, above every chart."""
    trials = [("eeee0000", "TERMINATED", 2, False, [0.5, 0.6], "")] + [
        (f"eeee{i:04d}", "ERROR", 1, False, [0.1], f"Diverged: non-finite loss at epoch {i}") for i in range(1, 26)]
    page = write_report(write_run(tmp_path / "failing", trials)).read_text()
    table = page.split("<h3>failed trials</h3>")[1].split("</table>")[0]
    assert table.count("<tr>") == 11  # the header and 10 trials
    assert "<td>eeee0010</td>" in table and "<td>eeee0011</td>" not in table
    assert "<p>+15 more failed trials: trials.csv (status ERROR, their error in the error column).</p>" in page
    assert "<th>failed</th><td>25</td>" in page


def test_a_trial_stopped_with_no_finite_value_is_drawn_without_an_end_mark(tmp_path):
    """A trial whose every epoch reported NaN or an infinity (its training diverged), stopped early or failed, made
    `autotune report` end in a traceback (matplotlib: "x, y, and format string must not be None")."""
    nan = float("nan")
    trials = [("cccc0001", "TERMINATED", 3, False, [0.5, 0.6, 0.7], ""),
              ("cccc0002", "TERMINATED", 1, True, [nan], ""),
              ("cccc0003", "ERROR", 2, False, [float("inf"), nan], "blew up"),
              ("cccc0004", "TERMINATED", 2, True, [0.4, nan], "")]
    run = load_run(write_run(tmp_path / "diverged", trials))
    drawn = traces(curves_chart(run))
    assert (list(drawn["stopped early by the scheduler"]["x"]), list(drawn["stopped early by the scheduler"]["y"])) \
        == ([1], [0.4])  # the last finite point of the trial that turned NaN; none for the one that never had one
    assert "failed" not in drawn
    assert "stopped early by the scheduler" in legend(curves_figure(run))


def test_a_search_ended_by_its_stop_target_says_so_and_does_not_blame_the_scheduler(tmp_path):
    trials = [("bbbb0001", "TERMINATED", 3, False, [0.5, 0.6, 0.7], ""),
              ("bbbb0002", "TERMINATED", 2, True, [0.8, 0.99], "")]
    ended = "trial bbbb0002 reached the stop target (val_accuracy >= 0.985)"
    run_dir = write_run(tmp_path / "target", trials, ended=ended)
    page = write_report(run_dir).read_text()
    assert f"<p class='note'>Ended early: {html.escape(ended)}.</p>" in page
    assert "<th>stopped early (by the scheduler, or as the search ended)</th><td>0</td>" in page
    assert "<th>reached the stop target</th><td>bbbb0002</td>" in page
    assert "<td>reached the stop target</td>" in page.split("<h3>top trials</h3>")[1]
    drawn = traces(history_chart(load_run(run_dir)))
    assert list(drawn["reached the stop target (ended the search)"]["x"]) == [2]
    assert not any("scheduler" in str(name) for name in drawn)
    assert "reached the stop target (ended the search)" in legend(curves_figure(load_run(run_dir)))


def test_an_interrupted_search_says_how_to_resume_it(tmp_path):
    page = write_report(write_run(tmp_path / "cut", interrupted=True)).read_text()
    assert "Interrupted: the search did not run all its trials; resume it with `autotune run SPACE --resume`" in page
    assert "<th>interrupted (a resume continues them)</th><td>1</td>" in page


def test_the_page_gives_the_search_s_cost_in_epochs_as_the_summary_does(tmp_path):
    """The summary's first line says the epochs the trials ran together (the cost a search is compared by, with
    its time); the report gave the time alone."""
    from autotune.engine.summary import epochs_run

    run = load_run(write_run(tmp_path / "cost"))
    page = write_report(run.path).read_text()
    assert epochs_run(run.trials) == 7  # 3 + 1 + 1 + 2 + 0: every trial's, failed and interrupted ones too
    assert "<th>epochs run</th><td>7</td>" in page and "<th>search time (s)</th><td>5</td>" in page


def test_trial_and_epoch_axes_tick_whole_numbers_and_one_trial_shows_its_best_so_far(tmp_path):
    """Two trials of two epochs had ticks at 1.5; one trial's val_accuracy was drawn on a 0-2 axis."""
    trials = [("cccc0001", "TERMINATED", 2, False, [0.8, 0.9], ""), ("cccc0002", "TERMINATED", 2, False,
                                                                     [0.7, 0.85], "")]
    run = load_run(write_run(tmp_path / "two", trials))
    assert history_chart(run).layout.xaxis.dtick == 1 and curves_chart(run).layout.xaxis.dtick == 1
    one = load_run(write_run(tmp_path / "one", trials[:1]))
    chart = history_chart(one)
    low, high = chart.layout.yaxis.range
    assert 0.8 < low < 0.9 < high < 1.0
    best = traces(chart)["best so far"]
    assert len(best["x"]) == 2 and best["x"][1] > best["x"][0]  # a line, not a lone point


def test_a_model_folder_reports_the_run_that_made_it(tmp_path, cli):
    run_dir = write_run(tmp_path / "runs" / "made")
    model = tmp_path / "models" / "made"
    model.mkdir(parents=True)
    (model / "model.json").write_text(json.dumps({"run_dir": str(run_dir), "trial_id": "aaaa0001"}))
    assert find_run(model) == (run_dir, [])
    code, out, err = cli("report", model, "--out", tmp_path / "out")
    assert code == 0, err
    assert out.startswith(f"run: {run_dir} (the run that made the model in {model})\n"), out
    assert f"run {run_dir.resolve()}" in (tmp_path / "out" / "report.html").read_text()
    (model / "model.json").write_text(json.dumps({"run_uri": "s3://bucket/runs/made"}))
    with pytest.raises(UserError, match=r"is a model folder .* `autotune report s3://bucket/runs/made`"):
        find_run(model)


def test_a_run_still_running_is_named_so(tmp_path, cli):
    running = tmp_path / "running"
    (running / "trial_dddd0001").mkdir(parents=True)
    code, out, err = cli("report", running)
    assert code == 2 and "still running" in err and f"autotune dashboard {running}" in err


def write_study(folder: Path, values: list[float]) -> Path:
    """A study.db of complete trials with `values` (maximised), one float parameter."""
    folder.mkdir()
    study = optuna.create_study(storage=f"sqlite:///{folder / 'study.db'}", study_name="s", direction="maximize")
    for i, value in enumerate(values):
        study.add_trial(optuna.trial.create_trial(params={"lr": 0.01 * (i + 1)}, value=value,
                                                  distributions={"lr": optuna.distributions.FloatDistribution(
                                                      0.001, 1.0)}))
    return folder / "study.db"


# Optuna 5 draws parallel coordinates as lines and a colour bar (Optuna 4: one Parcoords, tested below)
OPTUNA_5_LINES = pytest.mark.skipif(int(optuna.__version__.split(".")[0]) < 5, reason="Optuna 4 draws a Parcoords")


def line_colours(figure) -> list[tuple[float, ...]]:
    return [unlabel_rgb(trace.line.color) for trace in figure.data if trace.mode == "lines"]


@OPTUNA_5_LINES
def test_parallel_coordinates_keep_the_worst_trial_visible(tmp_path):
    """Optuna's Blues drew the worst trial rgb(247,251,255) on a white page; Viridis, as the PNG."""
    figure = parallel_coordinate_figure(read_study(write_study(tmp_path / "spread", [0.2, 0.5, 0.9]), "s"),
                                        ["val_accuracy"])
    colours = line_colours(figure)
    assert max(min(colour) for colour in colours) < 100  # no line near white: each has a dark channel
    worst, best = np.array(colours[0]), np.array(colours[-1])
    assert np.abs(worst - (68, 1, 84)).max() <= 2 and np.abs(best - (253, 231, 37)).max() <= 2  # Viridis' ends
    bar = next(trace for trace in figure.data if trace.mode == "markers")
    assert bar.marker.showscale and bar.marker.colorscale[0][1] == "#440154"


@OPTUNA_5_LINES
def test_parallel_coordinates_of_one_value_have_one_colour_and_no_colour_bar(tmp_path):
    """Optuna's colour bar ran from the value - 0.5 to + 0.5 (0.6 to 1.4)."""
    figure = parallel_coordinate_figure(read_study(write_study(tmp_path / "same", [0.9, 0.9]), "s"),
                                        ["val_accuracy"])
    assert len(set(line_colours(figure))) == 1
    assert not next(trace for trace in figure.data if trace.mode == "markers").marker.showscale


@pytest.mark.parametrize("values, bar", [([0.2, 0.5, 0.9], True), ([0.9, 0.9], False)])
def test_optuna_4s_parallel_coordinates_are_recoloured_too(tmp_path, monkeypatch, values, bar):
    """Optuna 4 draws one plotly Parcoords (Optuna 5 lines and a colour bar): `report` failed on it with
    AttributeError: 'Parcoords' object has no attribute 'marker'."""
    import plotly.graph_objects as go

    def optuna_4s(study, target_name):
        values = [trial.value for trial in study.trials]
        return go.Figure([go.Parcoords(dimensions=[{"label": target_name, "values": values}],
                                       line={"color": values, "colorscale": "Blues", "showscale": True})])

    monkeypatch.setattr(optuna.visualization, "plot_parallel_coordinate", optuna_4s)
    figure = parallel_coordinate_figure(read_study(write_study(tmp_path / "s", values), "s"), ["val_accuracy"])
    line = figure.data[0].line
    assert line.colorscale[0][1] == "#440154" and line.showscale is bar


@OPTUNA_5_LINES
def test_parallel_coordinates_name_each_parameter_s_axis_in_full(tmp_path):
    """Optuna cuts an axis's name of 20 characters or more to 17 and "...": the three parameters of a choice of
    sections below read `optimizer[adamw]....` alike. Each axis now has its whole name, a long one on two lines."""
    folder = tmp_path / "long"
    folder.mkdir()
    study = optuna.create_study(storage=f"sqlite:///{folder / 'study.db'}", study_name="s", direction="maximize")
    names = ["optimizer[adamw].weight_decay", "optimizer[adamw].warmup_epochs", "optimizer[adamw].lr", "model.width"]
    for i, value in enumerate([0.2, 0.5, 0.9]):
        study.add_trial(optuna.trial.create_trial(
            params=dict.fromkeys(names, 0.1 * (i + 1)), value=value,
            distributions=dict.fromkeys(names, optuna.distributions.FloatDistribution(0.01, 1.0))))
    figure = parallel_coordinate_figure(read_study(folder / "study.db", "s"), ["val_accuracy"])
    assert figure.layout.xaxis.ticktext == ("val_accuracy", "model.width", "optimizer[adamw].lr",
                                            "optimizer[adamw].<br>warmup_epochs", "optimizer[adamw].<br>weight_decay")
