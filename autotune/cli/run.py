"""`autotune run SPACE`: validate, search, export the best model, print a summary."""
from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from autotune.cli.common import (HelpFormatter, add_space_arguments, check_folder_path, non_negative_float,
                                 positive_int, terminal_width)
from autotune.errors import StorageFull
from autotune.logs import lines_to

EPILOG = """\
examples:
  autotune run search_spaces/digits.yaml                        the offline quick start (about a minute)
  autotune run search_spaces/mnist.yaml --set search.trials=50  more trials
  autotune run search_spaces/mnist.yaml --resume                continue an interrupted search
  autotune run search_spaces/mnist.yaml --set name=mnist-2 --warm-start runs/mnist
                                                                a new search told runs/mnist's finished trials
  autotune run search_spaces/mnist.yaml --address auto          use a running Ray cluster (docs/cluster.md)
  autotune run search_spaces/mnist.yaml --if-data-changed       retrain only when the data changed
  tensorboard --logdir runs/mnist                               compare the trials
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "run", help="run a search and export the best model", epilog=EPILOG,
        description="Run a search: validate the space, run its trials with Ray Tune (proposed by Optuna, stopped "
        "early by the scheduler), export the best model and print a summary.",
        formatter_class=HelpFormatter,
    )
    add_space_arguments(parser)
    parser.add_argument("--storage", default="runs", metavar="DIR",
                        help="folder or URI (s3://...) for trials and logs (default: runs/)")
    parser.add_argument("--address", help="join a Ray cluster: 'auto', HOST:PORT or 'ray://HOST:PORT' (default: "
                        "the one $RAY_ADDRESS names, else a local Ray)")
    parser.add_argument("--num-cpus", type=positive_int, metavar="N",
                        help="CPUs for a local Ray (default: those this process may run on: a batch job's "
                        "allocation, taskset)")
    parser.add_argument("--num-gpus", type=non_negative_float, metavar="N",
                        help="GPUs for a local Ray (default: detected)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true", help="continue the interrupted run of this space")
    group.add_argument("--restart", action="store_true", help="delete the existing run of this space first")
    parser.add_argument(
        "--warm-start", metavar="RUN_DIR",
        help="tell the sampler the finished trials of an earlier run (its folder, e.g. runs/mnist, or an Optuna "
        "SQLite file, e.g. old.db) whose parameters still fit the space; they are not run again (not with --resume)",
    )
    parser.add_argument("--no-export", action="store_true", help="search only; do not export a model")
    parser.add_argument(
        "--if-data-changed", action="store_true",
        help="retrain only when the data differs from the current model's (warm-started, promoted only if "
        "better; an interrupted retrain is resumed by itself, so not with --resume, and it exports, so not with "
        "--no-export); for cron/CI, see docs/retraining.md",
    )
    parser.set_defaults(func=run)


def _resume_command(args: argparse.Namespace) -> str:
    """The command that continues this run: the same space, overrides and options, with --resume (a retrain,
    --if-data-changed, resumes its run by itself). Not --warm-start: the run's study holds that history already."""
    words = ["autotune", "run", args.space, *[f"--set={o}" for o in args.overrides]]
    if args.storage != "runs":
        words += ["--storage", args.storage]
    if args.address:
        words += ["--address", args.address]
    if args.num_cpus is not None:
        words += ["--num-cpus", str(args.num_cpus)]
    if args.num_gpus is not None:
        words += ["--num-gpus", f"{args.num_gpus:g}"]
    if args.no_export:
        words.append("--no-export")
    words.append("--if-data-changed" if args.if_data_changed else "--resume")
    return " ".join(shlex.quote(w) for w in words)


def run(args: argparse.Namespace) -> int:
    with lines_to(sys.stdout):  # the progress lines, among the command's own output
        return _run(args)


def _check_options(args: argparse.Namespace) -> None:
    """A --storage folder that cannot be one, refused before the space is read (options that cannot go together:
    `autotune.api.fit`'s own check)."""
    if "://" not in args.storage:
        check_folder_path(args.storage, "--storage", "--storage runs")


def _run(args: argparse.Namespace) -> int:
    from autotune.api import Terminated, fit, load_space

    _check_options(args)
    space = load_space(args.space, args.overrides)  # every problem is reported before Ray starts
    try:
        result = fit(
            space, storage=args.storage, address=args.address, num_cpus=args.num_cpus, num_gpus=args.num_gpus,
            resume=args.resume, restart=args.restart, warm_start=args.warm_start, export=not args.no_export,
            verbose=args.verbose, if_data_changed=args.if_data_changed, resume_command=_resume_command(args),
        )
    except KeyboardInterrupt:  # a second Ctrl-C while Ray stops the trials, or one before the search started
        from autotune.engine.search import holds_search

        print("\nThe search was interrupted.")
        if args.if_data_changed or holds_search(args.storage, space.name):
            print(f"Resume with: {_resume_command(args)}")
        return 130
    except Terminated as stop:  # a SIGTERM (a CI runner's time limit) stopped it as a Ctrl-C does
        _print_result(stop.result, args)
        return 143
    except StorageFull as err:  # the command that resumes it, as after a Ctrl-C
        raise StorageFull(f"{str(err).removesuffix(' (--resume)')}: {_resume_command(args)}") from None
    if result is None:  # --if-data-changed and the data is the current model's (or was tried already)
        return 0
    _print_result(result, args)
    return 130 if result.interrupted else 0


def _print_result(result: Any, args: argparse.Namespace) -> None:
    """The search's summary, and for an interrupted one the command that resumes it."""
    from autotune.engine.summary import format_summary  # imported when run: every command imports this module

    print()
    print(format_summary(result, width=terminal_width()))
    if result.interrupted:
        print(f"\nResume with: {_resume_command(args)}")
