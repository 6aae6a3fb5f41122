"""A trial that continued from a checkpoint is read from the run that went on: its result files keep the abandoned
run's rows of the retrained epochs before the rerun's (epochs 1..6, then 4..9), and no reader counts them."""
from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

import autotune
from autotune.api import _trials_frame
from autotune.engine.history import final_run
from autotune.engine.result import SearchResult
from autotune.engine.result_grid import best_checkpoint, trial_rows
from autotune.engine.summary import format_summary
from autotune.engine.stoppers import TargetStopper

TOY = Path(__file__).with_name("toy_recipe.py")
# epochs 1..6, the trial continued from its checkpoint of epoch 3: epochs 4..9 again. The abandoned run's epoch 5
# (0.99) is the best row in the file, but no model kept it; the run that went on peaks at 0.90.
ROWS = [{"training_iteration": e, "epoch": e, "val_accuracy": v} for e, v in
        [(1, 0.5), (2, 0.6), (3, 0.7), (4, 0.8), (5, 0.99), (6, 0.7), (4, 0.75), (5, 0.85), (6, 0.9), (7, 0.88),
         (8, 0.89), (9, 0.86)]]


def _space():
    return autotune.load_space(f"name: h\nrecipe: {TOY}\nmodel: {{x: {{uniform: [0, 1]}}}}\ntrain: {{epochs: 9}}\n"
                               "search: {scheduler: fifo}\n")


def _result() -> SimpleNamespace:
    return SimpleNamespace(config={"model.x": 0.5}, metrics={"trial_id": "t1", "training_iteration": 9},
                           metrics_dataframe=pd.DataFrame(ROWS), error=None, path="/runs/h/trial_t1",
                           best_checkpoints=[])


def test_each_epoch_once_from_the_run_that_went_on():
    kept = final_run(pd.DataFrame(ROWS))
    assert kept["epoch"].tolist() == list(range(1, 10))
    assert kept["val_accuracy"].tolist() == [0.5, 0.6, 0.7, 0.75, 0.85, 0.9, 0.88, 0.89, 0.86]
    unbroken = pd.DataFrame({"epoch": [1, 2, 3], "loss": [3.0, 2.0, 1.0]})
    assert final_run(unbroken).equals(unbroken)
    restarted = pd.DataFrame({"training_iteration": [1, 2, 1, 2, 3], "v": [1, 2, 3, 4, 5]})  # no checkpoint yet
    assert final_run(restarted)["v"].tolist() == [3, 4, 5]
    assert final_run(pd.DataFrame({"v": [1, 2]}))["v"].tolist() == [1, 2]  # no step column: as it is


def test_the_trials_table_and_the_best_report_skip_the_abandoned_rows():
    (row,) = trial_rows([_result()], _space())
    assert row["val_accuracy"] == pytest.approx(0.90) and row["epochs"] == 9
    _, checkpoint, metrics = best_checkpoint([_result()], _space())  # no checkpoint: the best report
    assert checkpoint is None and metrics["val_accuracy"] == pytest.approx(0.90)



def test_a_trial_s_row_holds_the_other_metrics_of_its_best_epoch_as_m_columns():
    """Every metric the recipe reported, of the epoch the row's value and checkpoint are of (of the run that went on,
    not the abandoned run's best row), in `m:` columns: a table of the trials for a paper needed each trial's result
    files, and autotune's reading of a retrained epoch, for any metric but the searched one. Ray's numbers and the
    configuration are not metrics."""
    rows = [{**row, "val_loss": 1 - row["val_accuracy"], "time_total_s": 3.0, "pid": 7, "config/model.x": 0.5}
            for row in ROWS]  # Ray's metrics_dataframe: the reports, and the trial's config flattened
    result = _result()
    result.metrics_dataframe = pd.DataFrame(rows)
    (row,) = trial_rows([result], _space())
    assert row["best_epoch"] == 6 and row["val_accuracy"] == pytest.approx(0.90)
    assert {k: v for k, v in row.items() if k.startswith("m:")} == {"m:epoch": 6.0,
                                                                   "m:val_loss": pytest.approx(0.10)}


