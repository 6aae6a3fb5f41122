"""The progress line when nothing changes: a trial that hangs, trials pending while other jobs hold the cluster.
Stand-in trials and a fake clock: no Ray."""
from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from autotune.engine import progress as progress_module
from autotune.engine.progress import Progress


@pytest.fixture
def clock(monkeypatch):
    """The module's clock, set by the test: `clock.now = 20`."""
    fake = SimpleNamespace(now=0.0)
    monkeypatch.setattr(progress_module, "running_time", lambda: fake.now)
    return fake


def _trial(trial_id: str, status: str, epoch: int = 0, value: float | None = None) -> SimpleNamespace:
    result = {"training_iteration": epoch, "val_accuracy": value} if epoch else {}
    return SimpleNamespace(trial_id=trial_id, status=status, last_result=result, config={},
                           metric_analysis={"val_accuracy": {"max": value}} if value is not None else {})


def _steps(progress: Progress, clock: SimpleNamespace, trials: list, seconds: range) -> None:
    for clock.now in seconds:
        progress.on_step_end(0, trials)


def test_a_hung_trial_is_named_once_per_quiet_period_not_left_as_a_frozen_terminal(caplog, clock):
    """The walk's hang: after "[1/3] 20s: 2 running (...)" nothing for 90 s. Now the line again every 60 s, naming
    the trials that have not reported since."""
    caplog.set_level(logging.INFO, logger="autotune")
    progress = Progress("val_accuracy", "max", 3, 10)
    ended = _trial("c3", "TERMINATED", 1, 0.9504)
    hung, slow = _trial("10a399ad", "RUNNING"), _trial("812cf323", "RUNNING")
    progress.on_trial_start(0, [], hung)
    progress.on_trial_start(0, [], slow)
    clock.now = 5
    progress.on_trial_complete(0, [], ended)
    clock.now = 15
    slow.last_result = {"training_iteration": 1}  # an epoch without the metric: shown "in epoch 1" as before
    progress.on_trial_result(0, [], slow, slow.last_result)
    _steps(progress, clock, [ended, hung, slow], range(20, 150, 2))
    line = "2 running (10a399ad in epoch 1, 812cf323 in epoch 1), best 0.9504"
    assert caplog.messages == [
        "[1/3] trial c3 finished: val_accuracy=0.9504 (best of 1 epoch), best so far 0.9504",
        f"[1/3] 20s, 2 epochs run: {line}",
        f"[1/3] 80s, 2 epochs run: {line}; trial 10a399ad: no report for 1m20s (in epoch 1); "
        "trial 812cf323: no report for 1m05s (in epoch 2)",
        f"[1/3] 140s, 2 epochs run: {line}; trial 10a399ad: no report for 2m20s (in epoch 1); "
        "trial 812cf323: no report for 2m05s (in epoch 2)"]


