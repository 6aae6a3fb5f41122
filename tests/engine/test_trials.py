"""How trials run: schedulers, actor reuse, the data loaded once, storage, checkpoints kept, failures."""
from __future__ import annotations

import json
import logging
import os
import re
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
from ray.tune.schedulers import MedianStoppingRule

import autotune
from autotune.engine.hyperband import Hyperband
from autotune.engine.result import SearchResult
from autotune.errors import SearchFailed
from autotune.engine.schedulers import make_scheduler
from autotune.engine.summary import format_summary
from engine_helpers import history, run_histories, toy_space

pytestmark = pytest.mark.usefixtures("local_ray")


def _epochs(result) -> dict[str, list[int]]:
    """trial id -> the epochs it reported, from its own result.json."""
    return {t: [r["training_iteration"] for r in h] for t, h in run_histories(result.run_dir).items()}


def test_a_search_interrupted_before_any_epoch_is_summed_up_in_one_line():
    trials = pd.DataFrame({"trial_id": ["a1", "b2"], "status": ["RUNNING", "PENDING"], "epochs": [0, 0],
                           "stopped_early": [False, False], "val_accuracy": [float("nan")] * 2})
    result = SearchResult("toy", Path("runs/toy"), ("val_accuracy",), ("max",), None, {}, {}, {}, trials,
                          interrupted=True)
    assert str(result) == format_summary(result) == (
        "The search was interrupted before any trial finished an epoch (2 started). Run: runs/toy")
    # a notebook shows the summary (HTML-escaped: a path may hold < or &)
    result.run_dir = Path("runs/<toy>")
    assert result._repr_html_() == (
        "<pre>The search was interrupted before any trial finished an epoch (2 started). Run: runs/&lt;toy&gt;</pre>")


def test_fifo_runs_every_trial_for_every_epoch(in_tmp):
    result = autotune.fit(toy_space("fifo", trials=4, train="{epochs: 3}", search=", scheduler: fifo"), export=False)
    assert (result.trials["status"] == "TERMINATED").all() and not result.trials["stopped_early"].any()
    assert list(_epochs(result).values()) == [[1, 2, 3]] * 4
    assert "Stopped early" not in format_summary(result)


@pytest.mark.parametrize("scheduler, cls", [("hyperband", Hyperband), ("median", MedianStoppingRule)])
def test_schedulers_count_epochs_up_to_the_most_a_trial_runs(scheduler, cls):
    space = autotune.load_space(toy_space("sched", train="{epochs: {int: [2, 6]}}", search=f", scheduler: {scheduler}"))
    made = make_scheduler(space)
    assert isinstance(made, cls)
    if scheduler == "hyperband":
        assert made._max_t == 6  # the top of the searched epochs
        assert [b._time_attr for b in made.brackets[:-1]] == ["training_iteration"] * 2
        assert made.rungs() == [[1, 3], [3], []]
    else:
        assert made._time_attr == "training_iteration"
        assert made._grace_period == 1 and made._min_samples_required == 3


def test_hyperband_stops_weak_trials_early(in_tmp):
    text = toy_space("hyperband", trials=9, train="{epochs: 9}", concurrent=9,
                     search=", sampler: random, scheduler: {hyperband: {reduction_factor: 3}}")
    result = autotune.fit(text, export=False)
    trials = result.trials
    assert len(trials) == 9 and (trials["status"] == "TERMINATED").all(), trials["error"]
    assert trials["stopped_early"].any() and (trials["epochs"] == 9).any(), trials["epochs"].tolist()
    # A stopped trial was cut at a rung; asynchronous Hyperband pauses none: each trial ran once, without a gap.
    for epochs in _epochs(result).values():
        assert epochs == list(range(1, len(epochs) + 1))
    restarts = [len({r["t_start"] for r in reports}) - 1 for reports in run_histories(result.run_dir).values()]
    assert not any(restarts), restarts
    # the summary says where the stopped trials were stopped
    stops = trials.loc[trials["stopped_early"], "epochs"].value_counts().sort_index()
    line = format_summary(result).splitlines()[1]
    assert line.startswith("Stopped early after epoch "), line
    assert [(int(e), int(n)) for e, n in re.findall(r"epoch (\d+): (\d+)", line)] == list(stops.items()), line


