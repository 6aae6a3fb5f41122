"""Ray's copy of a search's state into the storage: one save's files, whole, or the previous save's
(autotune.engine.ray_internals.whole_state_uploads, restore_whole_state). Each file lands whole, or the old one
stays; the state is published as a set before it is copied over the experiment folder's files, so a copy killed part
way leaves a set that a resume puts back; a save waits while the copy reads the state."""
from __future__ import annotations

import errno
import json
import os
import shutil
import threading
from pathlib import Path
from types import SimpleNamespace

import pyarrow.fs
import pytest
from ray.train._internal import storage
from ray.tune.execution.tune_controller import TuneController

from autotune.engine.ray_internals import SAVED_STATE, restore_whole_state, saved_trials, whole_state_uploads

REAL_COPY = shutil.copyfile
SESSION = "2026-12-04_17-00-00"
STATE = f"experiment_state-{SESSION}.json"
COUNT = f"search_gen_state-{SESSION}.json"
SEARCHER = f"searcher-state-{SESSION}.pkl"


def _save(local: Path, trials: int) -> Path:
    """Ray's driver folder after a save of a search with `trials` trials: its state, count and searcher agree."""
    (local / "trial_a").mkdir(parents=True, exist_ok=True)
    (local / "trial_a" / "result.json").write_text(f"{trials}\n")
    (local / STATE).write_text(json.dumps({"trial_data": [["{}", "{}"]] * trials}))
    (local / COUNT).write_text(json.dumps({"counter": trials}))
    (local / SEARCHER).write_bytes(b"s" * trials)
    (local / "tuner.pkl").write_bytes(b"t")
    (local / "space.json").write_text("the engine's, as a resume copied it")  # Ray's resume copies every .json
    (local / "skip.tmp").write_text("not uploaded")
    return local


def _upload(local: Path, dest: Path, fs: pyarrow.fs.FileSystem | None = None, path: str | None = None) -> None:
    storage._upload_to_fs_path(str(local), fs or pyarrow.fs.LocalFileSystem(), path or str(dest), ["*.tmp"])


def _saves(dest: Path) -> tuple[int, int, int]:
    """The save each state file of the experiment folder is from (its trial count)."""
    return (len(json.loads((dest / STATE).read_text())["trial_data"]), json.loads((dest / COUNT).read_text())["counter"],
            len((dest / SEARCHER).read_bytes()))


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    """A storage holding the save of 3 trials."""
    whole_state_uploads()
    whole_state_uploads()  # once is enough; a second call changes nothing
    assert storage._upload_to_fs_path._autotune
    dest = tmp_path / "storage"
    _upload(_save(tmp_path / "driver", 3), dest)
    assert _saves(dest) == (3, 3, 3) and (dest / "trial_a" / "result.json").read_text() == "3\n"
    assert not (dest / "skip.tmp").exists() and not list(dest.rglob(".upload-*")) and (dest / "space.json").exists()
    (whole,) = (dest / SAVED_STATE).iterdir()  # Ray's state only
    assert sorted(p.name for p in whole.iterdir()) == sorted([STATE, COUNT, SEARCHER, "whole"])
    return dest