def test_beside_a_trial_that_reports_a_hung_one_is_named_at_most_once_a_quiet_period(caplog, clock):
    caplog.set_level(logging.INFO, logger="autotune")
    progress = Progress("val_accuracy", "max", 2, 10)
    hung, busy = _trial("a1", "RUNNING"), _trial("b2", "RUNNING")
    progress.on_trial_start(0, [], hung)
    for clock.now in range(10, 80, 10):
        busy.last_result = {"training_iteration": clock.now // 10, "val_accuracy": clock.now / 100}
        progress.on_trial_result(0, [], busy, busy.last_result)
        progress.on_step_end(0, [hung, busy])
    assert [m for m in caplog.messages if "no report" in m] == [
        "[0/2] 60s, 6 epochs run: 2 running (a1 in epoch 1, b2 epoch 6 val_accuracy=0.6000), best -; "
        "trial a1: no report for 1m00s (in epoch 1)"]
    assert len(caplog.messages) == 7  # the line that changed every 10 s, as before


def test_trials_waiting_on_another_search_s_resources_are_said_waiting_every_quiet_period(caplog, clock, monkeypatch):
    """The walk's search B: its trials pending while search A held both CPUs, and nothing said for 60 s."""
    caplog.set_level(logging.INFO, logger="autotune")
    monkeypatch.setattr(progress_module, "_cluster_free", lambda: {"CPU": (0.0, 2.0)})
    progress = Progress("val_accuracy", "max", 2, 10)
    trials = [_trial("a1", "PENDING"), _trial("b2", "PENDING")]
    _steps(progress, clock, trials, range(1, 130))
    for trial in trials:
        trial.status = "RUNNING"
    _steps(progress, clock, trials, range(130, 132))
    waiting = "2 pending: waiting for resources (0 of 2 CPUs free: other jobs use the cluster), best -"
    assert caplog.messages == [f"[0/2] 60s, 0 epochs run: {waiting}", f"[0/2] 120s, 0 epochs run: {waiting}",
                               "[0/2] 130s, 0 epochs run: 2 running (a1 in epoch 1, b2 in epoch 1), best -"]


def test_the_cluster_is_asked_what_it_has_free_only_for_a_line_that_says_it(caplog, clock, monkeypatch):
    asked = []
    monkeypatch.setattr(progress_module, "_cluster_free", lambda: asked.append(1) or {"CPU": (0.0, 2.0)})
    progress = Progress("val_accuracy", "max", 2, 10)
    _steps(progress, clock, [_trial("a1", "PENDING")], range(0, 200))
    assert len(asked) == 3  # at 60, 120 and 180 s, of 200 steps


@pytest.mark.parametrize("free, running, said", [
    ({}, 0, ": waiting for resources"),  # no Ray in the driver
    ({"CPU": (0.0, 2.0)}, 0, ": waiting for resources (0 of 2 CPUs free: other jobs use the cluster)"),
    ({"CPU": (0.0, 2.0)}, 1, ": waiting for resources (0 of 2 CPUs free)"),  # this search uses some of them
    ({"CPU": (2.0, 2.0), "GPU": (0.0, 1.0)}, 0,
     ": waiting for resources (2 of 2 CPUs free, 0 of 1 GPU free: other jobs use the cluster)"),
    ({"CPU": (2.0, 2.0)}, 0, ": waiting for resources (2 of 2 CPUs free)"),  # a trial asks for more than there is
])
def test_why_trials_pend_says_what_the_cluster_has_free(monkeypatch, free, running, said):
    monkeypatch.setattr(progress_module, "_cluster_free", lambda: free)
    assert Progress("val_accuracy", "max", 2, 10)._waiting([_trial("r", "RUNNING")] * running) == said


def test_without_ray_the_cluster_has_nothing_to_say(monkeypatch):
    monkeypatch.setattr(progress_module.ray, "is_initialized", lambda: False)
    assert progress_module._cluster_free() == {}


@pytest.mark.parametrize("seconds, said", [(0, "0s"), (59.6, "1m00s"), (130, "2m10s"), (3900, "1h05m")])
def test_a_duration_is_said_in_seconds_minutes_or_hours(seconds, said):
    from autotune.engine.trial_timeout import duration_text

    assert duration_text(seconds) == said


def test_a_longer_interval_waits_three_intervals_before_saying_the_line_again():
    assert (Progress("m", "max", 1, 10).quiet, Progress("m", "max", 1, 40).quiet) == (60.0, 120.0)


def test_a_progress_pickled_by_an_earlier_autotune_says_the_quiet_line_after_its_setup(caplog, clock):
    """A resume unpickles the run's Progress into this class without running __init__ (storage.STATE_FORMAT): what
    the quiet line needs is set by setup, which Ray calls before the first step."""
    caplog.set_level(logging.INFO, logger="autotune")
    progress = Progress("val_accuracy", "max", 1, 10)
    del progress.heard, progress.spoke_at, progress.told_at  # what an earlier autotune's Progress lacks
    progress.setup()
    _steps(progress, clock, [_trial("a1", "RUNNING")], range(10, 71, 10))
    assert caplog.messages[-1] == ("[0/1] 70s, 0 epochs run: 1 running (a1 in epoch 1), best -; "
                                   "trial a1: no report for 1m10s (in epoch 1)")


def test_beside_running_trials_those_pending_are_said_waiting_once_a_quiet_period(caplog, clock, monkeypatch):
    caplog.set_level(logging.INFO, logger="autotune")
    monkeypatch.setattr(progress_module, "_cluster_free", lambda: {"CPU": (0.0, 2.0)})
    progress = Progress("val_accuracy", "max", 3, 10)
    busy, waiting = _trial("a1", "RUNNING"), _trial("b2", "PENDING")
    for clock.now in range(10, 80, 10):
        busy.last_result = {"training_iteration": clock.now // 10, "val_accuracy": 0.5}
        progress.on_trial_result(0, [], busy, busy.last_result)
        progress.on_step_end(0, [busy, waiting])
    assert [m for m in caplog.messages if "waiting" in m] == [
        "[0/3] 60s, 6 epochs run: 1 running (a1 epoch 6 val_accuracy=0.5000), 1 pending: waiting for resources "
        "(0 of 2 CPUs free), best -"]
    assert caplog.messages[-1] == ("[0/3] 70s, 7 epochs run: 1 running (a1 epoch 7 val_accuracy=0.5000), 1 pending, "
                                   "best -")


def test_a_trial_seen_pending_at_the_moment_of_the_quiet_line_is_not_said_waiting(caplog, clock, monkeypatch):
    """A trial starts pending while the worker of the one that ended lets its CPU go: the quiet line, due at that
    moment, said "1 pending: waiting for resources (0 of 2 CPUs free)" about once a minute in a search of short
    trials. Said once a trial has pended since the step an interval before."""
    caplog.set_level(logging.INFO, logger="autotune")
    monkeypatch.setattr(progress_module, "_cluster_free", lambda: {"CPU": (0.0, 2.0)})
    progress = Progress("val_accuracy", "max", 3, 10)
    hung, starting = _trial("a1", "RUNNING"), _trial("b2", "RUNNING")
    progress.on_trial_start(0, [], hung)
    _steps(progress, clock, [hung, starting], range(10, 60, 10))
    starting.status = "PENDING"  # at the quiet line's step
    _steps(progress, clock, [hung, starting], range(60, 61))
    assert "waiting" not in caplog.messages[-1] and "1 pending, best -" in caplog.messages[-1]
    _steps(progress, clock, [hung, starting], range(61, 125))
    assert [m for m in caplog.messages if "waiting" in m] == [
        "[0/3] 120s, 0 epochs run: 1 running (a1 in epoch 1), 1 pending: waiting for resources (0 of 2 CPUs free), "
        "best -; trial a1: no report for 2m00s (in epoch 1)"]


def test_a_trial_whose_metric_turned_nan_is_said_at_its_best_finite_value(caplog, clock):
    """Ray's best of a trial's reports is NaN once one report was (a training that diverged): the line said
    "val_accuracy=- (best of 3 epochs), best so far -" for a trial the summary ranked at 0.61."""
    caplog.set_level(logging.INFO, logger="autotune")
    progress = Progress("val_accuracy", "max", 2, 10)
    diverged = _trial("d1", "TERMINATED", 3, float("nan"))
    for epoch, value in enumerate((0.61, float("nan"), float("nan")), 1):
        progress.on_trial_result(0, [], diverged, {"training_iteration": epoch, "val_accuracy": value})
    progress.on_trial_complete(0, [], diverged)
    infinite = _trial("i2", "TERMINATED", 1, float("inf"))
    progress.on_trial_result(0, [], infinite, {"training_iteration": 1, "val_accuracy": float("inf")})
    progress.on_trial_complete(0, [], infinite)
    assert caplog.messages == [
        "[1/2] trial d1 finished: val_accuracy=0.6100 (best of 3 epochs), best so far 0.6100",
        "[2/2] trial i2 finished: val_accuracy=- (best of 1 epoch), best so far 0.6100"]
    assert progress.best_value == {}  # forgotten once a trial ended


def test_trials_stopped_with_their_search_are_not_named_as_silent_when_it_continues(caplog, monkeypatch):
    """Ctrl-Z for 5 minutes (the driver stopped; its trials wait for it in their next report), then `fg`: the first
    line named every running trial "no report for 5m02s", as a trial that hangs. The line counts the time the search
    ran."""
    from autotune.engine import running_clock

    now = SimpleNamespace(wall=0.0, cpu=0.0)
    monkeypatch.setattr(running_clock, "time", SimpleNamespace(monotonic=lambda: now.wall, process_time=lambda: now.cpu))
    monkeypatch.setattr(progress_module, "running_time", running_clock.RunningClock())
    caplog.set_level(logging.INFO, logger="autotune")
    progress = Progress("val_accuracy", "max", 2, 10)
    trial = _trial("5f7ff834", "RUNNING", 1, 0.5)
    progress.on_trial_start(0, [], trial)
    for now.wall in range(1, 21):  # 20 s of steps, a second apart
        now.cpu += 0.5
        progress.on_step_end(0, [trial])
    now.wall += 300  # stopped: no CPU time
    for now.wall in range(int(now.wall), int(now.wall) + 30):  # 50 s run in all: less than a quiet minute
        now.cpu += 0.5
        progress.on_step_end(0, [trial])
    assert caplog.messages and not any("no report" in message for message in caplog.messages), caplog.messages


def test_a_ctrl_c_is_said_at_once_then_handed_to_ray_tune_s_handler(caplog):
    """Ray Tune's Ctrl-C handler logs below a search's level: a search of 1,869 trials said nothing for 17 to 25 s
    after a Ctrl-C (its trials stopped, its state saved, their results read) before its summary."""
    import signal

    handled, before = [], {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGUSR1)}

    def tune_stop(number, frame):  # as Tune's: set for SIGINT and SIGUSR1, and it puts back the one it replaced
        handled.append(number)
        signal.signal(signal.SIGINT, before[signal.SIGINT])

    try:
        for number in before:
            signal.signal(number, tune_stop)
        with caplog.at_level(logging.INFO, logger="autotune"):
            Progress("val_accuracy", "max", 3000, 10).setup()
            signal.getsignal(signal.SIGINT)(signal.SIGINT, None)
        assert handled == [signal.SIGINT]
        assert caplog.messages == ["Ctrl-C: stopping the search, its state saved to be resumed"]
        assert signal.getsignal(signal.SIGUSR1) is tune_stop  # a full disk's stop (SIGUSR1) says its own line
    finally:
        for number, handler in before.items():
            signal.signal(number, handler)
