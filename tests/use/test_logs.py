"""Where autotune's lines go: `fit` shows them by itself only where the program set up no logging."""
from __future__ import annotations

import io
import logging

import pytest

from autotune.logs import configured, lines_to

log = logging.getLogger("autotune")


@pytest.fixture
def no_logging_set_up(monkeypatch):
    """A program that configured no logging. pytest puts its capture handlers on the root logger as the test's
    body starts, so the body calls what this returns first."""
    def bare() -> None:
        monkeypatch.setattr(logging.getLogger(), "handlers", [])

    monkeypatch.setattr(log, "handlers", [])
    monkeypatch.setattr(log, "level", logging.NOTSET)
    return bare


def test_a_program_without_logging_set_up_counts_as_not_configured(no_logging_set_up):
    """(That `fit` then writes its lines to stderr: test_quick_start.py, in a process of its own.)"""
    no_logging_set_up()
    assert not configured()


@pytest.mark.parametrize("setting", ["basicConfig", "quiet", "own handler", "no propagation"])
def test_a_program_that_set_up_logging_decides(no_logging_set_up, monkeypatch, setting):
    no_logging_set_up()
    if setting == "basicConfig":
        monkeypatch.setattr(logging.getLogger(), "handlers", [logging.StreamHandler(io.StringIO())])
    elif setting == "quiet":  # logging.getLogger("autotune").setLevel(logging.WARNING)
        monkeypatch.setattr(log, "level", logging.WARNING)
    elif setting == "own handler":
        monkeypatch.setattr(log, "handlers", [logging.NullHandler()])
    else:
        monkeypatch.setattr(log, "propagate", False)
    assert configured()


def test_lines_to_writes_bare_lines_and_leaves_the_logger_as_it_was(no_logging_set_up):
    no_logging_set_up()
    stream = io.StringIO()
    with lines_to(stream):
        log.info("Searching 'x': 2 trials")
        logging.getLogger("autotune.engine").debug("not shown")
    log.warning("after the block: not in the stream")
    assert stream.getvalue() == "Searching 'x': 2 trials\n"
    assert (log.handlers, log.level, log.propagate) == ([], logging.NOTSET, True)


class GoneReader(io.StringIO):
    """A stream whose reader has gone away (`autotune run ... | head -1`): every write is a BrokenPipeError."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_lines_to_a_reader_that_went_away_are_dropped_quietly(no_logging_set_up, capsys):
    """Each later line printed logging's `--- Logging error --- ... BrokenPipeError` traceback on stderr; the work
    goes on, and the command's own next write ends it (exit 141, test_cli_check.py)."""
    no_logging_set_up()
    with lines_to(GoneReader()):
        log.info("Searching 'x': 2 trials")
        log.warning("trial 1 failed")
    assert capsys.readouterr().err == ""
