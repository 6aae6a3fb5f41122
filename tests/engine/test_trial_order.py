"""The order autotune lists and prints trials in: the order they started (a resume included), the summary's ranking
and its ties, and the progress line of each trial that ends."""
from __future__ import annotations

import functools
import logging
from pathlib import Path
from types import SimpleNamespace

import optuna
import pandas as pd
import pytest

import autotune
from autotune.engine.progress import Progress
from autotune.engine.result import SearchResult
from autotune.api import _trials_and_best
from autotune.engine.result_grid import in_start_order
from autotune.engine.summary import format_summary
from autotune.space.types import positions
from engine_helpers import toy_space

STARTED = ["18ca241d", "ab0a5ddd", "8e520056", "ba4ac0cc", "aeff2817"]
RESUMED = ["ba4ac0cc", "8e520056", "ab0a5ddd", "18ca241d", "aeff2817"]  # Ray's ResultGrid after a resume


def _result(folder: Path, trial_id: str, value: float, reported_at: float = 0.0, ran: float = 1.0) -> SimpleNamespace:
    """A stand-in for Ray's Result of a trial that reported `value` once, at Unix time `reported_at` after `ran` s."""
    report = {"training_iteration": 1, "val_accuracy": value, "timestamp": reported_at, "time_total_s": ran}
    return SimpleNamespace(config={"model.x": 0.5, "model.y": 0.5}, metrics=report, error=None,
                           metrics_dataframe=pd.DataFrame([report]), path=str(folder / f"trial_{trial_id}"),
                           best_checkpoints=[(f"checkpoint of {trial_id}", report)])


def _study(folder: Path, name: str, trial_ids: list[str]) -> None:
    """The run's study.db, its trials proposed in the order of `trial_ids`, as the searcher names them."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=name, storage=f"sqlite:///{folder / 'study.db'}")
    for trial_id in trial_ids:
        study.ask().set_user_attr("autotune_trial_id", trial_id)


def test_trials_csv_lists_a_resumed_search_s_trials_in_the_order_they_started(tmp_path):
    """Ray's ResultGrid of a resumed search lists its trials most recently reported first: trials.csv (and the
    report's history chart, which numbers its rows) followed it. The study's trial numbers give the order; of
    equal checkpoints, the export takes the trial that started first."""
    space = autotune.load_space(toy_space("order", trials=5))
    _study(tmp_path, "order", STARTED)
    grid = [_result(tmp_path, trial_id, 0.8 + 0.01 * STARTED.index(trial_id)) for trial_id in RESUMED]
    trials, best, records = _trials_and_best(grid, space, set(), tracking=SimpleNamespace())  # a tracker is on
    assert list(trials["trial_id"]) == STARTED
    assert [(r.trial_id, r.epochs[0][1]["val_accuracy"]) for r in records] == [  # each with its own reports
        (trial_id, 0.8 + 0.01 * i) for i, trial_id in enumerate(STARTED)]
    tied = [_result(tmp_path, trial_id, 0.8) for trial_id in RESUMED]
    assert _trials_and_best(tied, space, set(), tracking=None)[1][1] == "checkpoint of 18ca241d"


def test_the_order_is_read_from_the_study_without_loading_its_trials(tmp_path, monkeypatch):
    """Optuna's reads load every trial whole (1.5 s for 2,500 trials, read twice after a Ctrl-C before the summary):
    the numbers are one query. The study named otherwise is read when it is the file's only one."""
    folder = tmp_path / "run #1 100%"  # a path that is no plain URI
    folder.mkdir()
    _study(folder, "renamed", STARTED)
    monkeypatch.setattr(optuna.study.Study, "get_trials", lambda *args, **kwargs: pytest.fail("trials loaded"))
    grid = [_result(folder, trial_id, 0.8) for trial_id in RESUMED]
    assert [Path(r.path).name.removeprefix("trial_") for r in in_start_order(grid, "order")] == STARTED


def test_without_a_study_trials_are_ordered_by_their_first_report_less_its_running_time(tmp_path):
    """A URI storage's study is not beside its trials: the first report's time, less the time the trial had run
    by then, orders them; a trial that never reported comes last."""
    late = _result(tmp_path, "b", 0.5, reported_at=105.0, ran=1.0)  # started at 104
    slow = _result(tmp_path, "a", 0.5, reported_at=110.0, ran=10.0)  # started at 100, reported last
    silent = SimpleNamespace(**_result(tmp_path, "c", 0.5).__dict__ | {"metrics_dataframe": None})
    assert [Path(r.path).name for r in in_start_order([silent, late, slow], "order")] == [
        "trial_a", "trial_b", "trial_c"]


