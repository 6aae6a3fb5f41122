"""Cluster shapes on one machine: a 2-node Ray cluster, joining a running cluster with --address, a cluster killed
mid-search, a node that cannot use the storage, and fractional GPUs declared on a CPU-only machine."""
from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import ray

import autotune
from autotune.engine.summary import format_summary
from engine_helpers import TOY, history, saved_by_status, start_ray

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
def two_node_cluster(request):
    """A head and a worker of 1 CPU each; the worker has the custom resources a test gives as the fixture's
    parameter (indirect)."""
    import autotune.engine.search  # noqa: F401  (quiet Ray's environment first)
    import ray
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1, resources=getattr(request, "param", None))
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
    # 4 s a trial: the first node's actor, reused, cannot run all 4 while the second node's worker starts (it did
    # once, on a machine loaded by other sessions: every trial on one node)
    text = SPACE.format(name="cluster", toy=TOY, sleep=2, trials=4, resources="{cpu: 1}")
    result = autotune.fit(text)
    assert len(result.trials) == 4 and (result.trials["status"] == "TERMINATED").all()
    assert result.trials["node_id"].nunique() == 2, result.trials["node_id"].tolist()
    card = json.loads(Path("models/cluster/model.json").read_text())
    assert card["params"] == result.best_params and card["test_metrics"]["test_accuracy"] > 0
    assert Path("models/cluster/toy_model.json").is_file()


@pytest.mark.parametrize("two_node_cluster", [{"big_memory": 2}], indirect=True)
def test_a_custom_resource_runs_trials_only_on_the_nodes_that_have_it(two_node_cluster, in_tmp):
    """search.resources.custom: every trial runs on the worker, the one node with big_memory (a trial holding 1 of
    its 2 big_memory and 0.5 CPU: up to 2 at once there). A resource no node has is refused before any trial, where
    Ray would have kept every trial waiting."""
    text = SPACE.format(name="custom", toy=TOY, sleep=0, trials=3, resources="{cpu: 0.5, custom: {big_memory: 1}}")
    result = autotune.fit(text, export=False)
    assert (result.trials["status"] == "TERMINATED").all() and len(result.trials) == 3
    worker = next(n["NodeID"] for n in ray.nodes() if n["Alive"] and "big_memory" in n["Resources"])
    assert set(result.trials["node_id"]) == {worker}
    missing = SPACE.format(name="nowhere", toy=TOY, sleep=0, trials=1, resources="{custom: {licence: 1}}")
    with pytest.raises(autotune.UserError, match=r"search.resources.custom.licence is 1, but on the Ray cluster at .* "
                                                 r"no node has it \(their custom resources: big_memory\)"):
        autotune.fit(missing, export=False)
    assert not Path("runs/nowhere/trials.csv").exists()


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
        (tmp_path / "toy.yaml").write_text(  # 4 s a trial: the first node's actor, reused, cannot run all 4
            SPACE.format(name="joined", toy=TOY, sleep=2, trials=4, resources="{cpu: 1}"))  # while the second starts
        given = ["--address", cluster.address] if joined_by == "--address" else []
        run = subprocess.run(
            [sys.executable, "-m", "autotune", "run", "toy.yaml", *given], cwd=tmp_path, capture_output=True,
            text=True, timeout=240, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0",
                                         **({"RAY_ADDRESS": cluster.address} if not given else {})},
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert "Search 'joined': 4 trials" in run.stdout
        assert (f"Joined the Ray cluster at {cluster.address}: 2 nodes, 2 CPUs, 0 GPUs (the largest node: 1 CPU, "
                "0 GPUs)") in run.stdout, run.stdout  # where it runs, and what it sees
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
        # both nodes passed the storage check, which left no file behind
        assert not list((tmp_path / "runs" / "joined").glob(".autotune-node-check*"))
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


