"""A run folder moved or copied elsewhere, then resumed there: Ray's saved state and the pickled searcher hold the
folder it was started in, so the resume wrote new trials and the study there (a copy), or failed with a 135-line
sqlite traceback (a move). It is refused in one line that names both folders and --warm-start."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

import autotune
from autotune.cli import main
from autotune.engine.relocation import relocated, relocated_summary
from autotune.engine.storage import STATE_FORMAT, check_choice, prepare_run, run_location
from autotune.errors import UserError
from autotune.report.run import load_run
from autotune.space import load_space
from engine_helpers import toy_space


def _saved_state(folder) -> None:
    """What Ray's saved state looks like to the engine: tuner.pkl, and an experiment state with one ended trial."""
    (folder / "tuner.pkl").write_bytes(b"")
    trial = json.dumps({"trial_id": "a1", "status": "TERMINATED"})
    (folder / "experiment_state-2026-12-06_10-00-00.json").write_text(
        json.dumps({"trial_data": [[trial, json.dumps({"last_result": {"training_iteration": 2}})]]}))


def test_a_run_moved_or_copied_elsewhere_is_refused_by_resume_in_one_line(tmp_path):
    space = load_space("name: r\nrecipe: x.py\n")
    first = run_location(str(tmp_path / "st"), "r")
    assert prepare_run(space, first, resume=False, restart=False) is False  # a new run records where it started
    _saved_state(first.state)
    assert check_choice(space, first, resume=True, restart=False)  # resumed where it started: fine
    shutil.copytree(first.state, tmp_path / "elsewhere" / "r")
    moved = run_location(str(tmp_path / "elsewhere"), "r")
    with pytest.raises(UserError) as refused:
        check_choice(space, moved, resume=True, restart=False)
    text = str(refused.value)
    assert f"the run at {tmp_path / 'elsewhere' / 'r'} was started at {tmp_path / 'st' / 'r'} and moved or copied" \
           in text and "\n" not in text
    assert f"--warm-start {tmp_path / 'elsewhere' / 'r'}" in text or "warm_start=" in text
    assert f"resume the original there, which is still at {tmp_path / 'st' / 'r'}" in text  # a copy
    (moved.state / "started_at").unlink()  # a run started before the folder was recorded: not checked
    assert check_choice(space, moved, resume=True, restart=False)


def test_a_moved_run_is_told_how_to_resume_and_resumes_through_a_link_left_where_it_started(tmp_path):
    """A run moved elsewhere was refused with only --warm-start (a new search under another name, its interrupted
    trials started again): not that it resumes where it started, nor that a link there lets it resume where it is
    (its saved state's paths then lead to it)."""
    space = load_space("name: r\nrecipe: x.py\n")
    first = run_location(str(tmp_path / "st"), "r")
    prepare_run(space, first, resume=False, restart=False)
    _saved_state(first.state)
    (tmp_path / "disk").mkdir()
    shutil.move(tmp_path / "st", tmp_path / "disk" / "st")
    moved = run_location(str(tmp_path / "disk" / "st"), "r")
    with pytest.raises(UserError) as refused:
        check_choice(space, moved, resume=True, restart=False)
    old, new = tmp_path / "st" / "r", tmp_path / "disk" / "st" / "r"
    assert (f"continues it only through that folder: move it back (`mv {new} {old}`) and resume it there, or leave a "
            f"link there (`mkdir -p {old.parent} && ln -s {new} {old}`) and resume it here; or,") in str(refused.value)
    old.parent.mkdir()
    old.symlink_to(new)
    assert check_choice(space, moved, resume=True, restart=False)


