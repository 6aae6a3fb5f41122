"""Before a search on a joined Ray cluster: every node can write the run's storage, and sees the folder the driver
sees.

A node that cannot (a read-only mount, or a folder of its own at the same path, such as a private tmpfs) was found
only when its first trial failed there. The driver writes a token file into the run's folder; a task pinned to
each alive node (with no CPU: a head started with --num-cpus=0 is checked too) reads it back, compared by content
(the driver and a node may share a machine), then writes and removes a probe file of its own.

    check_every_node_writes(where.experiment)   # a UserError naming the first node that cannot
"""
from __future__ import annotations

import uuid

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from autotune.engine.storage import filesystem
from autotune.errors import UserError
from autotune.run_options import option

__all__ = ["ANSWER_S", "check_every_node_writes"]

ANSWER_S = 60.0  # how long the check waits for every node's answer (a node starts a worker process for it)
_TOKEN = ".autotune-node-check-"


@ray.remote(num_cpus=0)
def _probe(location: str, token: str) -> str | None:
    """On one node: None when the node reads the driver's `token` file in the folder `location` and writes a file
    of its own there; else what went wrong."""
    fs, path = filesystem(location)
    try:
        with fs.open_input_stream(f"{path}/{_TOKEN}{token}") as stream:
            seen = stream.read().decode(errors="replace")
    except OSError as err:
        return f"it does not see the driver's folder (reading a file the driver wrote there: {_one_line(err)})"
    if seen != token:
        return "it sees another folder than the driver's at that path (a file the driver wrote there differs)"
    probe = f"{path}/{_TOKEN}{token}-{ray.get_runtime_context().get_node_id()[:8]}"
    try:
        with fs.open_output_stream(probe) as stream:
            stream.write(b"probe")
        fs.delete_file(probe)
    except OSError as err:
        return f"it cannot write there ({_one_line(err)})"
    return None


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())


def _answer(answer: ray.ObjectRef) -> str | None:
    """A node's answer; the check's own failure there (autotune not importable, an error of the file system) is
    one too."""
    try:
        return ray.get(answer)
    except ray.exceptions.RayError as err:
        return f"the check failed there ({_one_line(err).split(' Traceback')[0]})"


def check_every_node_writes(location: str) -> None:
    """A UserError, before any trial runs, when a node of the joined cluster cannot write the run's folder
    `location` (a local path or a URI) or does not see the driver's: it names the node, the path, the error and
    the fix."""
    fs, path = filesystem(location)
    token = uuid.uuid4().hex
    fix = (f"give {option('storage')} a folder every node shares at the same path, writable (NFS), or a storage URI "
           "such as s3://bucket/runs (see docs/cluster.md)")
    try:
        fs.create_dir(path, recursive=True)
        with fs.open_output_stream(f"{path}/{_TOKEN}{token}") as stream:
            stream.write(token.encode())
    except OSError as err:
        raise UserError(f"this machine cannot write the storage {location}: {_one_line(err)}; {fix}") from None
    try:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        answers = [_probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
                   .remote(location, token) for n in nodes]
        ready, _ = ray.wait(answers, num_returns=len(answers), timeout=ANSWER_S)
        for node, answer in zip(nodes, answers):
            problem = _answer(answer) if answer in ready else f"it did not answer within {ANSWER_S:g} s"
            if problem:
                raise UserError(f"node {node['NodeManagerAddress']} ({node['NodeID'][:8]}) of the Ray cluster "
                                f"cannot use the storage {location}: {problem}; {fix}")
    finally:
        try:
            fs.delete_file(f"{path}/{_TOKEN}{token}")
        except OSError:  # gone already: nothing to clean
            pass
