"""Why a trial failed: the exception its worker raised, out of Ray's wrapper, and that as one line."""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import cloudpickle

__all__ = ["error_text", "failure_of", "trial_error"]


def error_text(error: BaseException) -> str:
    """The recipe's own exception from Ray's wrapper: its type and message, one line."""
    cause = getattr(error, "cause", None) or error
    text = str(cause).strip().splitlines()
    last = text[-1] if text else type(cause).__name__
    return last if ":" in last else f"{type(cause).__name__}: {last}"


def failure_of(trial: Any) -> BaseException | None:
    """The exception a failed trial's worker raised, from the pickle Ray has just written into the trial's local
    folder (its `get_error()` reads the storage, synced later); None without one."""
    try:
        with open(trial.pickled_error_file, "rb") as f:
            error = cloudpickle.load(f)
    except (OSError, TypeError, ValueError, EOFError, pickle.UnpicklingError):
        return None
    return getattr(error, "cause", None) or error


def trial_error(trial: Any) -> str:
    """Why a trial failed, in one line: its exception, else the last line of the error text Ray wrote."""
    failure = failure_of(trial)
    if failure is not None:
        return error_text(failure)
    try:
        lines = [x for x in Path(trial.error_file).read_text().splitlines() if x.strip()]
    except (OSError, TypeError):
        lines = []
    return lines[-1].strip() if lines else "unknown error"