def _summary(values: list[float], best: str, top: int = 10) -> list[str]:
    ids = [f"t{i}" for i in range(len(values))]
    trials = pd.DataFrame({"trial_id": ids, "status": "TERMINATED", "epochs": 1, "stopped_early": False,
                           "val_accuracy": values})
    result = SearchResult("toy", Path("runs/toy"), ("val_accuracy",), ("max",), best, {}, {},
                          {"val_accuracy": max(values)}, trials)
    return format_summary(result, top=top).splitlines()


@pytest.mark.parametrize(("best", "first_rows"), [("t1", ["t1", "t2", "t3", "t0"]), ("t3", ["t3", "t1", "t2", "t0"])])
def test_the_summary_table_puts_the_best_trial_first_of_equals_then_the_order_they_started(best, first_rows):
    """Two trials at 0.8359: the table's first row was not always the `Best trial` named under it."""
    lines = _summary([0.5, 0.8359, 0.8359, 0.8359], best)
    table = lines[lines.index("") + 3:lines.index("") + 7]
    assert [line.split()[0] for line in table] == first_rows
    assert f"Best trial {best}: val_accuracy=0.8359" in lines


@pytest.mark.parametrize(("trials", "note"), [(12, "(2 more trials in trials.csv)"),
                                              (11, "(1 more trial in trials.csv)"), (10, None)])
def test_the_summary_says_how_many_trials_its_table_leaves_out(trials, note):
    lines = _summary([i / 100 for i in range(trials)], f"t{trials - 1}")
    assert sum(line.startswith("t") and line[1].isdigit() for line in lines) == min(trials, 10)
    assert (note in lines) if note else not any("more trial" in line for line in lines)


def test_a_resumed_search_s_time_is_said_to_be_this_session_s():
    """A resume's summary counted only its own session's time, as though the search had taken that long."""
    trials = pd.DataFrame({"trial_id": ["t0"], "status": "TERMINATED", "epochs": 1, "stopped_early": False,
                           "val_accuracy": [0.5]})
    result = SearchResult("toy", Path("runs/toy"), ("val_accuracy",), ("max",), "t0", {}, {}, {"val_accuracy": 0.5},
                          trials, seconds=14.2)
    assert format_summary(result).startswith("Search 'toy': 1 trial in 14.2 s, 1 epoch run (")
    result.resumed = True
    assert format_summary(result).startswith("Search 'toy': 1 trial, 14.2 s in this session, 1 epoch run (")


def test_the_summary_says_how_many_epochs_the_trials_ran_together():
    """The cost a user compares a search with another by (a plain Optuna script, random search): every epoch the
    trials ran, stopped early or not; a trial that failed before its first epoch ran none."""
    trials = pd.DataFrame({"trial_id": ["t0", "t1", "t2"], "status": ["TERMINATED", "TERMINATED", "ERROR"],
                           "epochs": [4, 1, None], "stopped_early": [False, True, False],
                           "val_accuracy": [0.5, 0.4, None], "error": [None, None, "ValueError: boom"]})
    result = SearchResult("toy", Path("runs/toy"), ("val_accuracy",), ("max",), "t0", {}, {}, {"val_accuracy": 0.5},
                          trials, seconds=2.0)
    assert format_summary(result).startswith("Search 'toy': 3 trials in 2.0 s, 5 epochs run (1 stopped early, ")


def _trial(trial_id: str, epochs: int, best: float | None, **more) -> SimpleNamespace:
    return SimpleNamespace(trial_id=trial_id, config={"train.epochs": 3}, last_result={"training_iteration": epochs},
                           metric_analysis={"val_accuracy": {"max": best}} if best is not None else {}, **more)


