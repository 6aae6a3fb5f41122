"""A storage that fills up during a search stops it cleanly, with one line; `--resume` finishes it once space is
freed (docs/reliability.md). The disk is a real 4 MB tmpfs where this machine lets the test mount one, else a
stand-in: the toy recipe's checkpoint write raises ENOSPC (a warning says so)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reliability_helpers import TOY, saved_reports

LINE = re.compile(r"^autotune run: error: storage full: (\S+) \((.+) free\); the run holds (.+) \((\d+) checkpoints\); "
                  r"free space, then resume it: autotune run space.yaml --storage store --num-cpus 2 --resume$", re.M)
TRIALS, EPOCHS, PADDING_KB = 10, 4, 640


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[tuple[Path, Path | None, Callable[[], None]]]:
    """(the storage folder, the stand-in's marker or None, what frees space): a 4 MB tmpfs, freed by remounting it
    at 64 MB; where no tmpfs can be mounted, a plain folder and the marker that makes the toy's save raise ENOSPC
    (the test creates it during the search), freed by deleting the marker."""
    store = tmp_path / "store"
    store.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(store)], capture_output=True,
                           text=True)
    if mount.returncode == 0:
        yield store, None, lambda: subprocess.run(["mount", "-o", "remount,size=64m", str(store)], check=True)
        subprocess.run(["umount", "-l", str(store)], check=True)  # lazy: lingering Ray processes may hold a file
        return
    warnings.warn(f"no tmpfs can be mounted here ({mount.stderr.strip()}): the full disk is the stand-in, the "
                  "toy's checkpoint write raising ENOSPC")
    marker = tmp_path / "disk-full"
    yield store, marker, marker.unlink


def _space(marker: Path | None) -> str:
    train = (f"{{epochs: {EPOCHS}, sleep: 0.3, offer: save, checkpoint_kb: {PADDING_KB}, "
             f"full_if_exists: '{marker or ''}'}}")
    return (f"name: full\nrecipe: {TOY}\nmodel: {{x: {{uniform: [0.0, 1.0]}}, y: {{uniform: [0.0, 1.0]}}}}\n"
            f"train: {train}\n"
            f"search: {{trials: {TRIALS}, max_concurrent: 2, scheduler: fifo, seed: 0, resources: {{cpu: 1}}, "
            f"keep_checkpoints: 1, checkpoint_every: 1}}\nexport: {{dir: models/full}}\n")


def _run(cwd: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "autotune", "run", "space.yaml", "--storage", "store",
                             "--num-cpus", "2", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _finished(run_dir: Path) -> dict[str, list[str]]:
    """trial folder -> its result lines, for the trials that ran all their epochs."""
    done = {}
    for result in run_dir.glob("trial_*/result.json"):
        lines = [line for line in result.read_text().splitlines() if line.strip()]
        if lines and json.loads(lines[-1]).get("epoch") == EPOCHS:
            done[result.parent.name] = lines
    return done


def _saved_as_finished(run_dir: Path) -> dict[str, list[str]]:
    """`_finished`, for the trials Ray's saved state knows as finished: a trial that reported its last epoch just
    before the stop may not have ended in it, and the resume then runs that epoch again."""
    ended = saved_reports(run_dir, "TERMINATED")
    return {trial: lines for trial, lines in _finished(run_dir).items() if trial.removeprefix("trial_") in ended}


def _intact(checkpoint: Path) -> bool:
    state = json.loads((checkpoint / "state.json").read_text())
    return state["epoch"] >= 1 and (checkpoint / "padding.bin").stat().st_size == PADDING_KB * 1024


def test_a_full_disk_stops_the_search_and_resume_finishes_it(tmp_path, small_disk):
    store, marker, free_space = small_disk
    (tmp_path / "space.yaml").write_text(_space(marker))
    run_dir = store / "full"
    first = _run(tmp_path)
    if marker:  # the stand-in: the disk "fills" once two trials have finished
        deadline = time.time() + 120
        while len(_finished(run_dir)) < 2 and first.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        marker.touch()
    out, _ = first.communicate(timeout=300)

    assert first.returncode == 3, out
    assert "Traceback" not in out, out
    (line,) = LINE.findall(out)
    assert line[0] == str(run_dir) and int(line[3]) >= 1, line
    before = _saved_as_finished(run_dir)
    assert 1 <= len(before) < TRIALS, out
    checkpoints = list(run_dir.glob("trial_*/checkpoint_*"))
    assert checkpoints and all(_intact(c) for c in checkpoints), "a partly written checkpoint was left"
    best = max(before, key=lambda t: json.loads(before[t][-1])["val_accuracy"])
    assert list((run_dir / best).glob("checkpoint_*")), "the best finished trial kept no checkpoint"

    free_space()
    resumed = _run(tmp_path, "--resume")
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    after = _finished(run_dir)
    assert len(after) == TRIALS, out
    for trial, lines in before.items():  # the finished trials were not run again
        assert after[trial] == lines
    assert len((run_dir / "trials.csv").read_text().strip().splitlines()) == 1 + TRIALS
    kept = [len(list(trial.glob("checkpoint_*"))) for trial in run_dir.glob("trial_*")]
    assert max(kept) <= 1 + 1, kept  # keep_checkpoints (1) best ones and the latest
    assert json.loads((tmp_path / "models" / "full" / "model.json").read_text())["trial_id"]


def test_ray_s_traceback_of_a_state_save_on_a_full_disk_is_not_shown():
    """A search stopped by a full disk printed Ray's "Saving experiment state to storage ... failed" ERROR with its
    traceback when a forced save waited for a copy that hit ENOSPC (StorageFull says it in one line); other errors
    of that logger are kept, and `-v` shows all."""
    import errno
    import logging

    from autotune.engine.ray_internals import trial_errors_shown

    saving = logging.getLogger("ray.tune.execution.experiment_state")

    class Kept(logging.Handler):
        def __init__(self) -> None:
            super().__init__()
            self.records: list[logging.LogRecord] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.records.append(record)

    def logged(err: BaseException, shown: bool = False) -> int:
        kept = Kept()
        saving.addHandler(kept)  # on the logger itself: Ray's loggers may not propagate to the root's
        try:
            with trial_errors_shown(shown):
                try:
                    raise RuntimeError("the copy failed") from err
                except RuntimeError:
                    saving.error("Saving experiment state to storage failed with exception: ", exc_info=True)
        finally:
            saving.removeHandler(kept)
        return len(kept.records)

    full = OSError(errno.ENOSPC, "No space left on device")
    assert logged(full) == 0
    assert logged(OSError(errno.EDQUOT, "Disk quota exceeded")) == 0  # a quota used up is a full disk too
    assert logged(OSError(errno.EACCES, "Permission denied")) == 1
    assert logged(full, shown=True) == 1


def test_a_save_that_fails_on_a_full_temp_disk_names_that_disk_and_stops_the_search(monkeypatch):
    """A node whose temp folder's disk was full failed every trial placed there with torch's `[enforce fail at
    inline_container.cc:672] . unexpected pos ...` (a RuntimeError without an errno), and nothing named the disk:
    the save's error is an ENOSPC naming the temp folder, and the search stops naming it and the node, not the
    storage. A save that fails with room on the disk keeps its own error."""
    import shutil
    from collections import namedtuple

    from autotune import recipes
    from autotune.engine import full_disk
    from autotune.errors import StorageFull

    def save(directory: str) -> None:
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 618304 vs 618232")

    usage, measured = namedtuple("usage", "total used free"), shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(2**20, 2**20 - 512, 512))
    with pytest.raises(OSError) as caught:
        with recipes.written(save):
            pass
    err = caught.value
    assert err.errno == 28 and err.strerror.startswith("the disk of the temp folder ")
    assert "is full (512 bytes free) where the recipe's save() wrote a checkpoint (RuntimeError: [enforce fail" \
        in err.strerror
    stored: dict[str, bytes] = {}
    monkeypatch.setattr(full_disk, "kv_put", stored.__setitem__)
    monkeypatch.setattr(full_disk, "kv_get", stored.get)
    monkeypatch.setattr(full_disk, "kv_delete", stored.pop)
    monkeypatch.setattr(full_disk, "_WAIT_S", 0.0)
    with pytest.raises(OSError):
        full_disk.wait_to_be_stopped("k", err, "192.0.2.2, b92c7899")
    with pytest.raises(StorageFull, match=r"^the disk of the temp folder .* \(node 192\.0\.2\.2, b92c7899\); then "
                                          r"resume the search \(resume=True\)$"):
        full_disk.raise_if_full("k", "/nowhere/runs/x", None)
    monkeypatch.setattr(shutil, "disk_usage", measured)
    with pytest.raises(RuntimeError, match="unexpected pos"):
        with recipes.written(save):
            pass


def test_a_full_disk_that_a_command_meets_elsewhere_is_one_line_naming_the_file(monkeypatch, capsys):
    """A full disk (or a quota used up) where a command writes something it does not guard (a run's summary.json,
    a temp file) was a traceback, exit 1: one line names the file, exit 3 as a full storage's."""
    import errno

    from autotune.cli import check, main

    def full(args):
        raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT), "/data/runs/x/summary.json")

    monkeypatch.setattr(check, "run", full)
    assert main(["check", "space.yaml"]) == 3
    assert capsys.readouterr().err == (
        "autotune check: error: the disk filled up writing /data/runs/x/summary.json (Disk quota exceeded): free space "
        "on it, or write elsewhere (--out, --storage, export.dir, TMPDIR: what the command writes there)\n")


