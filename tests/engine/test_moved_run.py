"""A run folder moved or copied elsewhere, then resumed there: Ray's saved state and the pickled searcher hold the
folder it was started in, so the resume wrote new trials and the study there (a copy), or failed with a 135-line
sqlite traceback (a move). It is refused in one line that names both folders and --warm-start."""
from __future__ import annotations

import json
import shutil

import pytest

from autotune.engine.storage import STATE_FORMAT, check_choice, prepare_run, run_location
from autotune.errors import UserError
from autotune.space import load_space


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
    (moved.state / "started_at").unlink()  # a run started before the folder was recorded: not checked
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