def test_a_trial_the_scheduler_stopped_is_said_stopped_early_not_finished(caplog):
    caplog.set_level(logging.INFO, logger="autotune")
    progress = Progress("val_accuracy", "max", 3, 0, planned=lambda config: config["train.epochs"])
    progress.on_trial_complete(0, [], _trial("a1", 1, 0.126))
    progress.on_trial_complete(0, [], _trial("b2", 2, 0.5))
    progress.on_trial_complete(0, [], _trial("c3", 3, 0.4))
    assert caplog.messages == [
        "[1/3] trial a1 stopped early at epoch 1 of 3: val_accuracy=0.1260, best so far 0.1260",
        "[2/3] trial b2 stopped early at epoch 2 of 3: val_accuracy=0.5000 (best of 2 epochs), best so far 0.5000",
        "[3/3] trial c3 finished: val_accuracy=0.4000 (best of 3 epochs), best so far 0.5000"]


def test_the_trial_that_reached_the_stop_target_is_not_said_stopped_early(caplog):
    """The line said 'stopped early at epoch 1 of 3' of the trial whose report reached `search.stop`, while the
    summary below it counted no trial stopped early and called that one done: it ended the search."""
    from autotune.engine.result_grid import reaches

    caplog.set_level(logging.INFO, logger="autotune")
    reached = functools.partial(reaches, targets={"val_accuracy": 0.9}, modes={"val_accuracy": "max"})
    progress = Progress("val_accuracy", "max", 2, 0, planned=lambda config: config["train.epochs"], reached=reached)
    target = _trial("a1", 1, 0.97)
    target.last_result["val_accuracy"] = 0.97
    stopped = _trial("b2", 2, 0.5)
    stopped.last_result["val_accuracy"] = 0.5
    progress.on_trial_complete(0, [], target)
    progress.on_trial_complete(0, [], stopped)
    assert caplog.messages == [
        "[1/2] trial a1 reached the stop target at epoch 1 of 3: val_accuracy=0.9700, best so far 0.9700",
        "[2/2] trial b2 stopped early at epoch 2 of 3: val_accuracy=0.5000 (best of 2 epochs), best so far 0.9700"]


def test_with_several_objectives_a_trial_s_line_gives_every_objective_at_its_best_epoch(caplog):
    """With several objectives the line showed the first metric's best over every epoch (0.9577, at an epoch whose
    other objective was NaN) while the summary's row showed 1.3668, the best epoch by their rank: now that epoch's
    values of every objective."""
    from autotune.engine.checkpoints import CheckpointPolicy

    caplog.set_level(logging.INFO, logger="autotune")
    policy = CheckpointPolicy(1, ("val_mse", "size"), ("min", "min"), "best-checkpoint:test")
    progress = Progress("val_mse", "min", 1, 0, objectives=policy)
    trial = _trial("a1", 3, 0.9577)
    for epoch, mse, size in [(1, 2.0, 30.0), (2, 1.3668, 26.9388), (3, 0.9577, float("nan"))]:
        progress.on_trial_result(0, [], trial, {"val_mse": mse, "size": size, "training_iteration": epoch})
    progress.on_trial_complete(0, [], trial)
    assert caplog.messages == ["[1/1] trial a1 finished: val_mse=1.3668, size=26.9388 (best of 3 epochs), best so "
                               "far 1.3668"]
    assert progress.best_epoch == {}  # nothing kept of an ended trial


def test_a_failed_trial_s_line_gives_the_value_it_reached_and_whether_that_is_the_best(caplog, tmp_path):
    (tmp_path / "error.txt").write_text("Traceback ...\nValueError: boom\n")
    caplog.set_level(logging.INFO, logger="autotune")
    progress = Progress("val_accuracy", "max", 3, 0)
    failed = {"pickled_error_file": None, "error_file": str(tmp_path / "error.txt")}
    progress.on_trial_error(0, [], _trial("a1", 2, 0.5725, **failed))
    progress.on_trial_error(0, [], _trial("b2", 1, 0.3, **failed))
    progress.on_trial_error(0, [], _trial("c3", 0, None, **failed))
    assert caplog.messages == [
        "[1/3] trial a1 failed: ValueError: boom (its best before: val_accuracy=0.5725, the best so far)",
        "[2/3] trial b2 failed: ValueError: boom (its best before: val_accuracy=0.3000)",
        "[3/3] trial c3 failed: ValueError: boom"]