class RayStartCluster:
    """A Ray cluster started as on real machines, with `ray start` and token authentication (Ray 2.60's default),
    on ports of its own and with a temp folder of its own, by which its processes are found: other Ray instances
    may run on this machine, and `ray stop` would stop them too."""

    _NODE_PORTS = ("node-manager-port", "object-manager-port", "dashboard-agent-listen-port",
                   "dashboard-agent-grpc-port", "runtime-env-agent-port", "metrics-export-port")

    def __init__(self, free_port) -> None:
        self.free_port = free_port
        self.temp = tempfile.mkdtemp(prefix="rtc_", dir="/tmp")  # short: Unix socket paths stay under 107 bytes
        self.env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
                    "RAY_USAGE_STATS_ENABLED": "0"}
        self.env.pop("RAY_ADDRESS", None)
        self.address = ""
        self.worker_ports: list[int] = []

    def start_head(self, num_cpus: int, port: int | None = None) -> None:
        port = port or self.free_port()
        self._ray_start(["--head", f"--port={port}", f"--temp-dir={self.temp}", "--include-dashboard=false",
                         f"--dashboard-port={self.free_port()}", f"--ray-client-server-port={self.free_port()}"],
                        num_cpus)
        self.address = f"127.0.0.1:{port}"

    def add_worker(self, num_cpus: int, mount: str = "") -> None:
        """A worker node; `mount`, a shell command, runs first in a mount namespace of the worker's own."""
        self._ray_start([f"--address={self.address}"], num_cpus, mount)

    def _ray_start(self, args: list[str], num_cpus: int, mount: str = "") -> None:
        ports = {name: self.free_port() for name in self._NODE_PORTS}
        command = [str(Path(sys.executable).with_name("ray")), "start", *args, f"--num-cpus={num_cpus}",
                   *(f"--{name}={port}" for name, port in ports.items())]
        if mount:
            command = ["unshare", "--mount", "--propagation", "private", "bash", "-c",
                       f"{mount} && exec {shlex.join(command)}"]
        started = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=60)
        assert started.returncode == 0, started.stdout + started.stderr
        if "--head" not in args:
            self.worker_ports.append(ports["node-manager-port"])

    def _processes(self) -> dict[int, tuple[int, str]]:
        """pid -> (parent pid, command line) of every process of this machine."""
        table = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):  # not a process, or one that ended meanwhile
                continue
            table[int(entry.name)] = (parent, command)
        return table

    def node_id(self, node_manager_port: int) -> str:
        """The node id of this cluster's raylet on `node_manager_port`."""
        for _, command in self._processes().values():
            if self.temp in command and f"--node_manager_port={node_manager_port} " in command:
                return re.search(r"--node_id=([0-9a-f]+)", command).group(1)
        raise AssertionError(f"no raylet on port {node_manager_port}")

    def kill_gcs(self) -> None:
        """SIGKILL the head's GCS, as the head machine's loss ends it for a driver on another node: the raylets
        (the driver's among them) go on until their own GCS timeout."""
        for pid, (_, command) in self._processes().items():
            if self.temp in command and "gcs_server" in command:
                os.kill(pid, signal.SIGKILL)

    def kill(self) -> None:
        """SIGKILL every process of the cluster (those naming its temp folder, and their children), as a lost
        machine ends them: the search's driver is none of them."""
        table = self._processes()
        mine = {pid for pid, (_, command) in table.items() if self.temp in command}
        while grown := {pid for pid, (parent, _) in table.items() if parent in mine} - mine:
            mine |= grown
        for pid in mine:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def ray_start_clusters(free_port):
    """`new()` -> a RayStartCluster, killed (and its temp folder removed) at the end of the test."""
    clusters: list[RayStartCluster] = []

    class New:
        def __call__(self) -> RayStartCluster:
            clusters.append(RayStartCluster(free_port))
            return clusters[-1]

    yield New()
    for cluster in clusters:
        cluster.kill()
        shutil.rmtree(cluster.temp, ignore_errors=True)