def test_the_trackers_record_of_a_trial_s_epochs_holds_no_configuration_as_metrics():
    """Ray's metrics_dataframe holds the trial's configuration as `config/<key>` columns: the trackers' record of
    each epoch (`trial_records`, what MLflow and W&B are given of a trial the search did not report to them live)
    held `config/model.x` as a metric of every epoch."""
    from autotune.engine.track import trial_records

    result = _result()
    result.metrics_dataframe = pd.DataFrame([{**row, "config/model.x": 0.5} for row in ROWS])
    (record,) = trial_records([result], trial_rows([result], _space()), _space())
    assert {name for _, metrics in record.epochs for name in metrics} == {"epoch", "val_accuracy"}


def test_a_trial_s_best_report_is_ranked_by_its_metrics_columns_and_only_that_row_made_a_dict(monkeypatch):
    """The rows of thousands of trials are read after their search (and after its Ctrl-C, before the summary): a
    `DataFrame.to_dict` of each trial's reports, every column of every row, twice a trial, was 9 of the 13 s that
    1,500 trials' rows took. The best report is the same, the first of equal ones, in Python's types."""
    from autotune.engine.history import best_report

    frame = pd.DataFrame({"training_iteration": [1, 2, 3, 4], "val_accuracy": [0.5, 0.9, float("nan"), 0.9],
                          "val_loss": [0.7, 0.2, 0.1, 0.2], "done": [False, False, False, True],
                          "hostname": ["a", "a", "a", "a"]})
    monkeypatch.setattr(pd.DataFrame, "to_dict", lambda *args, **kwargs: pytest.fail("the whole frame made dicts"))
    best = best_report(frame, ["val_accuracy"], ["max"])
    assert best == {"training_iteration": 2, "val_accuracy": 0.9, "val_loss": 0.2, "done": False, "hostname": "a"}
    assert type(best["training_iteration"]) is int and type(best["done"]) is bool
    assert best_report(frame, ["val_accuracy", "val_loss"], ["max", "min"])["training_iteration"] == 2
    assert best_report(frame, ["val_loss"], ["min"])["training_iteration"] == 3
    assert best_report(frame, ["test_accuracy"], ["max"]) == {} and best_report(None, ["val_loss"], ["min"]) == {}


def test_a_loss_searched_is_a_trial_s_lowest_and_its_best_epoch_the_lowest_report():
    """`mode: min`: a trial's row gives its lowest val_loss over the epochs it kept, and the best report (a recipe
    without checkpoints) is the epoch of the lowest; a row gave the highest, the worst epoch, as its value."""
    space = autotune.load_space(f"name: h\nrecipe: {TOY}\nmodel: {{x: {{uniform: [0, 1]}}}}\ntrain: {{epochs: 9}}\n"
                                "search: {scheduler: fifo, metric: val_loss, mode: min}\n")
    losses = pd.DataFrame({"training_iteration": [1, 2, 3], "val_loss": [0.9, 0.3, 0.5]})
    result = SimpleNamespace(config={"model.x": 0.5}, metrics={"trial_id": "t1", "training_iteration": 3},
                             metrics_dataframe=losses, error=None, path="/runs/h/trial_t1", best_checkpoints=[])
    (row,) = trial_rows([result], space)
    assert row["val_loss"] == pytest.approx(0.3)
    _, checkpoint, metrics = best_checkpoint([result], space)
    assert checkpoint is None and metrics["training_iteration"] == 2


def test_no_checkpoint_of_a_finite_value_is_no_best_even_where_a_report_without_one_has_one():
    """A recipe that checkpoints, whose every checkpoint holds NaN: there is no model to export, rather than a
    report of no checkpoint (an export of nothing, or a crash on it)."""
    result = _result()
    result.best_checkpoints = [("checkpoint of epoch 1", {"training_iteration": 1, "val_accuracy": float("nan")})]
    assert best_checkpoint([result], _space()) is None

def test_a_target_is_reached_only_by_the_run_that_went_on():
    assert not TargetStopper({"val_accuracy": 0.95}, {"val_accuracy": "max"}).reached_in([_result()])
    assert TargetStopper({"val_accuracy": 0.9}, {"val_accuracy": "max"}).reached_in([_result()]) == "t1"


