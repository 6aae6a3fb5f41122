"""Real Ray Tune searches over the toy recipe: scheduling, conditionals, Optuna study, TensorBoard, export."""
from __future__ import annotations

import glob
import json
import logging
import math
import os
import re
from pathlib import Path

import optuna
import pytest

import autotune
import autotune.api
import autotune.cli
from autotune.api import SearchFailed
from autotune.errors import UserError
from autotune.report.run import load_run
from engine_helpers import TOY, hparams_of, history, toy_space as space

pytestmark = pytest.mark.usefixtures("local_ray")


CONDITIONAL = """
  choice:
    - {kind: a, x: {uniform: [0.0, 1.0]}, y: {uniform: [0.0, 1.0]}}
    - {kind: b, x: {uniform: [0.0, 1.0]}, extra: {uniform: [0.0, 1.0]}}"""


def test_conditional_search_end_to_end(in_tmp):
    result = autotune.fit(space(trials=8, model=CONDITIONAL))
    trials = result.trials
    assert len(trials) == 8 and (trials["status"] == "TERMINATED").all()
    assert trials["stopped_early"].any(), "ASHA stopped no trial early"
    assert (trials["epochs"] < 4).any() and (trials["epochs"] == 4).any()

    # Parameters of an option never appear in trials that did not choose it.
    for params_file in glob.glob("runs/toy/trial_*/params.json"):
        params = json.loads(Path(params_file).read_text())
        chosen = params["model"]
        other = "1" if chosen == "0" else "0"
        assert not any(key.startswith(f"model[{other}]") for key in params), params
        assert any(key.startswith(f"model[{chosen}]") for key in params), params
    for row in trials.to_dict("records"):
        other = "1" if row["p:model"] == "0" else "0"
        assert all(not isinstance(v, str) and math.isnan(v) for k, v in row.items() if k.startswith(f"p:model[{other}]"))

    # The export holds the best trial's config and reloads without the engine.
    card = json.loads(Path("models/toy/model.json").read_text())
    assert card["params"] == result.best_params and card["config"] == result.best_config
    assert card["trial_id"] == result.best_trial_id
    best_row = trials.set_index("trial_id").loc[result.best_trial_id]
    assert best_row["val_accuracy"] == pytest.approx(trials["val_accuracy"].max())
    toy = autotune.recipes.load(TOY)
    assert toy.evaluate("models/toy", None) == pytest.approx(card["test_metrics"])
    assert json.loads(Path("models/toy/toy_model.json").read_text())["config"] == result.best_config

    # One Optuna entry per trial, none left RUNNING: COMPLETE after its 4th epoch, PRUNED when stopped before.
    study = optuna.load_study(study_name="toy", storage=f"sqlite:///{result.run_dir}/study.db")
    assert len(study.trials) == 8
    assert sorted(t.state.name for t in study.trials) == sorted(
        "COMPLETE" if epochs == 4 else "PRUNED" for epochs in trials["epochs"])

    # TensorBoard: curves and hparams (the sampled values) for every trial, stopped ones included. Every trial's
    # file holds the same HParams experiment (TensorBoard shows the first it finds): both options' columns, the
    # searched metric first.
    events = glob.glob("runs/toy/trial_*/events.out.tfevents*")
    assert len(events) == 8
    experiments = []
    for event_file in events:
        found = hparams_of(event_file)
        assert "ray/tune/val_accuracy" in found["scalars"]
        assert found["hparams"] and "model" in found["hparams"]
        experiments.append(found["experiment"])
        curve = [(r["training_iteration"], pytest.approx(r["val_accuracy"])) for r in history(Path(event_file).parent)]
        assert found["points"]["ray/tune/val_accuracy"] == curve  # one point per epoch, as the trial reported it
    columns, metrics = experiments[0]
    assert all(experiment == experiments[0] for experiment in experiments)
    assert {"model", "model[0].x", "model[1].extra"} <= set(columns)
    assert metrics[:2] == ["best/val_accuracy", "ray/tune/val_accuracy"]

    assert (result.run_dir / "summary.json").exists() and (result.run_dir / "trials.csv").exists()


