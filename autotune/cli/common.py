"""Arguments and checks of arguments shared by several sub-commands."""
from __future__ import annotations

import argparse
import errno
import math
import os
import re
import shutil
import socket
import sys
import textwrap
from typing import TYPE_CHECKING, Any

from autotune.errors import UserError
from autotune.paths import expanded

if TYPE_CHECKING:
    from autotune.space.types import Space

MODEL_FOLDER = "the folder of an exported model (e.g. models/digits, holding model.pt and model.json)"
MODEL_DIR_HELP = "the folder of an exported model, e.g. models/digits (model.json and the files its recipe wrote)"
RUN_FOLDER = "the folder of an autotune run (e.g. runs/digits, written by `autotune run`) or a storage folder of runs"


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """A description and an epilog fitted to the terminal's width, as argparse fits the options: prose is reflowed;
    an example whose comment does not fit beside it has the comment on the lines below, and a command too long for
    one line is continued with ` \\`, so that it can still be copied and pasted into a shell. No line breaks inside
    a word at its hyphens (`--no-` / `export`)."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n".join(indent + line if line else "" for line in fitted_text(text, width - len(indent)))


def fitted_text(text: str, width: int) -> list[str]:
    """The lines of a help text at most `width` wide, block by block (blocks are separated by blank lines): indented
    lines are examples (`fitted_examples`), the others prose (`fitted_prose`)."""
    lines: list[str] = []
    for block in text.strip("\n").split("\n\n"):
        rows = block.split("\n")
        header = [rows.pop(0)] if len(rows) > 1 and rows[0].endswith(":") and rows[1].startswith(" ") else []
        examples = all(row.startswith(" ") for row in rows)
        lines += [*header, *(fitted_examples(rows, width) if examples else fitted_prose(rows, width)), ""]
    return lines[:-1]


def fitted_prose(rows: list[str], width: int) -> list[str]:
    """Prose reflowed to `width`; a line that ends a sentence ends its line, as the text has it."""
    paragraphs = [""]
    for row in rows:
        paragraphs[-1] = f"{paragraphs[-1]} {row.strip()}".strip()
        if row.rstrip().endswith((".", ":")):
            paragraphs.append("")
    return [line for paragraph in paragraphs if paragraph
            for line in textwrap.wrap(paragraph, width, break_long_words=False, break_on_hyphens=False)]


def fitted_examples(rows: list[str], width: int) -> list[str]:
    """Examples as written when every line fits in `width`; otherwise each command on its own lines (continued
    with ` \\` where too long), its comment wrapped below it, indented further."""
    if all(len(row) <= width for row in rows):
        return rows
    lines: list[str] = []
    for command, comment in _examples(rows):
        lines += _continued(command, width)
        lines += textwrap.wrap(comment, width, initial_indent=" " * 6, subsequent_indent=" " * 6,
                               break_long_words=False, break_on_hyphens=False)
    return lines


def _examples(rows: list[str]) -> list[tuple[str, str]]:
    """(command, comment) of each example: a command and its comment are apart by two spaces or more; a line below
    a command ending in `\\` goes on with the command, any other line below goes on with the comment."""
    examples: list[tuple[str, str]] = []
    for row in rows:
        text = row.strip()
        if examples and examples[-1][0].endswith("\\"):  # the command goes on
            command, _, comment = text.partition("  ")
            before, said = examples.pop()
            examples.append((f"{before[:-1].rstrip()} {command}", f"{said} {comment.strip()}".strip()))
        elif examples and row.startswith("   "):  # its comment goes on
            command, said = examples.pop()
            examples.append((command, f"{said} {text}".strip()))
        else:
            command, _, comment = text.partition("  ")
            examples.append((command, comment.strip()))
    return examples


def _continued(command: str, width: int) -> list[str]:
    """A shell command in lines of at most `width` (where its words allow), each but the last ending in ` \\`; an
    option stays on the line of its value."""
    words = re.findall(r"(?:[^\s'\"]+|'[^']*'|\"[^\"]*\")+", command)
    units: list[str] = []
    for word in words:
        if units and units[-1].startswith("-") and " " not in units[-1] and not word.startswith("-"):
            units[-1] += f" {word}"
        else:
            units.append(word)
    lines = ["  " + units.pop(0)]
    for unit in units:
        if len(lines[-1]) + 1 + len(unit) + 2 > width:
            lines[-1] += " \\"
            lines.append("    " + unit)
        else:
            lines[-1] += f" {unit}"
    return lines


def terminal_width() -> int | None:
    """The width of the terminal stdout is, which a wide table is fitted to; None where stdout is no terminal (a log,
    a pipe: a table's row stays one line there)."""
    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None


def add_space_arguments(parser: argparse.ArgumentParser, space: str = "the search space YAML file") -> None:
    """SPACE (what it may be: `space`) and repeated --set KEY=VALUE overrides."""
    parser.add_argument("space", metavar="SPACE", help=space)
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a key of the space (repeatable), e.g. --set train.epochs=3 "
        "or --set 'model.dropout={uniform: [0, 0.2]}'; under a choice of mappings it sets the key in every option "
        "(--set optimizer.lr=0.05), and --set optimizer.name=NAME keeps only the option of that name",
    )


