"""`autotune report`: the interactive plotly charts and the PNGs of a real tiny search, in and linked from one HTML
page that a headless Chromium renders offline without a JavaScript error; degraded runs (failed trials, missing data,
few trials, no study) still get a page."""
from __future__ import annotations

import base64
import html
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from PIL import Image
from sklearn.linear_model import LogisticRegression, Ridge
from plotly.offline import get_plotlyjs
from use_support import Searched, search_in

from autotune import report as report_module
from autotune.api import pareto_front
from autotune.errors import UserError
from autotune.engine.study import param_importances, read_study
from autotune.recipes import ClassPredictions, ValuePredictions
from autotune.recipes import tabular as tabular_recipe
from autotune.report import load_run, write_report
from autotune.report.model_charts import (confusion_table, distribution_figure, distribution_table,
                                          misclassified_table, per_class_figure, per_class_table, predicted_chart,
                                          predicted_figure, residuals_chart, residuals_figure)
from autotune.report.page import REPORT_HEAD
from autotune.report.run import Skip
from autotune.report.style import fmt
from autotune.report.search_charts import (_axis, _numeric_ticks, importance_chart, importance_figure, parallel_figure,
                                           pareto_chart, pareto_figure)

ROOT = Path(__file__).parents[2]
FIGURES = ["history.png", "learning_curves.png", "parallel_coordinates.png", "importance.png",
           "confusion_matrix.png", "per_class_accuracy.png", "misclassified.png", "class_distribution.png"]
CHARTED = FIGURES[:5]  # shown as interactive charts, their PNGs linked
EMBEDDED = FIGURES[5:]  # shown as PNGs embedded in the page
PLOTLY_JS = get_plotlyjs().splitlines()[1]  # "* plotly.js v4.1.1": the bundle's header, once in it


class Page(HTMLParser):
    """The images (those shown on screen, and those printed in place of a chart), links, headings and notes of a
    report page; fails on unbalanced tags."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self, text: str) -> None:
        super().__init__()
        self.images: list[str] = []
        self.printed: list[str] = []  # the PNG of each interactive chart, which the page prints instead
        self.links: list[str] = []
        self.headings: list[str] = []
        self.notes: list[str] = []
        self.sources: list[str] = []  # what <script src>, <link href>, <iframe src> ... would load
        self.open: list[str] = []
        self.classes: list[str] = []  # of the open tags
        self._capture: list[str] | None = None
        self.feed(text)
        assert self.open == [], f"unclosed tags: {self.open}"

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag not in self.VOID:
            self.open.append(tag)
            self.classes.append(attrs.get("class") or "")
        if tag == "img":
            (self.printed if "print" in self.classes else self.images).append(attrs["src"])
        if tag in ("script", "link", "iframe", "embed", "object", "source", "video", "audio"):
            self.sources += [v for k, v in attrs.items() if k in ("src", "href", "data") and v]
        if tag == "a":
            self.links.append(attrs["href"])
        if tag == "h2":
            self._capture = self.headings
        if tag == "p" and attrs.get("class") == "note":
            self._capture = self.notes

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open[-1:]}"
        self.open.pop()
        self.classes.pop()
        if tag in ("h2", "p"):
            self._capture = None

    def handle_data(self, data):
        if self._capture is not None:
            self._capture.append(data)


@pytest.fixture(scope="module")
def report(searched, tmp_path_factory) -> Path:
    return write_report(searched.run_dir, tmp_path_factory.mktemp("report"))


def charts(text: str) -> dict[str, tuple[list[dict], dict]]:
    """The plotly charts of a page: div id -> (traces, layout), read from its `Plotly.newPlot(id, data, layout)`."""
    decoder, found = json.JSONDecoder(), {}
    for call in re.finditer(r'Plotly\.newPlot\(\s*"([^"]+)",\s*', text):
        data, end = decoder.raw_decode(text, call.end())
        layout, _ = decoder.raw_decode(text, re.compile(r",\s*").match(text, end).end())
        found[call.group(1)] = (data, layout)
    return found


def array(value: list | dict) -> np.ndarray:
    """A trace's array as plotly writes it: a list, or a typed array ({"dtype", "bdata" in base64, "shape"})."""
    if isinstance(value, list):
        return np.array(value)
    flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    return flat.reshape([int(n) for n in str(value.get("shape", len(flat))).split(",")])


def hover_text(traces: list[dict]) -> str:
    return " ".join(" ".join(t["hovertext"]) if isinstance(t.get("hovertext"), list) else str(t.get("hovertext", ""))
                    for t in traces)


def test_every_figure_is_written_and_linked_the_png_only_ones_embedded(report):
    page = Page(report.read_text())
    embedded = [base64.b64decode(src.split(",", 1)[1]) for src in page.images]
    printed = [base64.b64decode(src.split(",", 1)[1]) for src in page.printed]
    for name in FIGURES:
        png = report.parent / name
        assert png.is_file(), name
        with Image.open(png) as image:
            assert image.format == "PNG" and min(image.size) >= 250, (name, image.size)
            pixels = np.asarray(image.convert("L"))
        assert pixels.std() > 10, f"{name} looks blank"
        assert (png.read_bytes() in embedded) == (name in EMBEDDED), name
        assert (png.read_bytes() in printed) == (name in CHARTED), name
        assert name in page.links, f"{name} is not linked"
    assert len(page.images) == len(EMBEDDED) and len(page.printed) == len(CHARTED) and page.notes == []
    assert all(src.startswith("data:image/png;base64,") for src in page.images)  # the page stands alone
    assert page.headings[:3] == ["Summary", "Optimisation history", "Learning curves"]


def test_the_page_holds_plotly_js_once_and_loads_nothing(report):
    text = report.read_text()
    assert text.count(PLOTLY_JS) == 1
    assert Page(text).sources == []  # every script inline: no CDN, nothing fetched
    assert not re.search(r"<script[^>]*\ssrc=", text, re.I)
    assert text.index(PLOTLY_JS) < text.index("Plotly.newPlot(")


def test_one_chart_of_each_kind_hovering_the_trials_and_their_parameters(report, searched):
    found = charts(report.read_text())
    assert list(found) == [f"chart-{name.removesuffix('.png')}" for name in CHARTED]
    trials = searched.result.trials
    for kind in ("chart-history", "chart-learning_curves"):
        hover = hover_text(found[kind][0])
        for trial_id in trials["trial_id"]:
            assert f"trial {trial_id}" in hover, (kind, trial_id)
        for name in searched.result.best_params:
            assert f"{name} = " in hover, (kind, name)
    lines = [t for t in found["chart-learning_curves"][0] if t["xaxis"] == "x" and t["mode"] != "markers"]
    best = searched.result.best_trial_id
    assert [t["name"] for t in lines] == [f"a trial ({len(trials) - 1})", f"best trial ({best})"]
    points = [text.split("</b>")[0] for t in lines for text, x in zip(t["hovertext"], array(t["x"]))
              if np.isfinite(x)]
    for trial_id, epochs in zip(trials["trial_id"], trials["epochs"]):
        assert points.count(f"<b>trial {trial_id}") == epochs  # a trial stopped early has a shorter line
    stops = next(t for t in found["chart-learning_curves"][0] if t["name"] == "stopped early by the scheduler")
    assert len(array(stops["x"])) == trials["stopped_early"].sum()
    complete = len(read_study(searched.run_dir / "study.db", "tiny").complete)
    lines = [t for t in found["chart-parallel_coordinates"][0] if t.get("customdata")]
    assert len(lines) == complete  # Optuna's: one line per complete trial
    (bars,) = found["chart-importance"][0]
    assert bars["type"] == "bar" and set(bars["y"]) <= set(searched.result.best_params)
    (matrix,) = found["chart-confusion_matrix"][0]
    assert matrix["type"] == "heatmap" and array(matrix["z"]).shape == (10, 10)


def test_the_pareto_front_of_a_two_objective_run(searched):
    run = load_run(searched.run_dir)
    run.metric, run.mode = ["val_accuracy", "seconds"], ["max", "min"]
    run.summary["pareto"] = pareto_front(run.trials, tuple(run.metric), tuple(run.mode))
    front = {str(p["trial_id"]) for p in run.summary["pareto"]}
    traces = {t.name: t for t in pareto_chart(run).data}
    assert {text.split("</b>")[0].removeprefix("<b>trial ") for text in traces["Pareto front"].hovertext} == front
    assert len(traces["a trial"].x) + len(traces["Pareto front"].x) == len(run.trials)
    hover = " ".join(text for trace in traces.values() for text in trace.hovertext)
    for trial_id in run.trials["trial_id"]:
        assert f"trial {trial_id}" in hover
    assert pareto_figure(run).axes[0].get_xlabel() == "val_accuracy (max)"


