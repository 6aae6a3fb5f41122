"""`search.trial_timeout`'s watch in a trial's thread (autotune.engine.trial_timeout), without Ray: each report
restarts the count, and silence past the timeout raises TrialTimeout in the watched thread, naming the epoch."""
from __future__ import annotations

import re
import time

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
