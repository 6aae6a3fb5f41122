"""Tracking: a search in MLflow (a real `mlflow server` on loopback with a sqlite backend, read back through
MlflowClient; a file store and a sqlite URI) and in Weights & Biases (offline: the run files, read in their own
format). One parent run per search with its trials nested, the model loadable by mlflow.pytorch and pyfunc, a
resume that keeps its runs, and a tracker that is unreachable (one line before Ray) or goes away (one warning)."""
from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd
import pytest

mlflow = pytest.importorskip("mlflow")
pytest.importorskip("wandb")

import autotune  # noqa: E402
import autotune.cli  # noqa: E402
import autotune.engine.search  # noqa: E402
import autotune.tracking.mlflow_runs  # noqa: E402
from autotune.space import load_space  # noqa: E402
from autotune.space.types import TrackingSettings  # noqa: E402
from autotune.tracking import settings_of  # noqa: E402
from engine_helpers import TOY, toy_space  # noqa: E402

# the toy recipe's line that raises for a large x: a failed trial's reason names it
TOY_RAISES = next(n for n, line in enumerate(Path(TOY).read_text().splitlines(), 1) if "too large for this toy" in line)
from test_resume import _saved_as_finished, _start, _wait_for  # noqa: E402

DIGITS = """
name: tiny
recipe: image_classification
data: {dataset: digits, val_fraction: 0.15, test_fraction: 0.15}
model: {arch: mlp, width: {choice: [16, 32]}, depth: 1}
optimizer: {name: adamw, lr: {loguniform: [1.0e-3, 3.0e-2]}}
train: {epochs: 3, batch_size: 64}
search: {trials: 4, max_concurrent: 2, scheduler: {asha: {grace_period: 1, reduction_factor: 2}}, resources: {cpu: 1}}
export: {dir: models/tiny}
tracking:
  mlflow: {uri: "URI", experiment: tiny-exp, register: tiny-clf}
"""

TOY_SPACE = f"""
name: toy
recipe: {TOY}
model: {{x: {{uniform: [0.0, 1.0]}}, y: {{uniform: [0.0, 1.0]}}}}
train: {{epochs: 3, sleep: SLEEP, fail_if_x_above: 0.8}}
search: {{trials: 6, max_concurrent: 2, scheduler: fifo, seed: 0, resources: {{cpu: 1}}}}
export: {{dir: models/toy}}
tracking:
  mlflow: {{uri: "URI", experiment: toy-exp}}
  wandb: {{mode: offline, project: toy}}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory, free_port):
    """`mlflow server` on a free loopback port, a sqlite backend and its own artifact folder; its URI. A server
    that exits while starting (its port taken in the seconds between the choice and the bind) is started again
    on another port, twice at most."""
    folder = tmp_path_factory.mktemp("mlflow_server")
    log = open(folder / "server.log", "w")
    for _ in range(3):
        uri, process = _mlflow_server(folder, free_port(), log)
        if process.poll() is None:
            break
    assert process.poll() is None, (folder / "server.log").read_text()
    yield uri, process
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)  # the server and its web workers
        process.wait(timeout=30)
    log.close()


def _mlflow_server(folder: Path, port: int, log) -> tuple[str, subprocess.Popen]:
    """An `mlflow server` on `port`, once it answers /health or has exited."""
    import httpx

    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{folder}/backend.db",
         "--artifacts-destination", str(folder / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"], cwd=folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{uri}/health", timeout=2).status_code == 200:
                return uri, process
        except httpx.HTTPError:
            time.sleep(0.5)
    if process.poll() is None:
        raise AssertionError("mlflow server did not answer within 180 s")
    return uri, process


def _client(uri: str):
    return mlflow.tracking.MlflowClient(tracking_uri=uri)


def _runs(uri: str, experiment: str) -> tuple[list, list]:
    """(parent runs, child runs) of an experiment."""
    client = _client(uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    return ([r for r in runs if "mlflow.parentRunId" not in r.data.tags],
            [r for r in runs if "mlflow.parentRunId" in r.data.tags])


def _trials(run_dir: Path) -> dict[str, dict]:
    import csv

    with open(run_dir / "trials.csv") as f:
        return {row["trial_id"]: row for row in csv.DictReader(f)}


def _search(folder: Path, space: str, resume: bool = False) -> "autotune.SearchResult":
    before = Path.cwd()
    os.chdir(folder)
    try:
        return autotune.fit(space, num_cpus=2, resume=resume)
    finally:
        os.chdir(before)


def _records(*trial_ids: str, status: str = "finished") -> list:
    """The search's trials as `finish` is given them, each with the end `status` and no epoch (a tracker that saw
    them fills in nothing)."""
    from autotune.tracking import TrialRecord

    return [TrialRecord(trial_id, {"x": 0.5}, (), status, "") for trial_id in trial_ids]


def test_the_environment_switches_trackers_on_by_their_own_conventions():
    space = load_space("name: t\n")
    assert settings_of(space, {}).mlflow is None and settings_of(space, {}).wandb is None
    assert settings_of(space, {"MLFLOW_TRACKING_URI": "sqlite:///m.db"}).mlflow is not None
    assert settings_of(space, {"WANDB_MODE": "offline"}).wandb is not None
    assert settings_of(space, {"WANDB_PROJECT": "p"}).wandb is not None
    assert settings_of(space, {"WANDB_MODE": "disabled"}).wandb is None
    off = load_space("name: t\ntracking: {mlflow: false, wandb: false}\n")  # the space's word wins
    assert settings_of(off, {"MLFLOW_TRACKING_URI": "sqlite:///m.db", "WANDB_PROJECT": "p"}) == TrackingSettings(
        off=frozenset({"mlflow", "wandb"}))
    unset = load_space("name: t\ntracking: {mlflow: null}\n")  # null: as if absent
    assert settings_of(unset, {"MLFLOW_TRACKING_URI": "sqlite:///m.db"}).mlflow is not None


def _wandb_records(path: Path) -> list:
    """The records of an ended W&B run's file (.wandb), once its exit record is there (within 60 s): W&B's writer
    (its wandb-core process) writes the file after `run.finish()` has returned (the file held its header alone
    when read at once, 2 runs in 5)."""
    deadline = time.time() + 60
    while True:
        records = list(_written_records(path))
        if any(r.WhichOneof("record_type") == "exit" for r in records) or time.time() > deadline:
            return records
        time.sleep(0.2)


def _written_records(path: Path):
    """The whole records a W&B run file holds so far: a ':W&B' header, then LevelDB's log format of 32 KiB
    blocks."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, pending = 7, 32768, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0 and length == 0:
            pos += left
            continue
        if pos + 7 + length > len(data):  # a record still being written
            return
        pending += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last piece of one
            record = pb.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def _key(item) -> str:
    """An item's key: W&B writes it as `key` or as `nested_key` parts."""
    return item.key or "/".join(item.nested_key)