def test_median_stopping_stops_trials_below_the_median(in_tmp):
    text = toy_space("median", trials=8, train="{epochs: 4}", concurrent=1,
                     search=", sampler: random, scheduler: median")
    result = autotune.fit(text, export=False)
    trials = result.trials
    assert (trials["status"] == "TERMINATED").all(), trials["error"]
    stopped = trials[trials["stopped_early"]]
    assert len(stopped), trials[["trial_id", "val_accuracy", "epochs"]]
    # Each stopped trial was below the median of the trials finished before it, at the epoch it stopped.
    histories = run_histories(result.run_dir)
    order = sorted(histories, key=lambda t: histories[t][0]["t_start"])  # one at a time: the order they ran
    for trial_id in stopped["trial_id"]:
        epoch = len(histories[trial_id])
        earlier = [histories[t] for t in order[: order.index(trial_id)]]
        means = sorted(sum(r["val_accuracy"] for r in h[:epoch]) / epoch for h in earlier if len(h) >= epoch)
        best = max(r["val_accuracy"] for r in histories[trial_id])
        assert len(means) >= 3 and best < means[len(means) // 2] + 1e-9, (trial_id, best, means)


def test_trials_reuse_one_worker_process(in_tmp):
    text = toy_space("reuse", trials=4, train="{epochs: 2}", concurrent=1, search=", scheduler: fifo")
    result = autotune.fit(text, export=False)
    pids = {r["pid"] for h in run_histories(result.run_dir).values() for r in h}
    assert len(run_histories(result.run_dir)) == 4
    assert len(pids) == 1 and os.getpid() not in pids, pids


def test_the_data_is_loaded_once_and_shared_with_every_trial(in_tmp):
    text = toy_space("shared", trials=4, data=f"{{size: 7, count_loads_in: {in_tmp}}}", train="{epochs: 2}",
                     search=", scheduler: fifo")
    result = autotune.fit(text, export=False)
    assert (in_tmp / "loads").read_text().split() == [str(os.getpid())]  # once, in the driver
    reports = [r for h in run_histories(result.run_dir).values() for r in h]
    assert len(reports) == 8 and all(r["data_given"] == 1.0 and r["data_size"] == 7 for r in reports)


def test_a_searched_loading_key_makes_each_trial_load_its_own_data(in_tmp, caplog):
    text = toy_space("own_data", trials=3, data=f"{{size: {{int: [1, 50]}}, count_loads_in: {in_tmp}}}",
                     train="{epochs: 1}", search=", scheduler: fifo")
    with caplog.at_level(logging.WARNING, logger="autotune"):
        result = autotune.fit(text, export=False)
    assert "data.size is searched: each trial loads its own data" in caplog.text
    loads = (in_tmp / "loads").read_text().split()
    assert len(loads) == 1 + 3 and loads.count(str(os.getpid())) == 1
    for row in result.trials.to_dict("records"):
        (report,) = history(row["path"])
        assert report["data_given"] == 0.0 and report["data_size"] == row["p:data.size"]


def test_the_default_storage_is_runs_name_in_the_working_directory(in_tmp):
    result = autotune.fit(toy_space("where", trials=2, train="{epochs: 1}"), export=False)
    assert result.run_dir == in_tmp / "runs" / "where"
    assert all(Path(p).parent == result.run_dir for p in result.trials["path"])
    assert (result.run_dir / "study.db").is_file() and (result.run_dir / "tuner.pkl").is_file()


def test_each_trial_keeps_its_best_checkpoints_and_the_latest(in_tmp):
    # The accuracy peaks at epoch 2 then falls: the best two are epochs 2 and 3, the latest is epoch 4 (with
    # checkpoint_every: 1 every epoch keeps one, but the last: nothing runs after it to resume).
    text = toy_space("keep", trials=3, train="{epochs: 5, peak_epoch: 2}",
                     search=", scheduler: fifo, keep_checkpoints: 2, checkpoint_every: 1")
    result = autotune.fit(text)
    for trial_id, reports in run_histories(result.run_dir).items():
        kept = sorted(Path(result.run_dir, f"trial_{trial_id}").glob("checkpoint_*"))
        epochs = {json.loads((c / "state.json").read_text())["epoch"] for c in kept}
        ranked = sorted(reports, key=lambda r: r["val_accuracy"], reverse=True)
        assert epochs == {ranked[0]["epoch"], ranked[1]["epoch"], reports[-2]["epoch"]} == {2, 3, 4}
        assert len(kept) == 3
    # The export is the best checkpointed epoch, not the latest.
    assert json.loads(Path("models/toy/toy_model.json").read_text())["epoch"] == 2


OOM_HINT = "out of GPU memory: lower train.batch_size, or raise search.resources.gpu so fewer trials share a GPU"


def test_a_trial_out_of_cuda_memory_ends_alone_and_the_summary_says_why(in_tmp):
    text = toy_space("oom", trials=6, train="{epochs: 2, oom_if_x_above: 0.5}",
                     search=", sampler: random, scheduler: fifo")
    result = autotune.fit(text)
    trials = result.trials
    failed, done = trials[trials["status"] == "ERROR"], trials[trials["status"] == "TERMINATED"]
    assert len(failed) and len(done) and len(failed) + len(done) == 6
    assert (failed["p:model.x"] > 0.5).all() and (done["p:model.x"] <= 0.5).all() and (done["epochs"] == 2).all()
    assert all(e.startswith("OutOfMemoryError: CUDA out of memory.") for e in failed["error"]), failed["error"]
    assert result.model_dir is not None

    summary = format_summary(result).splitlines()
    assert summary[0].endswith(f" {len(failed)} failed)"), summary[0]
    listed = summary[summary.index("Failed trials:") + 1:][: len(failed)]
    assert sorted(listed) == sorted(f"  {r['trial_id']}: {r['error']} ({OOM_HINT})" for r in failed.to_dict("records"))

    study = optuna.load_study(study_name="oom", storage=f"sqlite:///{result.run_dir}/study.db")
    assert [t.state for t in study.trials].count(optuna.trial.TrialState.FAIL) == len(failed)


def test_a_trial_whose_worker_was_killed_fails_at_once_not_after_a_wait_for_its_node(in_tmp):
    """A trial's worker killed on a live node (the kernel's out-of-memory killer) held the driver, and so every
    other trial, 30 s per death while it waited to see whether the node was lost: 3 such trials made a search of 6
    that took 4.8 s take 97.5 s. Ray's error for such a death names its raylet's report, which the driver now reads
    as a live node."""
    from autotune.engine.ray_internals import _WORKER_DIED

    text = toy_space("killed", trials=6, train="{epochs: 2, killed_if_x_above: 0.6}",
                     search=", sampler: random, scheduler: fifo")
    result = autotune.fit(text, export=False)
    trials = result.trials
    failed, done = trials[trials["status"] == "ERROR"], trials[trials["status"] == "TERMINATED"]
    assert len(failed) >= 2 and len(done) and len(failed) + len(done) == 6, trials[["status", "p:model.x"]]
    assert (failed["p:model.x"] > 0.6).all() and (done["p:model.x"] <= 0.6).all()
    assert all(e.startswith("ActorDiedError: the trial's worker process died") for e in failed["error"])
    for path in failed["path"]:  # Ray's own text still says that the node's raylet reported the death
        assert _WORKER_DIED in (Path(path) / "error.txt").read_text()
    assert result.seconds < 25 * len(failed), result.seconds  # each death waited 30 s before


def test_a_recipe_that_exits_fails_its_trial_naming_its_line_not_as_a_dead_worker(in_tmp):
    """A training script turned into a recipe, its argparse still parsing the command line (the trial worker's):
    argparse's sys.exit(2) ended the worker, and the trial's error was "the trial's worker process died (Worker exits
    with an exit code 2): killed by the system when memory ran out ...", with no line of the recipe."""
    with pytest.raises(SearchFailed) as failed:
        autotune.fit(toy_space("exits", trials=1, train="{epochs: 2, parse_argv: true}"), export=False)
    said = str(failed.value)
    assert re.search(r"error: the recipe ended its process with sys.exit\(2\) instead of returning or raising "
                     r"\(argparse's parse_args\(\) does so .*\) \(toy_recipe\.py, line \d+\)", said), said
    assert "memory" not in said


def test_a_recipe_that_fails_alike_in_its_first_trials_stops_the_search(in_tmp):
    """A recipe broken whatever the configuration (a typo, argparse reading the worker's command line) failed every
    trial of the search, one after another: 20 trials of a recipe with a NameError took 55 s and printed the same
    error 20 times. A plain Optuna script stops at the first exception. The first 3 trials that fail alike before
    any report stop the search; errors that differ (they name the configuration) do not."""
    with pytest.raises(SearchFailed) as failed:
        autotune.fit(toy_space("alike", trials=8, train="{epochs: 2, parse_argv: true}"), export=False)
    said = str(failed.value)
    assert re.search(r"^\d of \d trials failed, and the search stopped: its first 3 trials failed before their first "
                     r"report with the same error, which the recipe raises whatever the configuration \(fix it, then "
                     r"start the search again with --restart\); the error: the recipe ended its process with "
                     r"sys.exit\(2\)", said), said
    ran = pd.read_csv("runs/alike/trials.csv")
    assert 3 <= len(ran) < 8 and (ran["status"] == "ERROR").sum() >= 3

    with pytest.raises(SearchFailed) as failed:  # "x=0.549 is too large for this toy": each trial's own error
        autotune.fit(toy_space("unlike", trials=4, train="{epochs: 2, fail_if_x_above: -1.0}"), export=False)
    assert str(failed.value).startswith("all 4 trials failed"), str(failed.value)


def test_first_trials_alike_are_a_broken_recipe_only_in_a_search_cut_short(monkeypatch):
    """A search resumed between its first trials' failures (a kill after the second) runs on: its restored stopper
    does not know the failures before the kill. Its first 3 trials' same error then failed a search whose later
    trials had finished, as one its recipe stopped; only a search that ended before its trial count, by no budget or
    target, was stopped so."""
    from types import SimpleNamespace

    from autotune.engine import stoppers

    monkeypatch.setattr(stoppers, "in_start_order", lambda grid, name: list(grid))
    failed = [SimpleNamespace(error=ValueError("no such file: data.csv"), metrics={}) for _ in range(3)]
    grid = [*failed, SimpleNamespace(error=None, metrics={"training_iteration": 2})]
    broken = stoppers.BrokenReports()
    assert broken.error_in(grid, "s", cut_short=False) is None
    said = broken.error_in(grid, "s", cut_short=True)
    assert said.startswith("the search stopped: its first 3 trials") and said.endswith(
        "the error: ValueError: no such file: data.csv"), said
    third = SimpleNamespace(error=ValueError("no such file: data.csv"), metrics={"training_iteration": 1})
    assert broken.error_in([*failed[:2], third], "s", cut_short=True) is None  # the third reported first


def test_a_recipe_s_exception_that_ray_cannot_carry_is_still_its_trial_s_error(in_tmp):
    """An exception whose __init__ takes two arguments failed its trial with Ray's TypeError of unpickling it
    (`__init__() missing 1 required positional argument`), one whose str() raises with that second error, and a
    KeyboardInterrupt as "Task: TaskID(...) was cancelled.": each is now the recipe's own exception and line."""
    raises = "{grid: ['', two_arguments, unprintable, keyboard_interrupt]}"
    result = autotune.fit(toy_space("uncarried", trials=4, model="{x: 0.5, y: 0.5}",
                                    train=f"{{epochs: 2, raises: {raises}}}",
                                    search=", sampler: grid, scheduler: fifo"), export=False)
    said = {"two_arguments": "_TwoArguments: 3 rows, 4 columns", "unprintable": "_Unprintable: <its str() raised "
            "RuntimeError>", "keyboard_interrupt": "KeyboardInterrupt: stopped by the recipe"}
    trials = result.trials
    failed = trials[trials["p:train.raises"] != ""]
    assert set(failed["p:train.raises"]) == set(said) and (failed["status"] == "ERROR").all(), trials
    for raised, error in zip(failed["p:train.raises"], failed["error"]):
        assert re.fullmatch(rf"{re.escape(said[raised])} \(toy_recipe\.py, line \d+\)", error), error


def test_an_environment_variable_a_trial_sets_is_gone_from_the_next_trial_of_its_worker(in_tmp):
    """A recipe that set an environment variable set it for every later trial its reused worker ran: which trials
    saw it depended on the order Ray gave them to workers."""
    result = autotune.fit(toy_space("env", trials=3, concurrent=1, train="{epochs: 1, set_env: true}",
                                    search=", sampler: random, scheduler: fifo"), export=False)
    reports = [r for h in run_histories(result.run_dir).values() for r in h]
    assert len(reports) == 3 and len({r["pid"] for r in reports}) == 1, reports  # one worker ran them all
    assert [r["env_was_set"] for r in reports] == [0, 0, 0]
    assert "AUTOTUNE_TOY_ENV" not in os.environ


def test_the_summary_lists_ten_failed_trials_and_counts_the_others():
    """A search of 1,000 trials where 200 diverged printed 200 "Failed trials" lines after its table."""
    ids = [f"f{i:03d}" for i in range(25)]
    trials = pd.DataFrame({"trial_id": ["ok", *ids], "status": ["TERMINATED", *["ERROR"] * 25],
                           "epochs": [3, *[1] * 25], "stopped_early": [False] * 26,
                           "val_accuracy": [0.9, *[0.1] * 25],
                           "error": ["", *[f"Diverged: non-finite training loss at epoch {i}" for i in range(25)]]})
    result = SearchResult("many", Path("runs/many"), ("val_accuracy",), ("max",), "ok", {}, {}, {"val_accuracy": 0.9},
                          trials)
    lines = format_summary(result).splitlines()
    listed = lines[lines.index("Failed trials:") + 1:][:11]
    assert listed == [f"  f{i:03d}: Diverged: non-finite training loss at epoch {i}" for i in range(10)] + [
        "  +15 more (trials.csv: status ERROR, their error in the error column)"]
    assert "25 failed)" in lines[0]


def test_the_summary_s_failed_trials_say_where_their_tracebacks_are(tmp_path):
    """The summary named each failed trial's error and the line of the recipe, but no file holding the traceback."""
    for trial in ("a", "b"):
        (tmp_path / f"trial_{trial}").mkdir()
    (tmp_path / "trial_b" / "error.txt").write_text("Traceback (most recent call last): ...")
    trials = pd.DataFrame({"trial_id": ["a", "b"], "status": ["ERROR", "ERROR"], "epochs": [1, 1],
                           "stopped_early": [False, False], "val_accuracy": [0.1, 0.2],
                           "error": ["ValueError: too wide (my_recipe.py, line 9)"] * 2,
                           "path": [str(tmp_path / "trial_a"), str(tmp_path / "trial_b")]})
    result = SearchResult("tb", tmp_path, ("val_accuracy",), ("max",), "b", {}, {}, {"val_accuracy": 0.2}, trials)
    lines = format_summary(result).splitlines()
    assert lines[lines.index("Failed trials:") + 3] == (
        f"  (each one's traceback: error.txt in its trial's folder, e.g. {tmp_path / 'trial_b' / 'error.txt'})")


def test_a_trial_whose_worker_ended_itself_at_its_timeout_points_to_where_it_was_held(tmp_path):
    """A trial held in native code past its `search.trial_timeout` ends its worker, and Ray's error.txt for it holds
    only Ray's guesses at why a worker died (an out-of-memory kill first), where the summary and the error of a
    search whose every trial failed sent the user: they name the file with the stack the trial was held at."""
    from autotune.engine.summary import traceback_file
    from autotune.engine.trial_errors import TIMED_OUT_FILE

    (tmp_path / "error.txt").write_text("ray.exceptions.ActorDiedError: ... Some common causes include: ...")
    (tmp_path / TIMED_OUT_FILE).write_text("")  # written at the trial's start: the worker did not end itself
    assert traceback_file(str(tmp_path)) == str(tmp_path / "error.txt")
    (tmp_path / TIMED_OUT_FILE).write_text("TrialTimeout: no report for 20s ...\n\nWhere the trial's thread was ...")
    assert traceback_file(str(tmp_path)) == str(tmp_path / TIMED_OUT_FILE)
    trials = pd.DataFrame({"trial_id": ["a"], "status": ["ERROR"], "epochs": [1], "stopped_early": [False],
                           "val_accuracy": [0.1], "error": ["TrialTimeout: no report for 20s ..."],
                           "path": [str(tmp_path)]})
    result = SearchResult("tb", tmp_path, ("val_accuracy",), ("max",), "a", {}, {}, {"val_accuracy": 0.1}, trials)
    assert f"  (each one's traceback: {TIMED_OUT_FILE} in its trial's folder, e.g. {tmp_path / TIMED_OUT_FILE})" in \
        format_summary(result).splitlines()


@pytest.mark.parametrize("error, hinted", [
    ("OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB", True),
    ("RuntimeError: CUDA error: out of memory", True),
    ("RuntimeError: MPS backend out of memory (MPS allocated: 1 GB)", True),
    ("OutOfMemoryError: Task was killed due to the node running low on memory.", False),  # Ray's host memory
    ("ValueError: x=0.700 is too large for this toy", False),
])
def test_only_gpu_memory_errors_get_the_gpu_memory_hint(error, hinted):
    from autotune.engine.summary import _hint

    assert (_hint(error) == f" ({OOM_HINT})") is hinted


def test_a_trial_ray_returns_without_its_config_gets_the_params_it_started_with(tmp_path):
    # a trial that failed before the search was killed is not rerun on resume, and Ray's ResultGrid gives it an
    # empty config: its params come from the params.json Ray wrote in its folder when it started
    from types import SimpleNamespace

    import pyarrow.fs

    from autotune.engine.result_grid import params_of

    (tmp_path / "params.json").write_text('{"model.x": 0.75, "train.epochs": 2}')
    local = pyarrow.fs.LocalFileSystem()
    assert params_of(SimpleNamespace(config={}, path=str(tmp_path), filesystem=local)) == {"model.x": 0.75,
                                                                                          "train.epochs": 2}
    assert params_of(SimpleNamespace(config={"model.x": 0.1}, path=str(tmp_path), filesystem=local)) == {
        "model.x": 0.1}
    assert params_of(SimpleNamespace(config={}, path=str(tmp_path / "gone"), filesystem=local)) == {}


def test_only_an_actor_error_on_a_node_the_cluster_declares_dead_is_a_lost_node(monkeypatch):
    # the trial's own exception, or its actor's crash on a node that stays alive, is the trial's failure
    import ray
    from ray.exceptions import ActorDiedError, ActorUnavailableError, RayTaskError

    from autotune.engine import ray_internals

    monkeypatch.setattr(ray_internals, "_NODE_DEATH_WAIT_S", 0.5)
    here = ray.get_runtime_context().get_node_id()
    gone = "ab" * 28  # a node id the cluster does not list (a node removed from its table)
    own = RayTaskError("train", "Traceback ...", ValueError("x is too large"))
    assert ray_internals.lost_node(ValueError("x"), gone) is None
    assert ray_internals.lost_node(own, gone) is None
    assert ray_internals.lost_node(ActorDiedError(), here) is None  # waited, and the node stayed alive
    assert ray_internals.lost_node(ActorDiedError(), gone) == gone
    assert ray_internals.lost_node(RayTaskError("train", "...", ActorDiedError()), gone) == gone
    named = ActorDiedError()
    named.error_msg = f"The actor died because its node has died. Node Id: {gone}"
    assert ray_internals.lost_node(named, None) == gone
    assert ray_internals.lost_node(ActorDiedError(), None) is None  # no node known

    # a worker process killed on a live node (out of memory, kill -9): its raylet reported it, so the driver does
    # not wait _NODE_DEATH_WAIT_S (30 s per death, every other trial held meanwhile) for a node loss
    monkeypatch.setattr(ray_internals, "_NODE_DEATH_WAIT_S", 30.0)
    died = ActorDiedError()
    died.error_msg = ("The actor died unexpectedly before finishing this task.\n\tpid: 1347\nThe actor is dead because "
                      "its worker process has died. Worker exit type: SYSTEM_ERROR Worker exit detail: Worker "
                      "unexpectedly exits with a connection error code 2. End of file.")
    started = time.monotonic()
    assert ray_internals.lost_node(died, here) is None and ray_internals.lost_node(died, gone) is None
    assert time.monotonic() - started < 5
    monkeypatch.setattr(ray_internals, "_NODE_DEATH_WAIT_S", 0.5)

    # a reused actor's next trial, which has reported nothing: the node is the actor's, from Ray's actor table
    @ray.remote(num_cpus=0)
    class Actor:
        def ping(self) -> int:
            return 1

    actor = Actor.remote()
    ray.get(actor.ping.remote())
    assert ray_internals.actor_node(actor._actor_id.hex()) == here
    unavailable = ActorUnavailableError("RpcError: Socket closed", actor._actor_id.binary())
    assert ray_internals.lost_node(unavailable, None) is None  # its node stayed alive
    placed = {actor._actor_id.hex(): gone}
    monkeypatch.setattr(ray_internals, "actor_node", placed.get)
    assert ray_internals.lost_node(unavailable, None) == gone
    ray.kill(actor)


@pytest.mark.parametrize("share, threads", [(1, 1), (0.5, 1), (2.5, 2)])
def test_a_trial_gives_torch_its_cpu_share_without_importing_it(monkeypatch, share, threads):
    """Where the recipe has imported torch, its threads are set at once; where not, OMP_NUM_THREADS tells torch at
    its import, and torch stays unimported (a recipe without torch never pays for it)."""
    import sys

    import torch

    from autotune.threads import trial_threads, use_threads

    monkeypatch.setenv("OMP_NUM_THREADS", "8")
    monkeypatch.delitem(sys.modules, "torch")
    use_threads(trial_threads(share))
    assert "torch" not in sys.modules and os.environ["OMP_NUM_THREADS"] == str(threads)

    monkeypatch.setitem(sys.modules, "torch", torch)
    before = torch.get_num_threads()
    try:
        use_threads(trial_threads(share))
        assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)


