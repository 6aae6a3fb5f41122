"""A budget's end: the checkpoint of the epoch that used the epoch budget up is the one exported; a run that a
budget ended stays ended when resumed; a full disk under the Optuna study stops the search to be resumed."""
from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy.exc

import autotune
from autotune.errors import StorageFull
from engine_helpers import toy_space

pytestmark = pytest.mark.usefixtures("local_ray")

# one trial at a time, each of 4 epochs, its accuracy rising every epoch: the first trial's epoch 3 uses the
# budget up, and is the best
BUDGET = toy_space("eb", trials=4, concurrent=1, train="{epochs: 4}",
                   search=", sampler: random, scheduler: fifo, epoch_budget: 3")


def test_the_epoch_that_uses_the_budget_up_is_exported_and_a_resume_keeps_the_run_s_end(in_tmp, caplog, capsys):
    first = autotune.fit(BUDGET)
    assert first.ended == "the epoch budget of 3 epochs is used up" and not first.interrupted
    assert first.best_metrics["epoch"] == 3  # the stop waited for that epoch's checkpoint (epoch 2's was exported)
    before = json.loads((first.run_dir / "summary.json").read_text())

    with caplog.at_level(logging.WARNING, logger="autotune"):
        again = autotune.fit(BUDGET, overrides=["search.epoch_budget=20"], resume=True)
    assert again.ended == first.ended and not again.interrupted  # not "the time budget ran out", nor interrupted
    assert len(again.trials) == len(first.trials) and again.promotion == first.promotion
    (line,) = [r.getMessage() for r in caplog.records if "this run ended" in r.getMessage()]
    assert line.startswith(f"this run ended ({first.ended}): resume=True continues an interrupted run, not one that "
                           "ended, so no trial runs; to search more, start a new run from its trials: warm_start=")
    assert "overrides=['name=eb-2'] (where export.dir is made from the name, as models/${name} is, also override " \
           "export.dir=models/toy to export where this run does)" in line

    from autotune.cli import main

    Path("eb.yaml").write_text(BUDGET)
    assert main(["run", "eb.yaml", "--set", "search.epoch_budget=null", "--resume"]) == 0
    out = capsys.readouterr().out  # the command line's logging, and its summary
    assert "Resume with" not in out and "Interrupted" not in out and f"Ended early: {first.ended}" in out
    assert f"--resume continues an interrupted run, not one that ended, so no trial runs; to search more, start a new " \
           f"run from its trials: --warm-start {first.run_dir} --set name=eb-2 (where export.dir" in out
    after = json.loads((first.run_dir / "summary.json").read_text())
    assert after["interrupted"] is False and after["ended"] == first.ended
    assert after["promotion"] == before["promotion"] and after["model_dir"] == before["model_dir"]


def _full_disk(*args, **kwargs):
    """What SQLAlchemy raises when SQLite finds the disk full (the searcher writes an epoch's value through it)."""
    try:
        raise sqlite3.OperationalError("database or disk is full")
    except sqlite3.OperationalError as err:
        raise sqlalchemy.exc.OperationalError("INSERT INTO trial_intermediate_values ...", {}, err) from err


def test_a_full_disk_under_the_study_stops_the_search_to_be_resumed(in_tmp, monkeypatch):
    """The study's write of an epoch's value fails for lack of space: the search stops as a full checkpoint stops
    it (StorageFull: one line, the resume), not with the study's traceback."""
    from autotune.engine import searcher

    monkeypatch.setattr(searcher, "_set_intermediate_value", _full_disk)
    with pytest.raises(StorageFull, match=r"^storage full: .*free space, then resume it \(resume=True\)$"):
        autotune.fit(toy_space("sf", trials=3, train="{epochs: 3, sleep: 0.2}", search=", scheduler: fifo"),
                     export=False)


def test_the_epoch_budget_is_read_from_the_trials_of_a_resumed_run():
    """A resumed run's stopper is Ray's copy, unpickled from the run: the engine's own saw no result, and a run that
    the budget ended after a resume was called interrupted (then resumed again, ending the same way: a loop)."""
    from types import SimpleNamespace

    from autotune.engine.search import _ended_early
    from autotune.engine.stoppers import EpochBudget

    grid = [SimpleNamespace(metrics={"training_iteration": 4}), SimpleNamespace(metrics={"training_iteration": 2}),
            SimpleNamespace(metrics=None)]
    for budget, ended in [(6, "the epoch budget of 6 epochs is used up"), (7, None)]:
        space = autotune.load_space(toy_space(search=f", epoch_budget: {budget}"))
        assert _ended_early(space, grid, None, EpochBudget(budget), 1.0) == ended


def test_a_time_budget_that_cut_every_started_trial_is_said_to_have_ended_the_search():
    """Every trial of the search had started (trials <= trials at once, or a cluster's queued trial) when the time
    budget ran out: the search was said to have run them all, and one that reported nothing failed with "no trial
    reported a metric; check that the recipe calls report()"."""
    from types import SimpleNamespace

    from autotune.engine.search import _ended_early

    grid = [SimpleNamespace(metrics=None)] * 3
    space = autotune.load_space(toy_space(trials=3, search=", time_budget: 45s"))
    assert _ended_early(space, grid, None, None, 45.2) == "the time budget of 45 s ran out"
    assert _ended_early(space, grid, None, None, 30.0) is None  # they ended before it
    assert _ended_early(autotune.load_space(toy_space(trials=3)), grid, None, None, 45.2) is None
