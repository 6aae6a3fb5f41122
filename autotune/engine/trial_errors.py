"""Why a trial failed: the exception its worker raised, out of Ray's wrapper, and that as one line."""
from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import cloudpickle

import autotune
from autotune import recipes
from autotune.errors import described, one_line
from autotune.user_code import installed

__all__ = ["TIMED_OUT_FILE", "error_text", "failure_of", "result_error", "trial_error", "users_line"]

_FRAME = re.compile(r'^\s*File "([^"]+)", line (\d+), in ', re.MULTILINE)
_OWN = tuple(Path(package.__file__).resolve().parent for package in (autotune, recipes))  # autotune's own code
# Ray's ActorDiedError when the trial's worker process died: its exit detail, then a paragraph of possible causes
_WORKER_DIED = re.compile(r"worker process has died\. Worker exit type: \w+ Worker exit detail: (.*?)(?: Some common "
                          r"causes include:|$)", re.MULTILINE)
# in a trial's folder: the failure of a trial whose worker ended itself, held in native code past its
# search.trial_timeout (autotune.engine.trial_timeout), which Ray reports as any other worker's death
TIMED_OUT_FILE = "timed_out.txt"
_DIED = "ActorDiedError: the trial's worker process died"


def error_text(error: BaseException) -> str:
    """The recipe's own exception from Ray's wrapper: its type and message, one line, and where the user's own code
    raised it, from the traceback the wrapper holds: "ValueError: x too large (my_recipe.py, line 153)"."""
    cause = getattr(error, "cause", None) or error
    died = _worker_died(str(cause))
    if died:
        return died
    return _said(cause) + users_line(str(error) * (cause is not error))


def _said(cause: BaseException) -> str:
    """The one line of the exception `cause`: an exception of the recipe's own as `described` says it; autotune's
    own, and Ray's text of an error it did not carry, by the last line of their text, led by their type where it
    does not say one."""
    if not isinstance(cause, autotune.AutotuneError) and not type(cause).__module__.startswith("ray."):
        return described(cause)
    text = str(cause).strip().splitlines()
    last = text[-1] if text else type(cause).__name__
    return one_line(last if ":" in last else f"{type(cause).__name__}: {last}")


def _worker_died(text: str) -> str:
    """A trial whose worker process died, in one line with what to check, from Ray's text of its ActorDiedError (a
    paragraph of causes, two of them Ray's own: `ray stop --force`, resource isolation); "" for another error."""
    match = _WORKER_DIED.search(text)
    if match is None:
        return ""
    return (f"{_DIED} ({match.group(1).strip().rstrip('.')}): killed by the system when memory ran out (dmesg "
            "names an out-of-memory kill; lower train.batch_size, the model's size or search.max_concurrent) or by a "
            "signal, crashed in native code, or ended itself (os._exit); a search run with -v shows the worker's last "
            "output, a crash's stack in it")


def users_line(traceback: str) -> str:
    """" (file.py, line N)" for the innermost frame of `traceback` (a formatted one) in the user's own code: not
    autotune's, nor the standard library's or an installed package's; "" without one."""
    for file, line in reversed(_FRAME.findall(traceback)):
        path = Path(file)
        if path.is_file() and not installed(file) and not any(path.resolve().is_relative_to(own) for own in _OWN):
            return f" ({path.name}, line {line})"
    return ""


def failure_of(trial: Any) -> BaseException | None:
    """The exception a failed trial's worker raised; None without one."""
    error = _pickled(trial)
    return None if error is None else getattr(error, "cause", None) or error


def _pickled(trial: Any) -> BaseException | None:
    """The error of a failed trial as Ray wrapped it, from the pickle Ray has just written into the trial's local
    folder (its `get_error()` reads the storage, synced later); None without one."""
    try:
        with open(trial.pickled_error_file, "rb") as f:
            return cloudpickle.load(f)
    except (OSError, TypeError, ValueError, EOFError, pickle.UnpicklingError):
        return None


def result_error(result: Any) -> str:
    """Why the trial of a Ray `Result` failed, in one line; "" for a trial that did not."""
    if not result.error:
        return ""
    return _timed_out(error_text(result.error), getattr(result, "filesystem", None), result.path)


def trial_error(trial: Any) -> str:
    """Why a trial failed, in one line: its exception and where the user's code raised it, else the last line of
    the error text Ray wrote."""
    storage = getattr(trial, "storage", None)
    return _timed_out(_ray_error(trial), getattr(storage, "storage_filesystem", None),
                      getattr(storage, "trial_fs_path", None))


def _timed_out(said: str, filesystem: Any, path: str | None) -> str:
    """`said`, or for a worker's death, the failure that the trial's timeout wrote into its folder `path` (on the
    storage's `filesystem`) before its worker ended itself (autotune.engine.trial_timeout): its first line."""
    if not said.startswith(_DIED) or filesystem is None or not path:
        return said
    try:
        with filesystem.open_input_stream(f"{path}/{TIMED_OUT_FILE}") as marker:
            return marker.read().decode(errors="replace").strip().split("\n", 1)[0] or said
    except OSError:  # none: the worker died otherwise
        return said


def _ray_error(trial: Any) -> str:
    """The error of a failed trial, from what Ray wrote: its exception, else the last line of its error text."""
    failure = _pickled(trial)
    if failure is not None:
        return error_text(failure)
    try:
        text = Path(trial.error_file).read_text()
    except (OSError, TypeError):
        text = ""
    lines = [x for x in text.splitlines() if x.strip()]
    return _worker_died(text) or (lines[-1].strip() + users_line(text) if lines else "unknown error")