# A run killed under an earlier autotune, resumed by this one: Ray's saved state unpickles that autotune's
# progress callback, searcher and schedulers into this one's classes, and a run of 2026-12-04 failed mid-search with
# a 79-line AttributeError ('Progress' object has no attribute 'objectives'). A run records the format of its saved
# state when it starts; a resume of another format, or of a run that recorded none, is refused in one line that
# names --warm-start, before Ray starts or anything is written.
@pytest.mark.parametrize("recorded, says", [
    (None, "was started by an earlier autotune, before runs recorded the format of their saved state"),
    ("0", f"was started by an autotune whose saved state has format 0 (this one reads {STATE_FORMAT})"),
])
def test_a_run_of_another_state_format_is_refused_by_resume_in_one_line(tmp_path, recorded, says):
    space = load_space("name: r\nrecipe: x.py\n")
    where = run_location(str(tmp_path / "st"), "r")
    assert prepare_run(space, where, resume=False, restart=False) is False  # a new run records its format
    assert (where.state / "engine.format").read_text() == f"{STATE_FORMAT}\n"
    _saved_state(where.state)
    (where.state / "study.db").write_bytes(b"")
    assert prepare_run(space, where, resume=True, restart=False) is True  # this autotune's run resumes
    if recorded is None:
        (where.state / "engine.format").unlink()
    else:
        (where.state / "engine.format").write_text(f"{recorded}\n")
    before = sorted(p.name for p in where.state.iterdir())
    with pytest.raises(UserError) as refused:
        prepare_run(space, where, resume=True, restart=False)
    text = str(refused.value)
    assert says in text and "\n" not in text
    assert f"--warm-start {where.experiment}" in text or "warm_start=" in text
    assert sorted(p.name for p in where.state.iterdir()) == before  # nothing written


# A folder of runs and models copied whole (a backup restored, another machine): `autotune export RUN --trial ID`
# of the copy replaced the original folder's canonical model (the path its summary.json recorded; on another
# machine it made that folder anew), and `autotune report` of the copy said its model "was removed". The folders a
# run recorded are now read where they moved with it.
@pytest.mark.parametrize(("recorded", "moved_with_it"), [
    ("{a}/models/toy", True),  # beside the runs folder, copied with it
    ("{a}/models/.toy.versions/gone", True),  # deleted in the copy: not read from the original
    ("{a}/runs/r/notes", True),  # inside the run folder
    ("{a}/elsewhere", False),  # not copied: still read where it is
    ("/srv/models/toy", False),  # shares no folder with the run but /
    ("models/toy", False),  # relative: as recorded
])
def test_a_path_a_run_recorded_moves_with_its_folder_where_it_was_copied(tmp_path, recorded, moved_with_it):
    a, b = tmp_path / "a", tmp_path / "b"
    (a / "runs" / "r" / "notes").mkdir(parents=True)
    (a / "models" / "toy").mkdir(parents=True)
    (a / "models" / ".toy.versions" / "gone").mkdir(parents=True)
    (a / "runs" / "r" / "started_at").write_text(f"{a / 'runs' / 'r'}\n")
    shutil.copytree(a, b)
    (b / "models" / ".toy.versions" / "gone").rmdir()
    (a / "elsewhere").mkdir()
    path = recorded.format(a=a)
    assert relocated(path, a / "runs" / "r") == Path(path)  # not moved
    assert relocated(path, b / "runs" / "r") == Path(path.replace(str(a), str(b)) if moved_with_it else path)
    summary = {"model_dir": path, "promotion": {"version_dir": path}, "space": {"export": {"dir": path}}}
    moved = relocated_summary(b / "runs" / "r", summary)
    assert {moved["model_dir"], moved["promotion"]["version_dir"], moved["space"]["export"]["dir"]} == {
        str(relocated(path, b / "runs" / "r"))}
    assert summary["model_dir"] == path  # the summary read is not changed


@pytest.mark.usefixtures("local_ray")
def test_a_copied_folder_exports_and_reports_its_own_models(tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    monkeypatch.chdir(a)
    space = toy_space("front", trials=2, concurrent=1, train="{epochs: {choice: [3, 1]}}",
                      search=", sampler: random, scheduler: fifo, start: [{model.x: 0.3, model.y: 0.6, train.epochs: "
                             "3}, {model.x: 0.3, model.y: 0.6, train.epochs: 1}]")
    space = space.replace("metric: val_accuracy, mode: max", "metric: [val_accuracy, epoch], mode: [max, min]")
    result = autotune.fit(space)
    shutil.copytree(a, b, symlinks=True)
    monkeypatch.chdir(b)
    other = next(str(t) for t in result.trials["trial_id"] if str(t) != result.best_trial_id)
    original = os.readlink(a / "models" / "toy")
    assert main(["export", "runs/front", "--trial", other]) == 0
    assert os.readlink(a / "models" / "toy") == original  # the original folder's model is left alone
    assert json.loads((b / "models" / "toy" / "model.json").read_text())["trial_id"] == other
    assert main(["rollback", "models/toy"]) == 0
    run = load_run(b / "runs" / "front")
    assert run.model_dir is not None and run.model_dir.is_relative_to(b) and not run.no_model