def test_a_failed_trial_s_error_names_the_line_of_the_user_s_code_that_raised_it(tmp_path):
    """`run` said "ValueError: x too large" where `train` names the file and line: the innermost frame of the
    user's own code (a recipe, a custom file), not autotune's, the standard library's or an installed package's
    (torch raising inside the user's forward), from the traceback Ray keeps with the error or writes beside it."""
    import json

    import autotune.engine.search
    import torch

    from autotune.engine.trial_errors import error_text, trial_error

    mine = tmp_path / "my_recipe.py"
    mine.write_text("def train():\n    raise ValueError\n")

    def frame(file: str, line: int) -> str:
        return f'  File "{file}", line {line}, in f\n    code()\n'

    text = ("Traceback (most recent call last):\n" + frame(autotune.engine.search.__file__, 10) + frame(mine, 40)
            + frame(mine, 153) + frame(torch.__file__, 7) + frame(json.__file__, 3) + "ValueError: x too large\n")
    (tmp_path / "error.txt").write_text(text)
    assert trial_error(_trial("a1", 1, None, pickled_error_file=None, error_file=str(tmp_path / "error.txt"))) == \
        "ValueError: x too large (my_recipe.py, line 153)"

    class Wrapped(Exception):  # Ray's RayTaskError: the cause, and the traceback as its text
        def __init__(self, cause: BaseException, traceback: str) -> None:
            super().__init__(traceback)
            self.cause = cause

    assert error_text(Wrapped(ValueError("x too large"), text)) == "ValueError: x too large (my_recipe.py, line 153)"
    ours = "Traceback (most recent call last):\n" + frame(autotune.engine.search.__file__, 10) + "ValueError: x\n"
    assert error_text(Wrapped(ValueError("x"), ours)) == "ValueError: x"  # autotune's own: its message says it
    assert error_text(ValueError("x too large")) == "ValueError: x too large"  # no traceback kept


def test_a_trial_s_error_names_its_type_in_one_line_whatever_its_message():
    """A message holding a colon lost its exception's type ("bad value: 3", not "ValueError: bad value: 3"), one of
    several lines was cut to its last (a traceback it holds, as a DataLoader worker's error does, is left out), and a message of a megabyte filled the progress line, the summary and
    trials.csv (2 MB for two trials)."""
    from autotune.engine.trial_errors import error_text
    from autotune.errors import MissingMetric

    assert error_text(ValueError("bad value: 3")) == "ValueError: bad value: 3"
    assert error_text(ValueError("rows:\n  3\n  7")) == "ValueError: rows: 3 7"
    assert error_text(ValueError()) == "ValueError"
    loader = ("Caught ValueError in DataLoader worker process 1.\nOriginal Traceback (most recent call last):\n  File "
              "\"worker.py\", line 3, in fetch\n    data = fetch(index)\n           ^^^^^^^^^^^^\nValueError: bad row\n")
    assert error_text(ValueError(loader)) == "ValueError: Caught ValueError in DataLoader worker process 1. ValueError: " \
                                             "bad row"  # the worker's traceback is the trial's error.txt's
    assert error_text(ValueError("x" * 10**6)) == f"ValueError: {'x' * 500}... ({10**6 - 500} more characters)"
    assert error_text(MissingMetric("the recipe reported a: not b")) == "the recipe reported a: not b"  # autotune's


def test_a_column_of_large_values_is_written_in_one_format():
    """A multi-objective table gave 1.956e+04 beside 4810 in one column."""
    from autotune.engine.summary import format_table

    table = format_table(["trial", "num_parameters"], [["a", 19560.0], ["b", 4810.0], ["c", 0.25], ["d", 2.5e-05]])
    assert [line.split()[1] for line in table.splitlines()[2:]] == ["19560", "4810", "0.25", "2.5e-05"]


def test_a_table_wider_than_the_terminal_is_cut_into_blocks_each_led_by_the_first_column():
    """The summary's table of a search of 9 parameters was 198 columns wide: at an 80-column terminal each row
    wrapped over 3 lines and the columns no longer lined up. Given the terminal's width, the columns that do not fit
    go to a block below, led by the trial column again; no line ends in spaces (every row padded to its width, as a
    screen reader or a braille display reads it). Without a width (a log, a pipe) a row stays one line."""
    from autotune.engine.summary import format_table

    headers = ["trial", "val_accuracy", "model.arch", "optimizer[adamw].weight_decay", "train.batch_size"]
    rows = [["713284aa", 0.9885, "simple_cnn", None, 32], ["389ff9a5", 0.9809, "mlp", 0.0007093, 128]]
    wide = format_table(headers, rows)
    assert len(wide.splitlines()) == 4 and all(line == line.rstrip() for line in wide.splitlines())
    assert wide.splitlines()[2].split() == ["713284aa", "0.9885", "simple_cnn", "-", "32"]
    cut = format_table(headers, rows, width=60)
    assert all(len(line) <= 60 and line == line.rstrip() for line in cut.splitlines())
    first, second = (block.splitlines() for block in cut.split("\n\n"))
    assert first[0].split() == ["trial", "val_accuracy", "model.arch"]
    assert second[0].split() == ["trial", "optimizer[adamw].weight_decay", "train.batch_size"]
    assert second[3].split() == ["389ff9a5", "0.0007093", "128"]
    assert format_table(headers, rows, width=200) == wide
    assert format_table(["a very long header"], [["x"]], width=5) == "a very long header\n------------------\nx"


