"""A user's own .py file (a custom module of registered functions, a recipe) run as a module of its own, once per
version of the file; what its code raises comes back with the line of the file that raised it, for a one-line error
rather than a traceback.

    module = exec_file(Path("my_recipe.py").resolve(), "autotune_recipe_my_recipe")
    installed("/usr/lib/python3.11/json/__init__.py")   # True: not the user's own code
"""
from __future__ import annotations

import hashlib
import importlib.util
import sys
import sysconfig
import traceback
from pathlib import Path
from types import ModuleType

from autotune import registry
from autotune.errors import AutotuneError

__all__ = ["UserCodeFailed", "exec_file", "installed"]


class UserCodeFailed(Exception):
    """The user's file raised while it was imported: `text` ("Type: message"; an autotune error's own message) and
    `line`, the line of the file it raised at (None when no line of the file is in the traceback)."""

    def __init__(self, text: str, line: int | None) -> None:
        super().__init__(text)
        self.text, self.line = text, line


def exec_file(file: Path, module_name: str) -> ModuleType:
    """Import `file` as the module `module_name`, or return the module an earlier call imported from the same text
    of the file. A file edited since (a notebook's second `autotune.fit`) is imported afresh, its earlier
    registrations dropped first. UserCodeFailed when its code raises; the module and what it registered are then
    forgotten, so that a corrected file is imported afresh."""
    source = _read(file)
    digest = None if source is None else hashlib.sha1(source).hexdigest()
    known = sys.modules.get(module_name)
    if known is not None and getattr(known, "__autotune_digest__", None) == digest:
        return known
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise UserCodeFailed(f"{file.name} cannot be imported as Python", None)
    if known is not None:
        registry.forget_module(module_name)
    module = importlib.util.module_from_spec(spec)
    module.__autotune_digest__ = digest  # type: ignore[attr-defined]
    sys.modules[module_name] = module
    try:
        if source is None:  # unreadable: the loader says why
            spec.loader.exec_module(module)
        else:  # the text just hashed, not a cached .pyc that a same-size rewrite in the same second leaves as it was
            exec(compile(source, str(file), "exec", dont_inherit=True), module.__dict__)  # no __future__ of ours
    except Exception as err:  # the user's code: anything it raises
        del sys.modules[module_name]
        registry.forget_module(module_name)  # what it registered before it raised
        raise _failure(err, file) from err
    return module


def _read(file: Path) -> bytes | None:
    """The file's bytes; None when it cannot be read (the import then says why)."""
    try:
        return file.read_bytes()
    except OSError:
        return None


def _failure(err: Exception, file: Path) -> UserCodeFailed:
    if isinstance(err, SyntaxError):
        return UserCodeFailed(f"SyntaxError: {err.msg}", err.lineno)
    lines = [frame.lineno for frame in traceback.extract_tb(err.__traceback__) if Path(frame.filename) == file]
    text = str(err) if isinstance(err, AutotuneError) else f"{type(err).__name__}: {err}"
    return UserCodeFailed(text, lines[-1] if lines else None)


def installed(file: str) -> bool:
    """Whether `file` is the standard library's or an installed package's: on every node of a cluster that runs the
    same environment, and no code of the user's."""
    places = {sysconfig.get_path(key) for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    return any(Path(file).resolve().is_relative_to(Path(place).resolve()) for place in places)