def _autotune_run(cluster: RayStartCluster, cwd: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    """`autotune run ARGS` in a subprocess that has the cluster's token (`env`: the cluster's environment, else
    this one), its output in cwd/out and cwd/err."""
    with (cwd / "out").open("a") as out, (cwd / "err").open("a") as err:
        return subprocess.Popen([sys.executable, "-m", "autotune", "run", *args], cwd=cwd, env=env or cluster.env,
                                stdout=out, stderr=err, text=True)


def test_a_search_whose_cluster_is_killed_ends_with_the_command_that_continues_it(ray_start_clusters, tmp_path,
                                                                                   wait_for):
    """The cluster's head lost mid-search (its GCS killed): the driver ends before Ray would, with one line naming
    the run's folder and the command that continues it, and exit status 4; that command, on a new cluster at the
    same address, finishes the search from the saved state."""
    from autotune.engine.watchdog import AHEAD_S, EXIT_CLUSTER_GONE

    cluster = ray_start_clusters()
    cluster.env["RAY_gcs_rpc_server_reconnect_timeout_s"] = str(int(AHEAD_S) + 10)  # an integer, or Ray crashes
    cluster.start_head(num_cpus=2)
    (tmp_path / "toy.yaml").write_text(
        SPACE.format(name="gone", toy=TOY, sleep=0.5, trials=2, resources="{cpu: 1}").replace(
            "epochs: 2", "epochs: 12"))
    ray_gives_up = AHEAD_S + 10  # Ray's own end, shortened from 60 s: the watchdog ends the search 10 s before
    search = _autotune_run(cluster, tmp_path, "toy.yaml", "--address", cluster.address)
    run_dir = tmp_path / "runs" / "gone"
    # once Ray saved the running trials with a report each: what the continued search starts from
    wait_for(lambda: sum(n > 0 for n in saved_by_status(run_dir).get("RUNNING", {}).values()) == 2, search,
             "the trials running in Ray's saved state", timeout=60)
    # the GCS only: the driver runs on the head node here, and a killed raylet of its own ends it at once (Ray's
    # exit, status 1), as a driver on the lost head machine would end with it
    cluster.kill_gcs()
    killed = time.time()
    search.wait(timeout=55)
    took = time.time() - killed
    cluster.kill()
    err = (tmp_path / "err").read_text()
    assert search.returncode == EXIT_CLUSTER_GONE, err
    assert 10 <= took < ray_gives_up - 2, took
    command = f"autotune run toy.yaml --address {cluster.address} --resume"
    port = int(cluster.address.rpartition(":")[2])
    (line,) = [line for line in err.splitlines() if "is gone" in line]
    assert re.fullmatch(rf"autotune: the Ray cluster at {re.escape(cluster.address)} \(GCS [\d.]+:{port}\) is gone "
                        rf"\(unreachable for 1\d s\); the run's state is saved in {re.escape(str(run_dir))}: start a "
                        rf"new cluster and continue the run with: {re.escape(command)}", line), line

    again = ray_start_clusters()
    again.start_head(num_cpus=2, port=port)
    resumed = _autotune_run(again, tmp_path, *shlex.split(command)[2:])
    assert resumed.wait(timeout=120) == 0, (tmp_path / "out").read_text() + (tmp_path / "err").read_text()
    trials = pd.read_csv(run_dir / "trials.csv")
    assert len(trials) == 2 and (trials["status"] == "TERMINATED").all(), trials
    for trial_dir in run_dir.glob("trial_*"):  # each went on from a checkpoint, not from its first epoch
        epochs = [r["epoch"] for r in history(trial_dir)]
        assert epochs[-1] == 12 and epochs.count(1) == 1, epochs


needs_a_mount_namespace = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="a worker node with a storage of its own runs in a mount namespace: root and unshare")