def test_autotune_train_out_on_a_full_disk_names_the_folder(tmp_path, monkeypatch, capsys):
    """`autotune train --out DIR` on a full disk said `recipe function 'export' failed: OSError: [Errno 28] No
    space left on device` (exit 2: a fault of the recipe's) without naming the folder."""
    import errno

    from autotune.cli import main

    real = Path.write_bytes

    def full(self, data):
        if self.name != "model.pt":
            return real(self, data)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_bytes", full)
    out = tmp_path / "model"
    space = Path(__file__).parents[2] / "search_spaces" / "digits.yaml"
    assert main(["train", str(space), "--set", "train.epochs=1", "--set", "model.width=16", "--out", str(out)]) == 3
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(
        f"autotune train: error: no room for the model in {out}: its disk is full (")


def test_a_run_whose_saved_state_is_cut_short_is_refused_in_one_line_and_restarts(tmp_path):
    """A run whose saved state a full disk cut short (or a kill during an in-place copy) failed at `--resume`, and
    at a plain run or `--restart` of it, in a 20-line JSONDecodeError traceback: one line says it cannot be
    resumed and that --restart starts it again, which clears it."""
    import autotune
    from autotune.engine.storage import check_choice, run_location
    from autotune.errors import UserError

    space = autotune.load_space({"name": "x", "data": {"dataset": "digits"}})
    where = run_location(str(tmp_path), "x")
    Path(where.experiment).mkdir(parents=True)
    (Path(where.experiment) / "tuner.pkl").write_bytes(b"")
    (Path(where.experiment) / "experiment_state-2026-12-06_10-00-00.json").write_text('{"trial_data": [["{\\"tri')
    for resume in (True, False):
        with pytest.raises(UserError, match=rf"^the saved state of the run at {re.escape(where.experiment)} cannot be "
                                            r"read \(.+\): a file of it is cut short or damaged .*; start the run "
                                            r"again with restart=True$"):
            check_choice(space, where, resume=resume, restart=False)
    assert check_choice(space, where, resume=False, restart=True)  # it exists, to be cleared