def test_seeded_search_proposes_the_same_first_configurations(in_tmp):
    def first_params(name: str) -> list[dict]:
        result = autotune.fit(space(name, trials=4, concurrent=1), export=False)
        study = optuna.load_study(study_name=name, storage=f"sqlite:///{result.run_dir}/study.db")
        return [t.params for t in sorted(study.trials, key=lambda t: t.number)[:3]]

    assert first_params("seeded_a") == first_params("seeded_b")


def test_a_failing_trial_does_not_stop_the_search(in_tmp):
    result = autotune.fit(space(trials=6, train="{epochs: 2, fail_if_x_above: 0.5}", search=", scheduler: fifo"))
    failed = result.trials[result.trials["status"] == "ERROR"]
    assert 0 < len(failed) < 6
    assert all("is too large for this toy" in e for e in failed["error"])
    assert result.model_dir is not None
    study = optuna.load_study(study_name="toy", storage=f"sqlite:///{result.run_dir}/study.db")
    states = [t.state for t in study.trials]
    assert optuna.trial.TrialState.RUNNING not in states
    assert states.count(optuna.trial.TrialState.FAIL) == len(failed)


def test_every_trial_failing_raises_the_first_real_error(in_tmp):
    with pytest.raises(SearchFailed, match=r"all 3 trials failed; trial \w+'s error: ValueError: x=.* too large"):
        autotune.fit(space(trials=3, train="{epochs: 2, fail_if_x_above: -1.0}"))


def test_trials_failing_with_different_errors_name_each_kind_and_show_the_most_common(in_tmp):
    """Trials with x above 0.5 run out of memory in epoch 1; the others fail in epoch 2 with a ValueError."""
    with pytest.raises(SearchFailed) as failed:
        autotune.fit(space(trials=5, train="{epochs: 2, fail_if_x_above: -1.0, fail_from: 2, oom_if_x_above: 0.5}",
                           search=", sampler: random, scheduler: fifo"))
    trials = load_run("runs/toy").trials
    oom = trials["error"].str.startswith("OutOfMemoryError")
    assert 0 < oom.sum() < 5 and trials[~oom]["error"].str.startswith("ValueError").all()
    most, fewer = ("OutOfMemoryError", "ValueError") if oom.sum() > 2 else ("ValueError", "OutOfMemoryError")
    shown = trials[oom if most == "OutOfMemoryError" else ~oom].iloc[0]  # the first of its kind to start
    assert str(failed.value) == (f"all 5 trials failed ({max(oom.sum(), 5 - oom.sum())} {most}, "
                                 f"{min(oom.sum(), 5 - oom.sum())} {fewer}); trial {shown['trial_id']}'s error: "
                                 f"{shown['error']}; its traceback: {Path(shown['path'], 'error.txt')}")


def test_a_search_whose_every_trial_failed_after_reporting_fails(in_tmp, capsys):
    """Every trial reported an epoch, then failed: the search fails with a trial's error and exports nothing, and
    its trials.csv and summary.json say so, for `autotune report`. One trial that ran to its end is enough for a
    search that succeeds."""
    with pytest.raises(SearchFailed, match=r"all 3 trials failed; trial \w+'s error: ValueError: x=.* too large"):
        autotune.fit(space(trials=3, train="{epochs: 2, fail_if_x_above: -1.0, fail_from: 2}",
                           search=", scheduler: fifo"))  # none stopped at epoch 1, before it fails
    assert not Path("models/toy").exists()
    run = load_run("runs/toy")
    assert run.summary["error"].startswith("all 3 trials failed") and run.summary["model_dir"] is None
    assert list(run.trials["status"]) == ["ERROR"] * 3 and run.trials["error"].str.contains("too large").all()
    assert autotune.cli.main(["report", "runs/toy", "--out", "report"]) == 0
    assert Path("report/report.html").is_file()
    result = autotune.fit(space("mixed", trials=2, model="{x: {choice: [0.3, 0.1], default: 0.3}, y: 0.6}",
                                train="{epochs: 2, fail_if_x_above: 0.2, fail_from: 2}",
                                search=", start: [{model.x: 0.1}], scheduler: fifo"))
    assert sorted(result.trials["status"]) == ["ERROR", "TERMINATED"] and Path("models/toy/model.json").is_file()
    capsys.readouterr()
    assert autotune.cli.main(["report", "runs", "--out", "report"]) == 0  # the newest run, naming the failed one
    assert "the newest of 2 runs in runs; the others: toy" in capsys.readouterr().out


