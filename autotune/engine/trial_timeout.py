"""`search.trial_timeout`: a trial that reports nothing for that long (a deadlock, a loop that never ends an epoch)
fails, and frees its slot for the search's other trials.

    watch = ReportWatch(600.0, first_epoch=1)
    with watch.watching():            # in the trial's thread, around the recipe's train()
        ...                           # each report calls watch.reported(epoch)

A watcher thread of the trial's worker raises `TrialTimeout` in the trial's thread (CPython's
`PyThreadState_SetAsyncExc`: it is raised at the next Python line that thread runs). A thread stuck in native code
runs none: past a grace period, the worker process ends itself, and Ray fails the trial for its lost actor; the
watch's `ended` callable is first given the failure in one line (what the driver says for it, not Ray's guesses at
why a worker died: autotune.engine.trial_errors.TIMED_OUT_FILE).

Silence is counted on a clock of the time the worker runs (autotune.engine.running_clock): a worker stopped with its
search (Ctrl-Z, a suspended machine) is not silent while it does not run. Nor is a trial whose report waits for the
driver (`waiting`: a driver stopped with Ctrl-Z asks for no result while the trials' workers, in Ray's processes,
go on and wait for it).
"""
from __future__ import annotations

import ctypes
import os
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from autotune.engine.running_clock import RunningClock
from autotune.engine.trial_errors import users_line
from autotune.errors import TrialTimeout

__all__ = ["ReportWatch", "duration_text"]

_GRACE_S = 30.0  # after the exception, how long native code may keep the thread before the worker ends itself
_SAY_S = 10.0  # how long the worker, ending itself, waits for the failure to be written (a storage may hang)


def duration_text(seconds: float) -> str:
    """Seconds as words: "45s", "2m10s", "1h05m"."""
    minutes, seconds = divmod(round(seconds), 60)
    if not minutes:
        return f"{seconds}s"
    return f"{minutes}m{seconds:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


class ReportWatch:
    """Ends the trial of this thread when `timeout` seconds pass without a report (since it started, or its last
    report); `first_epoch`: the epoch it trains first (a resumed trial's is past its checkpoint's); `ended`: given
    the failure in one line before a thread held in native code ends the worker; `waiting`: whether the watched
    thread (its id) waits for the driver to take its report, which restarts the count."""

    def __init__(self, timeout: float, first_epoch: int = 1, ended: Callable[[str], None] | None = None,
                 waiting: Callable[[int], bool] | None = None) -> None:
        self.timeout = timeout
        self.ended = ended
        self.waiting = waiting
        self.epoch = first_epoch  # the epoch being trained
        self.clock = RunningClock()
        self.last = self.clock()
        self.reason = ""  # why it was ended, once it was
        self._done = threading.Event()

    def reported(self, epoch: int) -> None:
        self.last = self.clock()
        self.epoch = epoch + 1

    @contextmanager
    def watching(self) -> Iterator[None]:
        """Watch the calling thread while the block runs; a TrialTimeout raised in it carries the reason."""
        target = threading.get_ident()
        watcher = threading.Thread(target=self._watch, args=(target,), name="autotune-trial-timeout", daemon=True)
        watcher.start()
        try:
            yield
        except TrialTimeout as err:
            if not self.reason:
                raise
            raise TrialTimeout(self.reason) from err  # its traceback: where the trial's code was
        finally:
            self._done.set()

    def _watch(self, target: int) -> None:
        while not self._done.wait(min(1.0, self.timeout / 4)):
            now = self.clock()
            if self.waiting is not None and self.waiting(target):
                self.last = now
            silent = now - self.last
            if silent < self.timeout:
                continue
            self.reason = (f"no report for {duration_text(silent)} (in epoch {self.epoch}); search.trial_timeout is "
                           f"{duration_text(self.timeout)}")
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(target), ctypes.py_object(TrialTimeout))
            if not self._done.wait(_GRACE_S):  # the thread runs no Python: native code holds it
                try:
                    self._say(self._held(target))
                finally:  # the worker ends even where saying why failed
                    os._exit(1)
            return

    def _say(self, failure: str) -> None:
        """Give `ended` the failure, for at most `_SAY_S` seconds: a write to a storage that hangs (a URI's network)
        must not keep the worker, and the slot it holds, alive."""
        if self.ended is not None:
            saying = threading.Thread(target=self.ended, args=(failure,), name="autotune-timeout-say", daemon=True)
            saying.start()
            saying.join(_SAY_S)

    def _held(self, target: int) -> str:
        """The failure of a trial whose thread `target` native code held past the grace period: a line with the line
        of the user's code it was in, "TrialTimeout: no report for 20s (in epoch 2); search.trial_timeout is 20s; held
        in native code 30s more (my_recipe.py, line 17): its worker process ended itself", then where the thread was
        (the traceback of a worker that ends itself: Ray's error.txt has only its guesses at why a worker died)."""
        frame = sys._current_frames().get(target)
        stack = "".join(traceback.format_stack(frame)) if frame is not None else ""
        failure = (f"TrialTimeout: {self.reason}; held in native code {duration_text(_GRACE_S)} more"
                   f"{users_line(stack)}: its worker process ended itself")
        return f"{failure}\n\nWhere the trial's thread was held (most recent call last):\n{stack}" if stack else failure
