"""Ray's copy of a search's state into a local storage: each file lands whole, or the old one stays, and a file
renamed away while the folder is copied is left for the next copy (autotune.engine.ray_internals.whole_file_uploads)."""
from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import pyarrow.fs
import pytest
from ray.train._internal import storage

from autotune.engine.ray_internals import whole_file_uploads

REAL_COPY = shutil.copyfile


def _staging(tmp_path: Path, trials: int) -> Path:
    local = tmp_path / "driver"
    (local / "sub").mkdir(parents=True, exist_ok=True)
    (local / "experiment_state-x.json").write_text(json.dumps({"trial_data": [["{}", "{}"]] * trials}))
    (local / "sub" / "searcher-state.pkl").write_bytes(b"s" * 1000)
    (local / "skip.tmp").write_text("not uploaded")
    return local


def _upload(local: Path, dest: Path) -> None:
    storage._upload_to_fs_path(str(local), pyarrow.fs.LocalFileSystem(), str(dest), ["*.tmp"])


def _trials(dest: Path) -> int:
    return len(json.loads((dest / "experiment_state-x.json").read_text())["trial_data"])


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    whole_file_uploads()
    whole_file_uploads()  # once is enough; a second call changes nothing
    assert storage._upload_to_fs_path._autotune
    dest = tmp_path / "storage"
    _upload(_staging(tmp_path, 3), dest)
    assert _trials(dest) == 3 and (dest / "sub" / "searcher-state.pkl").read_bytes() == b"s" * 1000
    assert not (dest / "skip.tmp").exists() and not list(dest.rglob(".upload-*"))
    return dest


def test_an_upload_cut_short_leaves_the_previous_state_whole(tmp_path, dest, monkeypatch):
    def killed_midway(source: str, destination: str) -> None:  # the copy dies halfway through the file
        data = Path(source).read_bytes()
        Path(destination).write_bytes(data[: len(data) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(shutil, "copyfile", killed_midway)
    with pytest.raises(KeyboardInterrupt):
        _upload(_staging(tmp_path, 5), dest)
    assert _trials(dest) == 3  # the old one, whole
    assert not list(dest.rglob(".upload-*"))


def test_a_file_renamed_away_during_the_copy_is_left_for_the_next_one(tmp_path, dest, monkeypatch):
    local = _staging(tmp_path, 5)
    temporary = local / ".1234-tmp-searcher-state.pkl"  # how Ray writes the searcher's state: then renames it
    temporary.write_bytes(b"t" * 10)

    def renamed_first(source: str, destination: str) -> str:
        if Path(source) == temporary:
            temporary.rename(local / "sub" / "searcher-state.pkl")
        return REAL_COPY(source, destination)

    monkeypatch.setattr(shutil, "copyfile", renamed_first)
    _upload(local, dest)  # no error: the rest of the folder is copied
    assert _trials(dest) == 5 and not (dest / temporary.name).exists() and not list(dest.rglob(".upload-*"))

    def unreadable(source: str, destination: str) -> None:
        raise FileNotFoundError(source)

    monkeypatch.setattr(shutil, "copyfile", unreadable)
    with pytest.raises(FileNotFoundError):  # a file that is still there but could not be copied is an error
        _upload(local, dest)


def test_where_a_file_and_its_copy_do_not_fit_side_by_side_it_is_copied_in_place(tmp_path, dest, monkeypatch):
    def full_beside(source: str, destination: str) -> str:  # room for the file, not for a second copy of it
        if Path(destination).name.startswith(".upload-"):
            Path(destination).write_bytes(b"")
            raise OSError(errno.ENOSPC, "No space left on device")
        return REAL_COPY(source, destination)

    monkeypatch.setattr(shutil, "copyfile", full_beside)
    _upload(_staging(tmp_path, 7), dest)
    assert _trials(dest) == 7 and not list(dest.rglob(".upload-*"))


def test_the_trial_folders_are_copied_before_the_state(tmp_path, dest, monkeypatch):
    """Killed during the copy, the storage's trial files are newer than its state, never older."""
    local = _staging(tmp_path, 5)
    (local / "trial_a").mkdir()
    (local / "trial_a" / "result.json").write_text("{}\n")
    copied = []

    def recorded(source: str, destination: str) -> str:
        copied.append(Path(source).relative_to(local).as_posix())
        return REAL_COPY(source, destination)

    monkeypatch.setattr(shutil, "copyfile", recorded)
    _upload(local, dest)
    assert copied.index("experiment_state-x.json") > max(copied.index("trial_a/result.json"),
                                                         copied.index("sub/searcher-state.pkl"))
