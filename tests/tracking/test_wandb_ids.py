"""W&B run ids: a resumed run keeps its runs' ids (a trial that continues continues its W&B run), a new run at the
same path (a --restart deletes the folder and starts again) gets new ones: synced, it neither resumes nor overwrites
the earlier search's runs. A run an older autotune started keeps the ids it had."""
from __future__ import annotations

import hashlib
import json
import shutil

from autotune.space.types import WandbSettings
from autotune.tracking import SearchStart
from autotune.tracking.wandb_runs import WandbRuns


def _ids(state_dir, resumed: bool) -> tuple[str, str]:
    """The W&B ids of the search's own run and of trial a_00000, for a start of the run in `state_dir`."""
    runs = WandbRuns(WandbSettings(mode="offline", project="wine"), "wine", {})
    runs.start(SearchStart(name="wine", state_dir=state_dir, space_file=None, settings={}, resumed=resumed))
    return runs.run_id("search"), runs.run_id("a_00000")


def test_a_resume_keeps_the_ids_and_a_restart_draws_new_ones(tmp_path):
    state_dir = tmp_path / "runs" / "wine"
    state_dir.mkdir(parents=True)
    first = _ids(state_dir, resumed=False)
    assert _ids(state_dir, resumed=True) == first
    shutil.rmtree(state_dir)  # --restart
    state_dir.mkdir()
    restarted = _ids(state_dir, resumed=False)
    assert not set(restarted) & set(first)
    assert _ids(state_dir, resumed=True) == restarted


def test_a_run_an_older_autotune_started_resumes_into_its_runs(tmp_path):
    (tmp_path / "tracking.json").write_text(json.dumps({"mlflow_parent": "abc"}))  # MLflow's ids, no W&B key
    old = hashlib.sha256(f"{tmp_path}\nsearch".encode()).hexdigest()[:16]
    assert _ids(tmp_path, resumed=True)[0] == old
    assert json.loads((tmp_path / "tracking.json").read_text()) == {"mlflow_parent": "abc"}


def test_mlflow_s_state_is_kept_beside_the_w_b_key(tmp_path):
    (tmp_path / "tracking.json").write_text(json.dumps({"mlflow_parent": "abc"}))
    _ids(tmp_path, resumed=False)
    saved = json.loads((tmp_path / "tracking.json").read_text())
    assert saved["mlflow_parent"] == "abc" and len(saved["wandb_start_key"]) == 8


def test_a_restart_keeps_the_offline_runs_not_synced_yet(tmp_path, caplog):
    """`--restart` deleted the run folder with its W&B offline runs, those `wandb sync` had not uploaded too: they
    are moved beside it, with a line saying where and how to sync them; a synced one goes with the run."""
    import logging

    from autotune.engine.storage import RunLocation, _clear

    state = tmp_path / "runs" / "toy"
    for run, synced in (("offline-run-20261207_010000-aaaa", False), ("offline-run-20261207_020000-bbbb", True)):
        (state / "wandb" / run).mkdir(parents=True)
        (state / "wandb" / run / "run-aaaa.wandb").write_text("records")
        if synced:
            (state / "wandb" / run / "run-bbbb.wandb.synced").write_text("")
    with caplog.at_level(logging.WARNING, logger="autotune"):
        _clear(RunLocation(storage=str(tmp_path / "runs"), name="toy", state=state))
    assert not state.exists()
    (kept,) = (tmp_path / "runs" / ".toy.wandb-unsynced").iterdir()
    assert [p.name for p in kept.iterdir()] == ["offline-run-20261207_010000-aaaa"]
    assert (kept / "offline-run-20261207_010000-aaaa" / "run-aaaa.wandb").read_text() == "records"
    assert f"the run's 1 W&B offline run not synced yet moved to {kept}" in caplog.text
    assert f"wandb sync {kept}/offline-run-*" in caplog.text