def test_a_trial_the_search_ended_as_failed_does_not_make_it_interrupted(monkeypatch):
    """A save of Ray's state from before a trial's failure (its node lost) still called it RUNNING: the search, its
    every trial ended, was reported interrupted, exported nothing and exited 130. A trial the saved state calls
    unfinished and the search did not end still makes it interrupted."""
    from types import SimpleNamespace

    import autotune.engine.search as search

    space = autotune.load_space(toy_space("ended", trials=1))
    failed = SimpleNamespace(error=RuntimeError("the actor is unavailable"), metrics={}, path="/runs/ended/trial_a")
    running = SimpleNamespace(error=None, metrics={"trial_id": "a"}, path="/runs/ended/trial_a")
    monkeypatch.setattr(search, "unfinished_trials", lambda where: {"a"})
    assert not search._interrupted(space, None, [failed], None)
    assert search._interrupted(space, None, [running], None)


def test_a_trial_s_id_is_its_folder_s():
    """A trial stopped before its first report was seen to carry another trial's id in its metrics: trials.csv
    then listed that id twice. The folder (trial_<id>) names it; the metrics only where there is no folder."""
    from types import SimpleNamespace

    from autotune.engine.result_grid import trial_id_of

    assert trial_id_of(SimpleNamespace(metrics={"trial_id": "c2d4bb9b"}, path="/runs/b/trial_2296ee40")) == "2296ee40"
    assert trial_id_of(SimpleNamespace(metrics={"trial_id": "c2d4bb9b"}, path=None)) == "c2d4bb9b"