def test_the_best_configuration_says_where_each_parameter_was_searched(report, searched):
    """A reviewer saw the best values without the ranges they came from, so could not tell a learning rate at the
    edge of its range (worth searching further) from one inside it."""
    found = re.search(r"<h3>best configuration</h3><table>(.*?)</table>", report.read_text())
    rows = [[html.unescape(cell) for cell in re.findall(r"<t[hd]>(.*?)</t[hd]>", row)]
            for row in re.findall(r"<tr>(.*?)</tr>", found.group(1))]
    assert rows[0] == ["parameter", "value", "searched"] and rows[1][0] == "best trial"
    searched_in = {name: where for name, _, where in rows[2:]}
    assert set(searched_in) == set(searched.result.best_params)
    assert searched_in["optimizer.lr"] == "0.001 to 0.03, log scale"
    assert searched_in["model.width"] == "one of 16, 32"
    assert searched_in["model.dropout"] == "0 to 0.2"


def test_every_png_names_the_run_and_the_model_version(searched, tmp_path, monkeypatch):
    """history.png attached alone to a ticket said 'val_accuracy per trial' and nothing of the search it came from:
    each PNG now names the run and the model's version, in small type at its top left (at its bottom left under a
    figure's own title)."""
    from autotune.report import page as page_module

    saved, save = {}, page_module._save

    def keep(figure, path):
        saved[path.name] = figure
        return save(figure, path)

    monkeypatch.setattr(page_module, "_save", keep)
    write_report(searched.run_dir, tmp_path)
    version = json.loads((searched.model_dir / "model.json").read_text())["version"]
    signed = f"autotune run {searched.result.name}, model version {version}"
    assert set(saved) == set(FIGURES)
    for name, figure in saved.items():
        assert signed in (figure.get_suptitle(), figure.get_supxlabel()), name
    assert saved["misclassified.png"].get_supxlabel() == signed  # its title stays on top


def test_the_summary_says_how_the_search_ran_from_the_model_s_card(report, searched):
    """What an appendix needs to run the search again: the sampler and scheduler with their arguments, the seeds,
    the versions and the machine (the page said what was searched, never how)."""
    card = json.loads((searched.model_dir / "model.json").read_text())
    search, config = card["search"], card["config"]
    rows = dict(re.findall(r"<tr><th>([^<]+)</th><td>([^<]*)</td></tr>", html.unescape(report.read_text())))
    assert search["sampler_args"]  # tpe's multivariate, autotune's default
    assert rows["sampler"] == search["sampler"] + "(" + ", ".join(
        f"{k}={v}" for k, v in search["sampler_args"].items()) + ")"
    assert rows["scheduler"].startswith(search["scheduler"])
    assert rows["seeds"] == (f"search {search['seed']}, train {config['train']['seed']}, "
                             f"data split {config['data']['split_seed']}")
    assert rows["versions"].startswith(f"python {card['versions']['python']}, autotune ")
    machine = card["machine"]
    assert rows["machine"].startswith(f"{machine['cpu']}, {machine['cores']} cores, ")


def test_the_page_states_the_search_and_the_model(report, searched):
    text = report.read_text()
    result = searched.result
    assert f"autotune report: {result.name}" in text and result.best_trial_id in text
    assert str(searched.model_dir) in text or "tiny.versions" in text
    for name in result.best_params:
        assert name in text


def numbers(text: str) -> dict[str, pd.DataFrame]:
    """Each section's table of its chart's numbers (in its <details>), by the section's heading."""
    found = {}
    for section in re.findall(r"<section.*?</section>", text, re.S):
        table = re.search(r"<details class='screen'><summary>([^<]*)</summary>(<table.*?</table>)</details>", section)
        if table:
            heading = html.unescape(re.search(r"<h2>(.*?)</h2>", section).group(1))
            assert html.unescape(table.group(1)) == f"{heading}: the numbers, as a table"  # listed apart, it says
            rows = [[html.unescape(cell) for cell in re.findall(r"<t[hd]>(.*?)</t[hd]>", row)]
                    for row in re.findall(r"<tr>(.*?)</tr>", table.group(2))]
            found[heading] = pd.DataFrame(rows[1:], columns=rows[0])
    return found


def test_every_chart_s_numbers_are_in_a_table_a_screen_reader_reads(report, searched):
    """A chart drawn by plotly or as a PNG says nothing to a screen reader (its SVG reads as a soup of tick labels:
    "25 33 38 24 ... 0 1 2 ... predicted true"), and its values showed on hover only: the counts of the confusion
    matrix, the accuracy of each class, the importances and the split's class counts were on the page nowhere else.
    Each such chart now has its numbers as a table, folded under a line that opens it."""
    tables = numbers(report.read_text())
    assert set(tables) == {"Optimisation history", "Learning curves", "Parameter importance", "Confusion matrix",
                           "Accuracy per class", "Misclassified test images", "Class distribution"}
    history = tables["Optimisation history"]
    assert sorted(history["trial"].astype(str)) == sorted(searched.result.trials["trial_id"].astype(str))
    curves = tables["Learning curves"].set_index("trial")
    best = searched.result.best_trial_id
    assert curves.index[0] == best and set(curves.index) == set(history["trial"])
    reported = pd.read_csv(searched.run_dir / f"trial_{best}" / "progress.csv")["val_accuracy"]
    assert [float(curves.loc[best, f"val_accuracy, epoch {e}"]) for e in range(1, len(reported) + 1)] == \
        pytest.approx(reported.tolist(), abs=5e-4)
    assert set(tables["Parameter importance"]["parameter"]) <= set(searched.result.best_params)
    bars = charts(report.read_text())["chart-importance"][0][0]  # the interactive chart's, computed apart
    importance = tables["Parameter importance"].set_index("parameter").iloc[:, 0]
    assert {name: fmt(float(value)) for name, value in zip(bars["y"], array(bars["x"]))} == importance.to_dict()
    confusion = tables["Confusion matrix"].set_index("true class").astype(int)
    per_class = tables["Accuracy per class"].set_index("class")
    test = tables["Class distribution"]["test"].astype(int)
    assert confusion.to_numpy().sum() == per_class["test images"].astype(int).sum() == test.sum()
    assert [confusion.loc[c, f"predicted {c}"] for c in confusion.index] == per_class["correct"].astype(int).tolist()


def test_the_page_has_landmarks_named_header_cells_and_tables_a_keyboard_scrolls(report):
    """axe-core (the accessibility checker browsers' tools run) found on the page: no main landmark and content
    outside every landmark (a screen reader's "jump to main" went nowhere), a header cell with no text (the best
    configuration's first column), and wide tables that scroll sideways but take no keyboard focus (serious: a
    keyboard user could not reach the columns off the right edge)."""
    text = report.read_text()
    body = re.search(r"<body>(.*)</body>", text, re.S).group(1)
    assert re.fullmatch(r"<header><h1>.*?<nav aria-label='sections'>.*?</header><main>.*</main>", body, re.S)
    assert body.count("<main>") == 1 and "<section" not in body.split("<main>")[0]
    assert "<th></th>" not in text
    wide = re.findall(r"<table class='wide'[^>]*>", text)
    assert wide and all("tabindex='0'" in tag for tag in wide)


def test_the_model_charts_numbers_as_tables():
    labels = ["cat", "dog", "owl"]
    counts = {"train": np.array([3, 2, 1]), "val": np.array([1, 1, 0]), "test": np.array([1, 1, 2])}
    p = ClassPredictions(labels, np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2]), np.array([0.9, 0.8, 0.7, 0.6]),
                         counts, np.zeros((4, 1, 8, 8), np.uint8))
    assert confusion_table(p).to_dict("list") == {"true class": labels, "predicted cat": [1, 0, 0],
                                                  "predicted dog": [0, 1, 1], "predicted owl": [0, 0, 1]}
    assert per_class_table(p).to_dict("list") == {"class": labels, "test images": [1, 1, 2], "correct": [1, 1, 1],
                                                  "accuracy": [1.0, 1.0, 0.5]}
    assert misclassified_table(p).to_dict("list") == {"true": ["owl"], "predicted": ["dog"], "confidence": ["70%"]}
    assert distribution_table(p).to_dict("list") == {"class": labels, "train": [3, 2, 1], "val": [1, 1, 0],
                                                     "test": [1, 1, 2]}
    many = ClassPredictions([str(i) for i in range(30)], np.arange(30), np.arange(30), np.ones(30),
                            {"test": np.ones(30, int)})
    assert confusion_table(many) is None  # 900 cells: the per-class table stays