def _wandb_runs(state_dir: Path) -> dict[str, dict]:
    """W&B run id -> name, group, job type, config, epochs logged and exit code, over every offline run file."""
    runs: dict[str, dict] = {}
    for path in sorted(state_dir.glob("wandb/offline-run-*/run-*.wandb")):
        run: dict = {"steps": [], "exit": None}
        for record in _wandb_records(path):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                run.update(id=record.run.run_id, name=record.run.display_name, group=record.run.run_group,
                           job_type=record.run.job_type, config={_key(c): json.loads(c.value_json) for c in record.run.config.update
                                   if _key(c) != "_wandb"})
            elif kind == "history":
                items = {_key(i): json.loads(i.value_json) for i in record.history.item}
                run["steps"].append(int(items["epoch"]))  # the epoch each result was logged at
            elif kind == "exit":
                run["exit"] = record.exit.exit_code
        if "id" not in run:  # the file of a run the kill cut off as it started: nothing logged
            assert not run["steps"], path
            continue
        previous = runs.setdefault(run["id"], {**run, "steps": []})
        previous["steps"] += run["steps"]
        previous["exit"] = run["exit"]
    return runs


def test_a_killed_search_resumes_into_the_same_runs(server, tmp_path):
    """Killed after 2 trials, then resumed: one parent run, one child run per trial (a trial that continued kept
    its run), failed trials marked with their error; a trial the resume did not continue (started after Ray's last
    saved state), if one reported before the kill, has its run ended as set aside."""
    uri, _ = server
    (tmp_path / "space.yaml").write_text(TOY_SPACE.replace("URI", uri).replace("SLEEP", "0.6"))
    run_dir = tmp_path / "runs" / "toy"
    first = _start(tmp_path)
    _wait_for(lambda: len(_saved_as_finished(run_dir)) >= 2, first, "2 trials finished in Ray's saved state")
    first.send_signal(signal.SIGKILL)
    first.wait()
    _, children_before = _runs(uri, "toy-exp")
    before = {c.data.tags["autotune.trial_id"]: c.info.run_id for c in children_before}
    assert len(before) >= 2

    resumed = _start(tmp_path, "--resume")
    out, _ = resumed.communicate(timeout=240)
    assert resumed.returncode == 0, out
    trials = _trials(run_dir)
    parents, children = _runs(uri, "toy-exp")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    aside = [c for c in children if c.data.tags.get("autotune.status") == "set aside"]
    assert all(c.info.status == "KILLED" and c.data.tags["autotune.trial_id"] not in trials for c in aside)
    after = {c.data.tags["autotune.trial_id"]: c for c in children if c not in aside}
    assert len(children) - len(aside) == len(after) == len(trials) == 6  # no trial has two runs
    assert all(after[t].info.run_id == run for t, run in before.items() if t in trials)
    for trial_id, row in trials.items():
        child = after[trial_id]
        if row["status"] == "ERROR":
            assert child.info.status == "FAILED" and child.data.tags["autotune.status"] == "failed"
            # trials.csv's params, also of a trial that failed before the kill (Ray returns it without a config)
            assert child.data.tags["autotune.stop_reason"] == (
                f"failed: ValueError: x={float(row['p:model.x']):.3f} is too large for this toy (toy_recipe.py, "
                f"line {TOY_RAISES})")
        else:
            assert child.info.status == "FINISHED" and child.data.tags["autotune.status"] == "finished"
    assert any(row["status"] == "ERROR" for row in trials.values())  # x > 0.8 fails: the test covers it



@pytest.mark.parametrize("store", ["sqlite", "file"])
def test_a_trial_the_resume_did_not_continue_has_its_run_ended_as_set_aside(store, tmp_path, monkeypatch):
    """The killed process ran trial d to its end and reported on a, b and e; the resume continues a and runs c in
    the place of b and e (Ray's saved state knew neither; e had even finished before the kill). At the end, b's and
    e's runs are KILLED and tagged set aside; a keeps its run and ends FINISHED; d is left as it was."""
    from autotune.space.types import MlflowSettings
    from autotune.tracking import SearchStart
    from autotune.tracking.mlflow_runs import MlflowRuns

    monkeypatch.chdir(tmp_path)  # a sqlite store keeps its artifacts in ./mlruns
    uri = f"sqlite:///{tmp_path}/mlflow.db" if store == "sqlite" else (tmp_path / "mlruns").as_uri()
    start = SearchStart(name="toy", state_dir=tmp_path, space_file=None, settings={}, resumed=False)
    killed = MlflowRuns(MlflowSettings(uri=uri, experiment="toy-exp"), "toy", {})
    killed.start(start)
    for trial in ("a", "b", "d", "e"):
        killed.trial_result(trial, {"x": 0.5}, {"val_accuracy": 0.5}, 1)
    for trial in ("d", "e"):
        killed.trial_end(trial, {"x": 0.5}, "finished", "ran all 1 epochs")

    resumed = MlflowRuns(MlflowSettings(uri=uri, experiment="toy-exp"), "toy", {})
    resumed.start(SearchStart(name="toy", state_dir=tmp_path, space_file=None, settings={}, resumed=True))
    for trial in ("a", "c"):
        resumed.trial_result(trial, {"x": 0.5}, {"val_accuracy": 0.7}, 2)
        resumed.trial_end(trial, {"x": 0.5}, "finished", "ran all 2 epochs")
    resumed.finish({"name": "toy"}, None, "finished", _records("a", "c", "d"))

    parents, children = _runs(uri, "toy-exp")
    runs = {c.data.tags["autotune.trial_id"]: c for c in children}
    assert len(parents) == 1 and sorted(runs) == ["a", "b", "c", "d", "e"]
    assert runs["a"].info.run_id == killed.children["a"] and runs["a"].info.status == "FINISHED"
    assert runs["c"].info.status == runs["d"].info.status == "FINISHED"
    assert runs["d"].data.tags["autotune.status"] == "finished"
    for trial in ("b", "e"):
        assert runs[trial].info.status == "KILLED" and runs[trial].data.tags["autotune.status"] == "set aside"
        assert "last saved state" in runs[trial].data.tags["autotune.stop_reason"]
    assert resumed.where().endswith("3 trial runs nested")


def test_wandb_keeps_the_values_of_retrained_epochs(tmp_path):
    """A trial that starts again from its checkpoint of epoch 1 reports epochs 2 and 3 again: W&B, whose own step
    only grows, keeps every row, plotted against the metric `epoch` (a step of `epoch` dropped the rerun's)."""
    from autotune.space.types import WandbSettings
    from autotune.tracking import SearchStart
    from autotune.tracking.wandb_runs import WandbRuns

    runs = WandbRuns(WandbSettings(mode="offline", project="toy"), "toy", {})
    runs.start(SearchStart(name="toy", state_dir=tmp_path, space_file=None, settings={}, resumed=False))
    for epoch, value in [(1, 0.5), (2, 0.6), (3, 0.7), (2, 0.65), (3, 0.9)]:
        runs.trial_result("a", {"x": 0.5}, {"val_accuracy": value, "epoch": epoch}, epoch)  # as recipes report
    runs.trial_end("a", {"x": 0.5}, "finished", "ran all 3 epochs")
    (path,) = tmp_path.glob("wandb/offline-run-*/run-*.wandb")
    rows = [{_key(i): json.loads(i.value_json) for i in record.history.item} for record in _wandb_records(path)
            if record.WhichOneof("record_type") == "history"]
    assert [(row["epoch"], row["val_accuracy"]) for row in rows] == [(1, 0.5), (2, 0.6), (3, 0.7), (2, 0.65), (3, 0.9)]


