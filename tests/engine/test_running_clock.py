"""The clock of the time a process runs (autotune.engine.running_clock): a pause is left out, a wait on I/O is not."""
import threading
import time

from autotune.engine import running_clock
from autotune.engine.running_clock import RunningClock, ticking


def test_a_gap_in_which_the_process_did_not_run_is_left_out(monkeypatch):
    """A search stopped with Ctrl-Z, or a machine suspended: a gap between two reads with no CPU time used."""
    monkeypatch.setattr(running_clock, "PAUSE_S", 0.3)
    clock = RunningClock()
    start = clock()
    time.sleep(0.6)
    assert clock() - start < 0.1


def test_a_long_wait_on_io_counts_while_the_clock_ticks(monkeypatch):
    """A step of the search that waits long on I/O (a slow upload of its state) used no CPU time either: read every
    `every` seconds by a thread of its own, the clock sees no gap, and counts it; the thread ends with the block."""
    monkeypatch.setattr(running_clock, "PAUSE_S", 0.3)
    clock = RunningClock()
    with ticking(clock, every=0.05):
        start = clock()
        time.sleep(0.6)
        elapsed = clock() - start
    assert 0.55 < elapsed < 1.5
    assert not [t for t in threading.enumerate() if t.name == "autotune-running-clock"]
