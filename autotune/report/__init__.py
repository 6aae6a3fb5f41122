"""`autotune report RUN_DIR`: one HTML page about a finished search and its best model, with interactive plotly
charts (plotly.js inline, once: the page stands alone and opens offline), and each figure also as a PNG file beside
it (for CI artefacts and tickets), and where asked as a PDF or SVG (vector: for a paper).

    page = write_report("runs/digits")          # runs/digits/report/report.html, history.png, ...
    write_report("runs/digits", formats=["pdf"])  # history.pdf beside history.png, ...

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

The modules, one concern each:
    run.py            reading a run: `Run`, `find_run`, `load_run`
    search_charts.py  the search's charts (history, learning curves, parallel coordinates, importance, Pareto)
    model_charts.py   the exported model's charts on the test split (`evaluate_model`, confusion matrix, ...)
    page.py           the HTML page and `write_report`
    style.py          the look and formatting every chart shares (colours, numbers, figures)
"""
from __future__ import annotations

from autotune.report.page import FIGURES, VECTOR_FORMATS, figure_files, write_report
from autotune.report.run import Run, find_run, load_run

__all__ = ["FIGURES", "VECTOR_FORMATS", "Run", "figure_files", "find_run", "load_run", "write_report"]
