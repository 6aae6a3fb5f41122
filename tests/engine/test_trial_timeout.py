"""`search.trial_timeout`'s watch in a trial's thread (autotune.engine.trial_timeout), without Ray: each report
restarts the count, and silence past the timeout raises TrialTimeout in the watched thread, naming the epoch."""
from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from types import SimpleNamespace

import pytest

from autotune.engine.trial_timeout import ReportWatch
from autotune.errors import TrialTimeout


def test_reports_in_time_keep_a_trial_going_and_silence_ends_it_naming_its_epoch():
    watch = ReportWatch(2.0, first_epoch=3)
    with pytest.raises(TrialTimeout) as ended:
        with watch.watching():
            started = time.monotonic()
            for epoch in range(3, 53):  # 2.5 s of reports, 0.05 s apart: longer than the timeout in all
                time.sleep(0.05)
                watch.reported(epoch)
            assert time.monotonic() - started >= 2.5
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # silent in epoch 53, until the watch ends it
                time.sleep(0.01)
    assert re.fullmatch(r"no report for \d+s \(in epoch 53\); search.trial_timeout is 2s", str(ended.value)), \
        str(ended.value)


def test_a_block_that_ends_in_time_stops_its_watch():
    watch = ReportWatch(0.2)
    with watch.watching():
        pass
    time.sleep(0.5)  # past the timeout: a watch left running would raise in this thread now
    assert watch.reason == ""


def test_a_thread_held_in_native_code_ends_its_worker_after_saying_where_it_was(tmp_path):
    """A trial held in native code (a `time.sleep`, a C call) runs no Python line at which TrialTimeout is raised:
    its worker ended itself, and Ray's text of the lost worker sent the user to dmesg for an out-of-memory kill. The
    watch now gives `ended` the timeout, the silence and the line the trial's code was in, then ends the worker."""
    said = tmp_path / "said.txt"
    held = tmp_path / "held.py"
    held.write_text(textwrap.dedent(f"""\
        import time
        from pathlib import Path
        from autotune.engine import trial_timeout

        trial_timeout._GRACE_S = 1.0
        watch = trial_timeout.ReportWatch(1.0, first_epoch=2, ended=Path({str(said)!r}).write_text)
        with watch.watching():
            time.sleep(60)
        """))
    done = subprocess.run([sys.executable, str(held)], timeout=30, capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    failure, where = said.read_text().split("\n\n", 1)
    assert re.fullmatch(r"TrialTimeout: no report for [12]s \(in epoch 2\); search.trial_timeout is 1s; held in native "
                        r"code 1s more \(held\.py, line 8\): its worker process ended itself", failure), failure
    # the traceback of a worker that ended itself: Ray's error.txt holds only its guesses at why a worker died
    assert where.startswith("Where the trial's thread was held (most recent call last):\n"), where
    assert f'File "{held}", line 8, in <module>\n    time.sleep(60)' in where, where


def test_a_worker_whose_failure_cannot_be_written_ends_itself_all_the_same(tmp_path):
    """The failure goes to the trial's folder in the storage, whose write may hang (a URI's network): the worker
    waits for it `_SAY_S` seconds at most, then ends, so that the slot it holds is freed."""
    held = tmp_path / "held.py"
    held.write_text(textwrap.dedent("""\
        import time
        from autotune.engine import trial_timeout

        trial_timeout._GRACE_S, trial_timeout._SAY_S = 1.0, 1.0
        watch = trial_timeout.ReportWatch(1.0, ended=lambda failure: time.sleep(600))
        with watch.watching():
            time.sleep(600)
        """))
    start = time.monotonic()
    done = subprocess.run([sys.executable, str(held)], timeout=60, capture_output=True, text=True)
    assert done.returncode == 1 and time.monotonic() - start < 30, done.stderr


def test_a_worker_stopped_longer_than_the_timeout_goes_on_when_continued(tmp_path):
    """A laptop's lid closed, Ctrl-Z, `kill -STOP`: the worker does not run, and is not silent for it. A trial stopped
    mid-epoch for 7 s under a timeout of 1 s failed `TrialTimeout: no report for 7s` once continued."""
    worker = tmp_path / "worker.py"
    worker.write_text(textwrap.dedent("""\
        import time
        from autotune.engine.trial_timeout import ReportWatch

        watch = ReportWatch(1.0)
        with watch.watching():
            print("watching", flush=True)
            for epoch in range(1, 4):
                for _ in range(12):  # an epoch's work, 0.6 s in small steps: left to do when continued
                    time.sleep(0.05)
                watch.reported(epoch)
        print("done", flush=True)
        """))
    with subprocess.Popen([sys.executable, str(worker)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as process:
        assert process.stdout.readline() == "watching\n"
        time.sleep(0.3)
        process.send_signal(signal.SIGSTOP)
        time.sleep(7.0)  # longer than running_clock.PAUSE_S
        process.send_signal(signal.SIGCONT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0 and out == "done\n", err


def test_a_trial_whose_report_waits_for_the_driver_is_not_silent():
    """A driver stopped with Ctrl-Z takes no report; the trials' workers, in Ray's processes, go on, and wait in
    their next report. They failed past the timeout, as held in native code."""
    watch = ReportWatch(0.5, waiting=lambda thread: True)
    with watch.watching():
        time.sleep(2.0)
    assert watch.reason == ""


def test_a_thread_in_ray_s_report_waits_for_the_driver():
    """`waits_for_driver` knows Ray's own wait of a report for the driver (its private session code), and no other."""
    from ray.train._internal.session import _TrainSession

    from autotune.engine.ray_internals import waits_for_driver

    session = SimpleNamespace(result_queue=queue.Queue(1), continue_lock=threading.Semaphore(0),
                              stop_event=threading.Event())
    reporting = threading.Thread(target=_TrainSession._report_training_result,
                                 args=(session, SimpleNamespace(checkpoint=None)))
    reporting.start()
    try:
        session.result_queue.get(timeout=10)  # the result is out; the thread waits for the driver's go
        time.sleep(0.1)
        assert waits_for_driver(reporting.ident)
        assert not waits_for_driver(threading.get_ident())
    finally:
        session.continue_lock.release()
        reporting.join(10)
    assert not reporting.is_alive()
