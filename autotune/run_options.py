"""How a message names a run's option: as `autotune run` takes it (`--num-cpus 2`) when the command line runs
the search, as `autotune.fit` takes it (`num_cpus=2`) when a Python program does.

    option("resume")                                  # "--resume" / "resume=True"
    option("num_cpus")                                # "--num-cpus" / "num_cpus"
    option("storage", "runs")                         # "--storage runs" / "storage='runs'"
    option("overrides", "search.resources.gpu=0")     # "--set search.resources.gpu=0" / "overrides=['search...=0']"
    arguments(option("resume"), option("num_cpus", 2))  # "--resume --num-cpus 2" / "resume=True, num_cpus=2"
    search_call(option("resume"))                     # "autotune run SPACE --resume" / "autotune.fit(SPACE, ...)"

    with from_command_line():                         # what `autotune`'s entry point wraps its commands in
        ...
"""
from __future__ import annotations

import shlex
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["arguments", "option", "from_command_line", "on_the_command_line", "search_call"]

_SWITCHES = ("resume", "restart", "if_data_changed")  # fit's booleans: a bare flag on the command line
_FLAGS = {"overrides": "--set"}  # fit's keywords whose flag is not the keyword's name
_PYTHON = {"no_export": "export=False"}  # flags whose keyword is not the flag's name

_command_line = False  # a process-wide setting, not a context variable: Ray Tune's callbacks run in other threads


@contextmanager
def from_command_line() -> Iterator[None]:
    """Messages raised or logged inside name the options as `autotune run`'s command line takes them."""
    global _command_line
    before, _command_line = _command_line, True
    try:
        yield
    finally:
        _command_line = before


def on_the_command_line() -> bool:
    """Whether messages name the options as `autotune run`'s command line takes them (else as `autotune.fit` does)."""
    return _command_line


def option(name: str, value: object = None) -> str:
    """The option `name` (`autotune.fit`'s keyword), with `value` where given, as the caller writes it."""
    if _command_line:
        flag = _FLAGS.get(name, "--" + name.replace("_", "-"))
        return flag if value is None else f"{flag} {shlex.quote(str(value))}"
    if name in _SWITCHES:
        return f"{name}=True"
    if name in _PYTHON:
        return _PYTHON[name]
    if value is None:
        return name
    text = value if isinstance(value, (int, float)) else str(value)
    return f"overrides=[{text!r}]" if name == "overrides" else f"{name}={text!r}"


def arguments(*given: str) -> str:
    """Several options (each an `option(...)`) as the caller writes them together: flags apart, keywords by commas."""
    return (" " if _command_line else ", ").join(given)


def search_call(*given: str) -> str:
    """The search started with the options `given`, as the caller starts it: `autotune run SPACE ...` or
    `autotune.fit(SPACE, ...)`."""
    if _command_line:
        return " ".join(("autotune run SPACE", *given))
    return f"autotune.fit({arguments('SPACE', *given)})"