def test_the_report_reads_the_curve_of_the_run_that_went_on(tmp_path):
    from autotune.report.run import _histories

    trial = tmp_path / "trial_t1"
    trial.mkdir()
    (trial / "result.json").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    history = _histories(tmp_path, None, ["t1"])["t1"]
    assert history["val_accuracy"].tolist() == [0.5, 0.6, 0.7, 0.75, 0.85, 0.9, 0.88, 0.89, 0.86]
    pd.DataFrame(ROWS).to_csv(trial / "progress.csv", index=False)
    assert _histories(tmp_path, None, ["t1"])["t1"]["epoch"].tolist() == list(range(1, 10))



def test_a_line_cut_short_by_a_kill_leaves_the_report_the_epochs_before_it(tmp_path):
    """A trial killed while Ray wrote its result.json ends it mid-line; the report (where no progress.csv was
    written) and TensorBoard's best values read the epochs before the cut, one reader for both."""
    from autotune.engine.ray_internals import _final_reports
    from autotune.report.run import _histories

    trial = tmp_path / "trial_t1"
    trial.mkdir()
    cut = '{"training_iteration": 4, "val'
    (trial / "result.json").write_text("".join(json.dumps(r) + "\n" for r in ROWS[:3]) + cut)
    assert _histories(tmp_path, None, ["t1"])["t1"]["val_accuracy"].tolist() == [0.5, 0.6, 0.7]
    assert _final_reports(trial / "result.json", ("val_accuracy",)).to_dict("list") == {
        "training_iteration": [1, 2, 3], "val_accuracy": [0.5, 0.6, 0.7]}


class _Trial:
    """What Ray's TensorBoard logger reads of a trial."""

    def __init__(self, path: Path) -> None:
        self.local_path, self.trial_id, self.config, self.evaluated_params = str(path), "t1", {}, {"x": 0.5}
        self.latest_checkpoint_result = None

    def init_local_path(self) -> None:
        Path(self.local_path).mkdir(parents=True, exist_ok=True)