def test_a_failed_trial_s_best_epoch_can_be_the_model_and_the_summary_says_so(in_tmp):
    """Every trial's reports are ranked: a trial that failed at epoch 3 after the best epoch of the search (epoch 2,
    0.75 against the other's 0.656) gives the model, and the summary's best line says that trial failed later."""
    result = autotune.fit(space("later", trials=2, model="{x: {choice: [0.3, 0.0], default: 0.0}, "
                                                         "y: {choice: [0.6, 0.2], default: 0.2}}",
                                train="{epochs: 3, fail_if_x_above: 0.2, fail_from: 3}",
                                search=", start: [{model.x: 0.3, model.y: 0.6}], scheduler: fifo"))
    best = result.trials.set_index("trial_id").loc[result.best_trial_id]
    assert best["status"] == "ERROR" and result.best_metrics["epoch"] == 2 and result.model_dir is not None
    assert (f"Best trial {result.best_trial_id}: epoch=2, val_accuracy=0.75 (the trial failed later: this is its "
            "best epoch before it did)") in str(result)


def test_an_existing_run_needs_resume_or_restart(in_tmp):
    autotune.fit(space(trials=2), export=False)
    with pytest.raises(UserError, match="pass resume=True to continue it or restart=True"):
        autotune.fit(space(trials=2), export=False)
    result = autotune.fit(space(trials=2), export=False, restart=True)
    assert len(result.trials) == 2


def test_a_full_disk_as_the_run_s_end_is_recorded_says_so_and_the_resume_records_it(in_tmp, monkeypatch):
    """A disk that filled up as summary.json was written left it cut short and ended the search in an OSError
    traceback; now the line says so with the resume, which records the run's end and keeps its model."""
    import errno

    from autotune.errors import StorageFull

    real = Path.write_text

    def full(self, text, *args, **kwargs):
        if self.name.startswith("summary.json"):
            real(self, text[:20], *args, **kwargs)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, text, *args, **kwargs)

    with monkeypatch.context() as patched, pytest.raises(
            StorageFull, match=r"^no room for the run's records \(summary\.json, trials\.csv\) in .+runs/toy: its "
                               r"disk is full \(.+ free\); free space, then resume it \(resume=True\)$"):
        patched.setattr(Path, "write_text", full)
        autotune.fit(space(trials=2))
    assert not Path("runs/toy/summary.json").exists()  # no part of one: the run's end is not recorded
    result = autotune.fit(space(trials=2), resume=True)
    assert len(result.trials) == 2 and result.promotion["promoted"]
    assert json.loads(Path("runs/toy/summary.json").read_text())["best_trial_id"] == result.best_trial_id


@pytest.mark.parametrize("promote", ["if_better"])
def test_promote_if_better_keeps_the_better_model(in_tmp, promote):
    good = "{x: 0.3, y: {uniform: [0.55, 0.65]}}"
    bad = "{x: {uniform: [0.9, 1.0]}, y: {uniform: [0.0, 0.1]}}"
    best = "{x: 0.3, y: 0.6}"
    first = autotune.fit(space("first", trials=2, model=good, export=f", promote: {promote}"))
    assert first.promotion["promoted"] and first.promotion["reason"] == "no canonical model yet"
    version_first = Path("models/toy").resolve()

    worse = autotune.fit(space("worse", trials=2, model=bad, export=f", promote: {promote}"))
    assert not worse.promotion["promoted"]
    assert "not better than" in worse.promotion["reason"]
    assert Path("models/toy").resolve() == version_first
    assert json.loads(Path("models/toy/model.json").read_text())["name"] == "first"

    better = autotune.fit(space("better", trials=1, model=best, export=f", promote: {promote}"))
    assert better.promotion["promoted"], better.promotion
    assert better.promotion["new"] > better.promotion["current"]
    assert json.loads(Path("models/toy/model.json").read_text())["name"] == "better"


