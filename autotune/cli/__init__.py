"""The `autotune` command: one module per sub-command, each with `add_parser(subparsers)` and `run(args)`."""
from __future__ import annotations

import argparse
import faulthandler
import importlib
import io
import os
import re
import shlex
import sys
import traceback

from autotune.cli.common import HelpFormatter
from autotune.errors import AutotuneError, BadInput, StorageFull
from autotune.paths import FULL, denied, shown
from autotune.run_options import from_command_line

__all__ = ["main"]

# sub-command name -> module in autotune.cli (imported only when needed: the heavy ones pull in torch or ray)
COMMANDS = {
    "check": "check",
    "ls": "ls",
    "train": "train",
    "lr-find": "lr_find",
    "run": "run",
    "predict": "predict",
    "serve": "serve",
    "rollback": "rollback",
    "export": "export",
    "report": "report",
    "dashboard": "dashboard",
}

DESCRIPTION = """\
Config-first hyperparameter search for PyTorch.

examples:
  autotune check search_spaces/digits.yaml            validate a search space, print its parameters
  autotune train search_spaces/digits.yaml            train one configuration, no Ray
  autotune lr-find search_spaces/digits.yaml          suggest a learning rate (LR range test), no Ray
  autotune run search_spaces/digits.yaml              run the search, export the best model
  autotune predict models/digits seven.png            label images with the exported model
  autotune serve models/digits                        an HTTP service: POST /predict, GET /health, GET /model
  autotune rollback models/digits                     make the version before the current model current again
  autotune export runs/digits --trial 5f932f33        export another trial of the run (e.g. of the Pareto front)
  autotune report runs/digits                         an HTML report of the search and the best model
  autotune dashboard runs/digits                      browse the search's Optuna study in optuna-dashboard
  autotune ls models                                  list registered models
"""


VERBOSE_HELP = "more output (repeat for more); -v also shows tracebacks"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autotune", description=DESCRIPTION, formatter_class=HelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS.items():
        importlib.import_module(f"autotune.cli.{module}").add_parser(sub)
    for command in sub.choices.values():  # `autotune run SPACE -v` as well as `autotune -v run SPACE`
        command.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, dest="sub_verbose",
                             help=VERBOSE_HELP)
        command.set_defaults(command_parser=command)  # whose usage an unrecognised argument shows
    return parser

_OVERRIDE = re.compile(r"^\+{0,2}[A-Za-z_][\w.\[\]-]*=")  # Hydra's override: KEY=VALUE, +KEY=VALUE, ++KEY=VALUE


def _parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """The parsed command line; arguments left over after a sub-command are refused with that sub-command's usage
    and prefix (`autotune check: error: unrecognized arguments: ...`), not the top level's."""
    args, extra = parser.parse_known_args(argv)
    command = vars(args).pop("command_parser", parser)
    if extra:
        command.error(f"unrecognized arguments: {' '.join(extra)}{_did_you_mean(command, extra)}")
    return args


def _did_you_mean(parser: argparse.ArgumentParser, extra: list[str]) -> str:
    """`; did you mean --set?`: the option of `parser` closest to the first unrecognised one that is close to one
    (`--sets`, `--prot`, `--topk`); else, for overrides written as Hydra writes them (`model.dropout=0.2`,
    `+train.seed=1`), the --set of each; else nothing."""
    from autotune.registry import close_matches

    options = [name[2:] for action in parser._actions for name in action.option_strings if name.startswith("--")]
    for word in extra:
        hint = close_matches(word[2:].split("=", 1)[0], options, n=1) if word.startswith("--") else []
        if hint:
            return f"; did you mean --{hint[0]}?"
    overrides = [word.lstrip("+") for word in extra if _OVERRIDE.match(word)]
    if overrides and "set" in options:
        return f"; an override is given with --set here: {' '.join(f'--set {shlex.quote(w)}' for w in overrides)}"
    return ""


def _writable_output() -> None:
    """Text the terminal's encoding cannot show (an accented class name under PYTHONIOENCODING=ascii or a Latin-1
    locale) is written escaped (\\xe9) rather than failing the command after its work is done."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
            stream.reconfigure(errors="backslashreplace")


def _plain_when_not_a_terminal() -> None:
    """Ray's worker lines that `-v` shows (`(_trial pid=...)`) carry no colour codes where stdout is no terminal (a
    CI log, a file) or where NO_COLOR is set and not empty (no-color.org: a terminal read by a screen reader, or
    without colours): Ray colours them unless RAY_COLOR_PREFIX is 0. A value the user set is kept."""
    if not sys.stdout.isatty() or os.environ.get("NO_COLOR"):
        os.environ.setdefault("RAY_COLOR_PREFIX", "0")


def full_disk(err: OSError) -> str:
    """What a full disk (or a quota used up) that a command met where it did not expect one means, in one line: the
    file it was writing where the error names it, and the way on."""
    named = f" writing {shown(os.fsdecode(err.filename))}" if err.filename else ""
    return (f"the disk filled up{named} ({err.strerror or err}): free space on it, or write elsewhere (--out, "
            "--storage, export.dir, TMPDIR: what the command writes there)")


def _native_crashes_shown() -> None:
    """A crash in native code (a segfault in an extension, `ctypes`) prints the Python stack it happened at, the
    recipe's line in it: `autotune train` ended with status 139 and not a word. Where stderr has no file
    descriptor (a notebook), nothing is printed, as before."""
    if faulthandler.is_enabled():  # pytest's, Ray's: already shown
        return
    try:
        faulthandler.enable()
    except (io.UnsupportedOperation, RuntimeError):  # no file descriptor; sys.stderr None
        pass


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `autotune` console script. User errors exit 2 with one clear message."""
    _native_crashes_shown()
    _writable_output()
    _plain_when_not_a_terminal()
    parser = build_parser()
    args = _parse(parser, argv)
    args.verbose += vars(args).pop("sub_verbose", 0)
    if args.command is None:
        parser.print_help(sys.stderr)  # a usage error: a person reads the help, `out=$(autotune)` captures none of it
        return 2
    try:
        with from_command_line():
            return int(args.func(args) or 0)
    except AutotuneError as err:
        if args.verbose:
            traceback.print_exc()
        where = f"{err.source}: " if isinstance(err, BadInput) and err.source else ""  # a file predict() refused
        print(f"autotune {args.command}: error: {where}{err}", file=sys.stderr)
        return getattr(err, "exit_code", 2)
    except PermissionError as err:  # another user's file or folder, in a folder a team shares
        if args.verbose:
            traceback.print_exc()
        print(f"autotune {args.command}: error: {denied(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"autotune {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of the output went away (`| head -1`): stop quietly, with the shell's
        # status for SIGPIPE (141), as Unix tools do; `autotune run`'s log lines stop at once (`lines_to`), the search
        # goes on and exports, and its summary's print ends here
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's flush at exit would fail again
        return 141
    except OSError as err:  # after its subclasses above: a reader gone away is no full disk
        if err.errno not in FULL:
            raise
        if args.verbose:
            traceback.print_exc()
        print(f"autotune {args.command}: error: {full_disk(err)}", file=sys.stderr)
        return StorageFull.exit_code


if __name__ == "__main__":
    sys.exit(main())