def test_the_run_is_read_back_like_the_search_left_it(searched):
    run = load_run(searched.run_dir)
    trials = searched.result.trials
    assert run.metric == ["val_accuracy"] and run.mode == ["max"] and run.study is not None
    assert run.params == [c for c in trials.columns if c.startswith("p:")]
    for trial_id, epochs in zip(trials["trial_id"], trials["epochs"]):
        assert len(run.histories[trial_id]) == epochs  # the curves end where ASHA stopped each trial
    assert run.trials["stopped_early"].any(), "ASHA stopped no trial: the curves would show no stop"
    assert run.card["trial_id"] == searched.result.best_trial_id


def test_the_cli_writes_the_report(searched, tmp_path, cli):
    code, out, err = cli("report", searched.run_dir, "--out", tmp_path / "out")
    assert code == 0, err
    assert f"report: {tmp_path / 'out' / 'report.html'}" in out
    assert "report: loading the data the model was trained on, to predict its test split" in err  # what takes long
    assert {p.name for p in (tmp_path / "out").glob("*.png")} == set(FIGURES)


def test_figures_as_pdf_and_svg_are_written_linked_and_removed_by_a_report_without_them(searched, tmp_path, cli):
    out = tmp_path / "out"
    code, printed, err = cli("report", searched.run_dir, "--out", out, "--figures", "pdf", "--figures", "svg")
    assert code == 0, err
    stems = [Path(name).stem for name in FIGURES]
    for stem in stems:
        pdf = (out / f"{stem}.pdf").read_bytes()
        assert pdf.startswith(b"%PDF") and b"/Type3" not in pdf, stem  # vector, its fonts TrueType, not Type 3
        svg = (out / f"{stem}.svg").read_text()
        assert svg.lstrip().startswith("<?xml") and "autotune run" not in svg, stem  # a paper's: unsigned
        assert f"{stem}.pdf" in printed and f"{stem}.svg" in printed
    links = Page((out / "report.html").read_text()).links
    assert {f"{stem}.{form}" for stem in stems for form in ("pdf", "svg")} <= set(links)
    write_report(searched.run_dir, out)  # the same folder, PNGs only: the earlier report's vector files go
    assert sorted(p.name for p in out.iterdir()) == sorted([*FIGURES, "report.html"])
    with pytest.raises(UserError, match="'eps' is no figure format of the report; give 'pdf' or 'svg'"):
        write_report(searched.run_dir, out, formats=["eps"])


def test_a_folder_that_is_not_a_run_exits_2(tmp_path, cli):
    code, out, err = cli("report", tmp_path)
    assert code == 2 and "holds no trials.csv" in err and out == ""


def copy_run(searched, tmp_path: Path, name: str = "run") -> Path:
    """A copy of the run folder (as tmp_path/name) and of its exported model, so that a test may damage them."""
    run_dir = tmp_path / name
    shutil.copytree(searched.run_dir, run_dir, ignore=shutil.ignore_patterns("checkpoint_*", "report"))
    model_dir = tmp_path / f"{name}_model"
    shutil.copytree(searched.model_dir, model_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    summary.update(model_dir=str(model_dir), promotion={})
    (run_dir / "summary.json").write_text(json.dumps(summary))
    return run_dir


def edit_card(run_dir: Path, change) -> None:
    path = Path(json.loads((run_dir / "summary.json").read_text())["model_dir"]) / "model.json"
    card = json.loads(path.read_text())
    change(card)
    path.write_text(json.dumps(card))


def notes(page: Path) -> str:
    return " ".join(Page(page.read_text()).notes)


def test_data_that_cannot_be_loaded_leaves_the_rest_of_the_report(searched, tmp_path):
    run_dir = copy_run(searched, tmp_path)
    edit_card(run_dir, lambda card: card["config"]["data"].update(dataset="no_such_dataset"))
    page = write_report(run_dir)
    assert "could not load the data the model was trained on" in notes(page)
    assert "no_such_dataset" in notes(page)
    assert {p.name for p in page.parent.glob("*.png")} == set(FIGURES[:4])


def test_changed_data_is_flagged(searched, tmp_path):
    run_dir = copy_run(searched, tmp_path)
    edit_card(run_dir, lambda card: card.update(data_fingerprint="0" * 64))
    assert "differs from the data the model was trained on, or is split otherwise" in notes(write_report(run_dir))


def test_failed_trials_and_a_run_without_a_model(searched, tmp_path):
    run_dir = copy_run(searched, tmp_path)
    trials = pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str, "error": str})
    failed = trials["trial_id"][0]
    trials.loc[0, ["status", "val_accuracy", "error"]] = ["ERROR", np.nan, "TrialError: non-finite loss"]
    trials.to_csv(run_dir / "trials.csv", index=False)
    (run_dir / f"trial_{failed}" / "progress.csv").unlink()
    (run_dir / f"trial_{failed}" / "result.json").unlink()
    summary = json.loads((run_dir / "summary.json").read_text())
    summary.update(model_dir=None)
    (run_dir / "summary.json").write_text(json.dumps(summary))
    page = write_report(run_dir)
    assert "the run exported no model" in notes(page)
    assert "<th>failed</th><td>1</td>" in page.read_text()
    assert f"<td>{failed}</td><td>TrialError: non-finite loss</td>" in page.read_text()
    assert (page.parent / "learning_curves.png").is_file() and (page.parent / "history.png").is_file()


def test_the_top_trials_say_how_each_ended_as_the_summary_does(searched, tmp_path):
    """Ray's TERMINATED was the report's word for a trial the scheduler stopped early, and for one that ran to
    its end."""
    run_dir = copy_run(searched, tmp_path)
    trials = pd.read_csv(run_dir / "trials.csv", dtype={"trial_id": str})
    trials["stopped_early"] = [i % 2 == 0 for i in range(len(trials))]
    trials.to_csv(run_dir / "trials.csv", index=False)
    text = write_report(run_dir).read_text()
    top = text.split("<h3>top trials</h3>")[1].split("</table>")[0]
    assert "TERMINATED" not in top and "<td>stopped early</td>" in top and "<td>done</td>" in top


def test_importance_needs_a_few_trials_and_leaves_out_conditional_parameters(searched, tmp_path):
    run = load_run(searched.run_dir)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="conditional", storage=storage, direction="maximize")

    def objective(trial):
        if trial.suggest_categorical("optimizer", ["sgd", "adam"]) == "sgd":
            trial.suggest_float("momentum", 0.0, 1.0)
        return trial.suggest_float("lr", 1e-4, 1.0, log=True)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(objective, n_trials=2)
    run.study = read_study(tmp_path / "study.db", "conditional")
    with pytest.raises(Skip, match="2 complete trial"):
        importance_figure(run)
    study.optimize(objective, n_trials=10)
    run.study = read_study(tmp_path / "study.db", "conditional")
    figure, note = importance_figure(run)
    assert "From 12 complete trials: with few trials these are rough." in note and "momentum" in note
    assert {label.get_text() for label in figure.axes[0].get_yticklabels()} == {"optimizer", "lr"}
    assert set(importance_chart(run).data[0].y) == {"optimizer", "lr"}
    study.optimize(objective, n_trials=8)  # 10 per parameter: 493 trials were still called few
    run.study = read_study(tmp_path / "study.db", "conditional")
    assert importance_figure(run)[1].startswith("From 20 complete trials. Left out")


def test_a_warm_started_run_says_which_of_the_study_s_trials_are_an_earlier_run_s(searched, tmp_path):
    """The charts read from the study drew the history copied by --warm-start with the run's own trials ("From 5
    complete trials" beside a summary of 3 trials), and nothing said the run was warm-started."""
    run_dir = copy_run(searched, tmp_path)
    storage = f"sqlite:///{run_dir / 'study.db'}"
    study = optuna.load_study(study_name=optuna.get_all_study_names(storage)[0], storage=storage)
    own = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.COMPLETE]
    study.add_trials([optuna.trial.create_trial(value=t.value, params=t.params, distributions=t.distributions,
                                                user_attrs={"warm_start_from": "/runs/earlier"}) for t in own[:2]])
    summary = json.loads((run_dir / "summary.json").read_text())
    (run_dir / "summary.json").write_text(json.dumps({**summary, "warm_start": "/runs/earlier"}))
    page = write_report(run_dir)
    text = html.unescape(page.read_text())
    told = f"{len(own) + 2} complete trials (2 of them an earlier run's, told to the sampler by --warm-start)"
    assert f"From {told}" in text and f"parameters of the {told} against" in text
    assert ("<th>warm start from</th><td>/runs/earlier (its finished trials told to the sampler as history, not run "
            "or counted here)</td>") in text


