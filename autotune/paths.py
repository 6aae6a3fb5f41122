"""Paths as users write them: `~` and `~user` expanded as the shell expands them.

    expanded("~/data/wine.csv")       # /home/me/data/wine.csv
    expanded("~wine data.csv")        # ~wine data.csv: no user is named "wine data.csv", so a file of that name

pathlib's `expanduser` raises RuntimeError for a `~name` that names no user; a file or folder may well be called so.
"""
from __future__ import annotations

import errno
import os
import pwd
import re
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from autotune.errors import AutotuneError, NoHome, StorageFull

__all__ = ["FULL", "blocking", "denied", "expanded", "home", "out_of_space", "owned", "readable", "room_for", "shown",
           "write_whole"]

FULL = (errno.ENOSPC, errno.EDQUOT)  # the errors of a disk that is full, or of a quota used up
FULL_BELOW = 4 * 2**20  # a write that fails with less free space than this on its disk failed for lack of it


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


def denied(err: PermissionError) -> str:
    """What a PermissionError from another user's file or folder means, in one line: "permission denied: PATH: " and
    `blocking(PATH)`. A pyarrow error names its path in its text only."""
    named = err.filename or next(iter(re.findall(r"'(/[^']+)'", str(err))), None)
    if not named:
        return f"permission denied: {err.strerror or err}"
    return f"permission denied: {shown(os.fsdecode(named))}: {blocking(os.fsdecode(named))}"


def blocking(path: str | os.PathLike[str], opens: str | os.PathLike[str] | None = None) -> str:
    """Which file or folder keeps this user from `path`, in words: the first folder on its path (links followed), or
    the file, that the user cannot read (or, where it can read every one, the deepest there that it cannot write),
    its owner and modes, and, where it belongs to a group of the user's (a team's folder), the fix, a `chmod -R` of
    `opens` (default: that file or folder): "runs/priv (alice, drwx------) is not readable by you; ask its owner to
    `chmod -R g+rX runs/priv` (...)". A system folder (/usr) gets no such advice."""
    real = Path(os.path.realpath(path))  # as far as this user can follow it
    steps = [*reversed(real.parents), real][1:]
    unreadable = next((p for p in steps if os.path.lexists(p) and not readable(p)), None)
    blocked = unreadable or next((p for p in reversed(steps) if os.path.lexists(p)), real)
    try:
        whose, group = f" ({owned(blocked)})", os.stat(blocked).st_gid
    except OSError:
        whose, group = "", None
    able, mode = ("readable", "g+rX") if unreadable else ("writable", "g+w")
    text = f"{shown(blocked)}{whose} is not {able} by you"
    if group not in {os.getegid(), *os.getgroups()}:
        return text
    return (f"{text}; ask its owner to `chmod -R {mode} {shown(opens or blocked)}` (a team's shared folder: searches "
            f"and exports run under `umask 002` make their files the group's to read and write)")


def readable(path: Path) -> bool:
    """Whether this user can read `path`, and go through it where it is a folder."""
    try:
        folder = path.is_dir()
    except OSError:
        return False
    return os.access(path, os.R_OK | (os.X_OK if folder else 0))


def out_of_space(err: BaseException, folder: str | os.PathLike[str]) -> bool:
    """Whether `err`, raised while writing into `folder`, came from its disk being full: an OSError of ENOSPC (or
    EDQUOT, a quota used up) in its chain of causes; or, where that chain holds no OSError, any error while the disk
    has less than FULL_BELOW free (torch's writer then raises a RuntimeError without an errno: "unexpected pos ...",
    which a recipe's call wraps)."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno is not None:
            return seen.errno in FULL
        seen = seen.__cause__ or seen.__context__
    try:
        return shutil.disk_usage(folder).free < FULL_BELOW
    except OSError:
        return False


@contextmanager
def room_for(what: str, folder: str | os.PathLike[str], fix: str) -> Iterator[None]:
    """Around the writing of `what` into `folder`: a full disk there (`out_of_space`) is StorageFull, one line
    naming the folder, its free space and `fix` (exit 3), not a traceback. autotune's own errors pass, but those a
    recipe's failing call wraps (a cause)."""
    try:
        yield
    except Exception as err:
        if isinstance(err, AutotuneError) and err.__cause__ is None or not out_of_space(err, folder):
            raise
        from autotune.engine.summary import size_text

        free = size_text(shutil.disk_usage(folder).free)
        raise StorageFull(f"no room for {what} in {shown(folder)}: its disk is full ({free} free); {fix}") from err


def write_whole(path: Path, text: str) -> None:
    """`text` into `path` in one step: written beside it (`path` with `.tmp` added), then renamed over it. A write
    that fails (a full disk) leaves `path` as it was, and no part of the new text beside it."""
    part = path.with_name(f"{path.name}.tmp")
    try:
        part.write_text(text)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, path)
