"""A clock of the time this process runs: a machine suspended (a laptop's lid closed), a search stopped with Ctrl-Z
or `kill -STOP` and continued later, or the system clock set forward or back does not move it.

    clock = RunningClock()
    start = clock()
    ...                              # read it at least every second or so
    seconds = clock() - start

`running_time` is the process's own: a search's driver times the search (its time budget, its progress lines and
its summary) on it, and reads it every second while the trials run (`ticking`), so that a step of the search that
waits on I/O for longer than PAUSE_S (a slow upload of its state) is not taken for a pause.

`time.time` jumps with the system clock and counts a suspended machine's sleep; `time.monotonic` leaves that sleep
out (Linux, macOS), but not the time a stopped process does not run. A process sees that it was stopped only as a
gap between two looks at the clock in which it used almost no CPU time; the clock leaves such gaps out. A gap in
which the process worked (a thread that held the interpreter in native code) counts.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["RunningClock", "running_time", "ticking"]

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


@contextmanager
def ticking(clock: RunningClock = running_time, every: float = 1.0) -> Iterator[None]:
    """Read `clock` every `every` seconds, from a thread of its own, while the block runs: a gap between two reads
    is then one in which the whole process did not run (stopped, suspended), not one in which the block's thread
    waited long on I/O, which the clock would leave out as a pause."""
    done = threading.Event()

    def tick() -> None:
        while not done.wait(every):
            clock()

    thread = threading.Thread(target=tick, name="autotune-running-clock", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
