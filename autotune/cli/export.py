"""`autotune export RUN_DIR --trial ID [--out DIR]`: export a trial of a finished run chosen by its id (one of the
Pareto front of a search of several objectives, say), tested on the held-out split as the search's export is."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from autotune.cli.common import RUN_FOLDER, HelpFormatter, check_folder, check_out_dir, local_run_folder

EPILOG = """\
examples:
  autotune export runs/tab3 --trial 5f932f33                  the run's canonical model (export.dir) becomes trial
                                                              5f932f33's; `autotune rollback` goes back
  autotune export runs/tab3 --trial 5f932f33 --out models/tab3-small    a plain model folder instead
  autotune export s3://bucket/runs/tab3 --trial 5f932f33      a run kept at a URI (--storage): its local mirror

The trial's best checkpoint is exported: the epoch its row of trials.csv (and the Pareto front of the summary,
summary.json and the report) shows. With several objectives every trial keeps that checkpoint; with one objective
a trial keeps it only when it was the search's best so far, and a trial without one is refused (train its
configuration with `autotune train SPACE --set ... --out DIR`). The run's folder is enough: its space.json and
summary.json say the recipe, the ingredients and export.dir. Without --out the new model replaces the canonical
one whatever export.promote says, atomically, the one before kept as a version; its card's promotion says it was
chosen by trial id. --out DIR writes a plain folder, as `autotune train --out` does; a DIR that is a canonical
model is refused.
"""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export", help="export a trial of a finished run, chosen by its id", epilog=EPILOG,
        description="Export a trial of a finished run as a model, chosen by its id (e.g. one of the Pareto front), "
                    "tested on the held-out split.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run's folder, e.g. runs/digits, or its URI")
    parser.add_argument("--trial", required=True, metavar="ID", help="the trial's id, as the summary and trials.csv "
                        "list it")
    parser.add_argument("--out", metavar="DIR", help="a plain model folder to write (default: the run's canonical "
                        "model at the space's export.dir)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from autotune.api import export
    from autotune.logs import lines_to

    folder = local_run_folder(args.run_dir)
    check_folder(folder, "RUN_DIR", RUN_FOLDER)
    if args.out is not None:  # a canonical model as --out: refused by `export` itself, from Python too
        check_out_dir(args.out, "--out", "--out models/NAME-trial")
    with lines_to(sys.stdout):  # the registry's champion following a promoted export, or why not
        result = export(folder, args.trial, args.out)
    tested = ", ".join(f"{k} {v:.4f}" for k, v in result.test_metrics.items()) or "none (no evaluate())"
    print(f"model: {result.model_dir} (trial {result.best_trial_id}; held-out test split: {tested})")
    if result.promotion:  # the canonical model's: chosen by trial id, or this trial's already
        print(f"promotion: {result.promotion.get('reason', '')}")
    return 0
