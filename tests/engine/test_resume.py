"""Nothing lost: a killed or interrupted search resumes; failing trials retry or end alone."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

import autotune
from engine_helpers import TOY

SPACE = f"""
name: resumable
recipe: {TOY}
model: {{x: {{uniform: [0.0, 1.0]}}, y: {{uniform: [0.0, 1.0]}}}}
train: {{epochs: 3, sleep: 0.6}}
search: {{trials: 6, max_concurrent: 2, scheduler: fifo, seed: 0, resources: {{cpu: 1}}}}
export: {{dir: models/resumable}}
"""


def _study(run_dir: Path) -> optuna.Study:
    return optuna.load_study(study_name="resumable", storage=f"sqlite:///{run_dir}/study.db")


def _finished_trials(run_dir: Path) -> dict[str, int]:
    """trial dir -> number of results written, for trials that ran all their epochs."""
    done = {}
    for result in run_dir.glob("trial_*/result.json"):
        lines = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
        if lines and lines[-1].get("epoch") == 3:
            done[result.parent.name] = len(lines)
    return done


def _start(cwd: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "autotune", "run", "space.yaml", "--num-cpus", "2", *args],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )


def _wait_for_finished(run_dir: Path, count: int, process: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if run_dir.exists() and len(_finished_trials(run_dir)) >= count:
            return
        assert process.poll() is None, process.stdout.read()
        time.sleep(0.2)
    raise AssertionError(f"fewer than {count} trials finished in {timeout} s")


def test_a_killed_search_resumes_where_it_stopped(tmp_path):
    (tmp_path / "space.yaml").write_text(SPACE)
    run_dir = tmp_path / "runs" / "resumable"
    first = _start(tmp_path)
    _wait_for_finished(run_dir, 2, first)
    first.send_signal(signal.SIGKILL)
    first.wait()
    before = _finished_trials(run_dir)
    assert len(before) >= 2

    again = _start(tmp_path)  # without --resume: refused, with the way out
    out, _ = again.communicate(timeout=60)
    assert again.returncode == 2 and "--resume" in out and "Traceback" not in out

    resumed = _start(tmp_path, "--resume")
    out, _ = resumed.communicate(timeout=180)
    assert resumed.returncode == 0, out
    after = _finished_trials(run_dir)
    assert len(list(run_dir.glob("trial_*"))) == 6  # a trial started after Ray's last save is set aside
    assert len(after) == 6, after
    assert len((run_dir / "trials.csv").read_text().strip().splitlines()) == 1 + 6
    for trial, results in before.items():  # completed trials were not run again
        assert after[trial] == results
    states = [t.state for t in _study(run_dir).trials]
    assert optuna.trial.TrialState.RUNNING not in states
    assert states.count(optuna.trial.TrialState.COMPLETE) == 6
    assert (tmp_path / "models" / "resumable" / "model.json").is_file()


def test_ctrl_c_stops_cleanly_and_prints_the_resume_command(tmp_path):
    (tmp_path / "space.yaml").write_text(SPACE)
    run_dir = tmp_path / "runs" / "resumable"
    first = _start(tmp_path)
    _wait_for_finished(run_dir, 1, first)
    first.send_signal(signal.SIGINT)
    out, _ = first.communicate(timeout=60)
    assert first.returncode == 130, out
    assert "Resume with: autotune run space.yaml --resume" in out
    assert "Traceback" not in out
    assert not (tmp_path / "models" / "resumable").exists()

    resumed = _start(tmp_path, "--resume")
    out, _ = resumed.communicate(timeout=180)
    assert resumed.returncode == 0, out
    assert len(_finished_trials(run_dir)) == 6
    assert optuna.trial.TrialState.RUNNING not in [t.state for t in _study(run_dir).trials]


def test_a_changed_space_is_not_resumed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "space.yaml").write_text(SPACE)
    run_dir = tmp_path / "runs" / "resumable"
    run_dir.mkdir(parents=True)
    (run_dir / "tuner.pkl").write_bytes(b"")  # a resumable-looking run of another space
    (run_dir / "space.fingerprint").write_text("another search\n")
    from autotune.cli import main

    assert main(["run", "space.yaml", "--resume"]) == 2


@pytest.mark.usefixtures("local_ray")
class TestFailingTrials:
    def test_retries_resume_from_the_last_checkpoint(self, in_tmp):
        markers = in_tmp / "markers"
        markers.mkdir()
        text = SPACE.replace("sleep: 0.6", f"sleep: 0, fail_once_in: {markers}").replace(
            "resources:", "max_failures: 1, resources:")
        result = autotune.fit(text)
        assert (result.trials["status"] == "TERMINATED").all(), result.trials["error"].tolist()
        assert len(list(markers.iterdir())) == 6  # every trial failed once
        for row in result.trials.to_dict("records"):
            epochs = [json.loads(x)["epoch"] for x in Path(row["path"], "result.json").read_text().splitlines()]
            assert epochs == [1, 2, 3], epochs  # epoch 1 was not trained again after the failure

    def test_a_non_finite_loss_ends_only_that_trial(self, in_tmp):
        text = SPACE.replace("sleep: 0.6", "sleep: 0, nan_if_x_above: 0.5")
        result = autotune.fit(text)
        failed = result.trials[result.trials["status"] == "ERROR"]
        assert 0 < len(failed) < 6
        assert all("non-finite training loss" in e for e in failed["error"])
        assert all(result.trials.set_index("trial_id").loc[result.best_trial_id, ["status"]] == "TERMINATED")
        study = _study(result.run_dir)
        assert [t.state for t in study.trials].count(optuna.trial.TrialState.FAIL) == len(failed)
