"""`autotune report`: the PNGs of a real tiny search, embedded in and linked from one HTML page that a headless
Chromium renders; degraded runs (failed trials, missing data, few trials) still get a page."""
from __future__ import annotations

import base64
import json
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

from autotune.report import _Skip, importance_figure, load_run, write_report

ROOT = Path(__file__).parents[2]
FIGURES = ["history.png", "learning_curves.png", "parallel_coordinates.png", "importance.png",
           "confusion_matrix.png", "per_class_accuracy.png", "misclassified.png", "class_distribution.png"]


class Page(HTMLParser):
    """The images, links, headings and notes of a report page; fails on unbalanced tags."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self, text: str) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []
        self.headings: list[str] = []
        self.notes: list[str] = []
        self.open: list[str] = []
        self._capture: list[str] | None = None
        self.feed(text)
        assert self.open == [], f"unclosed tags: {self.open}"

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag not in self.VOID:
            self.open.append(tag)
        if tag == "img":
            self.images.append(attrs["src"])
        if tag == "a":
            self.links.append(attrs["href"])
        if tag == "h2":
            self._capture = self.headings
        if tag == "p" and attrs.get("class") == "note":
            self._capture = self.notes

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open[-1:]}"
        self.open.pop()
        if tag in ("h2", "p"):
            self._capture = None

    def handle_data(self, data):
        if self._capture is not None:
            self._capture.append(data)


@pytest.fixture(scope="module")
def report(searched, tmp_path_factory) -> Path:
    return write_report(searched.run_dir, tmp_path_factory.mktemp("report"))


def test_every_figure_is_written_embedded_and_linked(report):
    page = Page(report.read_text())
    embedded = [base64.b64decode(src.split(",", 1)[1]) for src in page.images]
    for name in FIGURES:
        png = report.parent / name
        assert png.is_file(), name
        with Image.open(png) as image:
            assert image.format == "PNG" and min(image.size) >= 250, (name, image.size)
            pixels = np.asarray(image.convert("L"))
        assert pixels.std() > 10, f"{name} looks blank"
        assert png.read_bytes() in embedded, f"{name} is not embedded"
        assert name in page.links, f"{name} is not linked"
    assert len(page.images) == len(FIGURES) and page.notes == []
    assert all(src.startswith("data:image/png;base64,") for src in page.images)  # the page stands alone
    assert page.headings[:3] == ["Summary", "Optimisation history", "Learning curves"]


def test_the_page_states_the_search_and_the_model(report, searched):
    text = report.read_text()
    result = searched.result
    assert f"autotune report: {result.name}" in text and result.best_trial_id in text
    assert str(searched.model_dir) in text or "tiny.versions" in text
    for name in result.best_params:
        assert name in text


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
    assert {p.name for p in (tmp_path / "out").glob("*.png")} == set(FIGURES)


def test_a_folder_that_is_not_a_run_exits_2(tmp_path, cli):
    code, out, err = cli("report", tmp_path)
    assert code == 2 and "holds no trials.csv" in err and out == ""


def copy_run(searched, tmp_path: Path) -> Path:
    """A copy of the run folder and of its exported model, so that a test may damage them."""
    run_dir = tmp_path / "run"
    shutil.copytree(searched.run_dir, run_dir, ignore=shutil.ignore_patterns("checkpoint_*", "report"))
    model_dir = tmp_path / "model"
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
    assert "differs from the data the model was trained on" in notes(write_report(run_dir))


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


def test_importance_needs_a_few_trials_and_leaves_out_conditional_parameters(searched):
    run = load_run(searched.run_dir)
    study = optuna.create_study(direction="maximize")

    def objective(trial):
        if trial.suggest_categorical("optimizer", ["sgd", "adam"]) == "sgd":
            trial.suggest_float("momentum", 0.0, 1.0)
        return trial.suggest_float("lr", 1e-4, 1.0, log=True)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(objective, n_trials=2)
    run.study = study
    with pytest.raises(_Skip, match="2 complete trial"):
        importance_figure(run)
    study.optimize(objective, n_trials=10)
    _, note = importance_figure(run)
    assert "From 12 complete trials" in note and "momentum" in note


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed (apt-get install chromium)")
def test_headless_chromium_renders_the_page(report, tmp_path):
    shot = tmp_path / "page.png"
    done = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,2400",
         f"--screenshot={shot}", report.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert shot.is_file(), done.stderr[-2000:]
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("RGB")).astype(int)
    assert pixels.shape[:2] == (2400, 1280)
    colourful = (pixels.max(axis=2) - pixels.min(axis=2)) > 60  # the plots' blue and orange, not text on white
    assert colourful.mean() > 0.005, "the screenshot shows no figure"
    assert re.search(r"data:image/png;base64,", report.read_text())