def test_a_quota_used_up_stops_the_search_as_a_full_disk_does():
    """A storage under a quota (a cluster's home folder) fails a write with EDQUOT, not ENOSPC: each trial whose
    checkpoint did not fit failed with its error, as its own fault, and the search went on failing trials instead
    of stopping to be resumed once space is freed."""
    import errno

    from autotune.engine.full_disk import is_full

    assert is_full(OSError(errno.EDQUOT, "Disk quota exceeded")) and is_full(OSError(errno.ENOSPC, "full"))
    assert not is_full(OSError(errno.EIO, "Input/output error"))


def test_a_quota_used_up_is_said_so_not_a_full_disk_with_room_on_it(tmp_path, monkeypatch):
    """The line said "storage full: ... (120 GB free)" of a disk with room where the user's quota was used up."""
    import errno

    from autotune.engine import full_disk
    from autotune.errors import StorageFull

    stored = {"k": f"{os.strerror(errno.EDQUOT)} (node 192.0.2.2, b92c7899)".encode()}
    monkeypatch.setattr(full_disk, "kv_get", stored.get)
    monkeypatch.setattr(full_disk, "kv_delete", stored.pop)
    with pytest.raises(StorageFull, match=rf"^storage quota used up: {re.escape(str(tmp_path))} \(your disk quota "
                                          r"there is exceeded; .+ free on the disk\); the run holds 0 B \(0 "
                                          r"checkpoints\); free space, or ask for a larger quota, then resume it "
                                          r"\(resume=True\)$"):
        full_disk.raise_if_full("k", str(tmp_path), str(tmp_path))


def test_a_full_disk_under_ray_s_temp_folder_names_it_and_ray_tmpdir(tmp_path, monkeypatch):
    """The driver saves the search's state into the local Ray's temp folder before copying it into the storage: a
    RAY_TMPDIR on a full disk ended the search in Ray's traceback (json.dump's OSError), or in a line naming no
    folder. A full disk elsewhere (room under Ray's temp folder) passes as it is."""
    import errno
    import shutil
    from collections import namedtuple

    from autotune.engine import search
    from autotune.errors import StorageFull

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(search, "_ray_temp", str(tmp_path / "rt_1"))
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(2**20, 2**20 - 512, 512))
    with pytest.raises(StorageFull, match=rf"^the disk of Ray's temp folder {re.escape(str(tmp_path))}/rt_1 is full "
                                          r"\(512 B free\), .*set RAY_TMPDIR to a folder on a larger disk; then "
                                          r"resume the search \(resume=True\)$"):
        with search._ray_temp_full():
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(2**40, 0, 2**40))
    with pytest.raises(OSError), search._ray_temp_full():  # not StorageFull: Ray's temp folder has room
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