def test_only_a_terminal_has_a_width_a_table_is_fitted_to(monkeypatch):
    import sys

    from autotune.cli.common import terminal_width

    assert terminal_width() is None  # pytest's capture: no terminal
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setenv("COLUMNS", "72")
    assert terminal_width() == 72


def test_a_trial_whose_worker_process_died_is_one_line_saying_what_to_check(tmp_path):
    """A trial killed by the out-of-memory killer (or kill -9) was Ray's paragraph of causes, some of them Ray's own
    (`ray stop --force`, resource isolation), as the summary's line and `SearchFailed`'s. A recipe's os._exit(3) was
    called a kill or a crash too, and nothing said where a segfault's stack could be seen (error.txt holds none)."""
    from ray.exceptions import ActorDiedError

    from autotune.engine.trial_errors import error_text, trial_error

    ray_text = ("The actor died unexpectedly before finishing this task.\n\tclass_name: ImplicitFunc\n\tpid: 31559\n"
                "The actor is dead because its worker process has died. Worker exit type: SYSTEM_ERROR Worker exit "
                "detail: Worker unexpectedly exits with a connection error code 2. End of file. Some common causes "
                "include: (1) the process was killed by the OOM killer due to high memory usage, (2) ray stop --force "
                "was called, or (3) the worker crashed unexpectedly due to SIGSEGV or another unexpected error.")
    said = ("ActorDiedError: the trial's worker process died (Worker unexpectedly exits with a connection error code "
            "2. End of file): killed by the system when memory ran out (dmesg names an out-of-memory kill; lower "
            "train.batch_size, the model's size or search.max_concurrent) or by a signal, crashed in native code, or "
            "ended itself (os._exit); a search run with -v shows the worker's last output, a crash's stack in it")
    died = ActorDiedError()
    died.error_msg = ray_text
    assert str(died) == ray_text
    assert error_text(died) == said
    (tmp_path / "error.txt").write_text(f"Failure # 1 (occurred at 2026-12-07_05-14-00)\n{ray_text}\n")
    assert trial_error(_trial("a1", 1, None, pickled_error_file=None, error_file=str(tmp_path / "error.txt"))) == said


def test_a_trial_whose_worker_ended_itself_at_its_timeout_says_so_not_out_of_memory(tmp_path, caplog):
    """A trial held in native code past `search.trial_timeout` ends its worker (autotune.engine.trial_timeout), which
    Ray reports as any worker's death: the progress line, trials.csv and the summary sent the user to dmesg for an
    out-of-memory kill that never happened. The failure the worker left in the trial's folder is said instead."""
    import cloudpickle
    import pyarrow.fs
    from ray.exceptions import ActorDiedError
    from ray.tune import Result

    from autotune.engine.trial_errors import TIMED_OUT_FILE, result_error, trial_error

    died = ActorDiedError()
    died.error_msg = ("The actor is dead because its worker process has died. Worker exit type: SYSTEM_ERROR Worker "
                      "exit detail: Worker unexpectedly exits with a connection error code 2. End of file.")
    pickled = tmp_path / "error.pkl"
    pickled.write_bytes(cloudpickle.dumps(died))
    fs = pyarrow.fs.LocalFileSystem()
    trial = _trial("a1", 1, 0.5, pickled_error_file=str(pickled), error_file=None,
                   storage=SimpleNamespace(storage_filesystem=fs, trial_fs_path=str(tmp_path)))
    result = Result(metrics={}, checkpoint=None, error=died, path=str(tmp_path), _storage_filesystem=fs)
    assert "memory ran out" in trial_error(trial) and "memory ran out" in result_error(result)  # no timeout: as before
    timed_out = ("TrialTimeout: no report for 20s (in epoch 2); search.trial_timeout is 20s; held in native code 30s "
                 "more (hang.py, line 17): its worker process ended itself")
    (tmp_path / TIMED_OUT_FILE).write_text(f"{timed_out}\n\nWhere the trial's thread was held (most recent call "
                                           f"last):\n  File \"hang.py\", line 17, in train\n")
    assert trial_error(trial) == result_error(result) == timed_out
    caplog.set_level(logging.INFO, logger="autotune")
    Progress("val_accuracy", "max", 1, 0).on_trial_error(0, [], trial)
    assert caplog.messages == [f"[1/1] trial a1 failed: {timed_out} (its best before: val_accuracy=0.5000, the best "
                               "so far)"]
    assert result_error(Result(metrics={}, checkpoint=None, error=None, path=str(tmp_path))) == ""