def test_multi_objective_reports_a_pareto_front(in_tmp):
    text = space("pareto", trials=6, search=", sampler: nsga2, scheduler: fifo").replace(
        "metric: val_accuracy, mode: max", "metric: [val_accuracy, val_loss], mode: [max, min]"
    )
    result = autotune.fit(text)
    assert result.pareto and all(r["trial_id"] in set(result.trials["trial_id"]) for r in result.pareto)
    card = json.loads(Path("models/toy/model.json").read_text())
    assert [r["trial_id"] for r in card["pareto"]] == [r["trial_id"] for r in result.pareto]


def test_each_trial_of_several_objectives_is_one_epoch_never_a_mix(in_tmp):
    """The toy's val_loss is 1 - val_accuracy, and its accuracy peaks at epoch 1 here: the best accuracy and the
    largest loss are two epochs, and a row of the best of each would be a point no epoch reached."""
    text = space("mixed", trials=3, train="{epochs: 3, peak_epoch: 1}", search=", scheduler: fifo").replace(
        "metric: val_accuracy, mode: max", "metric: [val_accuracy, val_loss], mode: [max, max]")
    result = autotune.fit(text)
    for row in [*result.trials.to_dict("records"), *result.pareto]:
        assert row["val_accuracy"] + row["val_loss"] == pytest.approx(1.0), row  # one epoch's pair
        assert row["val_accuracy"] == pytest.approx(max(r["val_accuracy"] for r in history(row["path"])))


def test_cli_run_prints_progress_and_a_summary(in_tmp, capsys, monkeypatch):
    from autotune.cli import main

    Path("toy.yaml").write_text(space("cli", trials=4))
    logger = logging.getLogger("autotune")
    before = logger.level, logger.propagate, list(logger.handlers)
    assert main(["run", "toy.yaml"]) == 0
    assert (logger.level, logger.propagate, list(logger.handlers)) == before  # an in-process caller's logging
    out = capsys.readouterr().out
    assert "Searching 'cli': 4 trials" in out
    assert "[4/4] trial" in out
    assert "trial     val_accuracy  epochs  status" in out
    assert "Model:" in out and "TensorBoard: tensorboard --logdir" in out

    def not_loaded(*args):
        raise AssertionError("the data is loaded after the run's check")

    monkeypatch.setattr(autotune.api, "_DataLoads", not_loaded)
    assert main(["run", "toy.yaml"]) == 2  # refused before the data loads: it does not say it is searching
    out, err = capsys.readouterr()
    assert "a run named 'cli' already exists" in err and "Searching" not in out + err
    assert main(["run", "toy.yaml", "--set", "name=other", "--resume"]) == 2
    assert "there is no run to resume at" in capsys.readouterr().err and not Path("runs/other").exists()


