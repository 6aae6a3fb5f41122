"""Who runs what on this machine, kept with OS file locks (`fcntl.flock`: released when the process ends, a kill
included, so a dead holder never blocks).

- A run is held by one process for its whole search: `.<name>.lock` beside the run's folder (for a URI storage,
  beside its local state mirror; a `file://` one, beside the folder it names). A second process starting the same
  run is refused at once, naming the holder.
- Each local Ray a search starts is registered in autotune's cache folder (`local-ray/<pid>.json`) while it runs,
  so that a second search on the machine can say that the two share its CPUs.

A lock file is never opened through a symbolic link (the lock would overwrite the file the link points to): a link,
or anything else than a file, where a lock file goes is refused (`not_a_lock_file`, the export's lock too). It is
created with the modes the umask leaves (group-writable under `umask 002`, for a team's shared folder), and read
without writing it, so a teammate who cannot write another's lock file still sees that it is held.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from autotune.cache import cache_dir
from autotune.errors import UserError
from autotune.paths import blocking, shown
from autotune.run_options import option

if TYPE_CHECKING:  # storage imports ray: this module stays light for the export's lock
    from autotune.engine.storage import RunLocation

__all__ = ["running", "hold_run", "refuse_running", "LocalRay", "not_a_lock_file"]


def _lock(path: Path) -> int | None:
    """An open descriptor of `path` (created if missing) holding its exclusive lock; None when another process
    holds it. An OSError when `path` is a symbolic link (O_NOFOLLOW) or no regular file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)  # not inherited by child processes (PEP 446)
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO, a device
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _write(fd: int, record: dict[str, Any]) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(record).encode(), 0)


def _remove_temp(pid: str, temp: Any) -> None:
    """Remove the temp folder `temp` of the ended process `pid`'s local Ray: only one named as autotune names them
    (`rt_<pid>`, `search._temp_dir`)."""
    if isinstance(temp, str) and Path(temp).name == f"rt_{pid}" and Path(temp).is_dir():
        shutil.rmtree(temp, ignore_errors=True)


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):  # gone, or its holder has not written it yet
        return {}


@contextmanager
def hold_run(where: RunLocation) -> Iterator[None]:
    """Hold the run `where` while the block runs; a UserError at once when another process holds it, or when the
    local mirror of a URI run cannot be written."""
    if where.remote:
        _check_mirror(where)
    path = _run_lock(where)
    try:
        fd = _lock(path)
    except OSError as err:  # held, maybe, by a teammate whose lock file this user cannot write
        raise (_running(where) if running(where) else _cannot_lock(path, err)) from None
    if fd is None:
        raise _running(where)
    try:
        _write(fd, {"pid": os.getpid(), "host": socket.gethostname()})
        yield
    finally:
        os.close(fd)  # releases the lock; the file stays (deleting it would let two processes lock two files)


def _check_mirror(where: RunLocation) -> None:
    """The local mirror of the URI run `where` made; a UserError naming XDG_CACHE_HOME when it cannot be written:
    the run's study was written there only once Ray's search was set up, a traceback (a read-only home folder)."""
    try:
        where.state.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=where.state):
            pass
    except OSError as err:
        why = f"{err.strerror}: {shown(err.filename)}" if err.filename else str(err)
        raise UserError(f"cannot write the local state of the run {where.experiment} in {shown(where.state)} ({why}): "
                        "autotune keeps the study and summary of a run in a URI storage in its cache folder; set "
                        "XDG_CACHE_HOME to a folder you can write") from None