def test_importance_is_ped_anova_s_where_optuna_s_default_evaluator_is_another(tmp_path, monkeypatch):
    """Optuna 4's default evaluator is fANOVA (a random forest, fitted anew at each call): x, which alone decides
    the good values, got 0.60, and the report's chart and table disagreed."""
    optuna_s = optuna.importance.get_param_importances

    def optuna_4s(study, *, evaluator=None, **kwargs):
        return optuna_s(study, evaluator=evaluator or optuna.importance.FanovaImportanceEvaluator(seed=0), **kwargs)

    monkeypatch.setattr(optuna.importance, "get_param_importances", optuna_4s)
    study = optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path / 'study.db'}", direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(lambda trial: 10 * (trial.suggest_float("x", 0, 1) > 0.8)
                   - 10 * (trial.suggest_float("y", 0, 1) > 0.8), n_trials=60)
    assert param_importances(read_study(tmp_path / "study.db", "s"), ["x", "y"])["x"] > 0.9


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_importance_is_of_the_parameter_that_decides_the_good_values(direction, searched, tmp_path):
    """x alone decides which trials are good, y alone which are bad: x is the important one, whichever the
    direction (Optuna's default evaluator takes a given target's low values for the good ones)."""
    sign = 1 if direction == "maximize" else -1
    study = optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path / 'study.db'}", direction=direction,
                                sampler=optuna.samplers.RandomSampler(seed=0))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(lambda trial: sign * (10 * (trial.suggest_float("x", 0, 1) > 0.8)
                                         - 10 * (trial.suggest_float("y", 0, 1) > 0.8)), n_trials=60)
    run = load_run(searched.run_dir)
    run.study, run.metric = read_study(tmp_path / "study.db", "s"), ["value"]
    figure, _ = importance_figure(run)
    assert figure.axes[0].get_yticklabels()[-1].get_text() == "x"  # the top bar
    (bars,) = importance_chart(run).data
    assert dict(zip(bars.y, bars.x))["x"] > 0.9


def test_the_importance_of_each_objective_differs_in_more_than_colour(searched, tmp_path):
    """The interactive importance of a two-objective search was blue and red bars: the same grey, printed or to a
    reader who does not tell them apart. Each objective's bars now have their own fill pattern."""
    study = optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path / 'study.db'}",
                                directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=0))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(lambda trial: (trial.suggest_float("x", 0, 1), trial.suggest_float("y", 0, 1)), n_trials=12)
    run = load_run(searched.run_dir)
    run.study, run.metric = read_study(tmp_path / "study.db", "s"), ["accuracy", "size"]
    patterns = [trace.marker.pattern.shape or "" for trace in importance_chart(run).data]
    assert len(patterns) == 2 and len(set(patterns)) == 2


def test_without_a_study_the_parallel_coordinates_are_a_png_in_the_page(searched, tmp_path):
    run_dir = copy_run(searched, tmp_path)
    (run_dir / "study.db").unlink()
    page = write_report(run_dir)
    assert "No interactive chart: no Optuna study (study.db) in the run folder. The PNG instead." in notes(page)
    assert "Not drawn: no Optuna study" in notes(page)  # importance
    assert "chart-parallel_coordinates" not in charts(page.read_text())
    assert len(Page(page.read_text()).images) == len(EMBEDDED) + 1


def test_the_study_is_read_as_plain_data(searched):
    study = read_study(searched.run_dir / "study.db", "tiny")
    finished = searched.result.trials[~searched.result.trials["stopped_early"]]  # the others are PRUNED
    assert study.directions == ["max"] and len(study.complete) == len(finished)
    lr = study.parameters["optimizer.lr"]
    assert (lr.kind, lr.low, lr.high, lr.log) == ("float", 1e-3, 3e-2, True)
    assert study.parameters["model.width"].choices == ("16", "32")
    assert read_study(searched.run_dir / "no_such.db", "tiny") is None


# ------------------------------------------------------------------------------------------------- figures
# (low, high, log, integer) -> the labels of a numeric axis of the parallel coordinates: both ends and round
# values between them
TICKS = [
    ((0.0, 0.2, False, False), ["0", "0.05", "0.1", "0.15", "0.2"]),
    ((1e-3, 3e-2, True, False), ["0.001", "0.002", "0.005", "0.01", "0.02", "0.03"]),
    ((1e-5, 1e-1, True, False), ["1e-05", "0.0001", "0.001", "0.01", "0.1"]),
    ((1.0, 3.0, False, True), ["1", "2", "3"]),
    ((0.6, 0.93, False, False), ["0.6", "0.7", "0.8", "0.93"]),
    ((0.5, 0.5, False, False), ["0.5"]),
]


@pytest.mark.parametrize(("bounds", "labels"), TICKS, ids=[str(t[0]) for t in TICKS])
def test_numeric_axes_are_labelled_between_their_ends(bounds, labels):
    ticks = _numeric_ticks(*bounds)
    assert [label for _, label in ticks] == labels
    positions = [p for p, _ in ticks]
    assert positions == sorted(positions) and all(0 <= p <= 1 for p in positions)


def test_every_numeric_parameter_axis_has_ticks_between_min_and_max(searched):
    run = load_run(searched.run_dir)
    for column in ("p:model.dropout", "p:optimizer.lr"):
        ticks = _axis(run, run.trials, column).ticks
        assert len(ticks) >= 4, (column, ticks)
    labels = {t.get_text() for t in parallel_figure(run).axes[0].texts}
    assert {"0.05", "0.1", "0.002", "0.01"} <= labels


def test_identical_trials_share_one_line_labelled_with_their_count(searched):
    run = load_run(searched.run_dir)
    copies = run.trials.iloc[[0, 0, 1]].assign(trial_id=["copy1", "copy2", "copy3"])
    run.trials = pd.concat([run.trials, copies], ignore_index=True)
    ax = parallel_figure(run).axes[0]
    lines = [line for line in ax.lines if len(line.get_xdata()) == len(run.params) + 1]  # not the tick marks
    assert len(lines) == len(run.trials) - 3
    assert sorted(t.get_text() for t in ax.texts if t.get_text().endswith(" trials")) == ["2 trials", "3 trials"]
    assert "5 of them on shared lines" in ax.get_title()


def test_a_conditional_choice_of_numbers_keeps_its_options_on_its_axis(tmp_path):
    """A choice of numbers (a pow2, options by position) under a choice of sections has blanks in trials.csv, so
    pandas reads it as floats: the axis showed 8.0 and 16.0 (where the lines went) beside the study's 8, 16, 32, 64
    (where none did). Each value now goes to the study's option equal to it."""
    from autotune.engine.study import ParamRange, StudyData
    from autotune.report.run import Run

    study = StudyData("cond", ["max"], {"model[1].width": ParamRange("categorical", choices=("8", "16", "32", "64")),
                                        "model[1].head": ParamRange("categorical", choices=("0", "1")),
                                        "model[1].norm": ParamRange("categorical", choices=("True", "False"))})
    trials = pd.DataFrame({"trial_id": ["a", "b", "c"], "status": "TERMINATED", "val_accuracy": [0.5, 0.6, 0.7],
                           "p:model[1].width": [8.0, np.nan, 64.0], "p:model[1].head": [1.0, np.nan, 0.0],
                           "p:model[1].norm": [True, np.nan, False]})
    run = Run(tmp_path, "cond", {}, trials, ["val_accuracy"], ["max"], {}, study)
    for column, labels, places in (("p:model[1].width", ["8", "16", "32", "64"], [0.0, 1.0]),
                                   ("p:model[1].head", ["0", "1"], [1.0, 0.0]),
                                   ("p:model[1].norm", ["True", "False"], [0.0, 1.0])):
        axis = _axis(run, trials, column)
        assert [label for _, label in axis.ticks] == [*labels, "n/a"], column
        assert list(axis.values[[0, 2]]) == places and axis.values[1] < 0, column


def test_per_class_and_distribution_figures_name_the_class_axis():
    labels = ["cat", "dog", "owl"]
    truth, predicted = np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2])
    counts = {split: np.array([3, 2, 1]) for split in ("train", "val", "test")}
    p = ClassPredictions(labels, truth, predicted, np.full(4, 0.9), counts, np.zeros((4, 1, 8, 8), np.uint8))
    assert per_class_figure(p).axes[0].get_ylabel() == "class"
    assert distribution_figure(p).axes[0].get_xlabel() == "class"
    assert distribution_figure(p).axes[0].get_ylabel() == "images"
    without_images = ClassPredictions(labels, truth, predicted, np.full(4, 0.9), counts)
    assert distribution_figure(without_images).axes[0].get_ylabel() == "samples"


