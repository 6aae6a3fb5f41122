"""A budget's end: the checkpoint of the epoch that used the epoch budget up is the one exported; a run that a
budget ended stays ended when resumed; a full disk under the Optuna study stops the search to be resumed."""
from __future__ import annotations

import json
import logging
import sqlite3
import time
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
        assert _ended_early(space, grid, None, EpochBudget(budget, "/runs/eb"), None, 1.0) == ended


def test_a_time_budget_that_cut_every_started_trial_is_said_to_have_ended_the_search():
    """Every trial of the search had started (trials <= trials at once, or a cluster's queued trial) when the time
    budget ran out: the search was said to have run them all, and one that reported nothing failed with "no trial
    reported a metric; check that the recipe calls report()"."""
    from types import SimpleNamespace

    from autotune.engine.search import _ended_early

    grid = [SimpleNamespace(metrics=None)] * 3
    space = autotune.load_space(toy_space(trials=3, search=", time_budget: 45s"))
    assert _ended_early(space, grid, None, None, _clock(45, ran_out=True), 45.2) == "the time budget of 45 s ran out"
    assert _ended_early(space, grid, None, None, _clock(45, ran_out=False), 30.0) is None  # they ended before it
    assert _ended_early(autotune.load_space(toy_space(trials=3)), grid, None, None, None, 45.2) is None


def test_a_resumed_search_keeps_its_epoch_budget_says_so_and_is_not_called_interrupted(caplog):
    """Resumed with `--set search.epoch_budget=300`, a run started with 60 stopped at 60 epochs without a word (Ray's
    unpickled stopper counts the budget it started with), and the engine, which looked for 300, called the search
    interrupted: no model exported, exit 130 and "Resume with" the same command, which ran no trial again."""
    import pickle
    from types import SimpleNamespace

    from autotune.engine.search import _ended_early
    from autotune.engine.stoppers import EpochBudget

    first = EpochBudget(60, "/runs/eb-resumed")
    first.on_step_begin(0, [])
    saved = pickle.dumps(first)  # Ray's saved search state

    again = EpochBudget(300, "/runs/eb-resumed")  # the resumed session's, before Ray unpickles its own copy
    restored = pickle.loads(saved)
    ran = [SimpleNamespace(trial_id=f"t{i}", last_result={"training_iteration": 3}) for i in range(18)]
    with caplog.at_level(logging.INFO, logger="autotune"):
        restored.on_step_begin(1, ran)
    assert [r.getMessage() for r in caplog.records] == [
        "the epoch budget of 60 epochs: 6 epochs of it left for this resumed search",
        "search.epoch_budget is 300 epochs, but this run started with 60 epochs: a resumed search keeps its epoch "
        "budget, 6 epochs of it left"]
    assert not restored("t18", {"training_iteration": 3}) and restored("t19", {"training_iteration": 3})
    space = autotune.load_space(toy_space(trials=40, search=", epoch_budget: 300"))
    grid = [SimpleNamespace(metrics={"training_iteration": 3})] * 20
    assert _ended_early(space, grid, None, again, None, 20.0) == "the epoch budget of 60 epochs is used up"