def one_configuration(space: str, overrides: list[str]) -> Space:
    """The space for `train` and `lr-find`, which run its defaults without a search: a problem at a key that only a
    search reads (autotune.space.SEARCH_ONLY: search.start, search.scheduler) is a warning on stderr, and the space
    is loaded again with that key lifted; any other problem is an error. The recipe's warnings on the space are
    shown on stderr."""
    from autotune.api import load_space
    from autotune.errors import SpaceError
    from autotune.space import SEARCH_ONLY, search_only

    lifted: dict[str, str] = {}
    while True:
        try:
            loaded = load_space(space, [*overrides, *(f"{key}={value}" for key, value in lifted.items())])
        except SpaceError as err:
            keys = [key for problem in err.problems if (key := search_only(problem))]
            if len(keys) < len(err.problems) or set(keys) <= lifted.keys():
                raise
            for problem, key in zip(err.problems, keys):
                print(f"warning: {problem} ({SEARCH_ONLY[key][1]}: `autotune run` refuses this; this command runs "
                      "the defaults, without a search)", file=sys.stderr)
            lifted.update((key, SEARCH_ONLY[key][0]) for key in keys)
            continue
        for problem in loaded.warnings:
            print(f"warning: {problem}", file=sys.stderr)
        return loaded


def default_values(space: Space) -> dict[str, Any]:
    """The values of the space's default configuration, which `train` and `lr-find` run, each printed with how it
    was chosen."""
    values, how = space.defaults()
    for name, value in values.items():
        print(f"default {name} = {value!r} ({how[name]})")
    return values


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1 (--num-cpus)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0 (--num-gpus; fractions share a GPU)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def port_number(text: str) -> int:
    """argparse type: a TCP port, 0..65535 (0: a free one) (--port)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number 0..65535, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 0 and 65535 (0: a free port), got {value}")
    return value


def address_error(err: OSError, host: str, port: int) -> UserError:
    """The one-line error of a server that cannot listen on host:port: the port is taken, or the host is not an
    address of this machine."""
    if err.errno == errno.EADDRINUSE:
        return UserError(f"port {port} on {host} is taken (another server?): choose another with --port, "
                         "or --port 0 for a free one")
    return UserError(f"cannot listen on {host}:{port}: {err.strerror or err}; give --host an address of this "
                     "machine, e.g. 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)")


BACKLOG = 2048  # uvicorn's default backlog of pending connections


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port (as uvicorn binds one) and listening, so that a client that connects as soon as
    the address is printed waits in the queue for the server to accept it, rather than being refused while the
    server starts; a taken port or an unknown host: `address_error`."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as err:
        raise address_error(err, host, port) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as err:
        sock.close()
        raise address_error(err, host, port) from None
    return sock


def local_run_folder(run_dir: str) -> str:
    """RUN_DIR as a local folder: a run (or storage) URI such as s3://bucket/runs/digits, as `autotune run --storage`
    prints it, is read from its local mirror on this machine, where the search ran; a folder is itself."""
    if "://" not in run_dir:
        return run_dir
    from autotune.cache import run_mirror

    mirror = run_mirror(run_dir)
    if not mirror.is_dir():
        raise UserError(f"RUN_DIR {run_dir} has no local mirror on this machine (it would be {mirror}): its study "
                        "and summary are kept on the machine that ran the search; run this there, or give a folder")
    print(f"run: {run_dir} (its local mirror {mirror})")
    return str(mirror)


def check_folder(path: str, what: str, expected: str) -> None:
    """A UserError when `path` (the argument `what`, e.g. "MODEL_DIR") does not exist or is a file; `expected`
    names the folder it should be (MODEL_FOLDER, RUN_FOLDER)."""
    from autotune.model_dir import broken_link

    folder = expanded(path)
    broken = broken_link(folder)
    if broken:
        raise UserError(f"{what} {broken}; give {expected}")
    if not folder.exists():
        raise UserError(f"{what} {path} does not exist; give {expected}")
    if not folder.is_dir():
        raise UserError(f"{what} {path} is a file, not {expected}")


def _not_under_a_file(path: str, option: str, example: str) -> None:
    """A UserError when a folder above `path` is a file: nothing can be written under it."""
    blocker = next((parent for parent in expanded(path).parents if parent.is_file()), None)
    if blocker is not None:
        raise UserError(f"{option} {path!r} lies under {str(blocker)!r}, which is a file; give a path in a folder, "
                        f"e.g. {example}")


def check_folder_path(path: str, option: str, example: str) -> None:
    """`path`, given to `option`, can be a folder (it may not exist yet): it is neither a file nor under one;
    otherwise a UserError with `example` as the fix."""
    _not_under_a_file(path, option, example)
    if expanded(path).is_file():
        raise UserError(f"{option} {path!r} is a file, not a folder; give a folder path, e.g. {example}")


def check_out_dir(path: str, option: str, example: str) -> None:
    """Before any work: the output folder `path` of `option` can be made and written (`check_writable`: its
    parent is created); otherwise a UserError with `example` as the fix."""
    from autotune.preflight import check_writable

    check_folder_path(path, option, example)
    check_writable(path, option, example)


def check_out_file(path: str, option: str, example: str) -> None:
    """Before any work: the output file `path` of `option` can be written (replaced, when it exists); otherwise a
    UserError with `example` as the fix."""
    from autotune.preflight import check_writable

    _not_under_a_file(path, option, example)
    target = expanded(path)
    if target.is_dir():
        raise UserError(f"{option} {path!r} is a folder; give a file path, e.g. {example}")
    if not target.exists():
        check_writable(path, option, example)  # a file made in its (created) parent, as a folder would be
    elif not os.access(target, os.W_OK):
        raise UserError(f"{option} {path!r} is not writable (permission denied); give a file you can write, "
                        f"e.g. {example}")


def pixel_count(text: str) -> int:
    """argparse type: a number of pixels, as a whole number (16777216) or WIDTHxHEIGHT (4096x4096)."""
    size = re.fullmatch(r"(\d+)[xX](\d+)", text.strip())
    try:
        return int(size[1]) * int(size[2]) if size else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of pixels, e.g. 16777216 or 4096x4096, got {text!r}") \
            from None
