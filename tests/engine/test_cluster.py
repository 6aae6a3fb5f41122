"""Cluster shapes on one machine: a 2-node Ray cluster, joining a running cluster with --address, and fractional
GPUs declared on a CPU-only machine."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import ray

import autotune
from autotune.engine.summary import format_summary
from engine_helpers import TOY, history, start_ray

SPACE = """
name: {name}
recipe: {toy}
model: {{x: {{uniform: [0.0, 1.0]}}, y: {{uniform: [0.0, 1.0]}}}}
train: {{epochs: 2, sleep: {sleep}}}
search: {{trials: {trials}, max_concurrent: {trials}, scheduler: fifo, sampler: random, seed: 0,
          resources: {resources}}}
export: {{dir: models/{name}}}
"""


@pytest.fixture
def two_node_cluster():
    import autotune.engine.search  # noqa: F401  (quiet Ray's environment first)
    import ray
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def _kill_the_worker_once_both_nodes_train(cluster, reports: Path, killed: dict) -> None:
    """Kill the worker node's raylet (SIGKILL) once two trials, one on each 1-CPU node, have reported 3 epochs (of
    10: the worker's trial trains on until it notices, about a second, and must not finish first). The toy logs an
    epoch before it reports it: a logged epoch 4 means that epoch 3's report reached the driver."""
    deadline = time.time() + 120
    while time.time() < deadline:
        last: dict[int, int] = {}
        for line in reports.read_text().splitlines() if reports.is_file() else []:
            pid, epoch = map(int, line.split())
            last[pid] = epoch
        if sum(4 <= epoch < 10 for epoch in last.values()) >= 2:
            (worker,) = cluster.worker_nodes
            worker.kill_raylet()
            killed["at"] = time.time()
            return
        time.sleep(0.05)


def test_a_lost_node_moves_its_trial_which_goes_on_from_its_checkpoint(two_node_cluster, in_tmp):
    # max_failures 0: a trial's own error would end it; a lost node is not the trial's error
    text = SPACE.format(name="lost", toy=TOY, sleep=0.6, trials=4, resources="{cpu: 1}").replace(
        "epochs: 2", f"epochs: 10, log_reports_in: '{in_tmp}'").replace(
        "max_concurrent: 4", "max_concurrent: 2, max_failures: 0, checkpoint_every: 2")
    killed: dict = {}
    watcher = threading.Thread(target=_kill_the_worker_once_both_nodes_train,
                               args=(two_node_cluster, in_tmp / "reports", killed), daemon=True)
    watcher.start()
    result = autotune.fit(text, progress_seconds=0)
    watcher.join()

    assert "at" in killed, "the worker node was never killed"
    assert len(result.trials) == 4 and (result.trials["status"] == "TERMINATED").all(), result.trials
    assert result.num_errors == 0
    (move,) = result.moved  # the one trial that ran on the worker node
    assert move["node_id"] in {n["NodeID"] for n in ray.nodes() if not n["Alive"]}
    # its last kept checkpoint: every 2 epochs, or at an epoch whose report beat the search's best so far
    assert 3 <= move["epoch"] < 10 and 2 <= move["checkpoint_epoch"] <= move["epoch"], move
    reports = history(Path("runs/lost") / f"trial_{move['trial_id']}")
    assert [r["epoch"] for r in reports][-1] == 10
    before = [r["epoch"] for r in reports if r["node_id"] == move["node_id"]]
    after = [r["epoch"] for r in reports if r["node_id"] == ray.get_runtime_context().get_node_id()]  # the head's
    assert before[0] == 1 and after[0] == move["checkpoint_epoch"] + 1 and after[-1] == 10, reports  # not from 1
    summary = json.loads(Path("runs/lost/summary.json").read_text())
    assert summary["moved"] == result.moved
    text = format_summary(result)
    assert "(0 stopped early, 0 failed, 1 moved)" in text
    assert (f"  {move['trial_id']}: node {move['node_id'][:8]} lost after epoch {move['epoch']}, went on from its "
            f"checkpoint of epoch {move['checkpoint_epoch']}") in text
    assert Path("models/lost/model.json").is_file()


@pytest.fixture
def one_declared_gpu():
    """A local Ray with 4 CPUs and 1 GPU declared: CPUs are never what limits the GPU tests below."""
    import autotune.engine.search  # noqa: F401
    import ray

    if ray.is_initialized():
        ray.shutdown()
    start_ray(num_cpus=4, num_gpus=1)
    yield
    ray.shutdown()


def test_trials_spread_over_two_nodes_and_export_completes(two_node_cluster, in_tmp):
    text = SPACE.format(name="cluster", toy=TOY, sleep=0.5, trials=4, resources="{cpu: 1}")
    result = autotune.fit(text)
    assert len(result.trials) == 4 and (result.trials["status"] == "TERMINATED").all()
    assert result.trials["node_id"].nunique() == 2, result.trials["node_id"].tolist()
    card = json.loads(Path("models/cluster/model.json").read_text())
    assert card["params"] == result.best_params and card["test_metrics"]["test_accuracy"] > 0
    assert Path("models/cluster/toy_model.json").is_file()


def _most_overlapping(spans: list[tuple]) -> int:
    """The most (start, end) spans open at one moment."""
    return max(sum(start <= moment < end for start, end in spans) for moment, _ in spans)


def _most_at_once(rows: list[dict]) -> int:
    """The most trials that were training at the same moment (from each trial's first and last report)."""
    spans = []
    for row in rows:
        reports = history(row["path"])
        spans.append((reports[0]["t_start"], reports[-1]["t_now"]))
    return _most_overlapping(spans)


