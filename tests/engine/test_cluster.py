"""Cluster shapes on one machine: a 2-node Ray cluster, and fractional GPUs declared on a CPU-only machine."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import autotune
from engine_helpers import TOY, start_ray

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


@pytest.fixture
def one_declared_gpu():
    import autotune.engine.search  # noqa: F401
    import ray

    if ray.is_initialized():
        ray.shutdown()
    start_ray(num_cpus=2, num_gpus=1)
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


def test_four_trials_share_one_gpu_at_a_quarter_each(one_declared_gpu, in_tmp):
    text = SPACE.format(name="gpu", toy=TOY, sleep=1.5, trials=4, resources="{cpu: 0.5, gpu: 0.25}")
    result = autotune.fit(text, export=False)
    assert len(result.trials) == 4
    spans = []
    for row in result.trials.to_dict("records"):
        history = json.loads("[" + ",".join(Path(row["path"], "result.json").read_text().split("\n")[:-1]) + "]")
        spans.append((history[0]["t_start"], history[-1]["t_now"]))
    # All four ran at the same time: the last one started before the first one finished.
    assert max(start for start, _ in spans) < min(end for _, end in spans), spans
