"""A trial whose node is lost moves: what the engine says of it and records, with stand-ins for Ray's trial and the
cluster's nodes (no Ray started; the real 2-node cluster is tests/engine/test_cluster.py's)."""
from __future__ import annotations

import logging
import uuid
from pathlib import Path
from types import SimpleNamespace

import cloudpickle
import pyarrow.fs
import pytest
from ray._private import worker
from ray.exceptions import ActorUnavailableError, RayActorError
from ray.tune.execution.placement_groups import resource_dict_to_pg_factory
from ray.tune.experiment import Trial
from ray.tune.result_grid import ResultGrid
from ray.tune.trainable.metadata import _TrainingRunMetadata

import autotune
from autotune.engine import lost_nodes, ray_internals
from autotune.engine.result_grid import trial_rows
from reliability_helpers import TOY

LOST = "7297bf04" + "0" * 48


class _Trial:
    """What the engine and Ray's ResultGrid read of a trial (Ray's own ways to read its recorded error)."""

    get_pickled_error, get_error = Trial.get_pickled_error, Trial.get_error

    def __init__(self, folder: Path, reported: int, cpu: float = 1.0) -> None:
        self.trial_id, self.status, self.checkpoint = "d60f12f9", Trial.PENDING, None
        self.last_result = {"training_iteration": reported, "node_id": LOST} if reported else {}
        self.run_metadata = _TrainingRunMetadata()
        self.storage = SimpleNamespace(trial_fs_path=str(folder), storage_filesystem=pyarrow.fs.LocalFileSystem())
        self.placement_group_factory = resource_dict_to_pg_factory({"cpu": cpu, "gpu": 0})


def _ray_handle_error(trial: _Trial, exc: BaseException | None = None) -> None:
    """What Ray's `Trial.handle_error` records of an error: a failure, and the error in the trial's files."""
    trial.run_metadata.num_failures += 1
    trial.run_metadata.error_filename, trial.run_metadata.pickled_error_filename = "error.txt", "error.pkl"
    Path(trial.storage.trial_fs_path, "error.pkl").write_bytes(cloudpickle.dumps(exc))
    Path(trial.storage.trial_fs_path, "error.txt").write_text(f"Failure # 1\n{exc}\n")
    trial.run_metadata.invalidate_cache()


@pytest.fixture
def moved(monkeypatch, tmp_path):
    """Trial.handle_error as Ray's, wrapped by the engine; a node is lost on an actor error only; the moves
    recorded in tmp_path."""
    monkeypatch.setattr(Trial, "handle_error", _ray_handle_error)  # restored after the test, wrapper and all
    monkeypatch.setattr(ray_internals, "lost_node", lambda exc, node: LOST if isinstance(exc, RayActorError) else None)
    monkeypatch.setattr(lost_nodes.ray, "nodes", lambda: [])
    with lost_nodes.moving_trials(tmp_path):
        yield


def test_a_moved_trial_interrupted_while_it_waits_for_a_node_is_interrupted_not_failed(moved, tmp_path):
    """Ctrl-C while a moved trial waited for a node: trials.csv and the summary called it failed ('The actor ... is
    unavailable'), and "not counted as a failure" in the same summary; `--resume` continued it."""
    trial = _Trial(tmp_path, reported=1)
    Trial.handle_error(trial, ActorUnavailableError("RpcError: Socket closed", None))
    assert trial.run_metadata.num_failures == 0 and trial.run_metadata.pickled_error_filename is None
    assert '"error_filename": null' in trial.run_metadata.get_json_state()  # what the saved state holds
    result = SimpleNamespace(config={"model.x": 0.5}, metrics=trial.last_result, metrics_dataframe=None,
                             error=ResultGrid._populate_exception(trial), path=f"/runs/t/trial_{trial.trial_id}")
    space = autotune.load_space(f"name: t\nrecipe: {TOY}\nmodel: {{x: {{uniform: [0, 1]}}}}\n")
    (row,) = trial_rows([result], space, unfinished={trial.trial_id})
    assert (row["status"], row["error"]) == ("INTERRUPTED", "")


def test_a_trial_s_own_error_is_still_its_failure(moved, tmp_path):
    trial = _Trial(tmp_path, reported=1)
    Trial.handle_error(trial, ValueError("x too large"))
    assert trial.run_metadata.num_failures == 1
    assert isinstance(ResultGrid._populate_exception(trial), ValueError)


@pytest.mark.parametrize("nodes, reported, where", [
    ([{"Alive": True, "Resources": {"CPU": 4.0}}], 1, "after epoch 1: it continues on another node"),
    # a head started with --num-cpus 0 is left: it runs no trial
    ([{"Alive": True, "Resources": {"memory": 1e9}}, {"Alive": False, "Resources": {"CPU": 1.0}}], 1,
     "after epoch 1: it continues when the cluster has a node again (none is left;"),
    ([{"Alive": True, "Resources": {"CPU": 0.5}}], 2, "after epoch 2: it continues when the cluster has a node again"),
    ([], 0, "during epoch 1: it continues when the cluster has a node again"),  # lost before its first report
])
def test_the_move_says_when_the_trial_was_lost_and_whether_a_node_fits_it(monkeypatch, tmp_path, caplog, nodes,
                                                                          reported, where):
    monkeypatch.setattr(lost_nodes.ray, "nodes", lambda: nodes)
    caplog.set_level(logging.WARNING, logger="autotune")
    monkeypatch.setattr(logging.getLogger("autotune"), "propagate", True)
    lost_nodes._Moves(tmp_path)(_Trial(tmp_path, reported), LOST)
    assert f"trial d60f12f9 lost its node 7297bf04 {where}" in caplog.text
    assert lost_nodes.read_moves(tmp_path, ["d60f12f9"])[0]["epoch"] == reported


def _print_both() -> None:
    """A raylet's message, as Ray's listen_error_messages prints it, and a worker's line (each new: Ray drops a
    line it printed a moment ago, digits aside)."""
    new = "".join(chr(ord("a") + int(digit, 16)) for digit in uuid.uuid4().hex)
    worker.print_to_stdstream({"lines": [f"Raylet is terminated. Termination is unexpected. [state-dump] {new}"],
                               "pid": "raylet", "is_err": False}, ignore_prefix=False)
    worker.print_to_stdstream({"lines": [f"a worker's own line {new}"], "pid": 4242, "ip": "10.0.0.2",
                               "task_name": "t", "actor_name": "", "is_err": False}, ignore_prefix=False)


@pytest.mark.parametrize("shown", [False, True])
def test_the_raylet_s_messages_are_shown_with_v_only(capsys, shown):
    """A lost worker printed Ray's raylet log dump (about 20 lines, twice) into the quiet output."""
    with ray_internals.trial_errors_shown(shown):
        _print_both()
    out = capsys.readouterr().out
    assert ("Raylet is terminated" in out) is shown
    assert "a worker's own line" in out
    _print_both()  # after the search: Ray's printer as it was
    assert "Raylet is terminated" in capsys.readouterr().out


def test_the_summary_says_a_trial_lost_before_its_first_report_was_lost_during_epoch_1():
    from autotune.engine.summary import _move

    move = {"trial_id": "a", "node_id": "6ee1c54d0000", "epoch": 0, "checkpoint_epoch": None}
    assert _move(move) == "node 6ee1c54d lost during epoch 1, went on from its start"
    assert _move({**move, "epoch": 3, "checkpoint_epoch": 2}) == \
        "node 6ee1c54d lost after epoch 3, went on from its checkpoint of epoch 2"