def test_tensorboard_shows_each_epoch_once_from_the_run_that_went_on(tmp_path):
    """Epochs 1..6, then the trial starts again from its checkpoint of epoch 3 and reports 4..9 into a new event
    file: TensorBoard reads 1..9 once each, the rerun's values from epoch 4."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from autotune.engine.ray_internals import TensorBoardLogger

    logger, trial = TensorBoardLogger((), ("val_accuracy",), ("max",)), _Trial(tmp_path / "trial_t1")
    for i, row in enumerate(ROWS):
        if i == 6:  # the restart, a second later at least: an event file is named after its second of creation
            time.sleep(1.1)
            trial.latest_checkpoint_result = SimpleNamespace(metrics={"training_iteration": 3})
            logger.log_trial_start(trial)
        elif i == 0:
            logger.log_trial_start(trial)
        logger.log_trial_result(i, trial, {"training_iteration": row["epoch"], "val_accuracy": row["val_accuracy"]})
    logger.log_trial_end(trial)
    events = EventAccumulator(str(tmp_path / "trial_t1"))
    events.Reload()
    scalars = events.Scalars("ray/tune/val_accuracy")
    assert [s.step for s in scalars] == list(range(1, 10))
    assert [round(s.value, 2) for s in scalars] == [0.5, 0.6, 0.7, 0.75, 0.85, 0.9, 0.88, 0.89, 0.86]


def test_a_trial_s_events_reach_its_file_as_they_are_added_by_no_thread_of_its_own(tmp_path):
    """tensorboardX's writer thread wrote a queued event when it got to it, and its flush passed over the queue: on a
    busy machine, the file a state save flushed lacked a running trial's last report or its HParams session (two
    tests read an empty file, one CI run in a few). Events go to the file as they are added, with no thread."""
    import threading

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from autotune.engine.ray_internals import TensorBoardLogger

    logger = TensorBoardLogger((), ("val_accuracy",), ("max",))
    before = threading.active_count()
    trial = _Trial(tmp_path / "trial_t1")
    logger.log_trial_start(trial)
    logger.log_trial_result(0, trial, {"training_iteration": 1, "val_accuracy": 0.5})
    assert threading.active_count() == before
    logger.get_state()
    events = EventAccumulator(str(tmp_path / "trial_t1"))
    events.Reload()
    assert [s.step for s in events.Scalars("ray/tune/val_accuracy")] == [1]
    logger.log_trial_end(trial)


def test_a_running_trial_s_scalars_reach_its_file_at_each_state_save_and_a_failed_one_ends_as_failed(tmp_path):
    """Ray saves the search's state (`get_state`) before it copies the run's files, at a Ctrl-C too: by then a
    running trial's file holds every epoch it reported (its writer writes every 120 s, and at the trial's end). A
    failed trial's HParams session ends as a failure, a finished one's as a success."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboardX.proto.api_pb2 import Status
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData

    from autotune.engine.ray_internals import TensorBoardLogger

    logger = TensorBoardLogger((), ("val_accuracy",), ("max",))
    running, failed = _Trial(tmp_path / "trial_t1"), _Trial(tmp_path / "trial_t2")
    for trial in (running, failed):
        logger.log_trial_start(trial)
        for i, row in enumerate(ROWS[:3]):
            logger.log_trial_result(i, trial, {"training_iteration": row["epoch"], "val_accuracy": row["val_accuracy"]})
    logger.get_state()
    events = EventAccumulator(str(tmp_path / "trial_t1"))
    events.Reload()
    assert [s.step for s in events.Scalars("ray/tune/val_accuracy")] == [1, 2, 3]

    def end_status(folder: Path) -> int:
        (status,) = [HParamsPluginData.FromString(v.metadata.plugin_data.content).session_end_info.status
                     for file in folder.glob("events.out.tfevents.*") for event in EventFileLoader(str(file)).Load()
                     for v in event.summary.value if v.tag == "_hparams_/session_end_info"]
        return status

    logger.log_trial_end(failed, failed=True)
    logger.log_trial_end(running)
    assert end_status(tmp_path / "trial_t2") == Status.STATUS_FAILURE
    assert end_status(tmp_path / "trial_t1") == Status.STATUS_SUCCESS


