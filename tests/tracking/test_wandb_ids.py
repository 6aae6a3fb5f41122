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