def test_the_splits_of_the_class_distribution_differ_in_more_than_colour():
    """Train, validation and test bars were blue, orange and green alone: printed in grey, or to a reader who
    does not tell orange from green, the test bars were the validation ones. Each split now has its own hatching,
    in the bars and in the legend."""
    counts = {split: np.array([3, 2, 1]) for split in ("train", "val", "test")}
    p = ClassPredictions(["cat", "dog", "owl"], np.array([0, 1, 2]), np.array([0, 1, 1]), np.full(3, 0.9), counts)
    ax = distribution_figure(p).axes[0]
    hatches = [{bar.get_hatch() for bar in bars} for bars in ax.containers]
    assert hatches == [{None}, {"//"}, {".."}]
    assert [handle.get_hatch() for handle in ax.get_legend().legend_handles] == [None, "//", ".."]


def test_class_predictions_of_probabilities_and_each_splits_classes():
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3]])
    splits = {"train": np.array([0, 0, 1, 2, 2, 2]), "val": np.array([1]), "test": np.array([0, 2, 2])}
    p = ClassPredictions.of(("cat", "dog", "owl"), probabilities, splits)
    assert p.labels == ["cat", "dog", "owl"] and p.images is None
    assert p.truth.tolist() == [0, 2, 2] and p.predicted.tolist() == [0, 2, 1]
    assert p.confidence.tolist() == [0.7, 0.6, 0.5]
    assert {k: v.tolist() for k, v in p.counts.items()} == {"train": [2, 1, 3], "val": [0, 1, 0], "test": [1, 0, 2]}


def test_the_regression_figures_measure_the_errors():
    p = ValuePredictions("price", np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0, 5.0]))
    assert predicted_figure(p).axes[0].get_title() == "price: predicted against true\n4 test samples, RMSE 0.5, MAE 0.25, R² 0.8"
    diagonal, points = predicted_chart(p).data
    assert list(points.x) == [1, 2, 3, 4] and list(points.y) == [1, 2, 3, 5]
    assert (diagonal.x, diagonal.y) == ((1.0, 5.0), (1.0, 5.0))
    (bars,) = residuals_chart(p).data
    counts = list(bars.y)
    assert sum(counts) == 4 and counts[0] == 3 and counts[-1] == 1  # three exact, one 1 too high
    ax = residuals_figure(p).axes[0]
    assert [patch.get_height() for patch in ax.patches] == counts
    assert ax.get_xlabel() == "predicted − true price" and "mean 0.25" in ax.get_title()


def test_the_residuals_title_of_large_errors_fits_its_figure():
    truth = np.array([100_000.0, 200_000.0, 300_000.0, 400_000.0])
    p = ValuePredictions("price", truth, truth + np.array([37_760.5, 11_490.25, 52_003.75, -1_234.5]))
    figure = residuals_figure(p)
    figure.canvas.draw()
    title = figure.axes[0].title
    assert title.get_text().endswith(f"std {fmt(float(np.std(p.predicted - p.truth)))}")  # std 20,993
    drawn, whole = title.get_window_extent(), figure.bbox
    assert whole.x0 <= drawn.x0 and drawn.x1 <= whole.x1  # not cut at the figure's edge


# ----------------------------------------------------------------------------------- the report's own files
def test_a_report_over_an_older_one_keeps_no_stale_figure_and_no_foreign_file_is_touched(searched, tmp_path, cli):
    out = tmp_path / "out"
    out.mkdir()
    for name in ("pareto.png", "misclassified.png"):  # an older report's figures this one does not draw
        (out / name).write_bytes(b"old")
    (out / "report.html").write_text(f"{REPORT_HEAD}old</title><a href='pareto.png'>pareto.png</a>"
                                     "<a href='misclassified.png'><img src='data:image/png;base64,'></a>")
    (out / "my_plot.png").write_bytes(b"mine")
    (out / "notes.txt").write_text("mine")
    run_dir = copy_run(searched, tmp_path)
    edit_card(run_dir, lambda card: card["config"]["data"].update(dataset="no_such_dataset"))  # no model figures
    code, out_text, err = cli("report", run_dir, "--out", out)
    assert code == 0, err
    written = set(FIGURES[:4])
    assert {p.name for p in out.glob("*.png")} == written | {"my_plot.png"}
    assert (out / "my_plot.png").read_bytes() == b"mine" and (out / "notes.txt").read_text() == "mine"
    assert f"figures: {', '.join(sorted(written))}" in out_text
    assert "pareto.png" not in (out / "report.html").read_text()


@pytest.mark.parametrize(("mine", "words"), [
    ({"importance.png": b"mine", "pareto.png": b"mine"}, "holds importance.png, pareto.png, which no autotune report"),
    ({"report.html": b"<html>mine</html>"}, "report.html is not a page autotune report wrote"),
], ids=["figures-of-the-user", "a-page-of-the-user"])
def test_a_report_never_touches_a_file_an_autotune_report_did_not_write(searched, tmp_path, cli, mine, words):
    out = tmp_path / "out"
    out.mkdir()
    for name, data in mine.items():
        (out / name).write_bytes(data)
    code, out_text, err = cli("report", searched.run_dir, "--out", out)
    assert (code, out_text) == (2, "") and words in err and len(err.strip().splitlines()) == 1
    assert {p.name: p.read_bytes() for p in out.iterdir()} == mine


def test_every_figure_the_report_writes_is_one_it_owns(report):
    assert {p.name for p in report.parent.glob("*.png")} <= set(report_module.FIGURES)


def point_summary(run_dir: Path, **changes) -> None:
    summary = json.loads((run_dir / "summary.json").read_text())
    summary.update(changes)
    (run_dir / "summary.json").write_text(json.dumps(summary))


def test_a_canonical_model_of_another_run_is_not_described(searched, tmp_path):
    run_dir = copy_run(searched, tmp_path)
    point_summary(run_dir, promotion={"promoted": True, "version_dir": str(tmp_path / "pruned_version")})
    edit_card(run_dir, lambda card: card.update(trial_id="f00dcafe", run_name="tiny-data-0123abcd"))
    run = load_run(run_dir)
    assert run.model_dir is None and run.card == {}
    page = write_report(run_dir)
    why = notes(page)
    assert f"the model this run exported (trial {searched.result.best_trial_id}) is no longer there" in why
    assert "pruned_version was removed" in why and "another model (trial f00dcafe of run tiny-data-0123abcd)" in why
    assert not (page.parent / "confusion_matrix.png").exists()
    assert f"run {run_dir.resolve()}; written" in page.read_text()  # the page names no model


def test_a_pruned_version_falls_back_to_the_canonical_model_only_when_it_is_this_runs(searched, tmp_path):
    run_dir = copy_run(searched, tmp_path)
    point_summary(run_dir, promotion={"promoted": True, "version_dir": str(tmp_path / "pruned_version")})
    run = load_run(run_dir)
    assert run.model_dir == tmp_path / "run_model" and run.card["trial_id"] == searched.result.best_trial_id
    assert (write_report(run_dir).parent / "confusion_matrix.png").is_file()


def test_a_storage_folder_reports_its_newest_run_and_lists_the_others(searched, tmp_path, cli):
    storage = tmp_path / "runs"
    storage.mkdir()
    old, new = copy_run(searched, storage, "tiny"), copy_run(searched, storage, "tiny-data-0123abcd")
    point_summary(new, name="tiny-data-0123abcd")
    edit_card(new, lambda card: card.update(run_name="tiny-data-0123abcd"))  # a retrain's: name stays "tiny"
    (storage / "tiny.orphaned").mkdir()  # not a run
    os.utime(old / "trials.csv", (1_000_000_000, 1_000_000_000))
    code, out, err = cli("report", storage)
    assert code == 0, err
    assert f"run: {new} (the newest of 2 runs in {storage}; the others: tiny)" in out
    page = new / "report" / "report.html"
    assert f"report: {page}" in out and "autotune report: tiny-data-0123abcd" in page.read_text()
    assert not (old / "report").exists()
    assert "confusion_matrix.png" in out  # the retrained run's own model is described
    code, out, _ = cli("report", old)  # a run's own folder: as before
    assert code == 0 and out.startswith(f"report: {old / 'report' / 'report.html'}")


# ------------------------------------------------------------------------------------------ a tabular model
TABULAR = """
name: {dataset}
recipe: tabular
data: {{dataset: {dataset}, val_fraction: 0.2, test_fraction: 0.2}}
model: {{width: {{choice: [16, 32]}}, depth: 1}}
optimizer: {{lr: 1.0e-2}}
train: {{epochs: 2, batch_size: 32}}
search: {{metric: val_loss, mode: min, trials: 2, max_concurrent: 2, seed: 0, resources: {{cpu: 1}}}}
export: {{dir: models/{dataset}}}
"""


@pytest.fixture(scope="module")
def tabular(ray_session, tmp_path_factory) -> dict[str, Searched]:
    """A tiny search of the tabular recipe on a classification table and on a regression one, by dataset."""
    return {dataset: search_in(tmp_path_factory.mktemp(dataset), TABULAR.format(dataset=dataset))
            for dataset in ("breast_cancer", "diabetes")}