def test_an_interrupted_search_ends_its_running_trials_runs_and_the_resume_continues_them(tmp_path, monkeypatch):
    """Interrupted (Ctrl-C), a search's unfinished trials' runs are KILLED and tagged `interrupted` (not left
    RUNNING for good where the run is never resumed); a resume sets them RUNNING, and each ends in its own run."""
    from autotune.space.types import MlflowSettings
    from autotune.tracking import SearchStart
    from autotune.tracking.mlflow_runs import MlflowRuns

    monkeypatch.chdir(tmp_path)  # a sqlite store keeps its artifacts in ./mlruns
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    runs = MlflowRuns(MlflowSettings(uri=uri, experiment="toy-exp"), "toy", {})
    runs.start(SearchStart(name="toy", state_dir=tmp_path, space_file=None, settings={}, resumed=False))
    for trial in ("a", "b"):
        runs.trial_result(trial, {"x": 0.5}, {"val_accuracy": 0.5}, 1)
    runs.trial_end("b", {"x": 0.5}, "finished", "ran all 1 epochs")
    runs.finish({"name": "toy"}, None, "interrupted", [*_records("a", status="interrupted"), *_records("b")])
    parents, children = _runs(uri, "toy-exp")
    ended = {c.data.tags["autotune.trial_id"]: c for c in children}
    assert parents[0].info.status == "KILLED" and ended["a"].info.status == "KILLED"
    assert ended["a"].data.tags["autotune.status"] == "interrupted" and ended["b"].info.status == "FINISHED"

    resumed = MlflowRuns(MlflowSettings(uri=uri, experiment="toy-exp"), "toy", {})
    resumed.start(SearchStart(name="toy", state_dir=tmp_path, space_file=None, settings={}, resumed=True))
    parents, children = _runs(uri, "toy-exp")
    again = {c.data.tags["autotune.trial_id"]: c for c in children}
    assert parents[0].info.status == "RUNNING" and again["a"].info.status == "RUNNING"
    assert again["a"].data.tags["autotune.status"] == "running" and again["b"].info.status == "FINISHED"
    resumed.trial_result("a", {"x": 0.5}, {"val_accuracy": 0.7}, 2)
    resumed.trial_end("a", {"x": 0.5}, "finished", "ran all 2 epochs")
    resumed.finish({"name": "toy"}, None, "finished", _records("a", "b"))
    parents, children = _runs(uri, "toy-exp")
    assert len(children) == 2 and {c.info.status for c in (*parents, *children)} == {"FINISHED"}


@pytest.fixture(scope="module")
def digits_search(server, tmp_path_factory, local_ray):
    """The digits search, tracked by the server (with its model registered)."""
    folder = tmp_path_factory.mktemp("digits")
    (folder / "space.yaml").write_text(DIGITS.replace("URI", server[0]))
    return _search(folder, str(folder / "space.yaml"))


def test_a_search_is_one_parent_run_with_its_trials_nested_and_the_model_registered(server, digits_search):
    uri, _ = server
    result = digits_search
    assert "MLFLOW_TRACKING_URI" not in os.environ  # the search left this process's MLflow settings alone
    trials = _trials(result.run_dir)
    parents, children = _runs(uri, "tiny-exp")
    (parent,) = parents
    assert parent.info.status == "FINISHED" and parent.info.run_name == "tiny"
    assert parent.data.params["search.trials"] == "4" and parent.data.params["recipe"] == "image_classification"
    assert parent.data.metrics["best_val_accuracy"] == pytest.approx(result.best_metrics["val_accuracy"])
    assert parent.data.metrics["test_accuracy"] == pytest.approx(result.test_metrics["test_accuracy"])
    artifacts = {a.path for a in _client(uri).list_artifacts(parent.info.run_id)}
    assert {"space.yaml", "space.json", "summary.json"} <= artifacts  # the file, and the space as searched
    model_files = {a.path for a in _client(uri).list_artifacts(parent.info.run_id, "model")}
    assert "model/input_example.json" in model_files  # the image recipe's input_example: a black image
    assert any(line.startswith("MLflow: " + uri) for line in result.tracked)

    assert sorted(c.data.tags["autotune.trial_id"] for c in children) == sorted(trials)
    for child in children:
        row = trials[child.data.tags["autotune.trial_id"]]
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.tags["ray.trial_id"] == row["trial_id"]
        params = {k: json.loads(v) for k, v in child.data.params.items()}
        assert params == {"model.width": int(row["p:model.width"]),
                          "optimizer.lr": pytest.approx(float(row["p:optimizer.lr"]), rel=1e-12)}
        history = _client(uri).get_metric_history(child.info.run_id, "val_accuracy")
        assert [m.step for m in sorted(history, key=lambda m: m.step)] == list(range(1, int(row["epochs"]) + 1))
        stopped = row["stopped_early"] == "True"
        assert child.data.tags["autotune.status"] == ("stopped" if stopped else "finished")
        assert child.data.tags["autotune.stop_reason"] == (
            f"stopped early at epoch {row['epochs']} of 3" if stopped else "ran all 3 epochs")
        assert child.info.status == "FINISHED"

    version = _client(uri).get_model_version_by_alias("tiny-clf", "champion")
    assert version.run_id == parent.info.run_id
    card = json.loads((result.model_dir / "model.json").read_text())  # what a rollback moves the alias by
    assert card["registered"] == {"mlflow": {"uri": uri, "name": "tiny-clf"}}
    assert version.tags["autotune.version"] == card["version"]
    images = np.random.default_rng(0).random((5, 1, 8, 8)).astype(np.float32)
    expected = autotune.load_model(result.model_dir).predict(images).probabilities
    import torch

    mlflow.set_tracking_uri(uri)
    try:
        torch_model = mlflow.pytorch.load_model("models:/tiny-clf@champion")
        logits = np.asarray(mlflow.pyfunc.load_model("models:/tiny-clf@champion").predict(images))
    finally:
        mlflow.set_tracking_uri(None)  # and MLFLOW_TRACKING_URI, which it set, unset: later searches track nothing
    with torch.no_grad():
        probabilities = torch.softmax(torch_model(torch.from_numpy(images)), dim=1).numpy()
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    np.testing.assert_allclose(torch.softmax(torch.from_numpy(logits), 1).numpy(), expected, atol=1e-5)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed (apt-get install chromium)")
def test_the_mlflow_ui_lists_the_search_and_compares_its_trials(server, digits_search, tmp_path):
    """Headless Chromium opens the server's own UI: the experiment's runs (one parent, its trials nested) and the
    comparison of the trial runs, which names every trial. AUTOTUNE_SCREENSHOTS=DIR keeps the screenshots there
    (docs/tracking.md shows them)."""
    from PIL import Image

    uri, _ = server
    parents, children = _runs(uri, "tiny-exp")
    experiment = parents[0].info.experiment_id
    ids = [c.info.run_id for c in children]
    pages = {"mlflow_runs": f"{uri}/#/experiments/{experiment}/runs",
             "mlflow_compare": f"{uri}/#/compare-runs?runs={quote(json.dumps(ids))}&experiments="
                               f"{quote(json.dumps([experiment]))}"}
    browser = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--window-size=1500,900", "--virtual-time-budget=20000"]
    dom = subprocess.run([*browser, "--dump-dom", pages["mlflow_compare"]], capture_output=True, text=True,
                         timeout=180).stdout
    assert f"Comparing {len(ids)} Runs" in dom
    assert all(c.data.tags["autotune.trial_id"] in dom for c in children)  # each trial's run, by its name
    keep = os.environ.get("AUTOTUNE_SCREENSHOTS")
    for name, url in pages.items():
        shot = tmp_path / f"{name}.png"
        subprocess.run([*browser, f"--screenshot={shot}", url], capture_output=True, timeout=180)
        with Image.open(shot) as image:
            assert image.size == (1500, 900) and np.asarray(image.convert("L"), dtype=float).std() > 10
        if keep:
            shutil.copy(shot, Path(keep) / shot.name)