def not_a_lock_file(path: Path) -> UserError | None:
    """The UserError of a lock file `path` that is a symbolic link or no regular file (a lock written through a
    link would overwrite the file it points to); None when it is a file, or not there."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return None
    what = "a symbolic link" if stat.S_ISLNK(mode) else "a folder" if stat.S_ISDIR(mode) else "not a regular file"
    return UserError(f"the lock file {path} is {what}, not a file autotune wrote: remove it (autotune creates its "
                     f"own lock file there), then run again")


def _cannot_lock(path: Path, err: OSError) -> UserError:
    """The error of a run's lock file `path` that could not be written: a link or no file there, a name too long,
    or a folder not writable."""
    if (odd := not_a_lock_file(path)) is not None:
        return odd
    if err.errno == errno.ENAMETOOLONG:
        return UserError(f"cannot write the run's lock file {path}: name too long ({len(os.fsencode(path.name))} "
                         f"bytes; a file name holds 255 at most, a path 4096); give the run a shorter name "
                         f"({option('overrides', 'name=...')}) or {option('storage')} a shorter folder")
    if err.errno == errno.EACCES:  # a teammate's lock file or folder, in a folder a team shares
        way = ("no process runs the run now, so you may also remove the file" if path.is_file() else
               f"or give {option('storage')} a folder you can write")
        return UserError(f"cannot write the run's lock file {path}: {blocking(path)}; {way}")
    return UserError(f"cannot write the run's lock file {path} ({err.strerror or err}); give "
                     f"{option('storage')} a folder you can write")


def refuse_running(where: RunLocation) -> None:
    """The UserError `hold_run` raises when another process holds the run `where`, raised without holding it or
    writing anything (a check before the data loads)."""
    if running(where):
        raise _running(where)


def running(where: RunLocation) -> str | None:
    """Who holds the run `where` ("process 12 on host"), or None when no other process runs it; nothing is held or
    written."""
    return _holder_of(_run_lock(where))


def run_holder(state: Path, name: str) -> str | None:
    """Who holds the lock of the run `name` whose state folder is `state` ("process 12 on host"), or None when no
    other process runs it; nothing is held or written."""
    return _holder_of(run_lock(state, name))


def _holder_of(lock: Path) -> str | None:
    """Who holds the run lock `lock`, or None when no other process holds it."""
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW)  # a teammate's lock file that this user may not write
    except OSError:  # no lock file: never run, or not readable here, or a link (hold_run will say)
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # shared: a read-only descriptor takes it on NFS too
    except BlockingIOError:
        return _holder(lock)
    finally:
        os.close(fd)
    return None


def run_lock(state: Path, name: str) -> Path:
    """The lock file of the run `name` whose state folder is `state`: beside it, `.<name>.lock`."""
    return state.parent / f".{name}.lock"


def _run_lock(where: RunLocation) -> Path:
    """The lock of the run `where`: beside its state folder, or for a `file://` storage beside the folder of this
    machine it names, which a search given that folder as a path locks too (one run, spelled two ways)."""
    folder = _local_folder(where.storage) if where.remote else None
    return run_lock(folder / where.name if folder else where.state, where.name)


def _local_folder(uri: str) -> Path | None:
    """The folder of this machine that a `file://` URI names, resolved as `run_location` resolves a local storage;
    None for another scheme."""
    parsed = urlparse(uri)
    return Path(unquote(parsed.path)).resolve() if parsed.scheme == "file" else None


def _holder(lock: Path) -> str:
    holder = _read(lock)
    return f"process {holder['pid']} on {holder['host']}" if "pid" in holder else "another process"


def _running(where: RunLocation) -> UserError:
    return UserError(f"the run at {where.experiment} is already running ({_holder(_run_lock(where))}); wait for it to "
                     f"end, or run this search under another name ({option('overrides', 'name=...')})")


class LocalRay:
    """The registration of the local Ray this process runs, for the run `run`, with `num_cpus` CPUs, its files in
    the folder `temp`."""

    def __init__(self, run: str, num_cpus: int, temp: str) -> None:
        try:
            self.folder = cache_dir() / "local-ray"
            self.others = self._live()
            self._fd = _lock(self.folder / f"{os.getpid()}.json")
        except OSError:  # a cache folder this process cannot write: the search runs, unregistered
            self.others, self._fd = [], None
        if self._fd is not None:
            _write(self._fd, {"pid": os.getpid(), "run": run, "num_cpus": num_cpus, "temp": temp})

    def _live(self) -> list[dict[str, Any]]:
        """The other local Rays registered on this machine whose process still runs; the files of dead ones are
        removed, and their temp folders (a killed search leaves its Ray's logs and sockets there)."""
        found = []
        for path in sorted(self.folder.glob("*.json")):
            if path.stem == str(os.getpid()):
                continue
            fd = _lock(path)
            if fd is None:
                found.append(_read(path))
            else:
                _remove_temp(path.stem, _read(path).get("temp"))
                path.unlink(missing_ok=True)
                os.close(fd)
        return found

    def leave_temp(self) -> bool:
        """Unlock the registration but leave it, for the next search to remove the temp folder it names (a Ray that
        did not start: its logs there say why); False where this process is not registered."""
        if self._fd is None:
            return False
        os.close(self._fd)
        self._fd = None
        return True

    def close(self) -> None:
        """Remove the registration (the Ray has stopped)."""
        if self._fd is not None:
            (self.folder / f"{os.getpid()}.json").unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None