def test_a_copy_killed_within_a_file_leaves_the_previous_file_whole(tmp_path, dest, monkeypatch):
    def killed_midway(source: str, destination: str) -> None:  # the copy dies halfway through the file
        data = Path(source).read_bytes()
        Path(destination).write_bytes(data[: len(data) // 2])
        raise KeyboardInterrupt

    local = _save(tmp_path / "driver", 5)
    monkeypatch.setattr(shutil, "copyfile", killed_midway)
    with pytest.raises(KeyboardInterrupt):
        storage._upload_to_fs_path(str(local / "trial_a"), pyarrow.fs.LocalFileSystem(), str(dest / "trial_a"))
    assert (dest / "trial_a" / "result.json").read_text() == "3\n"  # the old one, whole
    assert not list(dest.rglob(".upload-*"))


@pytest.mark.parametrize("files_copied", [0, 1, 2])
def test_a_copy_killed_between_the_state_files_is_put_back_as_one_save(tmp_path, dest, monkeypatch, files_copied):
    """The experiment folder left with files of two saves (the CI failure: a resumed search read a trial count
    ahead of its trials); the storage's newest whole set is the new save, and a resume puts it back."""
    local = _save(tmp_path / "driver", 5)
    copied = []

    def killed_after(source: str, destination: str) -> str:
        if Path(destination).parent == dest:  # the experiment folder's own files: after the set
            if len(copied) == files_copied:
                raise KeyboardInterrupt
            copied.append(source)
        return REAL_COPY(source, destination)

    monkeypatch.setattr(shutil, "copyfile", killed_after)
    with pytest.raises(KeyboardInterrupt):
        _upload(local, dest)
    monkeypatch.setattr(shutil, "copyfile", REAL_COPY)
    assert _saves(dest) == [(3, 3, 3), (5, 3, 3), (5, 5, 3)][files_copied]
    assert len(saved_trials(pyarrow.fs.LocalFileSystem(), str(dest))) == 5  # what a resume starts from
    restore_whole_state(pyarrow.fs.LocalFileSystem(), str(dest))
    assert _saves(dest) == (5, 5, 5)


def test_a_copy_killed_while_it_publishes_the_set_leaves_the_previous_save(tmp_path, dest, monkeypatch):
    local = _save(tmp_path / "driver", 5)
    real = pyarrow.fs.copy_files
    calls = []

    def killed_second(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(pyarrow.fs, "copy_files", killed_second)
    with pytest.raises(KeyboardInterrupt):
        _upload(local, dest)
    assert len(list((dest / SAVED_STATE).iterdir())) == 2  # the old set, and the new one not marked whole
    restore_whole_state(pyarrow.fs.LocalFileSystem(), str(dest))
    assert _saves(dest) == (3, 3, 3) and (dest / "trial_a" / "result.json").read_text() == "5\n"


def test_a_later_session_s_files_not_in_the_whole_set_are_removed(tmp_path, dest):
    """Only Ray's state is put back. A resumed search (a new Ray session: new file names) killed before its first
    whole save: Ray would read its newer experiment state beside the first session's searcher."""
    later = "2026-12-04_18-00-00"
    (dest / f"experiment_state-{later}.json").write_text(json.dumps({"trial_data": []}))
    (dest / "space.json").write_text("the engine's own, newer")
    (dest / STATE).write_text("{}")
    restore_whole_state(pyarrow.fs.LocalFileSystem(), str(dest))
    assert not (dest / f"experiment_state-{later}.json").exists()
    assert (dest / "space.json").read_text() == "the engine's own, newer"
    assert _saves(dest) == (3, 3, 3)
    restore_whole_state(pyarrow.fs.LocalFileSystem(), str(tmp_path / "no run here"))  # nothing to put back


class _ReplacedWhileRead:
    """The local file system, where the running search publishes a newer save (and removes the set it replaces)
    while saved_trials reads the state: when it lists the set's folder, or when it opens the state file."""

    def __init__(self, publish, at: str) -> None:
        self.local, self.publish, self.at = pyarrow.fs.LocalFileSystem(), publish, at

    def _maybe_publish(self, step: str) -> None:
        if self.at == step and self.publish:
            self.publish()
            self.publish = None

    def get_file_info(self, what):
        if isinstance(what, pyarrow.fs.FileSelector) and SAVED_STATE + "/" in what.base_dir:
            self._maybe_publish("list")
        return self.local.get_file_info(what)

    def open_input_stream(self, path: str):
        self._maybe_publish("open")
        return self.local.open_input_stream(path)


@pytest.mark.parametrize("at", ["list", "open"])
def test_a_set_replaced_while_it_is_read_is_read_again_from_the_newer_one(tmp_path, dest, at):
    """CI's failure: a test polling a running search read a set that the next save had just replaced and removed."""
    (dest / "tuner.pkl").write_bytes(b"t")
    fs = _ReplacedWhileRead(lambda: _upload(_save(tmp_path / "driver", 5), dest), at)
    assert len(saved_trials(fs, str(dest))) == 5
    assert fs.publish is None and len(list((dest / SAVED_STATE).iterdir())) == 1  # the set read first is gone


def test_a_file_renamed_away_during_the_copy_is_left_for_the_next_one(tmp_path, dest, monkeypatch):
    local = _save(tmp_path / "driver", 5)
    temporary = local / ".1234-tmp-searcher-state.pkl"  # how Ray writes the searcher's state: then renames it
    temporary.write_bytes(b"t" * 10)

    def renamed_first(source: str, destination: str) -> str:
        if Path(source) == temporary:
            temporary.rename(local / SEARCHER)
        return REAL_COPY(source, destination)

    monkeypatch.setattr(shutil, "copyfile", renamed_first)
    _upload(local, dest)  # no error: the rest of the folder is copied
    assert _saves(dest)[:2] == (5, 5) and not (dest / temporary.name).exists() and not list(dest.rglob(".upload-*"))

    def unreadable(source: str, destination: str) -> None:
        raise FileNotFoundError(source)

    monkeypatch.setattr(shutil, "copyfile", unreadable)
    with pytest.raises(FileNotFoundError):  # a file that is still there but could not be copied is an error
        _upload(local, dest)


def test_a_save_waits_while_the_copy_reads_the_state(tmp_path, dest, monkeypatch):
    """Ray saves every period, also while its last copy runs: the copy's state would be of two saves."""
    local = _save(tmp_path / "driver", 5)
    saved = threading.Event()

    def write_save(*args, **kwargs) -> None:
        _save(local, 7)
        saved.set()

    controller = SimpleNamespace(  # what TuneController.save_to_dir reads of its controller
        _get_trial_checkpoints=dict, __getstate__=dict, _start_time=0.0, experiment_state_file_name=STATE,
        _storage=SimpleNamespace(experiment_driver_staging_path=str(local)), _session_str=SESSION,
        _search_alg=SimpleNamespace(save_to_dir=write_save), _callbacks=SimpleNamespace(save_to_dir=lambda *a, **k: 0))
    saver = threading.Thread(target=TuneController.save_to_dir, args=(controller,))

    def save_during_the_read(source: str, destination: str) -> str:
        if not saver.is_alive() and not saved.is_set() and Path(source).parent == local:
            saver.start()
            assert not saved.wait(2.0)  # the save waits for the read of the state (2 s: time to reach the lock)
        return REAL_COPY(source, destination)

    monkeypatch.setattr(shutil, "copyfile", save_during_the_read)
    _upload(local, dest)
    saver.join(10)
    assert saved.is_set() and _saves(dest) == (5, 5, 5)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_where_the_set_does_not_fit_the_files_are_still_copied(tmp_path, dest, monkeypatch, code):
    """A full disk, or a quota used up: the sets are dropped (a resume must not put an older one back) and the state
    is still copied, in place where a file and its copy do not fit side by side, so that a search stopped by a full
    disk resumes without rerunning its finished trials."""
    real = pyarrow.fs.copy_files

    def full(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    def full_beside(source: str, destination: str) -> str:  # room for the file, not for a second copy of it
        if Path(destination).name.startswith(".upload-"):
            Path(destination).write_bytes(b"")
            raise OSError(code, os.strerror(code))
        return REAL_COPY(source, destination)

    monkeypatch.setattr(pyarrow.fs, "copy_files", full)
    monkeypatch.setattr(shutil, "copyfile", full_beside)
    _upload(_save(tmp_path / "driver", 7), dest)
    assert _saves(dest) == (7, 7, 7) and not (dest / SAVED_STATE).exists() and not list(dest.rglob(".upload-*"))
    restore_whole_state(pyarrow.fs.LocalFileSystem(), str(dest))
    assert _saves(dest) == (7, 7, 7)
    monkeypatch.setattr(pyarrow.fs, "copy_files", real)
    monkeypatch.setattr(shutil, "copyfile", REAL_COPY)
    _upload(_save(tmp_path / "driver", 8), dest)  # room again: sets again
    assert len(list((dest / SAVED_STATE).iterdir())) == 1


def test_a_state_that_fits_neither_beside_nor_in_place_leaves_the_previous_save_whole(tmp_path, dest, monkeypatch):
    """A disk too full for the new state even in place: the copy in place was cut short where the disk filled, and
    `--resume` failed on Ray's experiment state in a JSONDecodeError (a run stopped by a full storage could not be
    resumed). Now no file of the save is copied over the previous one, which stays whole, and the copy fails with
    ENOSPC, which stops the search as a full storage."""
    from collections import namedtuple

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    def disk(source: str, destination: str) -> str:  # the storage: no byte free but those the file it replaces held
        if dest not in Path(destination).parents:
            return REAL_COPY(source, destination)
        data, room = Path(source).read_bytes(), Path(destination).stat().st_size if Path(destination).exists() else 0
        Path(destination).write_bytes(data[:room])
        if len(data) > room:
            raise OSError(errno.ENOSPC, "No space left on device")
        return destination

    monkeypatch.setattr(pyarrow.fs, "copy_files", full)
    monkeypatch.setattr(shutil, "copyfile", disk)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: namedtuple("usage", "total used free")(2**20, 2**20, 0))
    driver = _save(tmp_path / "driver", 1000)  # a state of 12 kB over one of 40 bytes
    (driver / "trial_a" / "result.json").write_text("3\n")  # a trial's file that fits in place
    with pytest.raises(OSError) as caught:
        _upload(driver, dest)
    assert caught.value.errno == errno.ENOSPC
    assert _saves(dest) == (3, 3, 3) and len(saved_trials(pyarrow.fs.LocalFileSystem(), str(dest))) == 3
    assert not list(dest.rglob(".upload-*"))


def test_the_trial_folders_are_copied_before_the_state_and_the_set_before_the_experiment_folder(tmp_path, dest,
                                                                                               monkeypatch):
    """Killed during the copy, the storage's trial files are newer than its state, never older; the set is whole
    before the experiment folder's files are replaced."""
    written = []
    real = pyarrow.fs.copy_files

    def recorded(source: str, destination: str) -> str:
        written.append(os.path.relpath(Path(destination).parent, dest))
        return REAL_COPY(source, destination)

    def recorded_set(source, destination, **kwargs):
        written.append(SAVED_STATE)
        return real(source, destination, **kwargs)

    monkeypatch.setattr(shutil, "copyfile", recorded)
    monkeypatch.setattr(pyarrow.fs, "copy_files", recorded_set)
    _upload(_save(tmp_path / "driver", 5), dest)
    written = [w for w in written if not w.startswith("..")]  # the copy into a local folder first
    assert written == ["trial_a", SAVED_STATE, SAVED_STATE, SAVED_STATE, ".", ".", ".", ".", "."]
    assert len(list((dest / SAVED_STATE).iterdir())) == 1  # the older set removed


def test_a_folder_other_than_ray_s_state_gets_no_set(tmp_path, dest):
    folder = tmp_path / "checkpoint"
    (folder / "sub").mkdir(parents=True)
    (folder / "model.pt").write_bytes(b"m")
    (folder / "sub" / "x").write_text("x")
    _upload(folder, tmp_path / "copied")
    assert (tmp_path / "copied" / "model.pt").read_bytes() == b"m" and (tmp_path / "copied" / "sub" / "x").exists()
    assert not (tmp_path / "copied" / SAVED_STATE).exists()


def test_a_remote_store_gets_the_same_sets(tmp_path, dest):
    """A store other than the local disk (here the local disk behind pyarrow's SubTreeFileSystem, which Ray copies
    into with its own upload): the trials, the set, then the experiment folder's files."""
    remote = pyarrow.fs.SubTreeFileSystem(str(tmp_path / "bucket"), pyarrow.fs.LocalFileSystem())
    (tmp_path / "bucket").mkdir()
    for trials in (3, 5):
        _upload(_save(tmp_path / "driver", trials), tmp_path, remote, "runs/search")
    run = tmp_path / "bucket" / "runs" / "search"
    assert _saves(run) == (5, 5, 5) and (run / "trial_a" / "result.json").read_text() == "5\n"
    assert not (run / "skip.tmp").exists()
    (whole,) = (run / SAVED_STATE).iterdir()
    assert whole.name == "000000000002"  # the second set; the first removed
    (run / COUNT).write_text(json.dumps({"counter": 9}))  # a copy cut short
    restore_whole_state(remote, "runs/search")
    assert _saves(run) == (5, 5, 5) and (whole / "whole").exists()


def test_a_trial_file_is_copied_again_only_when_it_changed(tmp_path, dest, monkeypatch):
    """Each save copied every trial's files again: a second a save at 1,000 trials. A file keeps its source's size
    and modification time, and is copied again when either differs."""
    local = tmp_path / "driver"  # the fixture's driver folder
    result, params = local / "trial_a" / "result.json", local / "trial_a" / "params.json"
    params.write_text("{}")
    copied: list[str] = []

    def recorded(source: str, destination: str) -> str:
        copied.append(os.path.relpath(source, local))
        return REAL_COPY(source, destination)

    monkeypatch.setattr(shutil, "copyfile", recorded)
    _upload(local, dest)
    assert "trial_a/params.json" in copied and "trial_a/result.json" not in copied
    copied.clear()
    _upload(local, dest)  # nothing changed: only Ray's state, which every save copies
    assert not [name for name in copied if name.startswith("trial_a")] and STATE in copied
    with result.open("a") as file:
        file.write("4\n")  # the trial's next report
    _upload(local, dest)
    assert [name for name in copied if name.startswith("trial_a")] == ["trial_a/result.json"]
    assert (dest / "trial_a" / "result.json").read_text() == "3\n4\n"
    when = params.stat().st_mtime_ns
    params.write_text("[]")  # the same size
    os.utime(params, ns=(when + 1_000_000, when + 1_000_000))
    _upload(local, dest)
    assert (dest / "trial_a" / "params.json").read_text() == "[]" and not list(dest.rglob(".upload-*"))


def test_an_event_file_grows_in_place_so_that_a_running_tensorboard_reads_it(tmp_path, dest):
    """TensorBoard keeps reading the event file it opened: each upload appends the new events to that file (a copy
    renamed over it was never read: the curves stopped at the first copy). A file that is not the start of its
    source is replaced whole."""
    local, name = tmp_path / "driver", "events.out.tfevents.1796632105.host"
    (local / "trial_a" / name).write_bytes(b"epoch 1;")
    _upload(local, dest)
    with open(dest / "trial_a" / name, "rb") as reader:  # TensorBoard, reading as the search runs
        assert reader.read() == b"epoch 1;"
        with open(local / "trial_a" / name, "ab") as writer:
            writer.write(b"epoch 2;")
        _upload(local, dest)
        assert reader.read() == b"epoch 2;"
    source = os.stat(local / "trial_a" / name)
    assert os.stat(dest / "trial_a" / name).st_mtime_ns == source.st_mtime_ns
    (dest / "trial_a" / name).write_bytes(b"another;")
    _upload(local, dest)
    assert (dest / "trial_a" / name).read_bytes() == b"epoch 1;epoch 2;"


# A resumed run's folder holds every earlier session's state files (Ray names them for the session, and a resume
# copies them into its folder): each save copied them again, into the experiment folder and into its set, and each
# resume added a set more (15 MB at 1,000 trials). Only the newest session's are read by a resume.
def test_a_resumed_run_s_save_drops_the_state_of_earlier_sessions(tmp_path, dest):
    local = tmp_path / "driver"
    later = {name: name.replace(SESSION, "2026-12-05_09-00-00") for name in (STATE, COUNT, SEARCHER)}
    for name, new in later.items():  # the resumed session's first save, beside the first session's files
        shutil.copyfile(local / name, local / new)
    _upload(local, dest)
    for folder in (dest, local, next((dest / SAVED_STATE).iterdir())):
        names = {p.name for p in folder.iterdir()}
        assert set(later.values()) <= names and not {STATE, COUNT, SEARCHER} & names, folder
    restore_whole_state(pyarrow.fs.LocalFileSystem(), str(dest))
    assert len(saved_trials(pyarrow.fs.LocalFileSystem(), str(dest))) == 3


def test_the_state_of_one_session_is_all_kept(tmp_path, dest):
    local = _save(tmp_path / "driver", 4)
    _upload(local, dest)
    assert {STATE, COUNT, SEARCHER} <= {p.name for p in dest.iterdir()} and _saves(dest) == (4, 4, 4)