@pytest.mark.parametrize("store", ["sqlite", "file"])
def test_a_database_uri_and_a_file_store_hold_the_same(store, tmp_path, local_ray, monkeypatch):
    """Both hold the trials' params, those of a conditional space too: MLflow refuses brackets in a name, so
    `model[1].x` is `model.1.x` there (it refused the whole search's tracking)."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # for this test's own client: MLflow 3 asks for it
    monkeypatch.chdir(tmp_path)  # a sqlite store keeps its artifacts in ./mlruns
    uri = f"sqlite:///{tmp_path}/mlflow.db" if store == "sqlite" else (tmp_path / "mlruns").as_uri()
    conditional = "model: {choice: [{x: {uniform: [0.0, 1.0]}, y: 0.6}, {x: {uniform: [0.0, 1.0]}, extra: 1.0}]}"
    space = TOY_SPACE.replace("URI", uri).replace("SLEEP", "0.0").replace("trials: 6", "trials: 3").replace(
        "  wandb: {mode: offline, project: toy}\n", "").replace(
        "model: {x: {uniform: [0.0, 1.0]}, y: {uniform: [0.0, 1.0]}}", conditional)
    assert conditional in space
    result = _search(tmp_path, space)
    parents, children = _runs(uri, "toy-exp")
    assert len(parents) == 1 and len(children) == 3
    assert sorted(c.data.tags["autotune.trial_id"] for c in children) == sorted(result.trials["trial_id"])
    rows = result.trials.set_index("trial_id")
    for child in children:
        row = rows.loc[child.data.tags["autotune.trial_id"]]
        sampled = {k[2:]: v for k, v in row.items() if k.startswith("p:") and not pd.isna(v)}
        assert {k.replace("[", ".").replace("]", ""): str(v) for k, v in sampled.items()} == {
            k: str(json.loads(v)) for k, v in child.data.params.items()}
        assert any("[" in k for k in sampled)
        assert (row["status"] == "ERROR") is ("val_accuracy" not in child.data.metrics)  # fail_if_x_above: 0.8
    exported = {f"model/{f.name}" for f in Path(result.model_dir).iterdir()}  # another recipe's export, as it is
    assert {a.path for a in _client(uri).list_artifacts(parents[0].info.run_id, "model")} == exported


TABLE_SPACE = """
name: table
recipe: tabular
data: {dataset: csv, path: visits.csv, target: bought}
model: {width: {choice: [16, 32]}, depth: 1}
train: {epochs: 1}
search: {trials: 2, max_concurrent: 2, seed: 0, resources: {cpu: 1}}
export: {dir: models/table}
tracking:
  mlflow: {uri: "URI", experiment: table-exp}
"""


def _visits(n: int = 300) -> pd.DataFrame:
    """A table of two numbers and a category, its class following from them."""
    rng = np.random.default_rng(0)
    minutes, pages = rng.normal(10, 3, n).round(1), rng.integers(1, 20, n)
    channel = rng.choice(["ads", "mail", "search"], n)
    bought = np.where(minutes + pages / 2 + (channel == "mail") * 4 > 16, "yes", "no")
    return pd.DataFrame({"minutes": minutes, "pages": pages, "channel": channel, "bought": bought})


def test_a_tabular_model_is_logged_as_one_that_predicts_rows(tmp_path, local_ray):
    """model.pt takes two encoded tensors, so the tabular model in MLflow could not be called by
    `mlflow.pyfunc.load_model(...).predict(frame)` or `mlflow models serve`: it is logged as a pyfunc model that
    takes the table's own columns (any value, each optional: whole numbers in a column of decimals, and a missing
    value, are read as training read them) and answers as
    `autotune.load_model(...).predict` does, from Python and from MLflow's own command line."""
    _visits().to_csv(tmp_path / "visits.csv", index=False)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    result = _search(tmp_path, TABLE_SPACE.replace("URI", uri))
    (parent,), _ = _runs(uri, "table-exp")
    model_uri = f"runs:/{parent.info.run_id}/model"
    rows = pd.DataFrame({"minutes": [4.0, 15.5, None], "pages": [2, 18, 7], "channel": ["ads", "mail", "radio"]})
    expected = autotune.load_model(result.model_dir).predict(rows)
    assert "unseen_categories" not in expected[0] and expected[2]["unseen_categories"] == {"channel": "radio"}

    def same(rows: list[dict]) -> bool:  # as expected: a key a row lacks is None (JSON's null), never NaN
        given = [{k: v for k, v in row.items() if v is not None} for row in rows]
        return [{**row, "probability": pytest.approx(row["probability"], rel=1e-9)} for row in expected] == given

    mlflow.set_tracking_uri(uri)
    try:
        logged = mlflow.pyfunc.load_model(model_uri)
        assert same(logged.predict(rows).to_dict("records"))
        inputs = logged.metadata.get_input_schema().inputs
        with pytest.raises(mlflow.exceptions.MlflowException) as refused:
            logged.predict(rows.astype({"minutes": object}).assign(minutes=[4.0, "long", None]))
    finally:
        mlflow.set_tracking_uri(None)
    assert [c.to_dict() for c in inputs] == [{"type": "any", "name": name, "required": False}
                                             for name in ("minutes", "pages", "channel")]
    assert "row 1" in refused.value.message and "'minutes'" in refused.value.message, refused.value.message
    (tmp_path / "rows.json").write_text(json.dumps({"dataframe_split": json.loads(rows.to_json(orient="split"))}))
    done = subprocess.run([sys.executable, "-m", "mlflow", "models", "predict", "-m", model_uri, "-i",
                           str(tmp_path / "rows.json"), "-t", "json", "--env-manager", "local"],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "MLFLOW_TRACKING_URI": uri})
    assert done.returncode == 0, done.stderr[-2000:]
    answer = done.stdout.strip().splitlines()[-1]
    assert "NaN" not in answer, answer  # strict JSON: what `mlflow models serve` answers a client with
    assert same(json.loads(answer)["predictions"])