@pytest.mark.parametrize("change, message", [
    (("trials: 6", "trials: 0"), "bad.yaml:"),
    (("seed: 0", "seed: 0, scheduler: {asha: {grace_period: 5}}"), "grace_period is 5 but a trial runs at most 4"),
])
def test_cli_run_rejects_a_bad_space_before_trials_start(in_tmp, capsys, change, message):
    from autotune.cli import main

    Path("bad.yaml").write_text(space("bad").replace(*change))
    assert main(["run", "bad.yaml"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not list(Path().glob("runs/bad/trial_*"))


def test_a_reached_target_stops_the_whole_search(in_tmp):
    result = autotune.fit(space("target", trials=20, search=", stop: {val_accuracy: 0.3}"))
    assert len(result.trials) < 20 and not result.interrupted
    assert result.trials["val_accuracy"].max() >= 0.3 and result.model_dir is not None
    (by,) = [t for t in result.trials["trial_id"] if f"trial {t} reached" in result.ended]
    assert result.ended == f"trial {by} reached the stop target (val_accuracy >= 0.3)"
    assert f"\nEnded early: {result.ended}\n" in str(result)
    reached = result.trials.set_index("trial_id").loc[by]  # it ended the search: not "stopped early", as ASHA's are
    assert reached["epochs"] < 4 and not reached["stopped_early"], reached
    assert re.search(rf"^{by} +[\d.]+ +{reached['epochs']} +done ", str(result), re.M), str(result)
    assert json.loads((result.run_dir / "summary.json").read_text())["ended"] == result.ended


def test_a_target_reached_when_every_trial_had_started_still_ends_the_search_early(in_tmp):
    """Every trial started at once (trials <= trials at once): the one that reached the target cut the others short,
    and the summary said nothing of it (a Ray Tune walk): it says so as when trials were still to come."""
    result = autotune.fit(space("all-started", trials=2, concurrent=2, train="{epochs: 4, sleep: 0.3}",
                                search=", scheduler: fifo, stop: {val_accuracy: 0.5}, "
                                       "start: [{model.x: 0.3, model.y: 0.6}]"), export=False)
    assert result.ended is not None and result.ended.endswith("reached the stop target (val_accuracy >= 0.5)"), \
        result.ended
    assert f"\nEnded early: {result.ended}\n" in str(result)


def test_sizes_given_for_a_ray_the_process_runs_already_are_said_not_to_apply(in_tmp, caplog):
    """A notebook's ray.init(num_cpus=1) before `fit(num_cpus=2)`: the search runs on that Ray as it is, and said
    nothing of the 2 CPUs it did not get."""
    with caplog.at_level(logging.WARNING, logger="autotune"):
        autotune.fit(space("sized", trials=1, train="{epochs: 1}"), export=False, num_cpus=1)
    assert "num_cpus=1 not applied: this process runs a Ray already" in caplog.text


def test_a_trial_ended_before_its_first_epoch_is_not_said_to_be_stopped_early():
    from autotune.engine.summary import status_word

    assert [status_word("TERMINATED", False, 0), status_word("TERMINATED", False, 3),
            status_word("TERMINATED", True, 1), status_word("ERROR", False, 0)] == \
        ["ended before epoch 1", "done", "stopped early", "error"]


def test_a_time_budget_spent_before_any_report_is_said_so_not_blamed_on_the_recipe():
    """A 6 s time budget ran out while the first trial's worker started: "no trial reported a metric; check that
    the recipe calls report() each epoch" sent the user to debug a recipe that was right."""
    import pandas as pd

    from autotune.api import _failure_text

    trials = pd.DataFrame({"trial_id": ["a"], "status": ["TERMINATED"], "epochs": [0], "error": [""]})
    assert _failure_text(trials, "val_accuracy", None, "the time budget of 6 s ran out") == (
        "the time budget of 6 s ran out before any trial finished an epoch: raise it (it counts the trials' start-up "
        "too, a few seconds each)")
    assert _failure_text(trials, "val_accuracy").startswith("no trial reported a metric")


def test_the_error_of_a_search_whose_every_trial_failed_names_the_file_of_its_traceback(tmp_path):
    """A cron log of such a night ended in the error's last line and the recipe's file name: the traceback, which
    says how the code got there, was in a trial folder the log did not name."""
    import pandas as pd

    from autotune.api import _failure_text

    (tmp_path / "trial_a").mkdir()
    (tmp_path / "trial_a" / "error.txt").write_text("Traceback (most recent call last): ...")
    trials = pd.DataFrame({"trial_id": ["a", "b"], "status": ["ERROR", "ERROR"], "epochs": [0, 0],
                           "error": ["ValueError: too wide (my_recipe.py, line 9)"] * 2,
                           "path": [str(tmp_path / "trial_a"), str(tmp_path / "trial_b")]})
    assert _failure_text(trials, "val_loss") == (
        f"all 2 trials failed; trial a's error: ValueError: too wide (my_recipe.py, line 9); its traceback: "
        f"{tmp_path / 'trial_a' / 'error.txt'}")
    assert _failure_text(trials.iloc[::-1], "val_loss").endswith("(my_recipe.py, line 9)")  # b's folder has none


@pytest.mark.parametrize("report, reached", [
    ({"val_accuracy": 0.9, "val_loss": 0.2}, True), ({"val_accuracy": 0.9, "val_loss": 0.4}, False),
    ({"val_accuracy": 0.8, "val_loss": 0.3}, True), ({"val_accuracy": float("nan"), "val_loss": 0.1}, False),
    ({"val_loss": 0.1}, False)])
def test_a_report_reaches_the_stop_target_when_it_reaches_every_metric_s(report, reached):
    from autotune.engine.result_grid import reaches

    assert reaches(report, {"val_accuracy": 0.8, "val_loss": 0.3}, {"val_accuracy": "max", "val_loss": "min"}) \
        is reached


def test_a_time_budget_ends_the_search_without_calling_it_interrupted(in_tmp):
    result = autotune.fit(space("budget", trials=50, train="{epochs: 3, sleep: 0.3}", search=", time_budget: 15s"))
    assert len(result.trials) < 50 and not result.interrupted and result.model_dir is not None
    assert result.ended == "the time budget of 15 s ran out"


def test_grid_sampler_runs_every_grid_point(in_tmp):
    text = space("grid", trials=6, model="{x: {grid: [0.1, 0.3, 0.5]}, y: {grid: [0.2, 0.6]}}",
                 search=", sampler: grid, scheduler: fifo")
    result = autotune.fit(text, export=False)
    points = sorted(zip(result.trials["p:model.x"], result.trials["p:model.y"]))
    assert points == sorted((x, y) for x in (0.1, 0.3, 0.5) for y in (0.2, 0.6))


@pytest.mark.parametrize("concurrent", ["null", 4])
def test_a_local_search_proposes_a_trial_only_when_one_can_start(in_tmp, concurrent):
    """`max_concurrent` unset, or above what fits, on the local Ray (2 CPUs, 1 a trial): a trial is proposed only
    when one has ended, so at most 2 are proposed and not ended. A third, queued, made Ray start a worker for it and
    kill that worker when the trial took the ended trial's worker instead: a worker start per trial
    (fits_at_once)."""
    result = autotune.fit(space(trials=6, concurrent=concurrent, train="{epochs: 2, sleep: 1.0}",
                                search=", scheduler: fifo, sampler: random"))
    study = optuna.load_study(study_name="toy", storage=f"sqlite:///{result.run_dir}/study.db")
    assert len(study.trials) == 6
    for trial in study.trials:
        running = [o.number for o in study.trials
                   if o.datetime_start < trial.datetime_start < o.datetime_complete]
        assert len(running) < 2, f"trial {trial.number} was proposed while {running} ran"


@pytest.mark.parametrize(("trial", "total", "expected"), [
    ({"cpu": 1, "gpu": 0}, {"CPU": 2.0}, 2),
    ({"cpu": 0.5, "gpu": 0}, {"CPU": 2.0}, 4),
    ({"cpu": 0.1, "gpu": 0}, {"CPU": 0.3}, 3),  # 0.3 / 0.1 is 2.999... in floating point
    ({"cpu": 1, "gpu": 0.25}, {"CPU": 16.0, "GPU": 1.0}, 4),
    ({"cpu": 4, "gpu": 0}, {"CPU": 16.0, "GPU": 1.0}, 4),
    ({"cpu": 3, "gpu": 0}, {"CPU": 2.0}, 1),
    ({"cpu": 0, "gpu": 0}, {"CPU": 2.0}, None),  # Ray runs any number of such trials at once
    ({"cpu": 1, "gpu": 0, "custom_resources": {"licence": 1}}, {"CPU": 8.0, "licence": 3.0}, 3),
    ({"cpu": 0, "gpu": 0, "custom_resources": {"licence": 0.5}}, {"CPU": 8.0, "licence": 1.0}, 2),
])
def test_fits_at_once_is_the_scarcest_resources_share(trial, total, expected):
    from autotune.engine.search import fits_at_once

    assert fits_at_once(trial, total) == expected


def test_a_resumed_search_is_limited_as_this_run_says_with_its_live_trials_kept():
    """`limited` wraps a searcher anew; Ray restores the saved wrapper state (the trials live at the save) into it,
    and this run's limit stays: more CPUs, or none on a cluster (no limit: the bare searcher)."""
    from ray.tune.search import Searcher

    from autotune.engine.ray_internals import limited

    base = Searcher(metric="val_accuracy", mode="max")
    first = limited(base, 1)
    first.live_trials.add("t1")
    saved = first.get_state()

    resumed = limited(first, 3)
    resumed.set_state(saved)
    assert (resumed.searcher, resumed.max_concurrent, resumed.live_trials) == (base, 3, {"t1"})
    assert limited(first, None) is base


def test_ray_s_log_of_failed_trials_is_shown_with_verbose_only(monkeypatch):
    """Ray Tune logs each failed trial with its traceback, and the trials that did not complete, as TuneController
    starts (TUNE_PRINT_ALL_TRIAL_ERRORS) and ends (the ray.tune.tune logger): shown only with -v; a value the
    environment gives is kept; nothing stays changed after the search."""
    from autotune.engine.ray_internals import trial_errors_shown

    monkeypatch.delenv("TUNE_PRINT_ALL_TRIAL_ERRORS", raising=False)
    monkeypatch.delenv("RAY_IGNORE_UNHANDLED_ERRORS", raising=False)
    tune_log = logging.getLogger("ray.tune.tune")
    record = tune_log.makeRecord("ray.tune.tune", logging.ERROR, "tune.py", 1, "Trials did not complete: %s",
                                 (["t1"],), None)
    other = tune_log.makeRecord("ray.tune.tune", logging.ERROR, "tune.py", 1, "something else", (), None)
    for shown, printed in ((False, "0"), (True, "1")):
        with trial_errors_shown(shown):
            assert os.environ["TUNE_PRINT_ALL_TRIAL_ERRORS"] == printed
            assert ("RAY_IGNORE_UNHANDLED_ERRORS" in os.environ) is not shown  # a stopped trial's unread error
            assert bool(tune_log.filter(record)) is shown and tune_log.filter(other)
        assert "TUNE_PRINT_ALL_TRIAL_ERRORS" not in os.environ and bool(tune_log.filter(record))
        assert "RAY_IGNORE_UNHANDLED_ERRORS" not in os.environ
    monkeypatch.setenv("TUNE_PRINT_ALL_TRIAL_ERRORS", "1")
    with trial_errors_shown(False):
        assert os.environ["TUNE_PRINT_ALL_TRIAL_ERRORS"] == "1"


@pytest.mark.parametrize("options, words", [
    ({"num_cpus": 0}, "num_cpus must be a whole number >= 1 (or None: those this process may run on), got 0"),
    ({"num_cpus": 1.5}, "num_cpus must be a whole number >= 1 (or None: those this process may run on), got 1.5"),
    ({"num_gpus": -1}, "num_gpus must be a finite number >= 0 (or None: what Ray finds), got -1"),
    ({"num_gpus": float("nan")}, "num_gpus must be a finite number >= 0"),
    ({"resume": True, "restart": True}, "resume and restart together"),
])
def test_fit_refuses_what_the_command_line_refuses(in_tmp, monkeypatch, options, words):
    """From Python, `num_cpus=0` ran a search with all CPUs and `resume` with `restart` deleted the run."""
    monkeypatch.setattr(autotune.engine.search, "run_search", lambda *a, **k: pytest.fail("the search started"))
    with pytest.raises(UserError, match=re.escape(words)):
        autotune.fit(space(trials=2), **options)
    assert not Path("runs").exists()


def test_ctrl_c_in_python_returns_the_interrupted_result_and_gives_ctrl_c_back(in_tmp, caplog):
    """A script's Ctrl-C while `fit` searches: `fit` returns the result, interrupted, and logs the call that
    continues it, which does. After a search that ended without a Ctrl-C, the process's SIGINT handler is its own
    again (Ray Tune's, left in place, swallowed the next Ctrl-C of a notebook or script)."""
    import signal
    import threading

    def mine(number, frame):  # the script's own handler
        raise KeyboardInterrupt

    done = threading.Event()  # the test ended: no SIGINT may reach a later test of this process

    def interrupt_after_a_report() -> None:
        while not (in_tmp / "reports").exists():
            if done.wait(0.05):
                return
        os.kill(os.getpid(), signal.SIGINT)

    previous = signal.signal(signal.SIGINT, mine)
    text = space(trials=4, train=f"{{epochs: 4, sleep: 0.5, log_reports_in: '{in_tmp}'}}")
    try:
        threading.Thread(target=interrupt_after_a_report, daemon=True).start()
        result = autotune.fit(text, export=False)
        assert result.interrupted and (result.trials["status"] == "INTERRUPTED").any(), result.trials
        from tensorboardX.event_file_writer import _EventLoggerThread  # the interrupted trials' event writers' threads

        assert not [t for t in threading.enumerate() if isinstance(t, _EventLoggerThread)], threading.enumerate()
        assert "autotune.fit(<the same space and arguments>, resume=True) continues it" in caplog.text
        resumed = autotune.fit(text, export=False, resume=True)  # to its end, with no Ctrl-C
        assert not resumed.interrupted and len(resumed.trials) == 4
        assert signal.getsignal(signal.SIGINT) is mine
    finally:
        done.set()
        signal.signal(signal.SIGINT, previous)


def test_a_trial_s_seconds_are_its_recipe_s_not_its_worker_s_start_up(in_tmp):
    """`seconds` in trials.csv counts from the recipe's start: a worker's set-up before it (imports; here a
    `custom:` file that takes 3 s to import), which only the first trial of each worker pays, is not the trial's."""
    Path("slow_import.py").write_text("import time\n\ntime.sleep(3)\n")
    result = autotune.fit("custom: slow_import.py\n" + space("timed", trials=1, train="{epochs: 2, sleep: 0.3}"),
                          export=False)
    seconds = float(result.trials["seconds"].iloc[0])
    assert 0.6 <= seconds < 2.5, seconds


def test_a_trial_silent_for_the_trial_timeout_fails_and_frees_its_slot(in_tmp):
    """A trial that hung (a loop that never ends an epoch) held its slot for good, the search waiting on it: with
    `search.trial_timeout` it fails, its error saying how long it was silent, in which epoch, and where its code
    was; the timeout counts from each report, so slower trials that report in time are not cut."""
    gate = in_tmp / "hold"
    gate.write_text("")  # the toy holds its first epoch while this file exists (up to 120 s)
    with pytest.raises(SearchFailed) as failed:
        autotune.fit(space(trials=1, train=f"{{epochs: 2, hold_while_exists: {str(gate)!r}}}",
                           search=", scheduler: fifo, trial_timeout: 3s"), export=False)
    assert re.search(r"all 1 trials failed; trial \w+'s error: TrialTimeout: no report for [34]s \(in epoch 1\); "
                     r"search.trial_timeout is 3s \(toy_recipe\.py, line \d+\); its traceback: \S+error\.txt$",
                     str(failed.value)), str(failed.value)
    gate.unlink()
    result = autotune.fit(space("slow", trials=1, train="{epochs: 3, sleep: 1.2}",
                                search=", scheduler: fifo, trial_timeout: 2s"), export=False)
    assert list(result.trials["status"]) == ["TERMINATED"] and list(result.trials["epochs"]) == [3]
