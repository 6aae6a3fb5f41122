"""Nothing lost: a killed or interrupted search resumes; failing trials retry or end alone."""
from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest

import autotune
import autotune.api
from autotune.cli.common import local_run_folder
from autotune.cli.dashboard import find_run as dashboard_run
from autotune.engine.summary import format_summary
from autotune.errors import SpaceError, UserError
from autotune.report.run import load_run
from engine_helpers import TOY, run_histories, saved_by_status, saved_reports, toy_space

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


def _saved_as_finished(run_dir: Path) -> dict[str, int]:
    """trial dir -> number of results written, for the finished trials that Ray's saved state knows as finished."""
    ended = {f"trial_{t}" for t in saved_reports(run_dir, "TERMINATED")}
    return {trial: n for trial, n in _finished_trials(run_dir).items() if trial in ended}


def _env(cwd: Path) -> dict[str, str]:
    """The environment of a run in `cwd`: unbuffered, a URI storage's local state mirrored under `cwd`, and Ray's
    state saved every second (its own period is 10 s or more: longer than these searches, which a kill would then
    mostly find ended)."""
    return {**os.environ, "PYTHONUNBUFFERED": "1", "XDG_CACHE_HOME": str(cwd / "cache"),
            "TUNE_GLOBAL_CHECKPOINT_S": "1"}


def _start(cwd: Path, *args: str, group: bool = False) -> subprocess.Popen:
    """`autotune run` in `cwd`; `group`: in a process group of its own (its pid the group's), as a shell's job."""
    return subprocess.Popen(
        [sys.executable, "-m", "autotune", "run", "space.yaml", "--num-cpus", "2", *args],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(cwd), start_new_session=group,
    )