def test_a_password_in_the_uri_is_shown_and_written_hidden(server, tmp_path):
    """The summary's line printed `MLflow: http://bob:TOPSECRET@...`, tracking.json held the whole URI and the
    space file logged on the parent run held it too. A run whose tracking.json an older autotune wrote (the whole
    URI) still resumes into its parent run, and its file is rewritten without the password."""
    from autotune.space.types import MlflowSettings
    from autotune.tracking import SearchStart
    from autotune.tracking.mlflow_runs import MlflowRuns

    uri, _ = server
    secret = uri.replace("http://", "http://bob:TOPSECRET@")
    space = tmp_path / "space.yaml"
    space.write_text(f'tracking:\n  mlflow: {{uri: "{secret}", experiment: secret-exp}}\n')
    start = SearchStart(name="toy", state_dir=tmp_path, space_file=str(space), settings={}, resumed=False)
    runs = MlflowRuns(MlflowSettings(uri=secret, experiment="secret-exp"), "toy", {})
    runs.check()
    runs.start(start)
    shown = uri.replace("http://", "http://bob:***@")
    assert runs.where().startswith(f"MLflow: {shown}/#/experiments/") and "TOPSECRET" not in runs.where()
    state = tmp_path / "tracking.json"
    assert json.loads(state.read_text()) == {"mlflow_uri": shown, "mlflow_parent": runs.parent}
    logged = _client(uri).download_artifacts(runs.parent, "space.yaml", str(tmp_path / "logged"))
    assert Path(logged).read_text() == space.read_text().replace(secret, shown)

    state.write_text(json.dumps({"mlflow_uri": secret, "mlflow_parent": runs.parent}))  # an older autotune's
    resumed = MlflowRuns(MlflowSettings(uri=secret, experiment="secret-exp"), "toy", {})
    resumed.start(SearchStart(name="toy", state_dir=tmp_path, space_file=str(space), settings={}, resumed=True))
    assert resumed.parent == runs.parent and "TOPSECRET" not in state.read_text()


def _no_search(*args, **kwargs):
    raise AssertionError("the search started before the trackers were checked")