def held_out(dataset: str):
    """The test split the tabular searches' models are measured on."""
    return tabular_recipe.load_data({"dataset": dataset, "val_fraction": 0.2, "test_fraction": 0.2}).test


def test_a_tabular_classifier_gets_its_confusion_matrix_and_no_gallery(tabular, tmp_path):
    searched = tabular["breast_cancer"]
    page = write_report(searched.run_dir, tmp_path)
    text = page.read_text()
    assert Page(text).headings[-3:] == ["Confusion matrix", "Accuracy per class", "Class distribution"]
    assert not any(note.startswith("Not analysed") for note in Page(text).notes)
    (matrix,) = charts(text)["chart-confusion_matrix"][0]
    assert matrix["x"] == matrix["y"] == ["malignant", "benign"]
    assert matrix["hovertemplate"].startswith("true %{y}, predicted %{x}: %{customdata} samples")
    counts = array(matrix["customdata"])
    truth = held_out("breast_cancer").y.numpy()
    assert counts.sum(axis=1).tolist() == np.bincount(truth).tolist()  # every test row, in its true class
    assert np.trace(counts) / counts.sum() == pytest.approx(searched.result.test_metrics["test_accuracy"])
    written = {p.name for p in tmp_path.glob("*.png")}
    assert {"confusion_matrix.png", "per_class_accuracy.png", "class_distribution.png"} <= written
    assert "misclassified.png" not in written  # rows are no images


def test_a_regression_model_gets_predicted_against_true_and_its_residuals(tabular, tmp_path):
    searched = tabular["diabetes"]
    page = write_report(searched.run_dir, tmp_path)
    text = page.read_text()
    assert Page(text).headings[-2:] == ["Predicted against true values", "Residuals"]
    found = charts(text)
    assert "chart-confusion_matrix" not in found
    _, points = found["chart-predicted_vs_true"][0]
    truth, predicted = array(points["x"]), array(points["y"])
    np.testing.assert_allclose(truth, held_out("diabetes").y.numpy())
    rmse = float(np.sqrt(np.mean(np.square(predicted - truth))))
    assert rmse == pytest.approx(searched.result.test_metrics["test_rmse"], rel=1e-5)  # as the export was tested
    assert "target: predicted against true" in found["chart-predicted_vs_true"][1]["title"]["text"]
    (bars,) = found["chart-residuals"][0]
    assert array(bars["y"]).sum() == len(truth)
    assert numbers(text)["Residuals"]["test samples"].astype(int).tolist() == array(bars["y"]).tolist()
    written = {p.name for p in tmp_path.glob("*.png")}
    assert {"predicted_vs_true.png", "residuals.png"} <= written and "confusion_matrix.png" not in written


def lead(text: str) -> dict[str, str]:
    """The lines a page opens with: "Searched", "Best", "Held-out test", "Baseline" -> what each says."""
    found = re.search(r"<ul class='lead'>(.*?)</ul>", text)
    assert found and text.index(found.group(0)) < text.index("<table"), "no lead before the tables"
    items = re.findall(r"<li><b>([^<]+)</b>: (.*?)</li>", found.group(1))
    return {key: html.unescape(value) for key, value in items}


@pytest.mark.parametrize("dataset", ["breast_cancer", "diabetes"])
def test_the_page_opens_with_what_was_searched_what_won_and_a_baseline(tabular, tmp_path, dataset):
    """A reader who never ran the search learns first what it searched, which trial won, how the model does on the
    held-out test split and what a model that learnt nothing scores there; the page gave no baseline at all. And
    what a linear model fitted on the same train rows scores: the page showed only the model that learnt nothing,
    so a searched MLP that a default Ridge beat on the same test rows read as a good model."""
    searched = tabular[dataset]
    said = lead(write_report(searched.run_dir, tmp_path).read_text())
    result, test = searched.result, held_out(dataset)
    assert list(said) == ["Searched", "Best", "Held-out test", "Baseline"]
    assert said["Searched"].startswith(f"{len(result.trials)} trials of {len(result.best_params)} parameters (")
    assert f" on {dataset}, for {result.metric[0]} " in said["Searched"]
    assert said["Best"].startswith(f"trial {result.best_trial_id}, exported as the model; in the search: ")
    assert said["Held-out test"].endswith(f"on {len(test.y)} test samples the search never saw")
    truth = test.y.numpy()
    train = tabular_recipe.load_data({"dataset": dataset, "val_fraction": 0.2, "test_fraction": 0.2}).train
    linear = (LogisticRegression(max_iter=1000) if dataset == "breast_cancer" else Ridge()).fit(
        train.numeric.numpy().astype(np.float64), train.y.numpy()).predict(test.numeric.numpy().astype(np.float64))
    named = ("scikit-learn's LogisticRegression (its defaults, max_iter=1000)" if dataset == "breast_cancer" else
             "scikit-learn's Ridge (its defaults)") + f" fitted on the same {len(train.y)} train rows"
    if dataset == "breast_cancer":
        common = int(np.bincount(train.y.numpy()).argmax())
        accuracy = fmt(result.test_metrics["test_accuracy"])
        assert said["Baseline"] == (f"always answering the most common train class ({['malignant', 'benign'][common]}"
                                    f") scores accuracy {fmt(float(np.mean(truth == common)))}; {named}, "
                                    f"{fmt(float(np.mean(truth == linear)))}; the model, {accuracy}")
    else:
        assert said["Baseline"].startswith(f"predicting the test values' mean ({fmt(float(truth.mean()))}) for every "
                                           f"sample misses by RMSE {fmt(float(truth.std()))}, MAE ")
        rmse = float(np.sqrt(np.mean(np.square(linear - truth))))
        assert f"; {named}, by RMSE {fmt(rmse)}, MAE {fmt(float(np.abs(linear - truth).mean()))}; " in said["Baseline"]
        assert f"the model, by RMSE {fmt(result.test_metrics['test_rmse'])}, MAE " in said["Baseline"]


def test_what_loading_the_data_warned_of_is_listed_beside_the_summary(tabular, tmp_path):
    """The report of a search on a CRM export showed a test accuracy of 1.0 and nothing of the column that gave the
    target away: the warnings that `autotune run` printed were gone with its terminal."""
    import html
    import sklearn.datasets

    run_dir = copy_run(tabular["breast_cancer"], tmp_path)
    bunch = sklearn.datasets.load_breast_cancer(as_frame=True)
    frame = bunch.frame.assign(target=bunch.target_names[bunch.target])
    frame["status"] = frame["target"].map({"malignant": "treated", "benign": "discharged"})
    frame.to_csv(tmp_path / "tumours.csv", index=False)
    edit_card(run_dir, lambda card: card["config"]["data"].update(dataset="csv", path=str(tmp_path / "tumours.csv"),
                                                                   target="target"))
    text = write_report(run_dir, tmp_path / "report").read_text()
    assert Page(text).headings[:2] == ["Summary", "Data warnings"]
    assert (f"<li>data.path {str(tmp_path / 'tumours.csv')!r}: column 'status' gives the target 'target' away: each of "
            "its 2 values goes with a single value of 'target' in every row") in html.unescape(text)
    assert "Data warnings" not in write_report(tabular["breast_cancer"].run_dir, tmp_path / "plain").read_text()


def test_a_recipe_without_test_predictions_gets_one_line(tabular, tmp_path):
    run_dir = copy_run(tabular["breast_cancer"], tmp_path)
    plain = tmp_path / "plain_recipe.py"
    plain.write_text('"""The tabular recipe without test_predictions."""\n'
                     "from autotune.recipes.tabular import SCHEMA, evaluate, export, load_data, train  # noqa: F401\n")
    edit_card(run_dir, lambda card: card.update(recipe=str(plain)))
    page = write_report(run_dir)
    assert (f"Not analysed: recipe {str(plain)!r} gives no test predictions (it defines no "
            "test_predictions(model_dir, data))") in notes(page)
    assert Page(page.read_text()).headings[-1] == "Best model"
    assert {p.name for p in page.parent.glob("*.png")} == {"history.png", "learning_curves.png",
                                                            "parallel_coordinates.png"}