def _wait_for(condition, process: subprocess.Popen, what: str, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        assert process.poll() is None, process.stdout.read()
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s")


def _read_until(process: subprocess.Popen, text: str, timeout: float = 90) -> str:
    """What the process printed up to and including its first line that holds `text` (it is killed after
    `timeout` s): trial files reach the run folder only at Ray's next sync, the progress lines at once."""
    timer = threading.Timer(timeout, process.kill)
    timer.start()
    printed = []
    try:
        for line in process.stdout:
            printed.append(line)
            if text in line:
                return "".join(printed)
    finally:
        timer.cancel()
    raise AssertionError(f"no line with {text!r} within {timeout} s:\n" + "".join(printed))


def _results(run_dir: Path) -> list[dict]:
    return [json.loads(line) for f in run_dir.glob("trial_*/result.json") for line in f.read_text().splitlines()
            if line.strip()]


def test_a_killed_search_resumes_where_it_stopped(tmp_path):
    """The same command continues it, as --resume does: a batch job requeued after its preemption (SIGKILL once
    its grace period is over) reruns its command as it was, and was refused (exit 2, `pass --resume`)."""
    (tmp_path / "space.yaml").write_text(SPACE)
    run_dir = tmp_path / "runs" / "resumable"
    first = _start(tmp_path)
    _wait_for(lambda: len(_saved_as_finished(run_dir)) >= 2, first, "2 trials finished in Ray's saved state")
    first.send_signal(signal.SIGKILL)
    first.wait()
    before = _saved_as_finished(run_dir)

    resumed = _start(tmp_path)
    out, _ = resumed.communicate(timeout=180)
    assert resumed.returncode == 0, out
    assert (f"The run at {run_dir} stopped before its end: this search continues it, as --resume does (--restart "
            "starts it again)\n") in out
    after = _finished_trials(run_dir)
    assert len(list(run_dir.glob("trial_*"))) == 6  # a trial started after Ray's last save is set aside
    assert len(after) == 6, after
    assert len((run_dir / "trials.csv").read_text().strip().splitlines()) == 1 + 6
    for trial, results in before.items():  # completed trials were not run again
        assert after[trial] == results
    # a trial that finished while Ray copied its last saved state (its result file newer than that state) may
    # continue from its last checkpoint: it ends at its last epoch all the same (`after` holds all 6)
    states = [t.state for t in _study(run_dir).trials]
    assert optuna.trial.TrialState.RUNNING not in states
    assert states.count(optuna.trial.TrialState.COMPLETE) == 6
    assert (tmp_path / "models" / "resumable" / "model.json").is_file()


def test_a_killed_running_trial_continues_from_its_last_checkpoint_or_an_older_one_where_that_is_gone(tmp_path):
    """`checkpoint_every: 3`: a running trial keeps a checkpoint at least every 3 epochs (its accuracy falls after
    epoch 1, so no later epoch is kept for the export). Killed, it continues from its last checkpoint that Ray's
    saved state knows (keep_checkpoints: 1 has Ray save it at each), rerunning at most 2 of the epochs that state
    knows. The state is read, not the trial folders: those may be newer (copied first, while the trial goes on).

    A whole cluster lost: a trial's checkpoint saved after Ray's last saved state made Ray delete the one that
    state names, and the resumed trial failed ("Could not recover from checkpoint as it does not exist on storage
    anymore"), its epochs lost for good. Here every checkpoint but epoch 1's of the trial further on is deleted
    after the kill: it continues from epoch 1's, where it kept one (its best, unless the other trial's was better),
    else from its start. The other trial keeps its checkpoints."""
    every, epochs = 3, 12
    space = SPACE.replace("epochs: 3, sleep: 0.6", f"epochs: {epochs}, sleep: 0.4, peak_epoch: 1").replace(
        "trials: 6", f"trials: 2, checkpoint_every: {every}, keep_checkpoints: 1")
    (tmp_path / "space.yaml").write_text(space)
    run_dir = tmp_path / "runs" / "resumable"

    def both_4_epochs_in() -> bool:
        running = saved_reports(run_dir, "RUNNING")
        return len(running) == 2 and all(every + 1 <= n < epochs for n in running.values())

    first = _start(tmp_path)
    _wait_for(both_4_epochs_in, first, "both trials 4 epochs in, in Ray's saved state")
    first.send_signal(signal.SIGKILL)
    first.wait()
    running = saved_reports(run_dir, "RUNNING")
    gone = max(running, key=running.get)  # its checkpoints after epoch 1 are lost
    kept_first = False
    for checkpoint in (run_dir / f"trial_{gone}").glob("checkpoint_*"):
        if json.loads((checkpoint / "state.json").read_text())["epoch"] == 1:
            kept_first = True
        else:
            shutil.rmtree(checkpoint)

    resumed = _start(tmp_path, "--resume")
    out, _ = resumed.communicate(timeout=180)
    assert resumed.returncode == 0, out
    trials = pd.read_csv(run_dir / "trials.csv")
    assert (trials["status"] == "TERMINATED").all() and (trials["epochs"] == epochs).all(), out
    for trial, reports in running.items():
        rows = run_histories(run_dir)[trial]
        restarted = [r["epoch"] for r in rows if r["t_start"] == rows[-1]["t_start"]]  # the resumed train() call
        assert restarted == list(range(restarted[0], epochs + 1)), rows
        if trial != gone:
            assert reports - every < restarted[0] - 1 <= reports, (reports, restarted)  # a checkpoint < 3 epochs back
            continue
        assert restarted[0] == (2 if kept_first else 1), (kept_first, rows)  # from epoch 1's, else from its start
        # the saved state names its checkpoint of epoch 4 or later (one each 3 epochs after 1's), which is gone
        instead = "its checkpoint of epoch 1" if kept_first else "its first epoch"
        assert re.search(rf"trial {trial}: its checkpoint of epoch \d+ is gone from the storage .*: it continues "
                         rf"from {instead}", out), out


def _ran_at_once(run_dir: Path, since: datetime.datetime) -> list[tuple[int, int]]:
    """The pairs of trials started after `since` that ran at the same time (by the study's start and end times)."""
    trials = [t for t in _study(run_dir).trials if t.datetime_start > since]
    assert len(trials) >= 4, trials
    return [(a.number, b.number) for a in trials for b in trials
            if a.number < b.number and b.datetime_start < a.datetime_complete]


def test_ctrl_c_stops_cleanly_and_prints_the_resume_command(tmp_path):
    """Run one trial at a time (`--set search.max_concurrent=1`) and resumed with 2 at once (max_concurrent is not
    in the space's fingerprint), the resumed search runs 2 at once, not the first run's 1."""
    (tmp_path / "space.yaml").write_text(SPACE)
    run_dir = tmp_path / "runs" / "resumable"
    first = _start(tmp_path, "--set", "search.max_concurrent=1")
    printed = _read_until(first, "[1/6] trial")
    ended = re.search(r"\[1/6\] trial (\w+)", printed).group(1)
    _wait_for(lambda: any(n for trial, n in saved_reports(run_dir, "RUNNING").items() if trial != ended), first,
              "the second trial's first report, in Ray's saved state")
    first.send_signal(signal.SIGINT)
    out = printed + first.communicate(timeout=60)[0]
    assert first.returncode == 130, out
    assert "Resume with: autotune run space.yaml --set=search.max_concurrent=1 --num-cpus 2 --resume" in out
    assert out.count("Ctrl-C: stopping the search, its state saved to be resumed") == 1, out  # said at once
    assert "Traceback" not in out
    assert not (tmp_path / "models" / "resumable").exists()
    saved = pd.read_csv(run_dir / "trials.csv")  # the trial running at Ctrl-C: interrupted, not stopped early
    cut = saved[saved["status"] == "INTERRUPTED"]
    assert len(cut) and not saved["stopped_early"].any(), saved
    assert re.search(rf"^{cut['trial_id'].iloc[0]} .* interrupted ", out, flags=re.M)
    assert f"(0 stopped early, 0 failed, {len(cut)} interrupted)" in out and "Stopped early after" not in out
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for trial in run_dir.glob("trial_*"):  # TensorBoard holds every epoch each trial reported, the cut one's too
        events = EventAccumulator(str(trial))
        events.Reload()
        reported = [row["epoch"] for row in _results(trial.parent) if row["trial_id"] == trial.name[6:]]
        drawn = events.Scalars("ray/tune/val_accuracy") if events.Tags()["scalars"] else []
        assert sorted(s.step for s in drawn) == sorted(reported), trial

    resumed_at = datetime.datetime.now()
    resumed = _start(tmp_path, "--resume", "--set", "search.max_concurrent=2")
    out, _ = resumed.communicate(timeout=180)
    assert resumed.returncode == 0, out
    assert len(_finished_trials(run_dir)) == 6
    assert optuna.trial.TrialState.RUNNING not in [t.state for t in _study(run_dir).trials]
    assert _ran_at_once(run_dir, resumed_at)


def test_a_search_run_on_1_cpu_and_resumed_on_2_runs_2_trials_at_once(tmp_path):
    """max_concurrent unset is as many as fit: 1 on 1 CPU, then 2 on 2, not the first run's 1."""
    (tmp_path / "space.yaml").write_text(SPACE.replace("max_concurrent: 2, ", ""))
    run_dir = tmp_path / "runs" / "resumable"
    first = _start(tmp_path, "--num-cpus", "1")
    printed = _read_until(first, "[1/6] trial")
    first.send_signal(signal.SIGINT)
    out = printed + first.communicate(timeout=60)[0]
    assert first.returncode == 130, out

    resumed_at = datetime.datetime.now()
    resumed = _start(tmp_path, "--resume")  # --num-cpus 2
    out, _ = resumed.communicate(timeout=180)
    assert resumed.returncode == 0, out
    assert _ran_at_once(run_dir, resumed_at)


@pytest.mark.usefixtures("local_ray")
def test_a_changed_space_is_not_resumed(in_tmp, capsys):
    """A run of one trial exists; its space then changes: --resume refuses, and says the space changed."""
    from autotune.cli import main

    tiny = SPACE.replace("epochs: 3, sleep: 0.6", "epochs: 1, sleep: 0").replace("trials: 6", "trials: 1")
    space = in_tmp / "space.yaml"
    space.write_text(tiny)
    assert main(["run", "space.yaml", "--no-export"]) == 0
    space.write_text(tiny.replace("y: {uniform: [0.0, 1.0]}", "y: {uniform: [0.0, 0.5]}"))
    capsys.readouterr()

    assert main(["run", "space.yaml", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "the search space changed since" in err and "runs/resumable" in err, err


@pytest.mark.usefixtures("local_ray")
class TestFailingTrials:
    def test_retries_resume_from_the_last_checkpoint(self, in_tmp):
        """Each trial fails once, at epoch 7 of 8; with `checkpoint_every: 3` it kept a checkpoint at most 2
        epochs before: it continues from there, retraining at most 2 epochs."""
        markers = in_tmp / "markers"
        markers.mkdir()
        text = SPACE.replace("epochs: 3, sleep: 0.6", f"epochs: 8, fail_at: 7, fail_once_in: {markers}").replace(
            "resources:", "max_failures: 1, checkpoint_every: 3, resources:")
        result = autotune.fit(text)
        assert (result.trials["status"] == "TERMINATED").all(), result.trials["error"].tolist()
        assert len(list(markers.iterdir())) == 6  # every trial failed once
        for row in result.trials.to_dict("records"):
            epochs = [json.loads(x)["epoch"] for x in Path(row["path"], "result.json").read_text().splitlines()]
            resumed_after = epochs[6] - 1  # the epoch of the checkpoint it continued from
            assert epochs == [*range(1, 7), *range(resumed_after + 1, 9)] and 4 <= resumed_after <= 6, epochs

    def test_a_non_finite_loss_ends_only_that_trial(self, in_tmp):
        """The recipe raises Diverged: that trial ends with its reason, is not retried (it would diverge again;
        max_failures retried it), and is PRUNED in the study with NaN at the epoch it diverged, which TPE ranks
        last there (it was FAIL, which TPE leaves out: it learned nothing of the region that diverged)."""
        text = SPACE.replace("sleep: 0.6", "sleep: 0, nan_if_x_above: 0.5").replace("resources:",
                                                                                    "max_failures: 1, resources:")
        result = autotune.fit(text)
        failed = result.trials[result.trials["status"] == "ERROR"]
        assert 0 < len(failed) < 6
        assert all(e.startswith("Diverged: non-finite training loss at epoch 1") for e in failed["error"])
        assert all(Path(p, "error.txt").read_text().count("Failure #") == 1 for p in failed["path"])
        assert all(result.trials.set_index("trial_id").loc[result.best_trial_id, ["status"]] == "TERMINATED")
        study = _study(result.run_dir)
        ended = {t.user_attrs["autotune_trial_id"]: t for t in study.trials}
        for trial_id in failed["trial_id"]:
            assert ended[trial_id].state == optuna.trial.TrialState.PRUNED
            assert repr(ended[trial_id].intermediate_values) == repr({1: float("nan")})
        assert [t.state for t in study.trials].count(optuna.trial.TrialState.FAIL) == 0


def test_ctrl_c_before_any_checkpoint_prints_a_command_that_resumes_that_run(tmp_path):
    """Interrupted before any trial reported: still "interrupted" and a resume command, which carries the
    storage (here a URI), the overrides and the options, and resumes the run."""
    (tmp_path / "space.yaml").write_text(SPACE)
    store = tmp_path / "store"
    uri = f"file://{store}"
    run_dir = store / "resumable"
    first = _start(tmp_path, "--storage", uri, "--set", "train.sleep=2", "--set", "search.trials=2", "--no-export")
    _wait_for(lambda: any(run_dir.glob("trial_*")), first, "a trial started")
    assert not list(run_dir.glob("trial_*/checkpoint_*"))
    first.send_signal(signal.SIGINT)
    out, _ = first.communicate(timeout=60)
    assert first.returncode == 130, out
    assert "interrupted" in out and "no trial reported a metric" not in out and "Traceback" not in out
    [line] = [ln for ln in out.splitlines() if ln.startswith("Resume with: ")]
    command = shlex.split(line.removeprefix("Resume with: "))
    assert command[:3] == ["autotune", "run", "space.yaml"]
    for words in (["--storage", uri], ["--num-cpus", "2"], ["--set=train.sleep=2"], ["--no-export"], ["--resume"]):
        assert " ".join(words) in " ".join(command), command

    resumed = subprocess.run([sys.executable, "-m", "autotune", *command[1:]], cwd=tmp_path, env=_env(tmp_path),
                             capture_output=True, text=True, timeout=180)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert len(_finished_trials(run_dir)) == 2  # the trials and checkpoints are in the URI storage
    assert not (tmp_path / "models").exists() and not (tmp_path / "runs").exists()
    mirror = tmp_path / "cache" / "autotune" / "runs" / "file" / str(store).strip("/") / "resumable"
    states = [t.state for t in _study(mirror).trials]
    assert states == [optuna.trial.TrialState.COMPLETE] * 2
    for folder in (mirror, run_dir):  # the run's own state: local, and copied into the storage
        assert json.loads((folder / "summary.json").read_text())["interrupted"] is False
        assert len((folder / "trials.csv").read_text().strip().splitlines()) == 1 + 2


def test_a_target_reached_after_resume_ends_the_search_and_exports(tmp_path):
    # The toy's accuracy is at most 0.5 at epoch 1, 0.75 at epoch 2: the target needs a third epoch.
    space = SPACE.replace("trials: 6", "trials: 20, stop: {val_accuracy: 0.76}").replace(
        "sleep: 0.6", f"sleep: 1.5, log_reports_in: '{tmp_path}'")
    (tmp_path / "space.yaml").write_text(space)
    run_dir = tmp_path / "runs" / "resumable"
    first = _start(tmp_path)
    # the toy's own log, written at each report (the run folder has it a sync later): 3 s before any third epoch
    _wait_for(lambda: (tmp_path / "reports").exists(), first, "a first epoch reported")
    first.send_signal(signal.SIGINT)
    out, _ = first.communicate(timeout=60)
    assert first.returncode == 130, out
    assert max((r["val_accuracy"] for r in _results(run_dir)), default=0) < 0.76

    resumed = _start(tmp_path, "--resume")
    out, _ = resumed.communicate(timeout=180)
    assert resumed.returncode == 0, out
    assert "Resume with" not in out and "interrupted" not in out
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["interrupted"] is False and summary["best_metrics"]["val_accuracy"] >= 0.76
    assert len((run_dir / "trials.csv").read_text().strip().splitlines()) - 1 < 20
    assert (tmp_path / "models" / "resumable" / "model.json").is_file()


def test_a_resumed_search_whose_reports_lack_the_metric_fails_and_is_not_called_interrupted(tmp_path):
    """The search stops at the first report without the searched metric and fails in one line, resumed too: the
    stopper's copy a resumed search runs is Ray's, and the run was called interrupted (it said how to resume)."""
    typo = tmp_path / "typo"
    space = SPACE.replace("sleep: 0.6", f"sleep: 0.6, log_reports_in: '{tmp_path}', unscored_if_exists: '{typo}'")
    (tmp_path / "space.yaml").write_text(space)
    first = _start(tmp_path)
    _wait_for(lambda: (tmp_path / "reports").exists(), first, "a first epoch reported")
    first.send_signal(signal.SIGINT)
    out, _ = first.communicate(timeout=60)
    assert first.returncode == 130, out

    typo.touch()
    resumed = _start(tmp_path, "--resume")
    out, _ = resumed.communicate(timeout=180)
    assert resumed.returncode == 1, out
    assert re.search(r"1 of 2 trials failed, and the search stopped at the first broken report "
                     r".every trial would fail so.; the error: the recipe reported .*val_acc but not "
                     r"'val_accuracy', the searched metric", out), out
    assert "interrupted" not in out and "Resume with" not in out and "Traceback" not in out, out
    assert not (tmp_path / "models" / "resumable" / "model.json").exists()  # trials reported before: no model


def test_a_resumed_search_does_not_rerun_trials_that_failed_on_their_own(tmp_path):
    space = SPACE.replace("sleep: 0.6", "sleep: 0.6, fail_if_x_above: 0.5")
    (tmp_path / "space.yaml").write_text(space)
    run_dir = tmp_path / "runs" / "resumable"

    def failed_and_running() -> bool:  # in Ray's saved state, which the resume starts from
        saved = saved_by_status(run_dir)
        return bool(saved.get("ERROR")) and any(0 < n < 3 for n in saved.get("RUNNING", {}).values())

    first = _start(tmp_path)
    _wait_for(failed_and_running, first, "a trial failed while another one runs, in Ray's saved state")
    first.send_signal(signal.SIGKILL)
    first.wait()
    printed = first.stdout.read()  # the failure in one progress line, not Ray's log of it with its traceback
    assert re.search(r"trial \w+ failed: ValueError: x=\S+ is too large for this toy", printed), printed
    assert "Traceback" not in printed and "Trial task failed" not in printed, printed
    failed = {f"trial_{t}": (run_dir / f"trial_{t}" / "error.txt").stat().st_mtime_ns
              for t in saved_reports(run_dir, "ERROR")}

    resumed = _start(tmp_path, "--resume")
    out, _ = resumed.communicate(timeout=180)
    assert resumed.returncode == 0, out
    for trial, stamp in failed.items():  # not started again: its error file is the first run's
        assert (run_dir / trial / "error.txt").stat().st_mtime_ns == stamp, trial
    rows = {f"trial_{r['trial_id']}": r for r in _csv(run_dir / "trials.csv")}
    assert len(rows) == 6
    assert all(rows[trial]["status"] == "ERROR" for trial in failed)
    ended = [t for t in rows.values() if t["status"] == "TERMINATED"]
    assert ended and all(int(t["epochs"]) == 3 for t in ended)  # the killed in-flight trials were resumed
    states = [t.state for t in _study(run_dir).trials]
    assert optuna.trial.TrialState.RUNNING not in states
    assert states.count(optuna.trial.TrialState.COMPLETE) == len(ended)
    # besides the failed trials, FAIL only for one asked after Ray's last saved state (the resume asks another)
    extra = len(states) - len(rows)
    assert 0 <= extra <= 2  # at most one a running slot (max_concurrent: 2) asked after the save
    assert states.count(optuna.trial.TrialState.FAIL) == sum(r["status"] == "ERROR" for r in rows.values()) + extra


def _csv(path: Path) -> list[dict]:
    import csv

    with open(path) as handle:
        return list(csv.DictReader(handle))


@pytest.mark.usefixtures("local_ray")
class TestRunFolders:
    @pytest.mark.parametrize("query", ["", "?use_mmap=true"])  # a query configures the file system (S3's endpoint)
    def test_a_uri_storage_holds_the_trials_and_a_local_mirror_the_state(self, in_tmp, monkeypatch, query, cli):
        monkeypatch.setenv("XDG_CACHE_HOME", str(in_tmp / "cache"))
        store = in_tmp / "store"
        text = SPACE.replace("sleep: 0.6", "sleep: 0")
        uri = f"file://{store}{query}"
        result = autotune.fit(text, storage=uri)
        assert result.run_uri == f"file://{store}/resumable{query}"
        mirror = in_tmp / "cache" / "autotune" / "runs" / "file" / str(store).strip("/") / "resumable"
        assert result.run_dir == mirror and not (in_tmp / "runs").exists()
        assert list((store / "resumable").glob("trial_*/checkpoint_*"))  # at least the exported one
        assert len(_study(mirror).trials) == 6
        for folder in (mirror, store / "resumable"):
            assert {"study.db", "space.fingerprint", "summary.json", "trials.csv"} <= {p.name for p in folder.iterdir()}
        card = json.loads((in_tmp / "models" / "resumable" / "model.json").read_text())
        assert card["run_uri"] == result.run_uri and card["trial_id"] == result.best_trial_id
        summary = format_summary(result)  # TensorBoard reads the trials' events where they are: in the storage
        assert f"TensorBoard: tensorboard --logdir {shlex.quote(result.run_uri)}" in summary and str(mirror) in summary
        # the report, given the mirror (the folder the summary names), reads the trials' curves in the storage
        assert json.loads((mirror / "summary.json").read_text())["run_uri"] == result.run_uri
        histories = load_run(mirror).histories
        assert {t: len(histories[t]) for t in result.trials["trial_id"]} == dict(
            zip(result.trials["trial_id"], result.trials["epochs"]))
        # given the run's URI, as the summary prints it, `report` and `dashboard` read that mirror
        code, out, err = cli("report", result.run_uri)
        assert code == 0 and f"(its local mirror {mirror})" in out, out + err
        assert (mirror / "report" / "report.html").is_file()
        assert dashboard_run(local_run_folder(result.run_uri)) == mirror

        shutil.rmtree(mirror)  # resumed on another machine, or the cache cleared: the state comes from the storage
        resumed = autotune.fit(text, storage=uri, export=False, resume=True)
        assert len(resumed.trials) == 6 and len(_study(mirror).trials) == 6

        with pytest.raises(UserError, match="already exists at file://.*resume=True to continue it"):
            autotune.fit(text, storage=uri, export=False)
        again = autotune.fit(text, storage=uri, export=False, restart=True)
        assert len(again.trials) == 6 and len(list((store / "resumable").glob("trial_*"))) == 6

    def test_a_gcs_storage_without_credentials_is_refused_within_the_checks_retry_limit(self, tmp_path, monkeypatch):
        """Without credentials pyarrow's GCS client retries for 15 minutes before it fails; the storage check before
        Ray lets it retry for CHECK_RETRY_SECONDS. A limit the URI names is kept."""
        from autotune.engine import storage

        monkeypatch.setenv("GCE_METADATA_ROOT", "127.0.0.1:1")  # no metadata server, so no credentials
        monkeypatch.setenv("HOME", str(tmp_path))  # and no gcloud configuration
        monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
        monkeypatch.delenv("CLOUDSDK_CONFIG", raising=False)
        monkeypatch.setattr(storage, "CHECK_RETRY_SECONDS", 1)
        errors: list[str] = []

        def check() -> None:
            try:
                storage._check_storage(storage.run_location("gs://bucket/runs", "digits"))
            except UserError as err:
                errors.append(str(err))

        worker = threading.Thread(target=check, daemon=True)
        worker.start()
        worker.join(60)
        assert not worker.is_alive() and len(errors) == 1
        prefix = "cannot open the storage 'gs://bucket/runs': "
        assert errors[0].startswith(prefix) and "; check the URI and its credentials" in errors[0]
        assert "access token" in errors[0][len(prefix):].split("; check the URI")[0]  # pyarrow's: no credentials
        assert storage._retrying_briefly("gs://b/runs?retry_limit_seconds=300") == "gs://b/runs?retry_limit_seconds=300"
        assert storage._retrying_briefly("gs://b/runs?project_id=p").endswith("?project_id=p&retry_limit_seconds=1")
        assert storage._retrying_briefly("s3://b/runs") == "s3://b/runs"

    @pytest.mark.parametrize("failure", ["a bad scheduler setting", "Ray failing before the first trial"])
    def test_a_run_stopped_before_its_first_trial_does_not_block_the_next(self, in_tmp, monkeypatch, failure):
        from ray import tune

        text = SPACE.replace("sleep: 0.6", "sleep: 0")
        run_dir = in_tmp / "runs" / "resumable"
        if failure == "a bad scheduler setting":
            with pytest.raises(SpaceError, match="grace_period is 9"):
                autotune.fit(text.replace("scheduler: fifo", "scheduler: {asha: {grace_period: 9}}"))
        else:
            def fail(self):
                raise RuntimeError("the Ray cluster went away (injected)")

            with monkeypatch.context() as patch:
                patch.setattr(tune.Tuner, "fit", fail)
                with pytest.raises(RuntimeError, match="injected"):
                    autotune.fit(text)
            assert (run_dir / "tuner.pkl").exists() and (run_dir / "study.db").exists()  # what such a run leaves
        with pytest.raises(UserError, match="there is no run to resume"):
            autotune.fit(text, resume=True)
        result = autotune.fit(text)  # neither "already exists" nor "holds no resumable search"
        assert len(result.trials) == 6 and (result.trials["status"] == "TERMINATED").all()
        assert len(_study(run_dir).trials) == 6

    @pytest.mark.parametrize("started", [True, False])
    def test_a_ctrl_c_that_reaches_the_command_still_says_how_to_resume(self, in_tmp, monkeypatch, capsys, started):
        """A second Ctrl-C (while Ray stops the trials) ends `fit` with KeyboardInterrupt."""
        from autotune.cli import main

        Path("space.yaml").write_text(SPACE.replace("sleep: 0.6", "sleep: 0"))
        if started:
            autotune.fit("space.yaml", overrides=["search.trials=2"], export=False)

        def interrupted(*args, **kwargs):
            raise KeyboardInterrupt

        monkeypatch.setattr(autotune.api, "fit", interrupted)
        assert main(["run", "space.yaml", "--set", "search.trials=2"]) == 130
        out = capsys.readouterr().out
        assert "The search was interrupted." in out
        assert ("Resume with: autotune run space.yaml --set=search.trials=2 --resume" in out) is started


def test_a_killed_search_with_early_stopping_resumes_its_searcher_and_rungs(tmp_path):
    """The default scheduler (asynchronous Hyperband) and the PRUNED trials survive a kill: the resumed search runs
    the trials left, stops trials early still, and leaves every trial told to Optuna once, COMPLETE or PRUNED with
    the epochs it ran."""
    space = SPACE.replace("epochs: 3, sleep: 0.6", "epochs: 9, sleep: 0.15").replace("scheduler: fifo",
                                                                                    "scheduler: auto")
    (tmp_path / "space.yaml").write_text(space.replace("trials: 6", "trials: 10"))
    run_dir = tmp_path / "runs" / "resumable"
    first = _start(tmp_path)
    _wait_for(lambda: len(_results(run_dir)) >= 12, first, "12 epochs reported")
    first.send_signal(signal.SIGKILL)
    first.wait()
    # the study as the kill left it: written live, ahead of the run folder's files and of Ray's saved state
    told = {_key(t.params): t for t in _study(run_dir).trials}
    resumed = _start(tmp_path, "--resume")
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    # the trials told; one asked after Ray's last saved state, which the resume replaced, is FAIL
    trials = [t for t in _study(run_dir).trials if t.state != optuna.trial.TrialState.FAIL]
    assert len(trials) == 10 and len({_key(t.params) for t in trials}) == 10  # none asked twice
    assert len(_study(run_dir).trials) - len(trials) <= 2  # at most one a running slot asked after the save
    ended = {key: t for key, t in told.items() if t.state.is_finished()}
    epochs = {key: max(t.intermediate_values, default=0) for key, t in told.items()}
    for result in _results(run_dir):
        key = _key(result["config"])
        epochs[key] = max(epochs.get(key, 0), result["training_iteration"])
    for trial in trials:
        if (before := ended.get(_key(trial.params))) is not None:  # told once: a rerun after the kill changes nothing
            assert (trial.state, trial.intermediate_values) == (before.state, before.intermediate_values), trial
            continue
        ran = epochs[_key(trial.params)]
        assert trial.state.name == ("COMPLETE" if ran == 9 else "PRUNED"), (trial, ran)
        if ran < 9:
            assert sorted(trial.intermediate_values) == list(range(1, ran + 1)), (trial, ran)
    resumed_trials = [t for t in trials if _key(t.params) not in ended]
    assert any(t.state.name == "PRUNED" for t in resumed_trials), "early stopping went on after the resume"


def test_a_search_killed_while_its_state_was_copied_resumes_from_one_whole_save(tmp_path):
    """Killed while Ray copied its state into the run folder, file by file: the searcher's files of one save beside
    the experiment state of an earlier one (the trials it knew). The resume starts from one whole save: it runs
    every trial of the search, each asked of Optuna once (from the mixed files, Ray's trial count was ahead of its
    trials and the search ended a trial short)."""
    (tmp_path / "space.yaml").write_text(SPACE.replace("trials: 6", "trials: 10"))
    run_dir = tmp_path / "runs" / "resumable"
    first = _start(tmp_path)

    def saved() -> int:  # the trials of Ray's saved state (a resume's: its newest whole save)
        return sum(map(len, saved_by_status(run_dir).values()))

    def in_run_folder() -> dict[Path, bytes]:  # the experiment state as the run folder has it, where Ray reads it
        return {p: p.read_bytes() for p in run_dir.glob("experiment_state-*.json")}

    _wait_for(lambda: saved() >= 2 and in_run_folder(), first, "2 trials in Ray's saved state, copied")
    earlier = in_run_folder()
    known = len(json.loads(next(iter(earlier.values())))["trial_data"])
    _wait_for(lambda: saved() >= known + 2, first, "2 more trials in Ray's saved state")
    first.send_signal(signal.SIGKILL)
    first.wait()
    for path, data in earlier.items():  # the copy cut short before the experiment state
        path.write_bytes(data)

    resumed = _start(tmp_path, "--resume")
    out, _ = resumed.communicate(timeout=180)
    assert resumed.returncode == 0, out
    assert saved() == 10 and set(saved_by_status(run_dir)) == {"TERMINATED"}
    trials = [t for t in _study(run_dir).trials if t.state != optuna.trial.TrialState.FAIL]
    assert len(trials) == 10 and len({_key(t.params) for t in trials}) == 10, trials
    assert len(_study(run_dir).trials) - len(trials) <= 2  # at most one a running slot asked after the save


def _key(params: dict) -> tuple[float, float]:
    return params["model.x"], params["model.y"]


def test_a_uri_run_s_state_comes_back_whole_to_a_cleared_mirror(tmp_path, monkeypatch):
    """Published at the end, fetched by a resume elsewhere: the study, the space, the results, the lost-node moves
    and the tracker's run ids (without them a resume would open a second MLflow parent run)."""
    from autotune.engine.storage import _copy_state, publish_state, run_location

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    where = run_location(f"file://{tmp_path}/store", "resumable")
    where.state.mkdir(parents=True)
    (tmp_path / "store" / "resumable").mkdir(parents=True)  # the experiment folder, as Ray leaves it
    state = {name: f"{name} of the run\n" for name in ("moves.jsonl", "space.fingerprint", "space.json", "study.db",
                                                        "summary.json", "tracking.json", "trials.csv")}
    for name, text in state.items():
        (where.state / name).write_text(text)
    publish_state(where)
    shutil.rmtree(where.state)
    _copy_state(where, upload=False)
    assert {p.name: p.read_text() for p in where.state.iterdir()} == state


def test_a_run_killed_after_its_export_keeps_its_promotion_when_resumed(tmp_path, monkeypatch):
    """Killed after its export but before its end was recorded (summary.json, the trackers), a resumed run does
    not export the same checkpoint again, to be judged against itself and called not better: the model stays the
    one version, and the summary says promoted."""
    monkeypatch.chdir(tmp_path)
    text = SPACE.replace("sleep: 0.6", "sleep: 0").replace("trials: 6", "trials: 2").replace(
        "export: {dir: models/resumable}", "export: {dir: models/resumable, promote: if_better}")
    assert "if_better" in text
    first = autotune.fit(text, num_cpus=2)
    assert first.promotion["promoted"]
    versions = sorted(p.name for p in (tmp_path / "models" / ".resumable.versions").iterdir())
    (first.run_dir / "summary.json").unlink()  # the kill came before _finish
    again = autotune.fit(text, resume=True, num_cpus=2)
    assert again.best_trial_id == first.best_trial_id
    assert again.promotion["promoted"] and again.test_metrics == first.test_metrics
    # the summary says when and why, not the first export's reason as if it held now ("no canonical model yet")
    assert again.promotion["reason"] == f"exported by this run before it was stopped ({first.promotion['reason']})"
    assert "(promoted: exported by this run before it was stopped (no canonical model yet))" in str(again)
    assert sorted(p.name for p in (tmp_path / "models" / ".resumable.versions").iterdir()) == versions
    assert json.loads((again.run_dir / "summary.json").read_text())["promotion"]["promoted"]


@pytest.mark.usefixtures("local_ray")
def test_a_finished_run_resumed_keeps_its_promotion_and_counts_its_whole_search_time(in_tmp, caplog):
    """A finished run resumed stays finished: its model is not exported again, its summary keeps the export's
    decision (not "exported by this run before it was stopped"), and its search time is both sessions'."""
    text = SPACE.replace("epochs: 3, sleep: 0.6", "epochs: 1, sleep: 0").replace("trials: 6", "trials: 2")
    first = autotune.fit(text)
    before = json.loads((first.run_dir / "summary.json").read_text())
    versions = sorted(p.name for p in (in_tmp / "models" / ".resumable.versions").iterdir())
    with caplog.at_level(logging.INFO, logger="autotune"):
        again = autotune.fit(text, resume=True)
    assert again.promotion == before["promotion"] and again.test_metrics == first.test_metrics
    assert "before it was stopped" not in str(again) and "exported by this run" not in str(again)
    assert "this run exported its best checkpoint when it finished" in caplog.text
    assert "the canonical model is that version" in caplog.text
    assert sorted(p.name for p in (in_tmp / "models" / ".resumable.versions").iterdir()) == versions
    after = json.loads((again.run_dir / "summary.json").read_text())
    assert after["promotion"] == before["promotion"]
    assert after["seconds"] == pytest.approx(before["seconds"] + again.seconds)
    assert after["session_seconds"] == pytest.approx(again.seconds) and after["seconds"] > after["session_seconds"]


def test_a_sigterm_after_the_trials_ended_finishes_the_run_then_exits_143(in_tmp, monkeypatch, caplog):
    """A SIGTERM while the best trial was exported went to Ray's handler: `autotune run` exited with status 15, its
    summary unprinted and no line saying why, the model exported."""
    export = autotune.api._export_best

    def signalled(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        return export(*args, **kwargs)

    monkeypatch.setattr(autotune.api, "_export_best", signalled)
    mine = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(autotune.api.Terminated) as stopped:
            autotune.fit(toy_space("late", trials=2, train="{epochs: 1}", search=", scheduler: fifo"))
        # the process is ending: a second SIGTERM, the default handler put back, killed `autotune run` as it printed
        # its summary (exit -15)
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, mine)
    assert stopped.value.code == 143 and stopped.value.handler is mine
    result = stopped.value.result
    assert not result.interrupted and result.model_dir is not None and (Path(result.model_dir) / "model.json").is_file()
    assert "SIGTERM received after the trials ended" in caplog.text


def test_sigterm_stops_cleanly_as_ctrl_c_does_with_exit_143(tmp_path):
    """SIGTERM, what a CI runner sends at its time limit, went to Ray's handler (sys.exit inside Tune's loop): exit
    1, a traceback, no resume line; a second one aborted the process (134). Sent to the whole process group
    (systemd's KillMode=control-group, `kill -- -PGID`), it killed the local Ray's processes too: the search waited
    60 s for its GCS, then failed (exit 1, no resume line). SIGTERMs every 0.2 s until it ends: the default handler
    Ray's shutdown put back, and the one the search put back, let one kill it as it stopped (exit -15)."""
    (tmp_path / "space.yaml").write_text(SPACE)
    run_dir = tmp_path / "runs" / "resumable"
    first = _start(tmp_path, group=True)
    printed = _read_until(first, "[1/6] trial")
    os.killpg(first.pid, signal.SIGTERM)
    deadline = time.time() + 60
    while first.poll() is None and time.time() < deadline:  # more, while the search stops, are ignored
        time.sleep(0.2)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(first.pid, signal.SIGTERM)
    out = printed + first.communicate(timeout=60)[0]
    assert first.returncode == 143, out
    assert "Resume with: autotune run space.yaml --num-cpus 2 --resume" in out
    assert "Traceback" not in out and "SIGTERM received at time" not in out
    assert not (tmp_path / "models" / "resumable").exists()

    resumed = _start(tmp_path)  # the same command, as a batch job requeued after its preemption runs it
    out, _ = resumed.communicate(timeout=180)
    assert resumed.returncode == 0, out
    assert "stopped before its end: this search continues it, as --resume does" in out
    assert len(_finished_trials(run_dir)) == 6
    assert _start(tmp_path).communicate(timeout=60)[0].endswith("pass --resume to continue it or --restart to delete "
                                                                "it and start again\n")  # a run that ended


def test_a_run_resumed_after_its_recipe_was_edited_says_so_once(in_tmp, caplog):
    """The space's fingerprint does not cover its code: a resume after the recipe file was edited (a fix, say) goes
    on, and warns that its trials now run other code than the ended ones did; the next resume does not warn again."""
    shutil.copy(TOY, in_tmp / "toy.py")
    text = SPACE.replace(TOY, str(in_tmp / "toy.py")).replace("epochs: 3, sleep: 0.6", "epochs: 1, sleep: 0")
    text = text.replace("trials: 6", "trials: 1")
    autotune.fit(text, export=False)
    with caplog.at_level(logging.WARNING, logger="autotune"):
        autotune.fit(text, resume=True, export=False)
    assert "was edited" not in caplog.text
    with (in_tmp / "toy.py").open("a") as recipe:
        recipe.write("# a fix\n")
    with caplog.at_level(logging.WARNING, logger="autotune"):
        autotune.fit(text, resume=True, export=False)
    assert f"the recipe file {in_tmp / 'toy.py'} was edited since this run last ran" in caplog.text
    assert "to search with the edited code alone, use restart=True" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="autotune"):
        autotune.fit(text, resume=True, export=False)
    assert "was edited" not in caplog.text


def test_a_checkpoint_the_edited_recipe_cannot_export_says_the_code_changed_under_the_run(in_tmp):
    """A run resumed after its recipe changed its checkpoints' format (a layer added to the model) picked a best
    trial that the old code trained, whose export then failed with the recipe's own error alone, at each resume
    again, and left trials.csv as the interrupted session wrote it: nothing named the edit or a way on. A trial of a
    run exported after such an edit failed as silently."""
    shutil.copy(TOY, in_tmp / "toy.py")
    text = SPACE.replace(TOY, str(in_tmp / "toy.py")).replace("epochs: 3, sleep: 0.6", "epochs: 1, sleep: 0")
    text = text.replace("trials: 6", "trials: 1")
    result = autotune.fit(text, export=False)
    run, trial = result.run_dir, result.best_trial_id
    source = (in_tmp / "toy.py").read_text()
    (in_tmp / "toy.py").write_text(source.replace('(Path(checkpoint) / "state.json")', '(Path(checkpoint) / "v2.json")'))
    with pytest.raises(UserError) as since:  # the run ran the code before the edit alone
        autotune.export(run, trial, out=in_tmp / "out")
    assert "recipe function 'export'" in str(since.value) and "v2.json" in str(since.value)
    assert str(since.value).splitlines()[-1] == (
        f"the recipe's code was edited since the run {run} ran: its checkpoints are of the code before the edit, "
        "which its export() cannot read; undo the edit to export them, or search again with restart=True")
    (run / "trials.csv").unlink()
    with pytest.raises(UserError) as edited:
        autotune.fit(text, resume=True)
    assert "recipe function 'export'" in str(edited.value) and "v2.json" in str(edited.value)
    assert str(edited.value).splitlines()[-1] == (
        f"the recipe's code was edited while the run {run} ran: the checkpoint of trial {trial} may be of the code "
        f"before the edit, which its export() cannot read; export a trial that the edited code trained (`autotune "
        f"export {run} --trial ID`; {run / 'trials.csv'} lists the trials), undo the edit, or search again with "
        "restart=True")
    assert json.loads((run / "summary.json").read_text())["error"] == str(edited.value)
    assert list(pd.read_csv(run / "trials.csv", dtype={"trial_id": str})["trial_id"]) == [trial]
    with pytest.raises(UserError, match="the recipe's code was edited while the run"):
        autotune.export(run, trial, out=in_tmp / "out")


def test_a_trial_exported_after_its_recipe_was_edited_records_the_code_that_trained_it(in_tmp):
    """A run's trial exported after an edit of the recipe that its export() survives (a fix in load_data) recorded
    today's recipe as the card's sources: `autotune train MODEL_DIR` then found nothing changed, while the model's
    weights came from the code before the edit."""
    shutil.copy(TOY, in_tmp / "toy.py")
    trained = hashlib.sha256((in_tmp / "toy.py").read_bytes()).hexdigest()
    text = SPACE.replace(TOY, str(in_tmp / "toy.py")).replace("epochs: 3, sleep: 0.6", "epochs: 1, sleep: 0")
    result = autotune.fit(text.replace("trials: 6", "trials: 1"), export=False)
    with (in_tmp / "toy.py").open("a") as recipe:
        recipe.write("# a fix\n")
    autotune.export(result.run_dir, result.best_trial_id, out=in_tmp / "out")
    assert json.loads((in_tmp / "out" / "model.json").read_text())["sources"] == {"recipe": trained}