def test_an_unreachable_server_is_one_line_before_ray(tmp_path, monkeypatch, capsys, free_port):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(autotune.engine.search, "run_search", _no_search)
    (tmp_path / "space.yaml").write_text(TOY_SPACE.replace("URI", f"http://127.0.0.1:{free_port()}").replace(
        "SLEEP", "0.0"))
    started = time.time()
    code = autotune.cli.main(["run", "space.yaml", "--num-cpus", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    (line,) = [x for x in err.splitlines() if "error" in x]
    assert "tracking.mlflow: cannot reach the MLflow tracking store http://127.0.0.1:" in line
    assert line.endswith("start the server, fix tracking.mlflow.uri, or remove tracking.mlflow")
    assert not (tmp_path / "runs").exists()
    assert time.time() - started < 60


def test_an_unreachable_server_named_by_the_environment_is_said_so(tmp_path, monkeypatch, free_port):
    """MLFLOW_TRACKING_URI switched MLflow on for a space without `tracking:`: the refusal told the user to "remove
    tracking.mlflow", which their space does not have."""
    from autotune.errors import UserError
    from autotune.space.types import MlflowSettings
    from autotune.tracking.mlflow_runs import MlflowRuns

    runs = MlflowRuns(MlflowSettings(), "toy", {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}"})
    with pytest.raises(UserError, match=r"; start the server, fix MLFLOW_TRACKING_URI, or unset it \(it switched "
                                        r"MLflow on\) to search without MLflow$"):
        runs.check()


@pytest.mark.parametrize("uri", ["127.0.0.1:5000", "localhost:5000/"])
def test_a_host_and_port_without_a_scheme_is_one_line_before_ray(tmp_path, monkeypatch, capsys, uri):
    """MLflow took 127.0.0.1:5000 for a local folder, and the search's runs went there, not to the server."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(autotune.engine.search, "run_search", _no_search)
    (tmp_path / "space.yaml").write_text(TOY_SPACE.replace("URI", uri).replace("SLEEP", "0.0"))
    assert autotune.cli.main(["run", "space.yaml", "--num-cpus", "1"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (f"autotune run: error: tracking.mlflow: the tracking URI {uri!r} names a host and port but "
                           f"no scheme: write http://{uri} for a tracking server (or a folder path, or sqlite:///FILE)")
    assert not (tmp_path / uri.split("/")[0]).exists()


@pytest.mark.parametrize("uri, message", [
    ("http//127.0.0.1:5000", "tracking.mlflow: the tracking URI 'http//127.0.0.1:5000' lacks the '://' of its "
                             "scheme: write http://127.0.0.1:5000 (MLflow would take it for a folder to create)"),
    ("mlflow.db", "tracking.mlflow: the tracking URI 'mlflow.db' names a database file without a scheme: write "
                  "sqlite:///mlflow.db (MLflow would make a folder of that name)"),
    ("REGISTER a/b", "tracking.mlflow.register: 'a/b' cannot name a registered model in MLflow (a name holds no '/' "
                     "or ':', and is not empty); give another name"),
], ids=["http-without-colon", "database-without-scheme", "model-name"])
def test_a_near_miss_uri_or_a_model_name_mlflow_refuses_is_one_line_before_ray(uri, message, tmp_path, monkeypatch,
                                                                                capsys):
    """Each was accepted: the first two wrote to a local folder named after the URI, and a model name with '/'
    failed after the search, leaving its parent run RUNNING."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(autotune.engine.search, "run_search", _no_search)
    space = TOY_SPACE.replace("SLEEP", "0.0")
    if uri.startswith("REGISTER "):
        space = space.replace('uri: "URI"', f'uri: "sqlite:///{tmp_path}/m.db", register: "{uri.split()[1]}"')
    (tmp_path / "space.yaml").write_text(space.replace("URI", uri))
    assert autotune.cli.main(["run", "space.yaml", "--num-cpus", "1"]) == 2
    assert capsys.readouterr().err.strip() == f"autotune run: error: {message}"
    assert not (tmp_path / uri.split("/")[0]).exists()  # no folder store named after the URI


@pytest.mark.parametrize("case", ["a mistyped scheme", "a deleted experiment"])
def test_a_store_the_search_could_not_use_is_one_line_before_ray(tmp_path, monkeypatch, capsys, case):
    """A scheme MLflow does not know failed with a traceback; runs in a deleted experiment are refused by MLflow,
    so the whole search went untracked with one warning."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(autotune.engine.search, "run_search", _no_search)
    uri = "htp://127.0.0.1:5000" if case == "a mistyped scheme" else f"sqlite:///{tmp_path}/m.db"
    if case == "a deleted experiment":
        client = _client(uri)
        client.delete_experiment(client.create_experiment("toy-exp"))
    (tmp_path / "space.yaml").write_text(TOY_SPACE.replace("URI", uri).replace("SLEEP", "0.0"))
    code = autotune.cli.main(["run", "space.yaml", "--num-cpus", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    (line,) = [x for x in err.splitlines() if "error" in x]
    assert ("cannot reach the MLflow tracking store htp://127.0.0.1:5000 (" in line if case == "a mistyped scheme"
            else "the experiment 'toy-exp' was deleted in sqlite:///" in line and "experiments restore" in line)


def test_a_missing_package_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(autotune.engine.search, "run_search", _no_search)
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    (tmp_path / "space.yaml").write_text(TOY_SPACE.replace("URI", "sqlite:///m.db").replace("SLEEP", "0.0"))
    code = autotune.cli.main(["run", "space.yaml", "--num-cpus", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    (line,) = [x for x in err.splitlines() if "error" in x]
    assert 'tracking.mlflow needs the mlflow package: pip install "autotune[mlflow]"' in line


def test_a_package_that_is_installed_and_does_not_import_is_named_so(tmp_path, monkeypatch, capsys):
    """mlflow 2.15 beside setuptools 81 (no pkg_resources): the line said the store could not be reached and that
    mlflow was not installed."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(autotune.engine.search, "run_search", _no_search)

    def broken(uri):
        raise ModuleNotFoundError("No module named 'pkg_resources'", name="pkg_resources")

    monkeypatch.setattr(autotune.tracking.mlflow_runs, "new_client", broken)
    (tmp_path / "space.yaml").write_text(TOY_SPACE.replace("URI", "sqlite:///m.db").replace("SLEEP", "0.0"))
    code = autotune.cli.main(["run", "space.yaml", "--num-cpus", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    (line,) = [x for x in err.splitlines() if "error" in x]
    assert line.endswith("tracking.mlflow: the mlflow package is installed but does not import (ModuleNotFoundError: "
                         "No module named 'pkg_resources'); install a version autotune supports: pip install "
                         '"autotune[mlflow]" (or remove tracking.mlflow from the space)'), line


def test_wandb_online_without_a_login_is_one_line_before_ray(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(autotune.engine.search, "run_search", _no_search)
    for name in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc: no stored key
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb_config"))
    space = TOY_SPACE.replace("SLEEP", "0.0").replace('  mlflow: {uri: "URI", experiment: toy-exp}\n', "")
    (tmp_path / "space.yaml").write_text(space.replace("mode: offline", "mode: online"))
    code = autotune.cli.main(["run", "space.yaml", "--num-cpus", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    (line,) = [x for x in err.splitlines() if "error" in x]
    assert "tracking.wandb: not logged in to W&B; run `wandb login`" in line and "mode: offline" in line


def test_a_server_that_goes_away_costs_one_warning_and_no_trial(server, tmp_path, local_ray, caplog):
    """The server is killed once the first trial has its run: the search ends with every trial, one warning."""
    uri, process = server
    (tmp_path / "space.yaml").write_text(TOY_SPACE.replace("URI", uri).replace("SLEEP", "0.3").replace(
        "experiment: toy-exp", "experiment: doomed"))
    import autotune.tracking.mlflow_runs as mlflow_runs

    child = mlflow_runs.MlflowRuns._child

    def then_kill(self, trial_id, params):  # the server dies while the search runs
        run = child(self, trial_id, params)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)  # the server and its web workers
            process.wait()
        return run

    with pytest.MonkeyPatch.context() as patch, caplog.at_level(logging.WARNING, logger="autotune"):
        patch.setattr(mlflow_runs.MlflowRuns, "_child", then_kill)
        result = _search(tmp_path, str(tmp_path / "space.yaml"))
    assert len(result.trials) == 6 and result.interrupted is False
    warnings = [r.getMessage() for r in caplog.records if "tracking:" in r.getMessage()]
    assert len(warnings) == 1 and f"MLflow at {uri} failed" in warnings[0], warnings
    dropped = [line for line in result.tracked if line.startswith(f"MLflow at {uri}: stopped recording after an")]
    assert len(dropped) == 1 and "a resume of this run, resume=True, fills it in once it is back" in dropped[0]
    summary = json.loads((result.run_dir / "summary.json").read_text())  # what a retrain resumes such a run by
    assert summary["trackers_behind"] == [f"MLflow at {uri}"]
    assert any(line.startswith("W&B: 6 offline trial runs") for line in result.tracked)  # the other tracker went on
    trials = _trials(result.run_dir)
    _check_wandb(result.run_dir, trials)

    # the server is back (its store kept what it had): a --resume of the finished search fills in what it missed
    folder = Path(process.args[process.args.index("--artifacts-destination") + 1]).parent  # the server's store
    with open(folder / "server.log", "a") as log:
        again, process = _mlflow_server(folder, int(uri.rsplit(":", 1)[1]), log)
    try:
        assert process.poll() is None, (folder / "server.log").read_text()
        filling = time.time() * 1000
        resumed = _search(tmp_path, str(tmp_path / "space.yaml"), resume=True)
        assert f"MLflow: {uri}/#/experiments/" in resumed.tracked[0] and "6 trial runs nested" in resumed.tracked[0]
        assert "trackers_behind" not in json.loads((result.run_dir / "summary.json").read_text())
        (parent,), children = _runs(uri, "doomed")
        client = _client(uri)
        assert parent.info.status == "FINISHED" and sorted(c.data.tags["autotune.trial_id"] for c in children) == \
            sorted(trials)
        for child in children:
            row = trials[child.data.tags["autotune.trial_id"]]
            history = client.get_metric_history(child.info.run_id, "val_accuracy")
            assert sorted(m.step for m in history) == list(range(1, int(row["epochs"]) + 1))
            assert child.info.status == ("FAILED" if row["status"] == "ERROR" else "FINISHED")
            assert all(m.timestamp < filling for m in history)  # when the trial ran, not when it was filled in
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_the_trial_that_reached_the_stop_target_is_recorded_so_not_as_stopped_early():
    """The trackers tagged the trial whose report reached `search.stop` 'stopped early at epoch 1 of 3', while the
    summary called it done (it ended the search): now its stop reason says it reached the target, as it ends and in
    the records filled in at the search's end; a trial the target's stop cut short is still stopped early."""
    import functools
    from types import SimpleNamespace

    from autotune.engine import track
    from autotune.engine.result_grid import reaches

    ends = []
    tracking = SimpleNamespace(trial_end=lambda trial_id, config, status, reason: ends.append((status, reason)))
    reached = functools.partial(reaches, targets={"val_accuracy": 0.9}, modes={"val_accuracy": "max"})
    track.register("target", tracking, lambda values: 3, reached)
    try:
        for trial_id, value in [("a", 0.95), ("b", 0.5)]:
            trial = SimpleNamespace(trial_id=trial_id, config={},
                                    last_result={"training_iteration": 1, "val_accuracy": value})
            track.TrackingCallback("target").on_trial_complete(0, [], trial)
    finally:
        track.unregister("target")
    said = [("stopped", "reached the stop target at epoch 1 of 3"), ("stopped", "stopped early at epoch 1 of 3")]
    assert ends == said
    space = load_space(toy_space(train="{epochs: 3}", search=", stop: {val_accuracy: 0.9}"))
    grid = [SimpleNamespace(metrics_dataframe=pd.DataFrame([{"training_iteration": 1, "val_accuracy": v}]))
            for v in (0.95, 0.5)]
    rows = [{"trial_id": trial_id, "status": "TERMINATED", "epochs": 1, "stopped_early": stopped, "p:model.x": 0.5,
             "p:model.y": 0.5} for trial_id, stopped in [("a", False), ("b", True)]]
    assert [(r.status, r.reason) for r in track.trial_records(grid, rows, space)] == said


def test_what_a_tracker_missed_is_filled_in_at_the_end(tmp_path, monkeypatch):
    """The server was down for part of a search: at its end (or its resume's), each trial's run gets the epochs it
    missed and its end; an epoch logged already is not logged twice; an interrupted trial's run ends as one."""
    from autotune.space.types import MlflowSettings
    from autotune.tracking import SearchStart, TrialRecord
    from autotune.tracking.mlflow_runs import MlflowRuns

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    runs = MlflowRuns(MlflowSettings(uri=uri, experiment="toy-exp"), "toy", {})
    runs.start(SearchStart(name="toy", state_dir=tmp_path, space_file=None, settings={}, resumed=False))
    runs.trial_result("a", {"x": 0.1}, {"score": 0.1}, 1)  # then the server went away
    epochs = [(epoch, {"score": epoch / 10}) for epoch in (1, 2, 3)]
    runs.finish({"name": "toy"}, None, "interrupted", [
        TrialRecord("a", {"x": 0.1}, epochs, "finished", "ran all 3 epochs"),
        TrialRecord("b", {"x": 0.2}, epochs[:2], "stopped", "stopped early at epoch 2 of 3"),
        TrialRecord("c", {"x": 0.3}, (), "failed", "failed: ValueError: x"),
        TrialRecord("d", {"x": 0.4}, epochs[:1], "interrupted", "the search was interrupted")])
    client = _client(uri)
    (parent,), children = _runs(uri, "toy-exp")
    found = {c.data.tags["autotune.trial_id"]: c for c in children}
    assert parent.info.status == "KILLED"
    steps = {t: [m.step for m in client.get_metric_history(c.info.run_id, "score")] for t, c in found.items()}
    assert steps == {"a": [1, 2, 3], "b": [1, 2], "c": [], "d": [1]}
    assert {t: c.info.status for t, c in found.items()} == {"a": "FINISHED", "b": "FINISHED", "c": "FAILED",
                                                             "d": "KILLED"}
    assert found["d"].data.tags["autotune.status"] == "interrupted"
    assert found["b"].data.params == {"x": "0.2"} and found["b"].data.tags["autotune.status"] == "stopped"
    assert found["c"].data.tags["autotune.stop_reason"] == "failed: ValueError: x"
    assert {t: c.data.tags.get("autotune.epochs") for t, c in found.items()} == {"a": "3", "b": "2", "c": None,
                                                                                 "d": "1"}


def test_a_run_filled_in_later_holds_the_times_its_trial_ran(tmp_path, monkeypatch):
    """Runs filled in after an outage started, ended and logged each metric at the fill-in's time (0.2 s runs, all at
    once): they take the times the trial reported its epochs."""
    from autotune.space.types import MlflowSettings
    from autotune.tracking import SearchStart, TrialRecord
    from autotune.tracking.mlflow_runs import MlflowRuns

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    runs = MlflowRuns(MlflowSettings(uri=uri, experiment="toy-exp"), "toy", {})
    runs.start(SearchStart(name="toy", state_dir=tmp_path, space_file=None, settings={}, resumed=False))
    epochs, times = [(epoch, {"score": epoch / 10}) for epoch in (1, 2, 3)], (1_700_000_000.0, 1_700_000_060.0,
                                                                              1_700_000_120.0)
    runs.finish({"name": "toy"}, None, "finished", [TrialRecord("a", {"x": 0.1}, epochs, "finished",
                                                                "ran all 3 epochs", times)])
    (run,) = _runs(uri, "toy-exp")[1]
    assert (run.info.start_time, run.info.end_time) == (1_700_000_000_000, 1_700_000_120_000)
    history = _client(uri).get_metric_history(run.info.run_id, "score")
    assert sorted(m.timestamp for m in history) == [1_700_000_000_000, 1_700_000_060_000, 1_700_000_120_000]


def _check_wandb(run_dir: Path, trials: dict[str, dict]) -> None:
    """One offline W&B run per trial, in the search's group: its sampled values, a step per epoch, its exit; and
    one of the search itself."""
    wandb_runs = _wandb_runs(run_dir)
    (search,) = [r for r in wandb_runs.values() if r["job_type"] == "search"]
    assert search["name"] == "toy (search)" and search["group"] == "toy" and search["exit"] == 0
    wandb_runs = {key: run for key, run in wandb_runs.items() if run["job_type"] == "trial"}
    assert sorted(r["name"] for r in wandb_runs.values()) == sorted(trials)
    for run in wandb_runs.values():
        row = trials[run["name"]]
        assert run["group"] == "toy"
        assert run["config"] == {"model.x": pytest.approx(float(row["p:model.x"])),
                                 "model.y": pytest.approx(float(row["p:model.y"]))}
        assert run["steps"] == list(range(1, int(row["epochs"]) + 1))
        assert run["exit"] == (1 if row["status"] == "ERROR" else 0)


def test_wandb_marks_a_trial_an_interrupted_search_left_running(tmp_path):
    """Its run ends with Ctrl-C's exit code (130) and `status: interrupted` in its summary, not as a failed trial."""
    from autotune.space.types import WandbSettings
    from autotune.tracking import SearchStart
    from autotune.tracking.wandb_runs import WandbRuns

    runs = WandbRuns(WandbSettings(mode="offline", project="toy"), "toy", {})
    runs.start(SearchStart(name="toy", state_dir=tmp_path, space_file=None, settings={}, resumed=False))
    runs.trial_result("a", {"x": 0.5}, {"val_accuracy": 0.5}, 1)
    runs.finish({"name": "toy"}, None, "interrupted", _records("a", status="interrupted"))
    (path,) = tmp_path.glob("wandb/offline-run-*/run-*.wandb")
    records = _wandb_records(path)
    (exit_record,) = [r.exit for r in records if r.WhichOneof("record_type") == "exit"]
    summary = {_key(i): json.loads(i.value_json) for r in records if r.WhichOneof("record_type") == "summary"
               for i in r.summary.update}
    assert exit_record.exit_code == 130 and summary["status"] == "interrupted"


def test_a_tracker_dropped_after_an_error_is_named_in_the_summary_lines(caplog):
    """The summary said nothing of a tracker that failed mid-search; its warning cut its reason mid-word."""
    from autotune.tracking import Tracking

    class Failing:
        label = "MLflow at http://127.0.0.1:1"
        fills_in = False

        def trial_result(self, *args):
            raise ConnectionError("Failed to establish a new connection " + "word " * 100)

    tracking = Tracking([Failing()])
    tracking.trial_result("a", {}, {"val_accuracy": 0.5}, 1)
    assert tracking.where() == ["MLflow at http://127.0.0.1:1: stopped recording after an error (the warning above); "
                                "what it holds of this search is incomplete, and every result is in the run folder"]
    (warning,) = [r.getMessage() for r in caplog.records if "failed (ConnectionError" in r.getMessage()]
    assert "word ...); the search goes on without it" in warning


def test_a_resume_that_names_another_experiment_starts_a_parent_run_there(tmp_path, monkeypatch):
    """The fix the deleted-experiment error gives (name another experiment), on a resume: the search went untracked
    ("The run ... must be in the 'active' state") and the new experiment stayed empty."""
    from autotune.space.types import MlflowSettings
    from autotune.tracking import SearchStart
    from autotune.tracking.mlflow_runs import MlflowRuns

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    first = MlflowRuns(MlflowSettings(uri=uri, experiment="old-exp"), "toy", {})
    first.start(SearchStart(name="toy", state_dir=tmp_path, space_file=None, settings={}, resumed=False))
    first.trial_result("a", {"x": 0.5}, {"val_accuracy": 0.5}, 1)
    first.finish({"name": "toy"}, None, "interrupted", _records("a", status="interrupted"))
    _client(uri).delete_experiment(first._experiment_id)
    resumed = MlflowRuns(MlflowSettings(uri=uri, experiment="new-exp"), "toy", {})
    resumed.check()
    resumed.start(SearchStart(name="toy", state_dir=tmp_path, space_file=None, settings={}, resumed=True))
    resumed.trial_result("a", {"x": 0.5}, {"val_accuracy": 0.7}, 2)
    resumed.trial_end("a", {"x": 0.5}, "finished", "ran all 2 epochs")
    resumed.finish({"name": "toy"}, None, "finished", _records("a"))
    (parent,), (child,) = _runs(uri, "new-exp")
    assert parent.info.status == child.info.status == "FINISHED" and parent.info.run_id != first.parent


def test_a_finished_search_resumed_logs_and_registers_its_model_once(tmp_path, monkeypatch):
    """`--resume` of a finished search ends with the export it made the first time: MLflow registered it again as a
    new version and moved `champion` to it. A new export (another version) is logged."""
    from autotune.space.types import MlflowSettings
    from autotune.tracking import SearchStart
    from autotune.tracking.mlflow_runs import MlflowRuns

    monkeypatch.chdir(tmp_path)
    logged = []
    monkeypatch.setattr(MlflowRuns, "_log_model", lambda self, model_dir: logged.append(model_dir))
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.pt").write_bytes(b"")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    for version in ("v1", "v1", "v2"):
        runs = MlflowRuns(MlflowSettings(uri=uri, experiment="toy-exp", register="toy"), "toy", {})
        runs.start(SearchStart(name="toy", state_dir=tmp_path, space_file=None, settings={}, resumed=version != "v1"))
        runs.finish({"name": "toy", "promotion": {"promoted": True, "version_dir": version}}, tmp_path / "model",
                    "finished", [])
    assert logged == [tmp_path / "model"] * 2  # v1 once, then v2


def test_wandb_holds_the_search_s_own_run_with_its_best_and_its_model(tmp_path):
    """W&B got the trials only: a team saw no best trial, no test metrics and no model of the search there."""
    from autotune.space.types import WandbSettings
    from autotune.tracking import SearchStart
    from autotune.tracking.wandb_runs import WandbRuns

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.json").write_text("{}")
    runs = WandbRuns(WandbSettings(mode="offline", project="toy"), "toy", {})
    runs.start(SearchStart(name="toy", state_dir=tmp_path, space_file=None, settings={"search.trials": 4},
                           resumed=False))
    summary = {"best_trial_id": "a", "best_metrics": {"val_accuracy": 0.9, "epoch": 3},
               "test_metrics": {"test_accuracy": 0.88}, "promotion": {"promoted": True}}
    runs.finish(summary, tmp_path / "model", "finished", _records("a"))
    run_id = runs.run_id("search")  # from the run folder and the random part of this start (tracking.json)
    (path,) = tmp_path.glob(f"wandb/offline-run-*/run-{run_id}.wandb")
    records = _wandb_records(path)
    kinds = [r.WhichOneof("record_type") for r in records]
    values = {_key(i): json.loads(i.value_json) for r in records if r.WhichOneof("record_type") == "summary"
              for i in r.summary.update}
    (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert run.job_type == "search" and run.run_group == "toy"
    assert values["best_val_accuracy"] == 0.9 and values["test_accuracy"] == 0.88 and values["best_trial_id"] == "a"
    assert values["status"] == "finished" and "artifact" in kinds


def test_each_promoted_retrain_is_a_new_version_of_the_model_s_artifact(tmp_path):
    """A retrain's runs are named after its data (wine-data-<fingerprint>): its model was an artifact of that name,
    so after each promoted retrain W&B held another `champion`, and `wine:champion` named none of them."""
    from autotune.space.types import WandbSettings
    from autotune.tracking import SearchStart
    from autotune.tracking.wandb_runs import WandbRuns

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.json").write_text("{}")
    for fingerprint in ("aaaa", "bbbb"):
        state_dir = tmp_path / f"wine-data-{fingerprint}"
        state_dir.mkdir()
        runs = WandbRuns(WandbSettings(mode="offline", project="wine"), "wine", {})
        runs.start(SearchStart(name=state_dir.name, state_dir=state_dir, space_file=None, settings={}, resumed=False))
        runs.finish({"best_trial_id": "a", "promotion": {"promoted": True}, "space": {"model_name": "wine"}},
                    tmp_path / "model", "finished", _records("a"))
        (path,) = state_dir.glob("wandb/offline-run-*/run-*.wandb")
        (artifact,) = [r.artifact for r in _wandb_records(path) if r.WhichOneof("record_type") == "artifact"]
        assert artifact.name == "wine" and artifact.type == "model"


def test_a_retrain_whose_tracking_server_is_down_searches_and_the_next_one_fills_it_in(tmp_path, local_ray,
                                                                                       monkeypatch, caplog,
                                                                                       free_port):
    """A nightly retrain started while the MLflow server was down was refused (exit 2): the night's search lost. A
    retrain now searches without it, with one warning, and the next retrain of that data resumes the run to fill
    MLflow in (here a store on sqlite stands for the server back: the module's server may be gone by now); any
    other search is still refused (test_an_unreachable_server_is_one_line_before_ray)."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    space = (TOY_SPACE.replace("SLEEP", "0.0").replace("fail_if_x_above: 0.8", "fail_if_x_above: 2.0")
             .replace("trials: 6", "trials: 2").replace('  wandb: {mode: offline, project: toy}\n', "")
             .replace('mlflow: {uri: "URI", experiment: toy-exp}', "mlflow: {experiment: retrain-exp}"))
    down = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", down)
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.INFO, logger="autotune"):
        first = autotune.fit(space, num_cpus=2, if_data_changed=True)
    assert first.model_dir is not None and len(first.trials) == 2
    assert f"cannot reach the MLflow tracking store {down}" in caplog.text
    assert "the search goes on without it: the next retrain of this data" in caplog.text
    assert json.loads((first.run_dir / "summary.json").read_text())["trackers_behind"] == [f"MLflow at {down}"]

    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # the server answers again
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="autotune"):
        again = autotune.fit(space, num_cpus=2, if_data_changed=True)
    assert f"ended, but MLflow at {down} missed part of it: resuming the run to fill it in" in caplog.text
    assert "trackers_behind" not in json.loads((again.run_dir / "summary.json").read_text())
    (parent,), children = _runs(uri, "retrain-exp")
    assert parent.info.status == "FINISHED" and len(children) == 2
    assert {c.info.status for c in children} == {"FINISHED"}