def test_the_hparams_table_has_a_column_for_every_option_s_parameter_and_the_searched_metric_first(tmp_path):
    """TensorBoard's HParams table shows the columns of the first experiment it finds, and the first five of its
    parameters and of its metrics: each trial's file holds the search's, every option's parameters (their labels
    or ranges) and the searched metric before the others, none of Ray's own numbers (`done`, ...)."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

    from autotune.engine.ray_internals import TensorBoardLogger
    from autotune.space.types import Choice, LogUniform, Param

    params = (Param("optimizer", Choice(({"name": "sgd"}, {"name": "adamw"}), ("sgd", "adamw"), conditional=True)),
              Param("optimizer[sgd].lr", LogUniform(0.01, 0.3), (("optimizer", "sgd"),)),
              Param("optimizer[adamw].lr", LogUniform(3e-4, 1e-2), (("optimizer", "adamw"),)),
              Param("width", Choice((16, 32), (16, 32))), Param("batch_norm", Choice((False, True), (False, True))))
    logger, trial = TensorBoardLogger(params, ("val_loss",), ("min",)), _Trial(tmp_path / "trial_t1")
    trial.evaluated_params = {"optimizer": "sgd", "optimizer[sgd].lr": 0.05, "width": 16, "batch_norm": True}
    logger.log_trial_start(trial)
    for epoch in (1, 2):
        logger.log_trial_result(epoch, trial, {
            "training_iteration": epoch, "epoch": epoch, "accuracy": 0.9, "val_loss": 0.3, "done": epoch == 2,
            "time_this_iter_s": 0.1, "iterations_since_restore": epoch, "should_checkpoint": True})
    logger.log_trial_end(trial)
    (file,) = (tmp_path / "trial_t1").glob("events.out.tfevents.*")
    (experiment,) = [plugin_data_pb2.HParamsPluginData.FromString(v.metadata.plugin_data.content).experiment
                     for event in EventFileLoader(str(file)).Load() for v in event.summary.value
                     if v.tag == "_hparams_/experiment"]
    columns = {info.name: info for info in experiment.hparam_infos}
    assert list(columns) == [param.name for param in params]
    assert list(columns["optimizer"].domain_discrete) == ["sgd", "adamw"]
    assert columns["optimizer"].type == api_pb2.DATA_TYPE_STRING
    assert (columns["optimizer[adamw].lr"].domain_interval.min_value,
            columns["optimizer[adamw].lr"].domain_interval.max_value) == (3e-4, 1e-2)
    assert list(columns["width"].domain_discrete) == [16, 32] and columns["width"].type == api_pb2.DATA_TYPE_FLOAT64
    assert columns["batch_norm"].type == api_pb2.DATA_TYPE_BOOL
    assert [info.name.tag for info in experiment.metric_infos] == [
        "best/val_loss", "ray/tune/val_loss", "ray/tune/accuracy", "ray/tune/epoch"]


def test_a_logger_restored_from_a_run_saved_before_it_knew_the_space_still_logs(tmp_path):
    """Ray restores the callbacks a run was started with (pickled in its tuner.pkl): a logger of a run started
    before the logger held the space's parameters and metrics has none of them. Such a resumed search logged no
    HParams and raised in the logger (AttributeError); it writes the trial's session and scalars, without the
    experiment, as it did before, and TensorBoard takes the columns from the sessions."""
    import pickle

    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    from autotune.engine.ray_internals import TensorBoardLogger

    logger = TensorBoardLogger((), ("val_loss",), ("min",))
    for name in ("_params", "_metrics", "_modes"):  # as a logger pickled before it had them
        del logger.__dict__[name]
    logger, trial = pickle.loads(pickle.dumps(logger)), _Trial(tmp_path / "trial_t1")
    trial.evaluated_params = {"width": 16}
    logger.log_trial_start(trial)
    logger.log_trial_result(1, trial, {"training_iteration": 1, "val_loss": 0.3, "done": True})
    logger.log_trial_end(trial)
    (file,) = (tmp_path / "trial_t1").glob("events.out.tfevents.*")
    tags = {v.tag for event in EventFileLoader(str(file)).Load() for v in event.summary.value}
    assert "_hparams_/experiment" not in tags and {"_hparams_/session_end_info", "ray/tune/val_loss"} <= tags


def test_the_hparams_table_shows_the_value_of_the_trial_s_best_epoch_beside_its_last(tmp_path):
    """The HParams table shows each metric's last value: the trial's file also holds its best epoch's, of the run
    that went on (0.90 at epoch 9's end, not the abandoned run's 0.99 nor the last epoch's 0.86), as the summary
    ranks it."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from autotune.engine.ray_internals import TensorBoardLogger

    logger, trial = TensorBoardLogger((), ("val_accuracy",), ("max",)), _Trial(tmp_path / "trial_t1")
    logger.log_trial_start(trial)
    for i, row in enumerate(ROWS):
        logger.log_trial_result(i, trial, {"training_iteration": row["epoch"], "val_accuracy": row["val_accuracy"]})
    (tmp_path / "trial_t1" / "result.json").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    logger.log_trial_end(trial)
    events = EventAccumulator(str(tmp_path / "trial_t1"))
    events.Reload()
    (best,) = events.Scalars("best/val_accuracy")
    (row,) = trial_rows([_result()], _space())  # the trials table's value of the same reports
    assert best.step == 9 and best.value == pytest.approx(row["val_accuracy"]) == pytest.approx(0.9)


def test_each_row_says_the_epoch_of_its_best_values():
    """trials.csv held a trial's best val_accuracy and the epochs it ran, but not the epoch of that value: the one
    `autotune export --trial` exports (a 50-epoch trial of a 1,000-trial search peaked at epoch 4)."""
    nan = float("nan")
    curves = {"peak": [0.5, 0.9, 0.7], "tie": [0.8, 0.8, 0.6], "none": [nan, nan, nan], "last": [0.1, 0.2, 0.3]}
    results = [SimpleNamespace(config={"model.x": 0.5}, metrics={"trial_id": name, "training_iteration": 3},
                               metrics_dataframe=pd.DataFrame({"training_iteration": [1, 2, 3], "val_accuracy": curve}),
                               error=None, path=f"/runs/h/trial_{name}", best_checkpoints=[])
               for name, curve in curves.items()]
    rows = trial_rows(results, _space())
    assert [row["best_epoch"] for row in rows] == [2, 1, None, 3]
    assert [row["val_accuracy"] for row in rows][:2] == [0.9, 0.8]
    written = _trials_frame(rows, _space()).to_csv(index=False).splitlines()  # as trials.csv
    assert [line.split(",")[3] for line in written] == ["best_epoch", "2", "1", "", "3"]
    assert [row["best_epoch"] for row in trial_rows([_result()], _space())] == [6]  # 0.90, of the run that went on


def test_a_trial_whose_metric_turned_nan_or_infinite_is_named_in_the_table_and_the_summary():
    """A custom recipe's NaN or infinite metric, up to the trial's last report (its training diverged), was a "-"
    or its value before in a row that said "done": the row holds the epoch it started at, and the summary lists it."""
    nan, inf = float("nan"), float("inf")
    curves = {"ok": [0.5, 0.6, 0.7], "late": [0.5, nan, nan], "never": [nan, inf, nan], "gap": [nan, 0.4, 0.6]}
    results = [SimpleNamespace(config={"model.x": 0.5}, metrics={"trial_id": name, "training_iteration": 3},
                               metrics_dataframe=pd.DataFrame({"training_iteration": [1, 2, 3], "val_accuracy": curve}),
                               error=None, path=f"/runs/h/trial_{name}", best_checkpoints=[])
               for name, curve in curves.items()]
    rows = trial_rows(results, _space())
    assert [row["not_finite_from"] for row in rows] == [None, 2, 1, None]  # an epoch without a value, then one: fine
    trials = pd.DataFrame(rows)
    result = SearchResult("h", Path("runs/h"), ("val_accuracy",), ("max",), "ok", {}, {}, {"val_accuracy": 0.7},
                          trials)
    summary = format_summary(result)
    assert ("Trials whose val_accuracy was NaN or infinite to their last report (did the training diverge? a recipe "
            "can raise autotune.errors.Diverged to end such a trial with its reason):\n"
            "  late: from epoch 2 (ranked by its epochs before)\n"
            "  never: from epoch 1 (no finite value: not ranked)\n") in summary, summary


def test_a_running_trial_is_in_the_hparams_table_and_one_that_failed_before_reporting_ends_as_failed(tmp_path):
    """Ray writes a trial's HParams session when it ends, and none for a trial that never reported: the table
    lacked the running trials (and, after a Ctrl-C, the interrupted ones) and every trial that failed at once. The
    session starts with the trial (not ended: TensorBoard's status "unknown"), and ends as the trial does."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboardX.proto.api_pb2 import Status
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData

    from autotune.engine.ray_internals import TensorBoardLogger

    def sessions(folder: Path) -> list:
        return [(v.tag, HParamsPluginData.FromString(v.metadata.plugin_data.content))
                for file in folder.glob("events.out.tfevents.*") for event in EventFileLoader(str(file)).Load()
                for v in event.summary.value if v.tag.startswith("_hparams_/session")]

    logger = TensorBoardLogger((), ("val_accuracy",), ("max",))
    running, failed = _Trial(tmp_path / "trial_t1"), _Trial(tmp_path / "trial_t2")
    for trial in (running, failed):
        logger.log_trial_start(trial)
    logger.log_trial_result(0, running, {"training_iteration": 1, "val_accuracy": 0.5})
    logger.get_state()  # Ray's state save: the files are written out
    ((tag, data),) = sessions(tmp_path / "trial_t1")
    assert tag == "_hparams_/session_start_info" and dict(data.session_start_info.hparams)["x"].number_value == 0.5
    logger.log_trial_end(failed, failed=True)
    assert [data.session_end_info.status for tag, data in sessions(tmp_path / "trial_t2")
            if tag == "_hparams_/session_end_info"] == [Status.STATUS_FAILURE]