def test_a_table_of_wide_and_combining_characters_lines_up_in_terminal_cells():
    """A run named in Chinese ('图像分类_試験', 7 characters, 13 terminal cells) pushed the next column 6 cells to
    the right of its header in `autotune ls runs`; an emoji takes two cells, an NFD accent none. Columns are measured
    in the cells a terminal draws, so every column starts under its header."""
    from autotune.engine.summary import format_table, text_width

    table = format_table(["run", "status"], [["图像分类_試験", "finished"], ["🐶", "done"], ["cafe\u0301", "done"],
                                             ["plain", "done"]])
    starts = {text_width(line[:line.rindex(" ") + 1]) for line in table.splitlines()}
    assert starts == {15}


def test_trials_csv_lists_the_parameters_in_the_space_s_order_and_integers_as_integers(tmp_path):
    """A space of choices of sections: trials.csv had the parameters in the order trials first sampled them (those of
    an option chosen late after `path` and the `m:` columns), and an integer parameter of an option, blank in the
    trials of the other options, written as 150.0. Now the order is `autotune check`'s, and 150 stays 150."""
    space = autotune.load_space(toy_space("cond", data="{choice: [{size: 100}, {size: {int: [50, 200, 50]}}]}",
                                          model="{choice: [{x: {uniform: [0.0, 1.0]}}, {y: {uniform: [0.0, 1.0]}}]}"))
    configs = [{"data": "0", "model": "1", "model[1].y": 0.25},
               {"data": "1", "data[1].size": 150, "model": "0", "model[0].x": 0.75}]
    grid = [SimpleNamespace(**_result(tmp_path, trial_id, 0.8).__dict__ | {"config": config})
            for trial_id, config in zip(STARTED, configs)]
    trials, _, _ = _trials_and_best(grid, space, set(), tracking=None)
    params = [column for column in trials if column.startswith("p:")]
    assert params == [f"p:{param.name}" for param in space.params]
    assert list(trials).index(params[-1]) < list(trials).index("path")
    assert trials.to_csv(index=False).splitlines()[2].split(",")[list(trials).index("p:data[1].size")] == "150"
    summary = format_summary(SearchResult("cond", tmp_path, ("val_accuracy",), ("max",), STARTED[0], {}, {},
                                          {"val_accuracy": 0.8}, trials))
    assert "<NA>" not in summary and " 150 " in summary


def test_the_summary_says_what_the_positions_of_a_choice_of_constants_stand_for():
    """`grad_clip: {choice: [null, 1.0]}` is labelled by position: the table showed `0` for no clipping, which reads
    as a clipping at 0. A line under the table says what each label stands for."""
    space = autotune.load_space("name: t\nrecipe: image_classification\nmodel: {arch: mlp, width: {choice: [16, 32]}}\n"
                                "train: {grad_clip: {choice: [null, 1.0]}}\n")
    trials = pd.DataFrame({"trial_id": ["t1"], "status": "TERMINATED", "epochs": 1, "stopped_early": False,
                           "val_accuracy": [0.8], "p:model.width": [16], "p:train.grad_clip": ["0"]})
    result = SearchResult("t", Path("runs/t"), ("val_accuracy",), ("max",), "t1", {}, {}, {"val_accuracy": 0.8}, trials,
                          positions=positions(space.params))
    assert "Options by position: train.grad_clip 0=null, 1=1.0" in format_summary(result).splitlines()
