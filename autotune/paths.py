"""Paths as users write them: `~` and `~user` expanded as the shell expands them.

    expanded("~/data/wine.csv")       # /home/me/data/wine.csv
    expanded("~wine data.csv")        # ~wine data.csv: no user is named "wine data.csv", so a file of that name

pathlib's `expanduser` raises RuntimeError for a `~name` that names no user; a file or folder may well be called so.
"""
from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

from autotune.errors import NoHome

__all__ = ["expanded", "home", "owned", "shown"]


def expanded(path: str | os.PathLike[str]) -> Path:
    """`path` with a leading `~` or `~user` expanded; a `~name` that is no user's home stays as written."""
    return Path(os.path.expanduser(path))


def home() -> Path:
    """The user's home folder: HOME, else the passwd file's entry for this user id; NoHome where neither names one
    (pathlib raised RuntimeError, "Could not determine home directory", as a traceback)."""
    try:
        return Path.home()
    except RuntimeError:
        raise NoHome("there is no home folder: HOME is not set, and the passwd file has no entry for user id "
                     f"{os.getuid()}") from None


def shown(path: str | os.PathLike[str]) -> str:
    """`path` as text any stream or log file can write: the bytes of a name that is not UTF-8 (a folder unzipped from
    another system, which Python reads as surrogates) as \\xNN escapes, `\\xd6k\\xf6/3.png`."""
    return os.fspath(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def owned(path: str | os.PathLike[str]) -> str:
    """Who owns `path` and its modes, for a message about a file another user left: "alice, -rw-r--r--" (the user's
    id where the system names no user)."""
    info = os.stat(path)
    try:
        user = pwd.getpwuid(info.st_uid).pw_name
    except KeyError:
        user = f"user {info.st_uid}"
    return f"{user}, {stat.filemode(info.st_mode)}"
