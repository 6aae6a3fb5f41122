"""Trials whose node is lost (a spot instance reclaimed, a machine gone) move to another node.

Ray retries such a trial from its last checkpoint on a node that is still there; autotune counts a lost node apart
from the trial's own errors, so the trial is retried even with `search.max_failures: 0`, and `max_failures` is left
for the trial's own errors. Each move is logged as it happens, appended to the run's `moves.jsonl` (a resumed
search keeps the earlier ones) and listed in the end-of-search summary.

    with moving_trials(where.state):
        grid = tuner.fit()
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ray

from autotune.engine.history import epochs_reported
from autotune.engine.ray_internals import lost_nodes_apart
from autotune.run_options import option

__all__ = ["MOVES_FILE", "moving_trials", "read_moves"]

MOVES_FILE = "moves.jsonl"

log = logging.getLogger("autotune")


def _checkpoint_epoch(trial: Any) -> int | None:
    """The epoch of the checkpoint `trial` continues from (the engine records it in each kept checkpoint)."""
    checkpoint = trial.checkpoint
    if checkpoint is None:
        return None
    try:
        return int(checkpoint.get_metadata().get("iteration"))
    except (OSError, TypeError, ValueError):  # no metadata: an older checkpoint, or the storage unreadable
        return None


def _room_left(trial: Any) -> bool:
    """Whether a live node of the cluster has the CPUs and GPUs `trial` asks for (its one bundle, as
    `tune.with_resources` gave it): a head started with `--num-cpus 0` runs no trial."""
    needs = trial.placement_group_factory.required_resources
    return any(n.get("Alive") and all(n.get("Resources", {}).get(kind, 0.0) >= amount
                                      for kind, amount in needs.items() if amount > 0) for n in ray.nodes())


class _Moves:
    """Records each trial that lost its node, in `state`/moves.jsonl."""

    def __init__(self, state: Path) -> None:
        self.path = state / MOVES_FILE

    def __call__(self, trial: Any, node: str) -> None:
        epoch = epochs_reported(trial)
        resumed = _checkpoint_epoch(trial)
        move = {"trial_id": trial.trial_id, "node_id": node, "epoch": epoch, "checkpoint_epoch": resumed,
                "time": time.time()}
        where = "on another node" if _room_left(trial) else (
            f"when the cluster has a node again (none is left; if the search ends, {option('resume')} on a new "
            "cluster)")
        log.warning("trial %s lost its node %s %s: it continues %s from %s", trial.trial_id, node[:8],
                    f"after epoch {epoch}" if epoch else "during epoch 1", where,
                    f"its checkpoint of epoch {resumed}" if resumed else "its start (no checkpoint)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as moves:
            moves.write(json.dumps(move) + "\n")


@contextmanager
def moving_trials(state: Path) -> Iterator[None]:
    """While the block runs, a trial whose node is lost is retried elsewhere, not counted as failed, and recorded
    in `state`."""
    with lost_nodes_apart(_Moves(state)):
        yield


def read_moves(state: Path, trials: Collection[str]) -> list[dict[str, Any]]:
    """The moves of the search's `trials` (ids) recorded in the run's state folder `state`, oldest first (not
    those of a killed run's trial that its resume set aside)."""
    path = state / MOVES_FILE
    if not path.is_file():
        return []
    moves, kept = [json.loads(line) for line in path.read_text().splitlines() if line.strip()], set(trials)
    return [move for move in moves if str(move.get("trial_id")) in kept]
