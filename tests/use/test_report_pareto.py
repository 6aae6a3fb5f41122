"""The report's Pareto chart of a search of three objectives, on a run folder made in the test (no search), and the
quoting of the commands the report's messages give."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from autotune.errors import UserError
from autotune.report import load_run, write_report
from autotune.report.search_charts import pareto_chart, pareto_figure

METRIC, MODE = ["val_accuracy", "num_parameters", "latency"], ["max", "min", "min"]
# a beats b on the two objectives drawn; b is on the front of the three only through latency; c is on both fronts
TRIALS = [("a", 0.9, 100.0, 5.0), ("b", 0.8, 200.0, 1.0), ("c", 0.7, 50.0, 9.0), ("d", 0.6, 300.0, 9.0)]


def _run_folder(folder: Path, metric: list[str], mode: list[str], trials: list[tuple] = TRIALS) -> Path:
    """A finished run's trials.csv and summary.json (its Pareto front: every trial no other beats on all of
    `metric`), as `autotune run` writes them."""
    from autotune.api import pareto_front

    folder.mkdir()
    trials = pd.DataFrame([{"trial_id": t, "status": "TERMINATED", "epochs": 1, "stopped_early": False,
                            **dict(zip(METRIC, values)), "seconds": 1.0} for t, *values in trials])
    trials = trials[["trial_id", "status", "epochs", "stopped_early", *metric, "seconds"]]
    trials.to_csv(folder / "trials.csv", index=False)
    front = pareto_front(trials, tuple(metric), tuple(mode))
    summary = {"name": folder.name, "metric": metric, "mode": mode, "best_trial_id": "a", "pareto": front}
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def _traces(run) -> dict[str, set[str]]:
    """The chart's traces: name -> the trial ids it draws (from its hover texts)."""
    return {t.name: {text.split("</b>")[0].removeprefix("<b>trial ") for text in t.hovertext}
            for t in pareto_chart(run).data}


def test_three_objectives_join_only_the_front_of_the_two_drawn(tmp_path):
    run = load_run(_run_folder(tmp_path / "three", METRIC, MODE))
    assert {p["trial_id"] for p in run.summary["pareto"]} == {"a", "b", "c"}
    traces = _traces(run)
    assert traces["Pareto front"] == {"a", "c"}  # b is beaten by a on both axes: not joined
    assert traces["on the front through latency (min)"] == {"b"}
    assert traces["a trial"] == {"d"}
    labels = pareto_figure(run).axes[0].get_legend_handles_labels()[1]
    assert "on the front through latency (min)" in labels
    page = write_report(run.path, tmp_path / "report").read_text()
    assert "Not drawn: latency (min)" in page and (tmp_path / "report" / "pareto.png").is_file()


def test_the_top_trials_of_several_objectives_say_which_are_on_the_front(tmp_path):
    """A reviewer of a two-objective search saw the top trials sorted by the first objective alone, with nothing
    saying which were the trade-offs to choose from (the front); a column now says so."""
    run_dir = _run_folder(tmp_path / "three", METRIC, MODE)
    page = write_report(run_dir, tmp_path / "report").read_text()
    table = page.split("<h3>top trials</h3>", 1)[1].split("</table>", 1)[0]
    rows = [re.findall(r"<t[hd]>(.*?)</t[hd]>", row) for row in re.findall(r"<tr>(.*?)</tr>", table)]
    assert rows[0][:7] == ["trial_id", "status", "epochs", *METRIC, "Pareto front"]
    assert {row[0]: row[6] for row in rows[1:]} == {"a": "yes", "b": "yes", "c": "yes", "d": ""}
    assert "(one of the 3 trials of the Pareto front)" in page


def test_two_objectives_mark_nothing_apart(tmp_path):
    run = load_run(_run_folder(tmp_path / "two", METRIC[:2], MODE[:2]))
    traces = _traces(run)
    assert traces["Pareto front"] == {"a", "c"} and traces["a trial"] == {"b", "d"}
    assert len(traces) == 3  # the exported one's circle, no trace of a hidden objective


def test_a_wide_objective_is_a_log_axis_labelled_in_full(tmp_path):
    """num_parameters from 50 to 300,000 (a log axis) was labelled with plotly's lone digits, "2" and "5" again in
    every decade."""
    wide = [(t, accuracy, parameters * 1000 if t == "d" else parameters, latency)
            for t, accuracy, parameters, latency in TRIALS]
    run = load_run(_run_folder(tmp_path / "wide", METRIC[:2], MODE[:2], wide))
    layout = pareto_chart(run).layout
    assert layout.yaxis.type == "log" and layout.xaxis.type is None
    assert list(layout.yaxis.ticktext) == ["100", "1,000", "10,000", "100,000"]


def test_the_dashboard_command_of_a_running_search_is_quoted(tmp_path):
    folder = tmp_path / "my run #1"
    (folder / "trial_x").mkdir(parents=True)
    with pytest.raises(UserError, match=r"`autotune dashboard '.*/my run #1'` follows"):
        load_run(folder)
