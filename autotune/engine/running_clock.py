"""A clock of the time this process runs: a machine suspended (a laptop's lid closed), a search stopped with Ctrl-Z
or `kill -STOP` and continued later, or the system clock set forward or back does not move it.

    clock = RunningClock()
    start = clock()
    ...                              # read it at least every second or so
    seconds = clock() - start

`running_time` is the process's own: a search's driver times the search (its time budget, its progress lines and
its summary) on it.

`time.time` jumps with the system clock and counts a suspended machine's sleep; `time.monotonic` leaves that sleep
out (Linux, macOS), but not the time a stopped process does not run. A process sees that it was stopped only as a
gap between two looks at the clock in which it used almost no CPU time; the clock leaves such gaps out. A gap in
which the process worked (a thread that held the interpreter in native code) counts.
"""
from __future__ import annotations

import threading
import time

__all__ = ["RunningClock", "running_time"]

PAUSE_S = 5.0  # a gap between two reads longer than this ...
_IDLE = 0.25  # ... in which the process used less than this share of it in CPU time did not run


class RunningClock:
    """Seconds of `time.monotonic`, less the gaps between two reads in which this process did not run (see the
    module). Safe to read from several threads."""

    def __init__(self) -> None:
        self._at, self._cpu = time.monotonic(), time.process_time()
        self._paused = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            now, cpu = time.monotonic(), time.process_time()
            gap = now - self._at
            if gap > PAUSE_S and cpu - self._cpu < _IDLE * gap:
                self._paused += gap
            self._at, self._cpu = now, cpu
            return now - self._paused


running_time = RunningClock()  # this process's: the driver reads it at every step of a search