def test_a_trial_hands_back_the_heap_that_the_trial_before_it_freed_first(monkeypatch):
    """Each trial's data was deserialized by a thread of its own in the reused worker, and freed into that thread's
    C heap, which the next trial's thread does not reuse: a worker grew by the data's size every trial (80 MiB a
    trial for a table of 400,000 rows: 500 to 860 MiB after 6 trials). A trial trims the heap before it trains."""
    from types import SimpleNamespace

    from autotune import recipes
    from autotune.engine import heap, trial
    from autotune.api import load_space
    from autotune.engine.checkpoints import CheckpointPolicy

    space = load_space(toy_space("trim", trials=1, train="{epochs: 1}"))
    events = []
    monkeypatch.setattr(heap, "_malloc_trim", lambda pad: events.append("trim"))
    recipe = SimpleNamespace(train=lambda config, report, **kw: events.append("train") or report({"val_accuracy": 1}))
    monkeypatch.setattr(recipes, "load", lambda *args: recipe)
    monkeypatch.setattr(trial.tune, "get_checkpoint", lambda: None)
    monkeypatch.setattr(trial.tune, "report", lambda metrics, **kw: events.append("report"))
    trial._trial(space.defaults()[0], space=space, data=None, full="full:test", registered=[],
                 policy=CheckpointPolicy(5, ("val_accuracy",), ("max",), "best-checkpoint:test"))
    assert events == ["trim", "train", "report"]


def test_an_epoch_s_time_leaves_out_the_wait_for_a_slow_driver(in_tmp, monkeypatch):
    """A trial waits in its report until the driver takes the result: a driver stopped with Ctrl-Z for a minute made
    the next epoch of every running trial a minute long (`time_this_iter_s` 41.2 of a 3 s epoch), and the trial's
    `seconds` in trials.csv and the report four times its training. Here the driver takes 2 s over the first result."""
    import time

    from autotune.engine.progress import Progress

    slow = Progress.on_trial_result

    def taking_its_time(self, iteration, trials, trial, result, **info):
        if result.get("training_iteration") == 1:
            time.sleep(2.0)
        slow(self, iteration, trials, trial, result, **info)

    monkeypatch.setattr(Progress, "on_trial_result", taking_its_time)
    result = autotune.fit(toy_space(trials=1, concurrent=1, train="{epochs: 3}", search=", scheduler: fifo"),
                          export=False)
    (reports,) = run_histories(result.run_dir).values()
    assert [r["training_iteration"] for r in reports] == [1, 2, 3]
    assert all(r["time_this_iter_s"] < 1.0 for r in reports), [r["time_this_iter_s"] for r in reports]