@needs_a_mount_namespace
@pytest.mark.parametrize("mount, problem", [
    ("mount --bind -o ro {store} {store}", "it cannot write there ("),  # a read-only mount of the shared folder
    ("mount -t tmpfs tmpfs {store}", "it does not see the driver's folder ("),  # a folder of its own at that path
], ids=["read-only", "not-shared"])
def test_a_node_that_cannot_use_the_storage_is_refused_before_any_trial(ray_start_clusters, tmp_path, mount,
                                                                        problem):
    """The head has no CPU (its check takes none); the worker node sees the storage read-only, or a private folder
    at its path: one line naming that node, before any trial runs."""
    store = tmp_path / "store"
    store.mkdir()
    cluster = ray_start_clusters()
    cluster.start_head(num_cpus=0)
    cluster.add_worker(num_cpus=1, mount=mount.format(store=shlex.quote(str(store))))
    worker = cluster.node_id(cluster.worker_ports[0])
    (tmp_path / "toy.yaml").write_text(SPACE.format(name="store", toy=TOY, sleep=0, trials=2, resources="{cpu: 1}"))
    search = _autotune_run(cluster, tmp_path, "toy.yaml", "--address", cluster.address, "--storage", str(store))
    assert search.wait(timeout=90) == 2
    (line,) = (tmp_path / "err").read_text().splitlines()
    assert line.startswith("autotune run: error: node "), line
    assert f"({worker[:8]}) of the Ray cluster cannot use the storage {store / 'store'}: {problem}" in line, line
    assert "a folder every node shares at the same path, writable (NFS), or a storage URI such as s3://" in line
    assert not list((store / "store").glob("trial_*")) and not list((store / "store").glob(".autotune-node-check*"))


def test_the_watchdog_is_quiet_while_the_cluster_answers_and_stops_with_its_block(monkeypatch):
    import socket

    from autotune.engine import watchdog

    monkeypatch.setattr(watchdog, "CHECK_EVERY_S", 0.05)
    monkeypatch.setattr(watchdog, "ahead_of_ray_s", lambda: 0.2)
    with socket.create_server(("127.0.0.1", 0)) as gcs:
        address = f"127.0.0.1:{gcs.getsockname()[1]}"
        with watchdog.watching_cluster(address, address, "runs/x", "autotune run x.yaml --resume"):
            time.sleep(0.5)  # ten answered checks, over twice the time it waits
    assert not any(thread.name == "autotune-cluster-watchdog" for thread in threading.enumerate())


def test_the_watchdog_acts_ten_seconds_before_ray_would(monkeypatch):
    """A GCS that comes back within Ray's own time (a head with GCS fault tolerance) does not end the search."""
    from autotune.engine.watchdog import ahead_of_ray_s

    monkeypatch.delenv("RAY_gcs_rpc_server_reconnect_timeout_s", raising=False)
    assert ahead_of_ray_s() == 50
    monkeypatch.setenv("RAY_gcs_rpc_server_reconnect_timeout_s", "300")
    assert ahead_of_ray_s() == 290
    monkeypatch.setenv("RAY_gcs_rpc_server_reconnect_timeout_s", "5")
    assert ahead_of_ray_s() == 4  # two checks at least


def test_the_watchdog_ends_the_process_once_the_cluster_is_gone(free_port):
    """A GCS address where nothing listens: one line and exit status 4 once it has been unreachable for
    `ahead_of_ray_s()` (shortened here), however long the block would run."""
    address = f"127.0.0.1:{free_port()}"
    code = ("import time; from autotune.engine import watchdog as w; w.CHECK_EVERY_S = 0.05\n"
            "w.ahead_of_ray_s = lambda: 0.3\n"
            f"with w.watching_cluster({address!r}, 'auto', 'runs/x', 'autotune run x.yaml --resume'):\n"
            "    time.sleep(30)\n")
    started = time.time()
    ended = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert ended.returncode == 4 and time.time() - started < 20, ended.stderr
    assert ended.stderr == ("autotune: the Ray cluster at auto is gone (unreachable for 0 s); the run's state is "
                            "saved in runs/x: start a new cluster and continue the run with: autotune run x.yaml "
                            "--resume\n")
