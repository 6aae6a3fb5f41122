"""Where autotune's own lines go (progress, refusals, warnings): the `autotune` logger's records as bare lines.

    with lines_to(sys.stdout): ...                        # `autotune run`
    with nullcontext() if configured() else lines_to(sys.stderr): ...   # `fit`, unless the caller set up logging
    with warnings_kept(warned): ...                       # the block's warnings also listed in `warned`
"""
from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

__all__ = ["LineHandler", "configured", "lines_to", "warnings_kept"]

log = logging.getLogger("autotune")


@contextmanager
def lines_to(stream: TextIO) -> Iterator[None]:
    """For the block, the `autotune` logger's records of INFO and above written to `stream` as bare lines and not
    passed on to the root logger; the logger is left as it was after (a caller in the same process keeps its
    own logging). Once the stream's reader has gone away (`autotune run ... | head -1`), the lines are dropped
    quietly (`LineHandler`)."""
    handler = LineHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    level, propagate = log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
        log.propagate = propagate


@contextmanager
def warnings_kept(warned: list[str]) -> Iterator[None]:
    """For the block, the message of each WARNING (and above) of the `autotune` logger appended to `warned`, as
    well as written wherever it goes (the report lists what loading the data warned of)."""
    handler = _Kept(warned)
    log.addHandler(handler)
    try:
        yield
    finally:
        log.removeHandler(handler)


class _Kept(logging.Handler):
    """A handler that appends the messages of WARNING records and above to a list."""

    def __init__(self, warned: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.warned = warned

    def emit(self, record: logging.LogRecord) -> None:
        self.warned.append(record.getMessage())


class LineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler that stops writing, quietly, once its stream's reader has gone away (a BrokenPipeError), instead
    of printing logging's `--- Logging error ---` traceback on stderr for every later line: the work goes on, and the
    command's own next write to the stream ends it (exit 141, `autotune.cli.main`)."""

    closed = False  # the reader went away

    def emit(self, record: logging.LogRecord) -> None:
        if not self.closed:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        if isinstance(sys.exc_info()[1], BrokenPipeError):
            self.closed = True
        else:
            super().handleError(record)


def configured() -> bool:
    """Whether the program decided where autotune's lines go: a handler on the `autotune` logger or the root
    logger (`logging.basicConfig`), a level set on the `autotune` logger (WARNING: quiet), or propagation off."""
    return bool(log.handlers or logging.getLogger().handlers) or log.level != logging.NOTSET or not log.propagate
