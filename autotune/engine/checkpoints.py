"""Which reported checkpoints a search keeps: only those a resume, a retry, the scheduler or the export may need.

A recipe offers a checkpoint with each report (`report(metrics, save)`, see `autotune.recipes`). A trial keeps it
- when `search.checkpoint_every` epochs have passed since its last kept checkpoint (or its start), except at its last
  epoch: a killed search, or a failed trial retried under `max_failures`, continues from there, losing at most
  `checkpoint_every - 1` epochs of a running trial;
- when its metrics rank above every checkpoint the search kept before (`rank`): only the search's best checkpoint
  is exported, and a checkpoint that ranks below an earlier one can never be it. The driver publishes the best
  rank so far (`BestSoFar`); a trial reads it only when it beats its own earlier reports;
- with several objectives, when its metrics rank above the trial's own earlier reports: each trial keeps its best
  epoch (the one its row of the trial table and the Pareto front show), which `autotune export --trial` exports.
No scheduler the engine offers pauses trials (its Hyperband is asynchronous), so none needs more.
Any other offered checkpoint is dropped: its `save` is never called, its folder never copied.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ray import tune

from autotune.engine.history import Rank, finite, rank
from autotune.engine.ray_internals import kv_delete, kv_get, kv_put
from autotune.space.types import Space

__all__ = ["BestSoFar", "CheckpointPolicy", "TrialCheckpoints", "finite", "rank", "read_trial"]

@dataclass(frozen=True)
class CheckpointPolicy:
    """What a search's trials need to decide, report by report, whether to keep the checkpoint they offer."""

    every: int  # keep one at least every this many epochs
    metrics: tuple[str, ...]
    modes: tuple[str, ...]
    best_key: str  # where the driver publishes the best kept rank (a key of the Ray cluster's store)

    @classmethod
    def of(cls, space: Space, experiment: str) -> CheckpointPolicy:
        """The policy of `space`'s search, run in the experiment folder `experiment`."""
        search = space.search
        return cls(search.checkpoint_every, search.metric, search.mode,
                   f"best-checkpoint:{experiment}")

    @property
    def multi_objective(self) -> bool:
        """Whether the search has several objectives: then every trial's best epoch may be on the Pareto front."""
        return len(self.metrics) > 1

    def rank(self, metrics: Mapping[str, Any]) -> Rank | None:
        return rank(metrics, self.metrics, self.modes)


class TrialCheckpoints:
    """One trial's side of the policy: whether to keep the checkpoint it offers with a report."""

    def __init__(self, policy: CheckpointPolicy, *, epochs: int | None,
                 resumed_from: Mapping[str, Any] | None = None) -> None:
        """`epochs`: how many the trial runs (None: unknown); `resumed_from`: the `metadata()` of the checkpoint
        the trial continues from."""
        self.policy, self.epochs = policy, epochs
        self.iteration = int((resumed_from or {}).get("iteration", 0))  # reports so far, resumed ones included
        self.since_kept = 0  # reports since the last kept checkpoint (or the start, or the one resumed from)
        self.best_offered: Rank | None = None  # the best rank this trial offered a checkpoint with

    def metadata(self) -> dict[str, int]:
        """What a kept checkpoint records, for a trial that continues from it."""
        return {"iteration": self.iteration}

    def keep(self, metrics: Mapping[str, Any], offered: bool) -> bool:
        """Called once per report (`offered`: with a checkpoint); True when its checkpoint is to be kept."""
        self.iteration += 1
        self.since_kept += 1
        if not offered:
            return False
        better = self._improvement(metrics)
        last = self.epochs is not None and self.iteration >= self.epochs  # nothing runs after it to resume
        keep = (self.since_kept >= self.policy.every and not last
                or better is not None and (self.policy.multi_objective or self._beats_the_best_kept(better)))
        if keep:
            self.since_kept = 0
        return keep

    def _improvement(self, metrics: Mapping[str, Any]) -> Rank | None:
        """The report's rank when it beats this trial's earlier offers, else None: an earlier offer as good was
        kept, or ranked below a kept checkpoint, so this one cannot be exported either."""
        value = self.policy.rank(metrics)
        if value is None or (self.best_offered is not None and value <= self.best_offered):
            return None
        self.best_offered = value
        return value

    def _beats_the_best_kept(self, value: Rank) -> bool:
        published = kv_get(self.policy.best_key)
        return published is None or value > tuple(json.loads(published))


class BestSoFar(tune.Callback):
    """The driver's side: publishes the rank of the best checkpoint kept so far, for the trials to read. A trial
    may read an older best (never a better one than was kept): it then keeps a checkpoint it could have skipped."""

    def __init__(self, policy: CheckpointPolicy) -> None:
        self.policy = policy
        self.best: Rank | None = None

    def setup(self, **info: Any) -> None:  # each start, a resumed search's too: no best from an earlier process
        self.best = None
        kv_delete(self.policy.best_key)

    def on_checkpoint(self, iteration: int, trials: list, trial: Any, checkpoint: Any, **info: Any) -> None:
        value = self.policy.rank(trial.last_result or {})  # the result this checkpoint came with
        if value is not None and (self.best is None or value > self.best):
            self.best = value
            kv_put(self.policy.best_key, json.dumps(value).encode())

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        kv_delete(self.policy.best_key)


def read_trial(folder: str) -> Any:
    """The Ray `Result` of a finished search's trial, read from its folder (a local path or a URI): its reports and the
    checkpoints it kept (`best_checkpoints`, each with the metrics it came with), for `autotune export --trial`.
    RuntimeError when the folder or its reports are missing."""
    return tune.Result.from_path(folder)