# Chromium with the network blocked: no host name resolves, and any other connection goes to a closed port
CHROMIUM = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9"]


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed (apt-get install chromium)")
def test_headless_chromium_draws_every_chart_and_figure_offline(report, searched, tmp_path):
    """Chromium loads the page offline: a policy forbids every fetch, and a script that runs first records each
    JavaScript error, console error and blocked fetch; a script at the end reads each plotly chart's traces, hovers
    its first point, and reads each <img>'s decoded size and place. A screenshot of the whole page then shows each
    chart drawn and each figure where the page put it."""
    probe = tmp_path / "probe.html"
    text = report.read_text().replace("<meta charset='utf-8'>", "<meta charset='utf-8'>" + WATCH, 1)
    probe.write_text(text.replace("</body>", PROBE + "</body>"))
    done = subprocess.run([*CHROMIUM, "--window-size=1280,1000", "--virtual-time-budget=10000", "--dump-dom",
                           probe.as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r"<pre id=\"probe\">(.*?)</pre>", done.stdout, re.S)
    assert found, done.stderr[-2000:]
    layout = json.loads(html.unescape(found.group(1)))
    assert layout["problems"] == []  # no JavaScript error, no console error, nothing fetched
    assert [c["id"] for c in layout["charts"]] == [f"chart-{name.removesuffix('.png')}" for name in CHARTED]
    for chart, traces in zip(layout["charts"], charts(text).values()):
        assert chart["drawn"] == chart["traces"] == len(traces[0]) >= 1 and chart["marks"] >= 1, chart
        assert chart["width"] > 600 and chart["height"] > 200, chart
    hovers = {chart["id"]: chart["hover"] for chart in layout["charts"]}
    for kind in ("chart-history", "chart-learning_curves"):
        shown = re.match(r"trial (\w+): \d+ epochs", hovers[kind])
        assert shown and shown.group(1) in set(searched.result.trials["trial_id"]), hovers[kind]
        assert all(f"{name} = " in hovers[kind] for name in searched.result.best_params), hovers[kind]
    assert hovers["chart-parallel_coordinates"].startswith("val_accuracy: ")
    assert hovers["chart-importance"].split(" (")[0] in searched.result.best_params
    assert hovers["chart-confusion_matrix"].startswith("true 0, predicted 0: ")
    images = layout["images"]
    assert [i["alt"] for i in images] == TITLES
    for image, name in zip(images, EMBEDDED):
        with Image.open(report.parent / name) as png:
            assert image["complete"] and (image["naturalWidth"], image["naturalHeight"]) == png.size, image
        assert image["width"] > 200 and image["height"] > 100, image
    shot = tmp_path / "page.png"
    done = subprocess.run([*CHROMIUM, f"--window-size=1280,{layout['height']}", "--virtual-time-budget=10000",
                           f"--screenshot={shot}", report.as_uri()], capture_output=True, text=True, timeout=120)
    assert shot.is_file(), done.stderr[-2000:]
    if os.environ.get("AUTOTUNE_SCREENSHOTS"):  # docs/tracking.md shows it
        shutil.copy(shot, Path(os.environ["AUTOTUNE_SCREENSHOTS"]) / "report.png")
    with Image.open(shot) as screenshot:
        page = screenshot.convert("L")
    assert page.size == (1280, layout["height"])
    for chart in layout["charts"]:
        assert np.asarray(page.crop(box(chart)), dtype=float).std() > 10, f"{chart['id']} is blank on the page"
    drawn = {}
    for name in EMBEDDED:
        with Image.open(report.parent / name) as png:
            drawn[name] = png.convert("L")
    for image, name in zip(images, EMBEDDED):
        shown = np.asarray(page.crop(box(image)), dtype=float)
        assert shown.std() > 10, f"{name} is blank on the page"
        distance = {other: np.abs(shown - np.asarray(png.resize(shown.shape[::-1]), dtype=float)).mean()
                    for other, png in drawn.items()}
        assert min(distance, key=distance.get) == name and distance[name] < 10, (name, distance)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed (apt-get install chromium)")
def test_no_chart_has_a_button_that_uploads_its_data(report):
    """plotly.js's tool bar has a "Share chart..." button by default: it opens cloud.plotly.com and sends the
    chart's data there (trial ids, parameters, errors, class names), from a page meant to open offline, and a screen
    reader announced it on every chart. The charts' tools are there without it."""
    done = subprocess.run([*CHROMIUM, "--window-size=1280,1000", "--virtual-time-budget=10000", "--dump-dom",
                           report.as_uri()], capture_output=True, text=True, timeout=120)
    buttons = re.findall(r'class="modebar-btn[^"]*"[^>]*data-title="([^"]+)"', done.stdout)
    assert buttons.count("Download plot as a PNG") == len(CHARTED), buttons
    assert "Share chart..." not in buttons


def laid_out(page: Path, width: int) -> dict:
    """What overflows the page in a Chromium window `width` pixels wide: the document's width, and each paragraph,
    list item, heading or table whose content is wider than its box ("visible ...": cut; "auto ...": behind a
    scroll bar); the images the page prints, where the right edge of each is."""
    probe = page.with_name(f"probe_{page.name}")
    probe.write_text(page.read_text().replace("</body>", FITS + "</body>"))
    done = subprocess.run([*CHROMIUM, f"--window-size={width},900", "--virtual-time-budget=10000", "--dump-dom",
                           probe.as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r"<pre id=\"probe\">(.*?)</pre>", done.stdout, re.S)
    assert found, done.stderr[-2000:]
    return json.loads(html.unescape(found.group(1)))


FITS = """<script>window.addEventListener("load", () => setTimeout(() => {
  const shown = e => e.getClientRects().length > 0;
  const meet = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  const clashes = () => [...document.querySelectorAll(".js-plotly-plot")].filter(shown).flatMap(d => {
    const parts = [...d.querySelectorAll(".modebar, .gtitle, .annotation-text")].filter(e => e.textContent
      || e.classList.contains("modebar")).map(e => [e.textContent || "modebar", e.getBoundingClientRect()]);
    return parts.flatMap(([a, r], i) => parts.slice(i + 1).filter(([, q]) => meet(r, q)).map(([b]) =>
      d.id + ": " + a + " / " + b));
  });
  const probe = document.createElement("pre");
  probe.id = "probe";
  probe.textContent = JSON.stringify({width: document.documentElement.scrollWidth, window: innerWidth,
    overflowing: [...document.querySelectorAll("p, li, h1, h2, h3, table")].filter(e => shown(e)
      && e.scrollWidth > e.clientWidth + 1).map(e => getComputedStyle(e).overflowX + " " + e.tagName + ": "
      + e.textContent.slice(0, 80)),
    printed: [...document.querySelectorAll(".print img")].filter(shown).map(i => i.getBoundingClientRect().right),
    charts: [...document.querySelectorAll(".js-plotly-plot")].filter(shown).length, clashes: clashes()});
  document.body.appendChild(probe);
}, 500));</script>"""


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed (apt-get install chromium)")
def test_the_page_fits_a_narrow_window_and_prints_every_chart_and_column(report, tmp_path):
    """In a window 500 pixels wide (a phone held across; the page asks phones for their own width), a run's and a
    model's paths ran past the right edge, cut; chart titles ran under the chart's buttons, and the learning
    curves' two titles over each other. Printed, the interactive charts kept the width they were drawn for
    (cut at the paper's edge) and the top trials' table its scroll bar (the columns past the paper's edge lost):
    the page now prints each chart's PNG, and the whole table."""
    text = report.read_text()
    assert "<meta name='viewport' content='width=device-width, initial-scale=1'>" in text
    narrow = laid_out(report, 500)
    cut = [e for e in narrow["overflowing"] if not e.startswith("auto TABLE")]  # a wide table scrolls on screen
    assert narrow["width"] <= narrow["window"] and cut == [], narrow
    assert narrow["printed"] == [] and narrow["charts"] == len(CHARTED)
    # no chart's title under its buttons, on its axes' labels, nor its subplots' titles on each other
    assert narrow["clashes"] == [], "\n".join(narrow["clashes"])
    paper = tmp_path / "printed.html"  # the page as printed: its print style applied on screen
    paper.write_text(text.replace("@media print{", "@media all{"))
    printed = laid_out(paper, 720)
    assert printed["width"] <= printed["window"] and printed["overflowing"] == [], printed
    assert len(printed["printed"]) == len(CHARTED) and max(printed["printed"]) <= printed["window"]
    assert printed["charts"] == 0


def box(found: dict) -> tuple[int, ...]:
    """The (left, top, right, bottom) pixels of what the probe measured, for cropping the screenshot."""
    return tuple(round(v) for v in (found["left"], found["top"], found["left"] + found["width"],
                                    found["top"] + found["height"]))


TITLES = ["Accuracy per class", "Misclassified test images", "Class distribution"]
# first in <head>: forbid every fetch (the page must stand alone) and record what goes wrong
WATCH = """<meta http-equiv="Content-Security-Policy"
  content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; font-src data:">
<script>window.problems = [];
addEventListener("error", e => problems.push("error: " + (e.message || e.target.src || e.target.href || e.type)), true);
addEventListener("unhandledrejection", e => problems.push("unhandled rejection: " + e.reason));
addEventListener("securitypolicyviolation", e => problems.push("fetch blocked: " + e.blockedURI));
const consoleError = console.error;
console.error = (...args) => { problems.push("console.error: " + args.join(" ")); consoleError(...args); };
</script>"""
# last in <body>: what was drawn, and where; what hovering the first point of each chart shows
PROBE = """<script>window.addEventListener("load", () => setTimeout(() => {
  const box = e => { const r = e.getBoundingClientRect();
    return {left: r.left + scrollX, top: r.top + scrollY, width: r.width, height: r.height}; };
  const hover = d => { Plotly.Fx.hover(d, d.data[0].type === "heatmap" ? {xval: 0, yval: 0}
    : [{curveNumber: 0, pointNumber: 0}]); return d.querySelector(".hoverlayer").textContent; };
  const probe = document.createElement("pre");
  probe.id = "probe";
  probe.textContent = JSON.stringify({height: document.documentElement.scrollHeight, problems,
    charts: [...document.querySelectorAll(".js-plotly-plot")].map(d => ({id: d.id, traces: (d.data || []).length,
      drawn: d.querySelectorAll(".main-svg .trace, .main-svg .hm").length,
      marks: d.querySelectorAll(".main-svg .trace .point, .main-svg .trace .js-line, .main-svg .trace .bars path,"
        + " .main-svg .hm image").length, ...box(d), hover: hover(d)})),
    images: [...document.images].filter(i => !i.closest(".print")).map(i => ({alt: i.alt, complete: i.complete,
      naturalWidth: i.naturalWidth,
      naturalHeight: i.naturalHeight, ...box(i)}))});
  document.body.appendChild(probe);
}, 500));</script>"""


@pytest.mark.parametrize("value, shown", [
    (18650.3, "18,650"), (1865.7, "1,866"), (3000.0, "3,000"), (-123456.0, "-123,456"), (999.94, "999.9"),
    (0.07429, "0.07429"), (2.5e-05, "2.5e-05"), (1e20, "1e+20"), (float("nan"), "n/a"), (12345, "12,345"), (7, "7"),
])
def test_numbers_are_shown_without_an_exponent_from_a_thousand_up(value, shown):
    """samples_per_second read 1.865e+04 in the metrics table: a reader expects 18,650."""
    assert fmt(value) == shown


def test_a_character_no_font_draws_is_one_line_not_a_warning_per_figure(tmp_path, recwarn):
    """A class named 'chien 🐶': Matplotlib warned per character and figure, with its source line, three times per
    report; the report now gathers them for one line (the interactive charts draw them)."""
    import warnings

    from autotune.report.page import _save
    from autotune.report.style import static_figure

    missing: set[str] = set()
    for _ in range(2):
        figure = static_figure(3, 2)
        figure.subplots().set_title("chien 🐶")
        missing |= _save(figure, tmp_path / "f.png")
    assert missing == {"🐶"} and (tmp_path / "f.png").is_file()
    assert not [w for w in recwarn if "Glyph" in str(w.message)]
    with pytest.warns(UserWarning, match="kept"):  # any other warning goes on as it was
        figure = static_figure(3, 2)
        figure.subplots().set_title("plain")
        with warnings.catch_warnings():
            figure.canvas.mpl_connect("draw_event", lambda event: warnings.warn("kept", UserWarning))
            _save(figure, tmp_path / "g.png")


def test_matplotlib_3_8_s_words_for_a_character_no_font_draws_are_gathered_too(tmp_path, recwarn):
    """Matplotlib 3.8 says "missing from current font.": its warnings were shown, one per character and figure."""
    import warnings

    from autotune.report.page import _save

    class Figure:
        def savefig(self, path):
            warnings.warn("Glyph 128054 (\\N{DOG FACE}) missing from current font.", UserWarning)
            path.write_bytes(b"")

    assert _save(Figure(), tmp_path / "f.png") == {"🐶"}
    assert not [w for w in recwarn if "Glyph" in str(w.message)]


def test_a_character_an_installed_font_draws_is_drawn_with_it_not_as_a_box(tmp_path):
    """A class named in Chinese was a row of boxes in every PNG, a CJK font installed or not: Matplotlib draws with
    its own DejaVu Sans alone unless told of another font. A character it lacks that an installed font draws is
    drawn with that font (here 'ℊ', which STIXGeneral, shipped with Matplotlib, draws), and the fonts found are
    kept for the next figures; a character no font draws (U+0378, unassigned) is still said."""
    from types import SimpleNamespace

    from autotune.report.page import _drawn
    from autotune.report.style import static_figure

    def draw(title: str):
        def figure():
            drawn = static_figure(3, 2)
            drawn.subplots().set_yticks([0, 1], ["ℊ", title])
            return drawn
        return figure

    run = SimpleNamespace(name="ℊ run", card={})
    fonts: list[str] = []
    missing: set[str] = set()
    assert _drawn(draw("plain"), run, tmp_path / "f.png", [], fonts, missing) == ""
    assert len(fonts) == 1 and not missing and (tmp_path / "f.png").is_file()  # STIXGeneral, or a font of the system
    found = list(fonts)
    _drawn(draw("odd \u0378"), run, tmp_path / "g.png", [], fonts, missing)
    assert fonts == found and missing == {"\u0378"}


# The run a model came from, deleted to free disk: the report of the model folder said "report that run with
# `autotune report /srv/runs/digits` where it is", a command on a folder that no longer exists.
@pytest.mark.parametrize(("card", "says"), [
    ({"run_dir": "{tmp}/runs/gone"}, "the run that made it, {tmp}/runs/gone, is gone (deleted, or moved elsewhere)"),
    ({"run_dir": "{tmp}/runs/here"}, "the run that made it ({tmp}/runs/here) has no trials.csv here"),
    ({"name": "m"}, "the run that made it is not named in its card"),
])
def test_the_report_of_a_model_whose_run_is_not_there_says_why(tmp_path, card, says):
    from autotune.errors import UserError

    (tmp_path / "runs" / "here").mkdir(parents=True)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.json").write_text(json.dumps({k: v.format(tmp=tmp_path) for k, v in card.items()}))
    with pytest.raises(UserError) as refused:
        load_run(tmp_path / "model")
    assert says.format(tmp=tmp_path) in str(refused.value) and "\n" not in str(refused.value)


def test_the_learning_curves_table_holds_the_trials_of_the_best_values_only(tmp_path):
    """A search of 1,000 trials of 52 epochs made a learning-curves table of 54,000 cells (0.7 MB of the page) that
    no one reads through: it holds the best trial, then those of the next best values, 25 in all."""
    from autotune.report.run import Run
    from autotune.report.search_charts import CURVES_TABLE_TRIALS, curves_table

    ids = [f"t{i:02d}" for i in range(40)]
    finals = {trial: 0.5 + i / 100 for i, trial in enumerate(ids)}  # t39 scores highest
    histories = {trial: pd.DataFrame({"epoch": [1, 2], "val_accuracy": [value - 0.1, value]})
                 for trial, value in finals.items()}
    histories["t00"]["val_accuracy"] = [float("nan"), float("nan")]  # diverged: no finite value, ranked last
    trials = pd.DataFrame({"trial_id": ids, "status": "TERMINATED", "val_accuracy": list(finals.values())})
    run = Run(tmp_path, "big", {"best_trial_id": "t20"}, trials, ["val_accuracy"], ["max"], histories)
    table = curves_table(run)
    assert len(table) == CURVES_TABLE_TRIALS == 25
    assert list(table["trial"]) == ["t20"] + [f"t{i}" for i in range(39, 0, -1) if i != 20][:24]
    run.mode = ["min"]  # the lowest values first where the objective is minimised
    assert list(curves_table(run)["trial"])[:3] == ["t20", "t01", "t02"]


def test_a_report_on_a_full_disk_is_one_line_and_leaves_no_page_cut_short(searched, tmp_path, monkeypatch, capsys):
    """A disk that filled while the page was written ended `autotune report` in a traceback (exit 1) and left a
    report.html cut short, which opened as a report without its end. Now one line names the folder and its free
    space (exit 3), and no part of a page is left."""
    import errno

    from autotune.cli import main

    real = Path.write_text

    def full(self, text, *args, **kwargs):
        if not self.name.startswith("report.html"):
            return real(self, text, *args, **kwargs)
        real(self, text[:1000], *args, **kwargs)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_text", full)
    out = tmp_path / "report"
    assert main(["report", str(searched.run_dir), "--out", str(out)]) == 3
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert re.fullmatch(rf"autotune report: error: no room for the report in {re.escape(str(out))}: its disk is full "
                        r"\(.+ free\); free space there, or write it to another disk with --out DIR", line), line
    assert [p.name for p in out.iterdir() if "report.html" in p.name] == []
