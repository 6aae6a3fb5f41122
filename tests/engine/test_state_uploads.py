"""Ray's copy of a search's state into a local storage: each file lands whole, or the old one stays
(autotune.engine.ray_internals.whole_file_uploads)."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow.fs
import pytest
from ray.train._internal import storage

from autotune.engine.ray_internals import whole_file_uploads


def _staging(tmp_path: Path, trials: int) -> Path:
    local = tmp_path / "driver"
    (local / "sub").mkdir(parents=True, exist_ok=True)
    (local / "experiment_state-x.json").write_text(json.dumps({"trial_data": [["{}", "{}"]] * trials}))
    (local / "sub" / "searcher-state.pkl").write_bytes(b"s" * 1000)
    (local / "skip.tmp").write_text("not uploaded")
    return local


def test_an_upload_cut_short_leaves_the_previous_state_whole(tmp_path, monkeypatch):
    whole_file_uploads()
    whole_file_uploads()  # once is enough; a second call changes nothing
    assert storage._upload_to_fs_path._autotune
    dest = tmp_path / "storage"
    storage._upload_to_fs_path(str(_staging(tmp_path, 3)), pyarrow.fs.LocalFileSystem(), str(dest), ["*.tmp"])
    assert len(json.loads((dest / "experiment_state-x.json").read_text())["trial_data"]) == 3
    assert (dest / "sub" / "searcher-state.pkl").read_bytes() == b"s" * 1000
    assert not (dest / "skip.tmp").exists() and not list(dest.glob(".upload-*"))

    def killed_midway(source: str, destination: str, **kwargs) -> None:  # Ray's copy, dying halfway through
        state = Path(source, "experiment_state-x.json").read_text()
        Path(destination).mkdir(parents=True, exist_ok=True)
        Path(destination, "experiment_state-x.json").write_text(state[: len(state) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(storage, "_pyarrow_fs_copy_files", killed_midway)
    monkeypatch.setattr(storage, "_upload_to_uri_with_exclude_fsspec",
                        lambda local_path, fs, fs_path, exclude: killed_midway(local_path, fs_path))
    with pytest.raises(KeyboardInterrupt):
        storage._upload_to_fs_path(str(_staging(tmp_path, 5)), pyarrow.fs.LocalFileSystem(), str(dest), ["*.tmp"])
    assert len(json.loads((dest / "experiment_state-x.json").read_text())["trial_data"]) == 3  # the old one, whole
    assert not list(dest.glob(".upload-*"))
