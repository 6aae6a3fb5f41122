"""`autotune run SPACE`: validate, search, export the best model, print a summary."""
from __future__ import annotations

import argparse
import logging
import shlex
import sys

from autotune.cli.common import add_space_arguments, non_negative_float, positive_int

EPILOG = """\
examples:
  autotune run search_spaces/digits.yaml                       the offline quick start (about a minute)
  autotune run search_spaces/mnist.yaml --set search.trials=50 more trials
  autotune run search_spaces/mnist.yaml --resume               continue an interrupted search
  autotune run search_spaces/mnist.yaml --address auto         use a running Ray cluster (docs/cluster.md)
  autotune run search_spaces/mnist.yaml --if-data-changed      retrain only when the data changed
  tensorboard --logdir runs/mnist                              compare the trials
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "run", help="run a search and export the best model", description=__doc__, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_space_arguments(parser)
    parser.add_argument("--storage", default="runs", help="folder or URI for trials and logs (default: runs/)")
    parser.add_argument("--address", help="join a Ray cluster: 'auto' or 'ray://HOST:PORT'")
    parser.add_argument("--num-cpus", type=positive_int, help="CPUs for a local Ray (default: all)")
    parser.add_argument("--num-gpus", type=non_negative_float, help="GPUs for a local Ray (default: detected)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true", help="continue the interrupted run of this space")
    group.add_argument("--restart", action="store_true", help="delete the existing run of this space first")
    parser.add_argument("--no-export", action="store_true", help="search only; do not export a model")
    parser.add_argument(
        "--if-data-changed", action="store_true",
        help="retrain only when the data differs from the current model's (warm-started, promoted only if "
        "better); for cron/CI, see docs/retraining.md",
    )
    parser.set_defaults(func=run)


def _resume_command(args: argparse.Namespace) -> str:
    words = ["autotune", "run", args.space, *[f"--set={o}" for o in args.overrides], "--resume"]
    return " ".join(shlex.quote(w) for w in words)


def run(args: argparse.Namespace) -> int:
    progress = logging.StreamHandler(sys.stdout)
    progress.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("autotune")
    logger.addHandler(progress)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        return _run(args)
    finally:
        logger.removeHandler(progress)


def _run(args: argparse.Namespace) -> int:
    from autotune.api import fit, load_space
    from autotune.engine.summary import format_summary

    space = load_space(args.space, args.overrides)  # every problem is reported before Ray starts
    if not args.if_data_changed:
        print(f"Searching {space.name!r}: {space.search.trials} trials, sampler {space.search.sampler}, "
              f"scheduler {space.search.scheduler}, metric {'/'.join(space.search.metric)}", flush=True)
    result = fit(
        space, storage=args.storage, address=args.address, num_cpus=args.num_cpus, num_gpus=args.num_gpus,
        resume=args.resume, restart=args.restart, export=not args.no_export, verbose=args.verbose,
        if_data_changed=args.if_data_changed,
    )
    if result is None:  # --if-data-changed and the data is the current model's
        return 0
    print()
    print(format_summary(result))
    if result.interrupted:
        print(f"\nResume with: {_resume_command(args)}")
        return 130
    return 0
