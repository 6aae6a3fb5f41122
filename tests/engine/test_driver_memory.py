"""What the driver keeps per trial, bounded: a search of 10,000 trials must fit in its memory (docs/benchmarks.md,
measure 4b). These run without Ray."""
from __future__ import annotations

import gc
import json
import subprocess
import sys
import weakref

import pytest
from ray.tune.experiment import Trial

from autotune.engine.ray_internals import (CsvLogger, ForgetEndedTrials, JsonLogger, TensorBoardLogger,
                                            no_callback_usage_tag)


@pytest.mark.parametrize("end", ["on_trial_complete", "on_trial_error"])
def test_an_ended_trial_keeps_its_averages_not_its_windows_of_last_values(end):
    trial = Trial("trivial", stub=True)
    for step, value in enumerate([0.5, 0.7, 0.6], start=1):
        for name, number in {"acc": value, "time_total_s": step / 10, "training_iteration": step}.items():
            trial.run_metadata.update_metric(name, number, step=step)
    averages = json.loads(json.dumps(trial.run_metadata.metric_analysis["acc"]))
    assert trial.run_metadata.metric_n_steps  # a window of the last 5 and of the last 10 values while it runs

    getattr(ForgetEndedTrials(), end)(0, [trial], trial)

    assert trial.run_metadata.metric_n_steps == {}
    assert trial.run_metadata.metric_analysis == {"acc": averages}  # the recipe's: get_best_result(scope=...)
    saved = json.loads(trial.run_metadata.get_json_state())  # the experiment state Ray saves
    assert saved["metric_n_steps"] == {} and saved["metric_analysis"] == {"acc": averages}


@pytest.mark.parametrize("reported", [True, False])
def test_an_ended_trial_that_reported_drops_the_future_of_rays_default_result(reported):
    trial = Trial("trivial", stub=True)
    trial._default_result_or_future = future = object()  # the actor's default result, asked for at its start
    if reported:
        trial.run_metadata.last_result = {"trial_id": trial.trial_id, "acc": 0.5, "training_iteration": 1}

    ForgetEndedTrials().on_trial_complete(0, [trial], trial)

    assert (trial._default_result_or_future is None) == reported  # a trial without a report still reads it
    assert trial._default_result_or_future is (None if reported else future)


def test_the_result_loggers_forget_an_ended_trial_and_write_its_config_again_if_it_restarts(tmp_path):
    class _Here(Trial):  # a stub has no storage: its folder is tmp_path
        local_path = property(lambda self: str(tmp_path))

        def init_local_path(self) -> None:
            pass

    trial = _Here("trivial", stub=True, config={"lr": 0.1})
    json_logger, csv_logger = JsonLogger(), CsvLogger()
    for run in range(2):  # the second: a retry of the same trial
        for logger in (json_logger, csv_logger):
            logger.log_trial_start(trial)
            logger.log_trial_result(1, trial, {"acc": 0.5 + run, "training_iteration": 1})
            logger.log_trial_end(trial)
        assert json_logger._trial_configs == {} and csv_logger._trial_continue == {}

    assert json.loads((tmp_path / "params.json").read_text()) == {"lr": 0.1}
    assert [json.loads(line)["acc"] for line in (tmp_path / "result.json").read_text().splitlines()] == [0.5, 1.5]
    assert (tmp_path / "progress.csv").read_text().splitlines()[1:] == ["0.5,1", "1.5,1"]  # one header


def test_the_c_heap_is_trimmed_every_so_many_ended_trials(monkeypatch):
    from autotune.engine import heap

    calls = []
    monkeypatch.setattr(heap, "_malloc_trim", calls.append)
    forget, trial = ForgetEndedTrials(), Trial("trivial", stub=True)
    for _ in range(2 * ForgetEndedTrials.TRIM_EVERY + 1):
        forget.on_trial_complete(0, [], trial)
    assert calls == [0, 0]
    assert forget.get_state() is None and calls == [0, 0, 0]  # Ray saved the experiment state: nothing of ours


def test_a_closed_tensorboard_writer_is_released(tmp_path):
    writer = TensorBoardLogger((), (), ())._summary_writer_cls(str(tmp_path))
    writer.add_scalar("ray/tune/acc", 0.5, global_step=1)
    writer.flush()
    events = weakref.ref(writer.file_writer.event_writer)  # its thread, queue and file
    writer.close()
    del writer
    gc.collect()
    assert events() is None  # tensorboardX's atexit hook would keep it until the process exits
    assert sum(f.stat().st_size for f in tmp_path.glob("events.out.tfevents.*")) > 0


def test_the_engine_does_not_import_torch():
    """tensorboardX imports torch when it can (about 470 MiB of a driver's memory); the driver of a recipe that
    does not use torch never needs it."""
    code = "import sys, autotune.engine.search; print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("enabled", ["0", "1"])
def test_rays_count_of_the_callbacks_runs_only_while_its_usage_statistics_are_on(monkeypatch, enabled):
    """The count imports Ray's W&B and MLflow integrations, and wandb and mlflow with them (1-2 s of a search's
    start); the engine turns the statistics off (RAY_USAGE_STATS_ENABLED=0), and a user may turn them on."""
    from ray.air._internal import usage

    no_callback_usage_tag()
    counted = []
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", enabled)
    monkeypatch.setattr(usage, "_count_callbacks", lambda callbacks: counted.append(callbacks) or {})
    usage.tag_callbacks([ForgetEndedTrials()])
    assert len(counted) == (enabled == "1")
