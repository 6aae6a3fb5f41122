"""`autotune rollback MODEL_DIR [--to VERSION]`: make an earlier version of a canonical model current again."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from autotune.cli.common import HelpFormatter

EPILOG = """\
examples:
  autotune rollback models/digits                        the version that was current before this one
  autotune rollback models/digits --to 20261206-011326-969714-3f2a1b
  autotune ls versions models/digits                     the versions: run, trial, decision, kept or deleted

The link models/<name> moves to the version in one step: `predict` and `load_model` read it from then on, and a
running `autotune serve models/<name>` answers with it within seconds. Its card takes the current card's history,
with the rollback in it, and its promotion records the rollback (from which version, when): a later `autotune run
SPACE --if-data-changed` skips the data whose models were rolled back, and searches new data against this
version. The versions kept: the current one, the 3 that were current before it, and the newest never promoted
(docs/retraining.md). A plain folder (`autotune train --out`) that an export replaced is kept as a version
(previous-...) that a rollback goes back to. Another link to the model (ln -s models/digits digits_alias) is
followed to it: the rollback moves models/digits.
"""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "rollback", help="make an earlier version of a canonical model current again", epilog=EPILOG,
        description="Make an earlier version of a canonical model (models/<name>, as `autotune run` exports it) "
                    "current again.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("model_dir", metavar="MODEL_DIR", help="a canonical model, e.g. models/digits")
    parser.add_argument("--to", metavar="VERSION",
                        help="the version to make current (default: the one that was current before this one)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from autotune.api import follow_registry
    from autotune.engine.export import roll_back
    from autotune.logs import lines_to
    from autotune.model_dir import read_card

    with lines_to(sys.stdout):
        left, now = roll_back(args.model_dir, args.to)  # a version passed over because it is gone: a line
        card = read_card(Path(args.model_dir).resolve().parent / now)  # an export may have moved the link since
        run_name = card.get("run_name")
        made = f" (trial {card.get('trial_id', '?')} of run {run_name})" if run_name else ""
        print(f"{args.model_dir}: version {now}{made} is current (was {left})")
        follow_registry(read_card(args.model_dir))  # a registry's champion moves with the link, where it is now
    return 0
