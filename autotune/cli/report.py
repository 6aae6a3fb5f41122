"""`autotune report RUN_DIR`: an interactive HTML report (with PNGs) of a finished search and the model it exported."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from autotune.cli.common import RUN_FOLDER, HelpFormatter, check_folder, check_out_dir, local_run_folder
from autotune.paths import expanded, room_for

EPILOG = """\
examples:
  autotune report runs/digits                        writes runs/digits/report/report.html and its PNGs
  autotune report runs/digits --out /tmp/digits      somewhere else
  autotune report runs/                              the newest run in the storage folder (e.g. a retrain's
                                                     runs/digits-data-<fingerprint>/); the others are listed
  autotune report s3://bucket/runs/digits            a run kept at a URI (--storage): read from its local mirror
  autotune report runs/digits --figures pdf          each figure also as a PDF (vector, fonts embedded: for a paper)

The page shows interactive charts (hover a point for its trial and parameters, drag to zoom) of the
optimisation history, every trial's learning curve (marking where the scheduler stopped it), parallel
coordinates, Optuna's parameter importance, the Pareto front of a multi-objective search, and for the exported
model, on the held-out test split: a classifier's confusion matrix, then its accuracy per class, misclassified
images (of an image classifier) and the class distribution of each split; a regression model's predicted against
true values and its residuals; each chart's numbers also as a table (what a screen reader reads of it). plotly.js
is inline in report.html, so the HTML file alone opens offline and can be mailed or archived. Every figure is also a
PNG file beside report.html, and with --figures pdf (or svg) a vector file too. The model section loads the data
named in the model's card and asks the model's recipe for its test predictions (test_predictions); when it cannot
(data gone, no network, a recipe without test_predictions), the page says so in a line and shows the rest.
"""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report", help="an interactive HTML report of a search and its best model", epilog=EPILOG,
        description="Write an interactive HTML report (plus PNGs) about a finished search and the model it exported.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("run_dir", metavar="RUN_DIR",
                        help="the run's folder, e.g. runs/digits, or a storage folder of runs (the newest is used); "
                        "a run's URI (--storage s3://...) reads its local mirror")
    parser.add_argument("--out", metavar="DIR", help="where to write report.html and the PNGs (default RUN_DIR/report)")
    parser.add_argument("--figures", metavar="FORMAT", action="append", choices=("pdf", "svg"), default=[],
                        help="also write each figure in this vector format, beside its PNG: pdf or svg (repeat for "
                        "both)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from autotune.logs import lines_to
    from autotune.report import VECTOR_FORMATS, figure_files, find_run, write_report

    folder = local_run_folder(args.run_dir)
    check_folder(folder, "RUN_DIR", RUN_FOLDER)
    if args.out is not None:
        check_out_dir(args.out, "--out", "--out reports/NAME")
    run_dir, others = find_run(folder)
    if others:
        print(f"run: {run_dir} (the newest of {len(others) + 1} runs in {folder}; "
              f"the others: {', '.join(p.name for p in others)})")
    elif (Path(folder) / "model.json").is_file() and not (Path(folder) / "trials.csv").is_file():
        print(f"run: {run_dir} (the run that made the model in {folder})")
    out = expanded(args.out) if args.out is not None else Path(run_dir) / "report"
    elsewhere = "free space there, or write it to another disk with --out DIR"
    with lines_to(sys.stderr), room_for("the report", out, elsewhere):
        page = write_report(run_dir, args.out, args.figures)  # lines_to: what it does while it loads the data, warnings
    figures = sorted(name for name in figure_files(VECTOR_FORMATS) if (page.parent / name).is_file())
    print(f"report: {page}")
    print(f"figures: {', '.join(figures)}")
    return 0
