"""A trial runs on one node: its resources are checked against the largest node of the cluster, not the sum."""
from __future__ import annotations

import pytest

import autotune
from autotune.engine import search
from autotune.errors import UserError
from reliability_helpers import TOY


@pytest.fixture(scope="module")
def two_one_gpu_nodes():
    """Two nodes of 1 CPU and 1 GPU each (declared: the GPUs need not exist)."""
    import ray
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "num_gpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1, num_gpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    yield cluster.address
    ray.shutdown()
    cluster.shutdown()


@pytest.mark.parametrize("resources, message", [
    ("{cpu: 1, gpu: 2}", "search.resources.gpu is 2.0 but the largest node of the Ray cluster at .* has 1 GPU"),
    ("{cpu: 2, gpu: 0}", "search.resources.cpu is 2.0 but the largest node of the Ray cluster at .* has 1 CPU"),
])
def test_a_trial_larger_than_any_node_is_refused(two_one_gpu_nodes, resources, message):
    import ray

    assert ray.cluster_resources()["GPU"] == 2 and ray.cluster_resources()["CPU"] == 2  # in all, enough
    space = autotune.load_space(f"name: big\nrecipe: {TOY}\nmodel: {{x: {{uniform: [0, 1]}}}}\n"
                                f"search: {{resources: {resources}}}\n")
    with pytest.raises(UserError, match=message):
        search._resources(space, search.RunOptions(address=two_one_gpu_nodes))


def test_a_trial_that_fits_one_node_is_accepted(two_one_gpu_nodes):
    space = autotune.load_space(f"name: fits\nrecipe: {TOY}\nmodel: {{x: {{uniform: [0, 1]}}}}\n"
                                f"search: {{resources: {{cpu: 1, gpu: 1}}}}\n")
    assert search._resources(space, search.RunOptions(address=two_one_gpu_nodes)) == {"cpu": 1.0, "gpu": 1.0}
