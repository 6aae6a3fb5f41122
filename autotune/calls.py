"""Calling a registered function (a dataset, a model factory), which may be a user's own code: keyword arguments
checked against its signature first, and its exceptions turned into one line naming it, its file and line."""
from __future__ import annotations

import inspect
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from autotune.errors import UserError, described

__all__ = ["unknown_arguments", "failure"]


def unknown_arguments(fn: Callable[..., Any], given: Iterable[str], hidden: Iterable[str] = ()) -> str | None:
    """None when `fn` takes every keyword in `given`, else "no argument 'x'; its arguments: a, b" (the
    arguments autotune passes itself, `hidden`, are not listed)."""
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    unknown = sorted(str(k) for k in given if k not in params)
    if not unknown:
        return None
    hidden = set(hidden)
    options = ", ".join(p for p in params if p not in hidden) or "none"
    return f"no argument {', '.join(map(repr, unknown))}; its arguments: {options}"


def failure(kind: str, name: str, fn: Callable[..., Any], err: BaseException) -> UserError:
    """The one-line UserError for `err` raised by the registered `kind` `name`: "dataset 'my_data'
    (my_functions.py, line 7) failed: ValueError: ..." (no file for autotune's own functions)."""
    return UserError(f"{kind} {name!r}{_where(fn, err)} failed: {described(err)}")


def _where(fn: Callable[..., Any], err: BaseException) -> str:
    fn = inspect.unwrap(fn)
    code = getattr(fn, "__code__", None)
    if code is None or str(getattr(fn, "__module__", "")).startswith("autotune."):
        return ""
    lines = [f.lineno for f in traceback.extract_tb(err.__traceback__) if f.filename == code.co_filename]
    line = f", line {lines[-1]}" if lines else ""
    return f" ({Path(code.co_filename).name}{line})"
