"""A search whose storage fills up stops as Ctrl-C stops it, and can be resumed once space is freed.

A trial whose checkpoint cannot be written for lack of space (`ENOSPC`: the recipe's save into a temporary folder,
or Ray's copy into the storage, whose copied part is removed) tells the driver (a key of the Ray cluster's store)
and waits. The driver (`StopWhenFull`) then ends the search as Ray ends it on Ctrl-C: it saves the state with the
running trials unfinished, and stops them. Nothing is marked failed, so `--resume` continues every unfinished trial
from its last checkpoint. `run_search` raises `StorageFull`, whose message says what is full and how much the run
holds.
"""
from __future__ import annotations

import errno
import os
import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow.fs
from ray import tune

from autotune.engine.ray_internals import kv_delete, kv_get, kv_put, remove_partial_checkpoint
from autotune.engine.summary import size_text
from autotune.errors import StorageFull
from autotune.paths import FULL
from autotune.run_options import option

__all__ = ["StopWhenFull", "copying", "full_key", "is_full", "raise_if_full", "wait_to_be_stopped"]

_TEMP_FULL = "the disk of the temp folder"  # how recipes.written says that a trial's node has its temp disk full
_WAIT_S = 120.0  # a trial waits this long for the driver to stop the search, then fails with its error
_POLL_S = 1.0  # the driver looks for a full storage at most this often


def full_key(experiment: str) -> str:
    """The key a trial of the run in `experiment` sets when the storage is full."""
    return f"storage-full:{experiment}"


def is_full(err: OSError) -> bool:
    """Whether `err` says a disk is full, or its user's quota used up (a cluster's home folder): ENOSPC or EDQUOT
    (pyarrow's errors, Ray's copy into the storage, carry the errno too)."""
    return err.errno in FULL


@contextmanager
def copying() -> Iterator[None]:
    """Around Ray's copy of a trial's checkpoint into the storage: on a full disk, remove the part it copied."""
    try:
        yield
    except OSError as err:
        if is_full(err):
            remove_partial_checkpoint()
        raise


def wait_to_be_stopped(key: str, err: OSError, node: str) -> None:
    """A trial's side: tell the driver that the disk is full (`err`, on the trial's `node`), wait for it to stop the
    search. Raises `err` if it is not stopped within _WAIT_S seconds (a driver that cannot be interrupted)."""
    kv_put(key, f"{err.strerror or err} (node {node})".encode())
    time.sleep(_WAIT_S)
    raise err


class StopWhenFull(tune.Callback):
    """The driver's side: once a trial has found the storage full, ends the search as Ctrl-C does (Ray handles
    SIGUSR1 as it handles SIGINT: the state is saved with the unfinished trials, to be resumed)."""

    def __init__(self, key: str) -> None:
        self.key = key
        self._next_poll = 0.0
        self._signalled = False

    def setup(self, **info: Any) -> None:  # each start, a resumed search's too
        self._signalled = False
        kv_delete(self.key)

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        now = time.monotonic()
        if self._signalled or now < self._next_poll:
            return
        self._next_poll = now + _POLL_S
        # Ray handles SIGUSR1 only where it runs in the main thread; elsewhere the waiting trials fail on their own
        if kv_get(self.key) is not None and callable(signal.getsignal(signal.SIGUSR1)):
            self._signalled = True
            os.kill(os.getpid(), signal.SIGUSR1)


def raise_if_full(key: str, experiment: str, local: str | None) -> None:
    """After the search: raise `StorageFull` when a trial found the storage full. `local` is the run's folder
    when the storage is local (its disk's free space is measured), else None."""
    found = kv_get(key)
    if found is None:
        return
    kv_delete(key)
    if _TEMP_FULL in found.decode(errors="replace"):  # a node's own disk, not the storage
        raise StorageFull(f"{found.decode(errors='replace')}; then resume the search ({option('resume')})")
    fs, path = pyarrow.fs.FileSystem.from_uri(experiment) if "://" in experiment else (
        pyarrow.fs.LocalFileSystem(), experiment)
    files = fs.get_file_info(pyarrow.fs.FileSelector(path, recursive=True, allow_not_found=True))
    size = sum(f.size or 0 for f in files if f.type == pyarrow.fs.FileType.File)
    checkpoints = sum(1 for f in files if f.type == pyarrow.fs.FileType.Directory
                      and f.base_name.startswith("checkpoint_"))
    free = size_text(shutil.disk_usage(local).free) if local else "unknown"
    if os.strerror(errno.EDQUOT) in found.decode(errors="replace"):  # the disk may have room: the user's share not
        raise StorageFull(f"storage quota used up: {experiment} (your disk quota there is exceeded; {free} free on "
                          f"the disk); the run holds {size_text(size)} ({checkpoints} checkpoints); free space, or "
                          f"ask for a larger quota, then resume it ({option('resume')})")
    raise StorageFull(f"storage full: {experiment} ({free} free); the run holds {size_text(size)} ({checkpoints} "
                      f"checkpoints); free space, then resume it ({option('resume')})")