@pytest.mark.parametrize("gpu, at_once, sleep, trials", [(0.25, 4, 4.0, 5), (0.5, 2, 2.0, 4)])
def test_the_gpu_share_limits_how_many_trials_run_at_once(one_declared_gpu, in_tmp, gpu, at_once, sleep, trials):
    # 4 CPUs at 0.5 a trial would run 8 at once, and max_concurrent is the number of trials, more than `at_once`:
    # only the GPU share can hold them to `at_once`. (That many at once needs each trial to last until the last of
    # them has started: 4 s an epoch leaves room for 4 workers' starts on a loaded 2-core machine, 2 s for 2.)
    text = SPACE.format(name="gpu", toy=TOY, sleep=sleep, trials=trials, resources=f"{{cpu: 0.5, gpu: {gpu}}}")
    result = autotune.fit(text, export=False)
    rows = result.trials.to_dict("records")
    assert len(rows) == trials and all(r["status"] == "TERMINATED" for r in rows)
    assert _most_at_once(rows) == at_once
    # Ray gave each trial the GPU: its worker sees device 0 (without a GPU share, CUDA_VISIBLE_DEVICES is unset).
    assert {r["cuda_visible_devices"] for row in rows for r in history(row["path"])} == {"0"}


def _most_asked_at_once(run_dir: Path, name: str) -> int:
    """The most trials of the run's study that were asked and not yet told at one moment: those running, and those
    Ray proposed to wait for a free CPU."""
    import optuna

    trials = optuna.load_study(study_name=name, storage=f"sqlite:///{run_dir}/study.db").trials
    return _most_overlapping([(t.datetime_start, t.datetime_complete) for t in trials])


@pytest.mark.parametrize("joined_by", ["--address", "RAY_ADDRESS"])
def test_a_search_joins_a_running_cluster_with_address(tmp_path, joined_by):
    """`autotune run --address` in a fresh process (Ray not started there) runs its trials on the cluster; so does
    `autotune run` where RAY_ADDRESS names the cluster (as Ray sets it for a Ray Job's entrypoint). On a cluster a
    trial waits beyond those running, for an autoscaler to see (a local Ray runs no more than fit)."""
    import autotune.engine.search  # noqa: F401  (quiet Ray's environment first)
    import ray
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        nodes = {node.node_id for node in cluster.list_all_nodes()}
        (tmp_path / "toy.yaml").write_text(
            SPACE.format(name="joined", toy=TOY, sleep=0.5, trials=4, resources="{cpu: 1}"))
        given = ["--address", cluster.address] if joined_by == "--address" else []
        run = subprocess.run(
            [sys.executable, "-m", "autotune", "run", "toy.yaml", *given], cwd=tmp_path, capture_output=True,
            text=True, timeout=240, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0",
                                         **({"RAY_ADDRESS": cluster.address} if not given else {})},
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert "Search 'joined': 4 trials" in run.stdout
        if not given:
            assert f"joining the Ray cluster at RAY_ADDRESS={cluster.address}" in run.stdout, run.stdout
        # the default storage, runs/, is relative: the other nodes' trials write to that path on their machine
        assert (f"the storage 'runs' is a folder relative to this machine's working directory ({tmp_path / 'runs'})"
                in run.stdout + run.stderr), run.stdout + run.stderr
        trials = pd.read_csv(tmp_path / "runs" / "joined" / "trials.csv")
        assert (trials["status"] == "TERMINATED").all()
        assert set(trials["node_id"]) == nodes, (set(trials["node_id"]), nodes)
        assert _most_asked_at_once(tmp_path / "runs" / "joined", "joined") > 2
        assert (tmp_path / "models" / "joined" / "toy_model.json").is_file()
        assert len(cluster.list_all_nodes()) == 2 and cluster.head_node.remaining_processes_alive()
    finally:
        cluster.shutdown()


def test_a_cluster_the_caller_joined_is_searched_as_one(two_node_cluster, in_tmp):
    """`ray.init(address=...)` of the caller's own, then `fit` without `address`: a trial waits beyond those
    running, as with `address` (it was taken for a local Ray, limited to the trials that fit its present nodes)."""
    from autotune.engine.ray_internals import joined_address

    assert joined_address() == two_node_cluster.address
    result = autotune.fit(SPACE.format(name="own", toy=TOY, sleep=0.5, trials=4, resources="{cpu: 1}"),
                          export=False, progress_seconds=0)
    assert (result.trials["status"] == "TERMINATED").all()
    assert _most_asked_at_once(Path(result.run_dir), "own") > 2
    assert ray.is_initialized()  # the caller's Ray is left running


def test_a_local_ray_is_not_a_joined_cluster(local_ray):
    from autotune.engine.ray_internals import joined_address

    assert joined_address() is None


def test_the_moves_read_are_those_of_the_search_s_trials(tmp_path):
    """A killed run's trial that its resume set aside is not reported as moved."""
    from autotune.engine.lost_nodes import MOVES_FILE, read_moves

    moves = [{"trial_id": t, "node_id": "n1", "epoch": 3, "checkpoint_epoch": 2} for t in ("kept", "set_aside")]
    (tmp_path / MOVES_FILE).write_text("".join(json.dumps(m) + "\n" for m in moves))
    assert read_moves(tmp_path, ["kept", "other"]) == moves[:1]
    assert read_moves(tmp_path / "none", ["kept"]) == []
