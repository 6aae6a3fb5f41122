"""A resumed search ends with the trials of an uninterrupted one: finished trials are not run again, and the early
stopping decisions after the resume weigh the values recorded before it."""
from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
from ray.tune.experiment import Trial

import autotune
from autotune.engine.schedulers import SavedScheduler, make_scheduler
from autotune.space.types import Space
from engine_helpers import toy_space
from test_resume import SPACE, _key, _read_until, _study

# one trial at a time, 3 epochs, the default scheduler (asynchronous Hyperband: a rung at epoch 1); Ray's own state
# period (10 s or more, not test_resume's 1 s): longer than the search, as in a real one whose trials are short
EXACT = (SPACE.replace("epochs: 3, sleep: 0.6", "epochs: 3, sleep: 0.2, hold_while_exists: HOLD")
         .replace("trials: 6, max_concurrent: 2, scheduler: fifo", "trials: 5, max_concurrent: 1, scheduler: auto"))


def _run(cwd: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "XDG_CACHE_HOME": str(cwd / "cache")}
    env.pop("TUNE_GLOBAL_CHECKPOINT_S", None)
    return subprocess.Popen([sys.executable, "-m", "autotune", "run", "space.yaml", "--num-cpus", "1", *args],
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def _outcome(cwd: Path) -> dict[tuple[float, float], tuple[str, list[int]]]:
    """configuration -> (its state in the study, the epochs it reported), for every trial not left FAIL (a trial
    the kill cut short, asked again on resume, is FAIL); a configuration run twice fails the test."""
    trials = [t for t in _study(cwd / "runs" / "resumable").trials if t.state != optuna.trial.TrialState.FAIL]
    outcome = {_key(t.params): (t.state.name, sorted(t.intermediate_values)) for t in trials}
    assert len(outcome) == len(trials), f"a configuration ran twice: {trials}"
    return outcome


def test_a_search_killed_after_a_trial_ended_resumes_into_the_trials_of_an_uninterrupted_run(tmp_path):
    """Killed 1.5 s after trials ended, before Ray's own save (every 10 s), while a trial runs: the trials that
    ended are not run again, and the resumed search stops the trials an uninterrupted one stops. The running trial
    is held (the toy recipe's gate) while the kill waits: a trial that ends in the moment before a kill, before
    the state is saved, may still run again (docs/reliability.md)."""
    reference, killed, hold = tmp_path / "reference", tmp_path / "killed", tmp_path / "hold"
    for folder in (reference, killed):
        folder.mkdir()
        (folder / "space.yaml").write_text(EXACT.replace("HOLD", str(hold)))
    whole = _run(reference)
    first = _run(killed)
    _read_until(first, "[3/5]")  # three trials ended: Ray's periodic save has not come since the start
    hold.touch()
    time.sleep(1.5)
    first.send_signal(signal.SIGKILL)
    first.wait()
    hold.unlink()
    out, _ = whole.communicate(timeout=120)
    assert whole.returncode == 0, out
    resumed = _run(killed, "--resume")
    out, _ = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, out
    assert "of trials that had ended" not in out  # no finished trial's folder was set aside as unknown to Ray
    expected = _outcome(reference)
    assert len(expected) == 5 and "PRUNED" in {state for state, _ in expected.values()}
    assert _outcome(killed) == expected


# Ray's ASHA of several brackets draws a new trial's bracket from NumPy's global generator, seeded by nothing: only
# its restored trials are compared
@pytest.mark.parametrize(("scheduler", "new"), [("auto", 20), ("hyperband", 20), ("asha", 20),
                                                ("{asha: {brackets: 3}}", 0)])
def test_a_scheduler_given_its_saved_state_decides_as_the_one_that_went_on(scheduler, new):
    """The state saved with the search's (pickled, as Ray saves it) given to a new scheduler, the restored trials
    added again newest first (as Ray does), decides every later result as the scheduler that went on: the same
    rungs, each trial in its bracket, new trials drawn into the same brackets."""
    space = autotune.load_space(toy_space(train="{epochs: 9}", search=f", scheduler: {scheduler}"))
    rng = np.random.default_rng(1)
    values = {f"t{i}": sorted(rng.uniform(0.1, 0.9, size=9)) for i in range(40)}
    before, rest = list(values)[:20], list(values)[20:20 + new]
    went_on = _scheduler(space, before)
    for trial_id in before[::2]:  # half the trials run (or are stopped) before the state is saved
        _results(went_on, trial_id, values[trial_id], range(1, 10))
    saved = pickle.loads(pickle.dumps(SavedScheduler(went_on).get_state()))
    restored = make_scheduler(space)
    restored.set_search_properties("val_accuracy", "max")
    SavedScheduler(restored).set_state(saved)
    for trial_id in reversed(before):
        restored.on_trial_add(None, Trial("trivial", stub=True, trial_id=trial_id))
    for each in (went_on, restored):
        for trial_id in rest:
            each.on_trial_add(None, Trial("trivial", stub=True, trial_id=trial_id))
    decided = [[_results(s, trial_id, values[trial_id], range(1, 10)) for trial_id in before[1::2] + rest]
               for s in (went_on, restored)]
    assert decided[0] == decided[1]
    assert "STOP" in {d for trial in decided[0] for d in trial}


def _scheduler(space: Space, trial_ids: list[str]):
    scheduler = make_scheduler(space)
    scheduler.set_search_properties("val_accuracy", "max")
    for trial_id in trial_ids:
        scheduler.on_trial_add(None, Trial("trivial", stub=True, trial_id=trial_id))
    return scheduler


def _results(scheduler, trial_id: str, curve: list[float], epochs: range) -> list[str]:
    """The decisions on the trial's results at `epochs`, up to the first STOP."""
    trial, decided = Trial("trivial", stub=True, trial_id=trial_id), []
    for epoch in epochs:
        decided.append(scheduler.on_trial_result(None, trial, {"training_iteration": epoch,
                                                               "val_accuracy": curve[epoch - 1]}))
        if decided[-1] == "STOP":
            break
    return decided