class _Clock:
    """A stand-in for the time budget's clock: it moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def time(self) -> float:
        return self.now


def _clock(seconds: float, *, ran_out: bool, run: str = "/runs/clock"):
    """A time budget of `seconds` that ran out, or did not, before the search ended."""
    from autotune.engine.stoppers import TimeBudget

    clock, fake = TimeBudget(seconds, run), _Clock()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("autotune.engine.stoppers.running_time", fake.time)
        clock.stop_all()
        fake.now += seconds + 1 if ran_out else seconds / 2
        clock.stop_all()
    return clock


def test_a_search_that_ran_every_trial_past_its_time_budget_was_not_ended_by_it():
    """Every trial ran its last epoch, the last one ending after the budget's time (20 trials in 20.5 s of a 20 s
    budget): the summary said "Ended early: the time budget of 20 s ran out" of a search that nothing cut short; a
    search interrupted (Ctrl-C) at 21.8 s of a 40 s budget said the same beside "The search was interrupted"."""
    from types import SimpleNamespace

    from autotune.engine.search import _ended_early

    space = autotune.load_space(toy_space(trials=3, search=", time_budget: 20s"))
    grid = [SimpleNamespace(metrics={"training_iteration": 3})] * 3
    assert _ended_early(space, grid, None, None, _clock(20, ran_out=False), 20.5) is None
    assert _ended_early(space, grid[:2], None, None, _clock(20, ran_out=False), 12.0) is None  # interrupted
    assert _ended_early(space, grid[:2], None, None, _clock(20, ran_out=True), 21.0) == "the time budget of 20 s ran out"


def test_a_resumed_search_runs_for_the_rest_of_its_time_budget_and_says_so(monkeypatch, caplog):
    """Ray saves what is left of the time budget with the search's state, and a resumed search runs for that rest:
    `--set search.time_budget=120s` on the resume of a 40 s run was silently not applied, and the summary said "the
    time budget of 120 s ran out" after 13 s. The resume says how much is left, warns that the budget asked for now
    does not replace it, and names the budget it ran with."""
    import pickle

    from autotune.engine.stoppers import TimeBudget

    fake = _Clock()
    monkeypatch.setattr("autotune.engine.stoppers.running_time", fake.time)
    first = TimeBudget(40, "/runs/resumed")
    first.stop_all()
    fake.now += 27
    assert not first.stop_all()
    saved = pickle.dumps(first)  # Ray's saved search state

    again = TimeBudget(120, "/runs/resumed")  # the resumed session's, before Ray unpickles its own copy
    restored = pickle.loads(saved)
    with caplog.at_level(logging.INFO, logger="autotune"):
        assert not restored.stop_all()
    assert [r.getMessage() for r in caplog.records] == [
        "the time budget of 40 s: 13.0 s of it left for this resumed search",
        "search.time_budget is 120 s, but this run started with 40 s: a resumed search keeps its time budget, 13.0 s "
        "of it left"]
    fake.now += 14
    assert restored.stop_all() and again.ran_out(14.0) and str(again) == "the time budget of 40 s"


def test_a_time_budget_is_not_spent_by_the_system_clock_set_forward(monkeypatch):
    """Ray's stopper read `time.time`: a clock set an hour forward (by hand, or by NTP after a machine woke up) ended
    a search of a 60 s budget at its next step, and a suspended laptop's night spent its budget."""
    from autotune.engine.stoppers import TimeBudget

    budget = TimeBudget(60, "/runs/clock-set")
    assert not budget.stop_all()
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 3600)
    assert not budget.stop_all() and not budget.ran_out(1.0)


@pytest.mark.parametrize(("cpu", "spent"), [(0.0, False), (600.0, True)], ids=["stopped", "working"])
def test_a_time_budget_is_not_spent_while_the_search_is_stopped(monkeypatch, cpu, spent):
    """Ctrl-Z, `kill -STOP` or a frozen machine: 10 minutes in which the search's process did not run (it used no CPU
    time) spent a budget of 60 s. Ten minutes in which it worked, holding the interpreter, do."""
    from types import SimpleNamespace

    from autotune.engine import running_clock
    from autotune.engine.stoppers import TimeBudget

    fake = SimpleNamespace(monotonic=lambda: now[0], process_time=lambda: now[1])
    now = [100.0, 5.0]
    monkeypatch.setattr(running_clock, "time", fake)
    monkeypatch.setattr("autotune.engine.stoppers.running_time", running_clock.RunningClock())
    budget = TimeBudget(60, "/runs/stopped")
    assert not budget.stop_all()
    now[0], now[1] = now[0] + 600, now[1] + cpu
    assert budget.stop_all() == spent


@pytest.mark.parametrize(("started", "resumed", "kept"), [
    ("", ", time_budget: 60s", None), (", time_budget: 40s", "", 40.0)], ids=["given-now", "left-out-now"])
def test_a_resumed_search_keeps_having_or_not_having_a_time_budget_and_says_so(tmp_path, caplog, started, resumed,
                                                                               kept):
    """A run started without a time budget and resumed with `--set search.time_budget=60s` ran without one (Ray's
    restored search keeps its stoppers) with no word, and its summary said "the time budget of 60 s ran out" when the
    session outlasted it; one started with 40 s and resumed without one was still ended by it, unsaid. The resumed
    search keeps what it started with, and a warning says so."""
    from autotune.engine.search import _started_count
    from autotune.engine.storage import prepare_run, run_location

    where = run_location(str(tmp_path), "tb")
    prepare_run(autotune.load_space(toy_space("tb", search=started)), where, resume=False, restart=False)
    again = autotune.load_space(toy_space("tb", search=resumed))
    with caplog.at_level(logging.WARNING, logger="autotune"):
        space = _started_count(again, where)
    assert space.search.time_budget == kept and space.search.epoch_budget is None
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("search.time_budget is 60 s, but this run started without one: a resumed search keeps the "
                           "budgets it started with" if kept is None else
                           "search.time_budget is null, but this run started with 40 s: a resumed search keeps the "
                           "budgets it started with")
