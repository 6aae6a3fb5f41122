"""One exception root for autotune, and the located problems a search space can have."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = ["AutotuneError", "BadInput", "Diverged", "MissingMetric", "NoHome", "Problem", "RecipeFailed",
           "SearchFailed", "SpaceError", "StorageFull", "TrackerUnreachable", "TrialError", "TrialTimeout", "UserError",
           "UnknownNameError", "described", "one_line"]

LINE_CHARS = 500  # the most of an exception's message that its one line shows (the rest: its traceback)
# a traceback a message holds (a DataLoader worker's: "Caught ValueError in DataLoader worker process 1.\nOriginal
# Traceback (most recent call last):\n  File ...\nValueError: bad row"), up to the exception line it ends with
_TRACEBACK = re.compile(r"^.*Traceback \(most recent call last\):\n(?:[ \t].*\n?)*", re.MULTILINE)


def one_line(text: str) -> str:
    """`text` as one line: its newlines and runs of spaces as one space, cut at LINE_CHARS with the count of the
    characters left out."""
    text = " ".join(text.split())
    if len(text) <= LINE_CHARS:
        return text
    return f"{text[:LINE_CHARS]}... ({len(text) - LINE_CHARS} more characters)"


def described(err: BaseException) -> str:
    """`err` in one line (`one_line`), "ValueError: x too large": its class's own name (not its module's, which for a
    recipe is the name autotune imported it under) and its message, less a traceback it holds. An exception whose str()
    raises says so."""
    try:
        message = _TRACEBACK.sub("", str(err))
    except Exception as failed:  # the exception's own __str__ is the user's code
        message = f"<its str() raised {type(failed).__name__}>"
    message = one_line(message)
    return f"{type(err).__name__}: {message}" if message else type(err).__name__


class AutotuneError(Exception):
    """Root of every error autotune raises on purpose. The CLI prints it in one line and exits 2."""


class UserError(AutotuneError):
    """A mistake in what the user gave (a path, a flag, data): the message says what and how to fix it."""


class NoHome(UserError, OSError):
    """No home folder: HOME is not set and the passwd file has no entry for this process's user id (a container's
    arbitrary user id). An OSError too, so that a cache kept there is skipped as an unwritable one is."""


class SearchFailed(AutotuneError):
    """Every trial failed: no model to export. The message holds the first trial's own error."""

    exit_code = 1


class UnknownNameError(UserError, KeyError):
    """A name that is not registered; the message lists the closest registered names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class BadInput(UserError):
    """An input an exported model cannot be given (an image, an array, a row...): `status` is the HTTP status
    `autotune serve` answers with; `source` names the file it came from, when there is one (`autotune predict`)."""

    def __init__(self, message: str, status: int = 400, *, source: str | None = None) -> None:
        super().__init__(message)
        self.status, self.source = status, source


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a search space, located as precisely as we can."""

    path: str  # key path, e.g. "optimizer.lr" ("" for the whole file)
    message: str  # what was wrong and the rule it broke
    fix: str = ""  # how to fix it ("did you mean 'search'?")
    file: str | None = None
    line: int | None = None  # 1-based
    value: Any = None
    has_value: bool = False

    def __str__(self) -> str:
        where = self.file or "<space>"
        if self.line is not None:
            where += f":{self.line}"
        text = f"{where}: {self.path or '<root>'}: {self.message}"
        if self.has_value and not _quoted_in(self.value, self.message):
            text += f" (got {_shown(self.value)})"
        if self.fix:
            text += f"; {self.fix}"
        return text


def _shown(value: Any) -> str:
    """A problem's value as its message shows it: the repr of what YAML reads; another object (a DataFrame a dict
    space was given) by its type and shape, where its repr would print the object, over many lines."""
    if value is None or isinstance(value, (str, int, float, bool, list, dict, tuple)):
        return repr(value)
    shape = getattr(value, "shape", None)
    return f"a {type(value).__module__.split('.')[0]} {type(value).__name__}" + (
        f" of shape {tuple(shape)}" if shape is not None else "")


def _quoted_in(value: Any, message: str) -> bool:
    """Whether `message` already shows the text `value` quoted (not "unknown optimizer 'x' (got 'x')")."""
    return isinstance(value, str) and repr(value) in message


class SpaceError(AutotuneError):
    """A search space with one or more problems. `problems` holds all of them, in file order."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file or "", p.line or 0, p.path))
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in the search space:"
        super().__init__("\n".join([head, *(f"  {p}" for p in self.problems)]))


class TrackerUnreachable(UserError):
    """A tracking server that did not answer when the search started (an outage, or a wrong address): a retrain
    (--if-data-changed) searches without it, and fills it in later; any other search is refused."""


class TrialError(AutotuneError):
    """A trial that cannot go on (a non-finite loss, say): ends that trial with this reason, not the search."""


class Diverged(TrialError):
    """A trial whose training diverged (a loss that is not a finite number): a verdict on its configuration, not a
    fault. The sampler is told the trial PRUNED at the epoch it diverged, ranked below every trial that reached that
    epoch (as Optuna ranks a NaN), so it learns to avoid the region; `search.max_failures` does not retry it (it
    would diverge again)."""


class TrialTimeout(TrialError):
    """A trial that reported nothing for `search.trial_timeout` seconds (autotune.engine.trial_timeout)."""


class RecipeExited(TrialError):
    """A recipe that ended its process (`sys.exit`, or code it calls: argparse's `parse_args()` reads the trial
    worker's own command line and exits on it) instead of returning or raising. Ray ended the trial's worker at it,
    and its error was a bare exit status, with no line of the recipe's."""


class RecipeFailed(TrialError):
    """A recipe's exception that Ray cannot carry to the driver, as one line (`described`): one whose str() raises,
    or that does not survive pickling (it holds a lock, or its __init__ takes other arguments than its message), or
    a KeyboardInterrupt. Ray failed such a trial with its own error about the exception (a TypeError of
    `__init__()`, "Task was cancelled"), not the recipe's."""


class MissingMetric(TrialError):
    """A report without a searched metric, or with one that is not a number, or a recipe's train() that returned
    without a report: every trial of the search would fail so, and the search stops at the first
    (autotune.engine.stoppers.BrokenReports)."""


class StorageFull(AutotuneError):
    """The run's storage filled up during the search: it stopped as Ctrl-C stops it, to be resumed once space is
    freed. The message says what is full and how much the run holds."""

    exit_code = 3
