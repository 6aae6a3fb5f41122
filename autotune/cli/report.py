"""`autotune report RUN_DIR`: an HTML report (with PNGs) of a finished search and the model it exported."""
from __future__ import annotations

import argparse
from typing import Any

EPILOG = """\
examples:
  autotune report runs/digits                        writes runs/digits/report/report.html and its PNGs
  autotune report runs/digits --out /tmp/digits      somewhere else

The page shows the optimisation history, every trial's learning curve (marking where the scheduler stopped
it), parallel coordinates, Optuna's parameter importance, the Pareto front of a multi-objective search, and
for the exported model, on the held-out test split: a confusion matrix, the accuracy per class, misclassified
images and the class distribution of each split. The figures are PNG files beside report.html and are also
embedded in it, so the HTML file alone can be mailed or archived. The model section loads the data named in
the model's card; when it cannot (data gone, no network), the page says so and shows the rest.
"""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report", help="an HTML report of a search and its best model", epilog=EPILOG,
        description="Write an HTML report (plus PNGs) about a finished search and the model it exported.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run's folder, e.g. runs/digits")
    parser.add_argument("--out", metavar="DIR", help="where to write report.html and the PNGs (default RUN_DIR/report)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from autotune.report import write_report

    page = write_report(args.run_dir, args.out)
    figures = sorted(p.name for p in page.parent.glob("*.png"))
    print(f"report: {page}")
    print(f"figures: {', '.join(figures)}")
    return 0
