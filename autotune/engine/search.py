"""The one place that talks to Ray Tune: trials, scheduling, checkpoints, resume.

`run_search(space, options)` validates nothing (the caller passes a validated `Space`): it loads the data once,
starts (or joins) Ray, runs the trials with Optuna proposing configurations and a scheduler stopping weak ones,
then hands the best checkpoint to `autotune.engine.export`.
"""
from __future__ import annotations

import copy
import functools
import json
import logging
import os
import shutil
import sqlite3
import time
import uuid
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from autotune.cache import cache_dir
from autotune.errors import UserError
from autotune.space.types import Choice, Grid, Int, Space, default_values

# Quiet Ray before it is imported: no usage stats, no experiment banner, no sync warnings.
for _key, _value in {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AIR_NEW_OUTPUT": "0",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    "RAY_DEDUP_LOGS": "0",
}.items():
    os.environ.setdefault(_key, _value)

import optuna  # noqa: E402
import pyarrow.fs  # noqa: E402
import ray  # noqa: E402
from ray import tune  # noqa: E402
from ray.tune.schedulers import (  # noqa: E402
    AsyncHyperBandScheduler,
    FIFOScheduler,
    MedianStoppingRule,
    TrialScheduler,
)
from ray.tune.search import ConcurrencyLimiter  # noqa: E402
from ray.tune.search.optuna import OptunaSearch  # noqa: E402

from autotune.engine import warm_start  # noqa: E402
from autotune.engine.hyperband import Hyperband  # noqa: E402
from autotune.engine.checkpoints import BestSoFar, CheckpointPolicy, TrialCheckpoints, finite, rank  # noqa: E402
from autotune.engine.optuna_space import DefineByRun, make_sampler  # noqa: E402
from autotune.engine.ray_internals import CsvLogger, JsonLogger, TensorBoardLogger  # noqa: E402
from autotune.engine import track  # noqa: E402
from autotune.tracking import SearchStart, Tracking  # noqa: E402

__all__ = ["RunOptions", "RunLocation", "run_location", "holds_search", "publish_state", "run_search", "trial_rows"]

log = logging.getLogger("autotune")


@dataclass(frozen=True)
class RunOptions:
    """How to run a search, as opposed to what to search (the space)."""

    storage: str = "runs"  # a local folder or a URI (s3://, gs://, a shared path on a cluster)
    address: str | None = None  # None: a local Ray; "auto" or "ray://host:port": an existing cluster
    num_cpus: int | None = None  # local Ray only; None: every core
    num_gpus: float | None = None  # local Ray only; None: what Ray detects
    resume: bool = False
    restart: bool = False
    warm_start: str | None = None  # an earlier run's folder: its finished trials become this search's history
    verbose: int = 0
    progress_seconds: float = 10.0  # a progress line while trials run, at most this often; <= 0: none


@dataclass(frozen=True)
class RunLocation:
    """Where a run lives. Ray's experiment folder `experiment` (trials, checkpoints, TensorBoard logs) is
    `storage/name`, a local path or a URI. `state` is the local folder of autotune's own state (study.db,
    space.fingerprint, summary.json, trials.csv): the experiment folder itself for a local storage, a mirror under
    `~/.cache/autotune/runs/` for a URI, copied into the URI at the end of the search (`publish_state`)."""

    storage: str
    name: str
    state: Path

    @property
    def experiment(self) -> str:
        return f"{self.storage}/{self.name}"

    @property
    def remote(self) -> bool:
        return "://" in self.storage


def run_location(storage: str, name: str) -> RunLocation:
    """The run folders of the search `name` in `storage` (a folder, or a URI such as s3://bucket/runs)."""
    if "://" not in storage:
        folder = Path(storage).expanduser().resolve()
        return RunLocation(str(folder), name, folder / name)
    scheme, rest = storage.split("://", 1)
    return RunLocation(storage.rstrip("/"), name, cache_dir() / "runs" / scheme / rest.strip("/") / name)


class _Searcher(OptunaSearch):
    """OptunaSearch that tells Optuna what Optuna's own pruning would. Ray tells every trial COMPLETE with its last
    value, so a sampler would take a 1-epoch accuracy for a final one. Here a trial stopped before its last epoch
    (by the scheduler, a stop target or the epoch budget) is PRUNED, holding the value of every epoch it ran as
    intermediate values (TPE ranks it below the trials that got further); a trial that ran every epoch is COMPLETE;
    a failed one FAILED. Several objectives: COMPLETE with the last values (Optuna keeps no intermediate values)."""

    def __init__(self, *, planned_epochs: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._planned_epochs = planned_epochs  # sampled values -> the epochs that trial runs if not stopped
        self._reported: dict[str, int] = {}  # trial id -> the last epoch told to Optuna as an intermediate value

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        super().on_trial_result(trial_id, result)
        self._reported[trial_id] = int(result.get("training_iteration", 0))

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        value = (result or {}).get(self.metric) if isinstance(self.metric, str) else None
        if trial_id in self._ot_trials and self._told_before(self._ot_trials[trial_id]):
            self._completed_trials.add(trial_id)  # told before a kill that Ray's saved state did not see
            return
        if error or trial_id in self._completed_trials or trial_id not in self._ot_trials or value is None:
            super().on_trial_complete(trial_id, None if error else result, error)
            return
        ot_trial = self._ot_trials[trial_id]
        epoch = int(result.get("training_iteration", 0))
        state = _ended_state([value], epoch, self._planned_epochs(ot_trial.params))
        if state == optuna.trial.TrialState.COMPLETE:
            self._tell(ot_trial, value)
        else:
            if state == optuna.trial.TrialState.PRUNED and epoch > self._reported.get(trial_id, 0):
                ot_trial.report(value, epoch)
            self._tell(ot_trial, state=state)  # PRUNED: valued at its last epoch
        self._completed_trials.add(trial_id)
        self._reported.pop(trial_id, None)

    def _told_before(self, ot_trial: optuna.Trial) -> bool:
        """Whether the study already holds this trial's end. A search killed after telling Optuna that a trial
        ended, but before Ray saved its own state (every 10 s), runs that trial again when resumed; the study keeps
        what it was told the first time."""
        return self._ot_study._storage.get_trial(ot_trial._trial_id).state.is_finished()  # noqa: SLF001

    def _tell(self, ot_trial: optuna.Trial, value: float | None = None, **state: Any) -> None:
        """Tell Optuna, as Ray does: the trial's state is stored first, so a sampler's hook failing after it
        only warns. GridSampler calls `Study.stop()` once its grid is exhausted, which fails outside
        `Study.optimize`; the search's trial count ends it anyway."""
        try:
            self._ot_study.tell(ot_trial, value, **state)
        except RuntimeError as err:
            if "Study.stop" not in str(err):
                log.warning("telling Optuna the result of trial %s failed: %s", ot_trial.number, err)


def _ended_state(values: list[Any], epoch: int, planned: int) -> optuna.trial.TrialState:
    """What Optuna is told of a trial that ended at `epoch` with `values`: FAIL without a finite value, COMPLETE
    when it ran its `planned` epochs, else PRUNED (stopped early)."""
    if not epoch or not all(map(finite, values)):
        return optuna.trial.TrialState.FAIL
    return optuna.trial.TrialState.COMPLETE if epoch >= planned else optuna.trial.TrialState.PRUNED


class _SharedState:
    """State shared by the copies Ray makes of a stopper or callback (a resumed search unpickles one as its
    stopper and another as a callback), through a `token` they all carry."""

    _states: ClassVar[dict[str, dict[str, Any]]] = {}

    def _new_state(self, **initial: Any) -> None:
        self.token = uuid.uuid4().hex
        self._initial = initial

    @property
    def _state(self) -> dict[str, Any]:
        return self._states.setdefault(self.token, copy.deepcopy(self._initial))


class _EpochBudget(_SharedState, tune.Stopper, tune.Callback):
    """`search.epoch_budget`: once the trials together have run this many epochs, the running trials stop and no
    new one starts. A resumed search counts the epochs its trials ran before."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._new_state(epochs={}, used=0, counted=False)

    def _ran(self, trial_id: str, epochs: int) -> None:
        """Trial `trial_id` has run `epochs` epochs: the total follows (one step per result, not a sum of all)."""
        state = self._state
        state["used"] += epochs - state["epochs"].get(trial_id, 0)
        state["epochs"][trial_id] = epochs

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        if not self._state["counted"]:
            self._state["counted"] = True
            for trial in trials:
                self._ran(trial.trial_id, int((trial.last_result or {}).get("training_iteration", 0) or 0))

    def __call__(self, trial_id: str, result: dict) -> bool:
        self._ran(trial_id, int(result.get("training_iteration", 0)))
        return self.reached()

    def stop_all(self) -> bool:
        return self.reached()

    def reached(self) -> bool:
        return self._state["used"] >= self.budget


class _TargetStopper(_SharedState, tune.Stopper, tune.Callback):
    """`search.stop: {metric: target}`: once a trial reaches every target, the whole search stops.

    The trial that reached it stops first; the others stop once its checkpoint is saved (stopping everything
    at the same step would drop that checkpoint: the best one).
    """

    def __init__(self, targets: dict[str, float], modes: dict[str, str]) -> None:
        self.targets, self.modes = targets, modes  # metric -> target, and "max" (reached at >=) or "min" (<=)
        self._new_state(reached=None, saved=False)

    def _hit(self, metric: str, value: float | None) -> bool:
        if value is None:
            return False
        target = self.targets[metric]
        return value <= target if self.modes[metric] == "min" else value >= target

    def __call__(self, trial_id: str, result: dict) -> bool:
        if self._state["reached"] is None and all(self._hit(m, result.get(m)) for m in self.targets):
            self._state["reached"] = trial_id
        return self._state["reached"] is not None

    def on_checkpoint(self, iteration: int, trials: list, trial: Any, checkpoint: Any, **info: Any) -> None:
        self._state["saved"] = self._state["saved"] or trial.trial_id == self._state["reached"]

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._state["saved"] = self._state["saved"] or trial.trial_id == self._state["reached"]

    def stop_all(self) -> bool:
        return self._state["saved"]

    def reached_in(self, grid: Any) -> bool:
        """Whether a trial of `grid` reached every target (the copy of this stopper that a resumed run uses
        is Ray's, unpickled from the run: this one never sees its results)."""
        for result in grid:
            history = result.metrics_dataframe
            if history is None or not set(self.targets) <= set(history.columns):
                continue
            for row in history[list(self.targets)].to_dict("records"):
                if all(self._hit(m, row[m]) for m in self.targets):
                    return True
        return False


class _Progress(tune.Callback):
    """What the user sees while trials run: a line per finished trial (its metric, epochs run, the best so far)
    and, at most every `interval` seconds and only when something changed, one line on the trials running:
    their epoch and metric, finished/total, the best so far, the time elapsed."""

    SHOWN = 4  # running trials named in a live line; the others are counted

    def __init__(self, metric: str, mode: str, total: int, interval: float) -> None:
        self.metric, self.mode, self.total, self.interval = metric, mode, total, interval
        self.done = 0
        self.best: float | None = None
        self.started = self.shown_at = time.monotonic()
        self.shown: tuple[int, str] = (0, "")
        self.counted = False

    def _better(self, value: float) -> bool:
        return self.best is None or (value > self.best if self.mode == "max" else value < self.best)

    def _best_of(self, trial: Any) -> float | None:
        value = (trial.metric_analysis.get(self.metric) or {}).get(self.mode)
        return value if finite(value) else None

    def setup(self, **info: Any) -> None:  # also when a search is resumed (this object is then Ray's copy)
        self.started = self.shown_at = time.monotonic()
        self.counted = False

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        if self.counted:
            return
        self.counted = True  # a resumed search starts with the trials it finished before
        finished = [t for t in trials if t.status in ("TERMINATED", "ERROR")]
        self.done = len(finished)
        for trial in finished:
            value = self._best_of(trial)
            if value is not None and self._better(value):
                self.best = value

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        now = time.monotonic()
        running = [t for t in trials if t.status == "RUNNING"]
        if self.interval <= 0 or now - self.shown_at < self.interval or not running:
            return
        parts = []
        for trial in running[: self.SHOWN]:
            result = trial.last_result or {}
            value, epoch = result.get(self.metric), result.get("training_iteration")
            shown = f"epoch {epoch} {self.metric}={value:.4f}" if isinstance(value, (int, float)) and epoch else "starting"
            parts.append(f"{trial.trial_id} {shown}")
        more = f", +{len(running) - self.SHOWN} more" if len(running) > self.SHOWN else ""
        pending = sum(t.status == "PENDING" for t in trials)
        best = "-" if self.best is None else f"{self.best:.4f}"
        state = (f"{len(running)} running ({', '.join(parts)}{more})" + (f", {pending} pending" if pending else "")
                 + f", best {best}")
        if (self.done, state) == self.shown:
            return
        self.shown, self.shown_at = (self.done, state), now
        log.info("[%d/%d] %.0fs: %s", self.done, self.total, now - self.started, state)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.done += 1
        result = trial.last_result or {}
        value = result.get(self.metric)
        best_of_trial = self._best_of(trial)
        if best_of_trial is not None and self._better(best_of_trial):
            self.best = best_of_trial
        shown = "-" if value is None else f"{value:.4f}"
        best = "-" if self.best is None else f"{self.best:.4f}"
        log.info(
            "[%d/%d] trial %s finished: %s=%s after %s epoch(s), best %s",
            self.done, self.total, trial.trial_id, self.metric, shown, result.get("training_iteration", 0), best,
        )

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.done += 1
        log.warning("[%d/%d] trial %s failed: %s", self.done, self.total, trial.trial_id, _error_line(trial))


def _error_line(trial: Any) -> str:
    """The last line of a trial's error file: the recipe's own exception, not Ray's wrapper."""
    path = getattr(trial, "error_file", None)
    try:
        text = Path(path).read_text() if path else ""
    except OSError:
        text = ""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1].strip() if lines else "unknown error"


def _epochs(space: Space, values: dict[str, Any]) -> int:
    """The epochs (reports) a trial of sampled `values` makes at most: the recipe's budget key; 1 without one."""
    return space.planned(space.config(values)) or 1


def max_epochs(space: Space) -> int:
    """The most epochs any trial can run: over the top of a searched budget range (`train.epochs`) and every
    option of every choice or grid (`epochs: {choice: [5, 10]}`, or `train:` options with epochs of their own)."""
    defaults, _ = space.defaults()
    most = _epochs(space, defaults)
    for param in space.params:
        if isinstance(param.dist, (Choice, Grid)):
            for label in param.dist.labels:
                values, _ = default_values(space.params, {**dict(param.condition), param.name: label})
                most = max(most, _epochs(space, values))
        elif isinstance(param.dist, Int):
            values, _ = default_values(space.params, {**dict(param.condition), param.name: param.dist.high})
            most = max(most, _epochs(space, values))
    return most


def make_scheduler(space: Space) -> TrialScheduler:
    """The scheduler named in `search.scheduler`; time is counted in epochs, up to the most a trial can run."""
    name, args = space.search.scheduler, dict(space.search.scheduler_args)
    if name == "auto":  # the default: measured in bench/quality.py (docs/search-space.md says why)
        most = max_epochs(space)
        if space.search.multi_objective or space.budget is None or most < 2:
            return FIFOScheduler()
        return _hyperband(most, seed=space.search.seed)
    if name == "fifo":
        return FIFOScheduler()
    if name == "median":
        return MedianStoppingRule(time_attr="training_iteration", **{"grace_period": 1, **args})
    args.setdefault("max_t", max_epochs(space))
    if name == "hyperband":
        return _hyperband(**args, seed=space.search.seed)
    grace = args.setdefault("grace_period", 1)
    if grace > args["max_t"]:
        raise UserError(
            f"search.scheduler.asha.grace_period is {grace} but a trial runs at most {args['max_t']} epoch(s); "
            f"lower grace_period or raise {space.budget}"
        )
    return AsyncHyperBandScheduler(time_attr="training_iteration", **args)


def _hyperband(max_t: int, grace_period: int = 1, reduction_factor: float = 3, seed: int = 0) -> TrialScheduler:
    """Asynchronous Hyperband (autotune.engine.hyperband): brackets of successive halving whose first rung is at
    grace_period * rf^s epochs (s = 0, 1, ...), the last bracket stopping nothing, each trial drawn into one with
    Hyperband's weights.

    Ray's synchronous HyperBandScheduler fills its first bracket (81 trials for 52 epochs) before it opens
    another, and waits for every trial of a bracket to reach a milestone: with a few trials at a time it
    stopped nothing. The asynchronous form (Li et al., "A System for Massively Parallel Hyperparameter
    Tuning", 2020) promotes without waiting and hedges in the same way, with brackets that stop later."""
    if grace_period >= max_t:
        raise UserError(
            f"search.scheduler: hyperband starts stopping trials at grace_period {grace_period} epoch(s), but a "
            f"trial runs at most {max_t}: nothing would be stopped; lower grace_period, raise train.epochs, or use "
            "scheduler: fifo"
        )
    return Hyperband(max_t, grace_period, reduction_factor, seed=seed)


def _set_threads(cpus: float) -> None:
    import torch

    threads = max(1, int(cpus))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def _trial(config: dict[str, Any], *, space: Space, data: Any, policy: CheckpointPolicy) -> None:
    """One Ray trial: the sampled labels become the recipe's config; the recipe trains and reports; the policy
    says which of the checkpoints it offers are kept (autotune.engine.checkpoints)."""
    from autotune import recipes

    _set_threads(space.search.resources.cpu)
    if space.custom:
        from autotune.space import import_custom

        import_custom(space.custom)
    recipe = recipes.load(space.recipe, space.base_dir)
    trial_config = space.config(config)
    node_id = ray.get_runtime_context().get_node_id()
    previous = tune.get_checkpoint()
    checkpoints = TrialCheckpoints(policy, epochs=space.planned(trial_config),
                                   resumed_from=previous.get_metadata() if previous else None)

    def report(metrics: dict[str, float], checkpoint: recipes.Checkpoint = None) -> None:
        reported = {**metrics, "node_id": node_id}
        if not checkpoints.keep(metrics, offered=checkpoint is not None):
            tune.report(reported)
            return
        with recipes.written(checkpoint) as directory:
            kept = tune.Checkpoint.from_directory(directory)
            kept.set_metadata(checkpoints.metadata())
            tune.report(reported, checkpoint=kept)

    with previous.as_directory() if previous else nullcontext(None) as checkpoint:
        recipe.train(trial_config, report, data=data, checkpoint=checkpoint)


def _trial_dirname(trial: Any) -> str:
    return f"trial_{trial.trial_id}"


def _init_ray(space: Space, options: RunOptions) -> None:
    if ray.is_initialized():
        return
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": options.verbose > 0,
        "logging_level": {0: logging.ERROR, 1: logging.WARNING}.get(options.verbose, logging.INFO),
        "configure_logging": True,
    }
    if options.address:
        try:
            ray.init(address=options.address, **kwargs)
        except Exception as err:  # Ray raises ConnectionError, RuntimeError or ValueError here
            raise UserError(
                f"cannot reach the Ray cluster at {options.address!r}: {err}; start it with `ray start --head` "
                f"(see docs/cluster.md) or drop --address to run locally"
            ) from None
        return
    kwargs["num_cpus"] = options.num_cpus or os.cpu_count() or 1
    if options.num_gpus is not None:
        kwargs["num_gpus"] = options.num_gpus
    ray.init(_temp_dir=_temp_dir(), **kwargs)


def _temp_dir() -> str:
    """The temp folder of the local Ray this process starts: short, since Unix socket paths must stay under
    107 bytes."""
    return f"/tmp/rt_{os.getpid()}"


def _sqlite(path: str) -> sqlite3.Connection:
    """A connection to the study's SQLite file that hands its writes to the OS without waiting for the disk
    (`synchronous=OFF`): each report writes to the study, and a commit that waits costs about 15 ms on a busy disk.
    A killed or crashed process loses nothing (the OS writes the file); only a crash of the OS itself could."""
    connection = sqlite3.connect(path, check_same_thread=False)
    connection.execute("PRAGMA synchronous=OFF")
    return connection


def _study_storage(run_dir: Path) -> optuna.storages.RDBStorage:
    """The run's Optuna study storage, RUN_DIR/study.db (its connections made by `_sqlite`, also when Ray
    unpickles the searcher of a resumed run)."""
    path = str(run_dir / "study.db")
    return optuna.storages.RDBStorage(f"sqlite:///{path}", engine_kwargs={"creator": partial(_sqlite, path)})


def _searcher(space: Space, run_dir: Path, points: list[dict[str, Any]]) -> Any:
    metric, mode = space.search.metric, space.search.mode
    searcher = _Searcher(
        planned_epochs=functools.partial(_epochs, space),
        space=DefineByRun(space.params),
        metric=list(metric) if len(metric) > 1 else metric[0],
        mode=list(mode) if len(mode) > 1 else mode[0],
        sampler=make_sampler(space.search, space.params),
        storage=_study_storage(run_dir),
        study_name=space.name,
        points_to_evaluate=points or None,
    )
    if space.search.max_concurrent:
        return ConcurrencyLimiter(searcher, max_concurrent=space.search.max_concurrent)
    return searcher


def _largest_node() -> dict[str, float]:
    """The most CPUs and GPUs one live node of the Ray cluster offers (a trial runs on one node)."""
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    return {kind: max((float(n.get(kind, 0)) for n in nodes), default=0.0) for kind in ("CPU", "GPU")}


def _resources(space: Space, options: RunOptions) -> dict[str, float]:
    """The trial's resources, checked against the largest node (a trial never spans nodes); a GPU share on a
    local Ray without a GPU falls back to the CPU, with a warning."""
    cpu, gpu = space.search.resources.cpu, space.search.resources.gpu
    largest = _largest_node()
    where = f"the Ray cluster at {options.address!r}" if options.address else "the local Ray"
    if gpu > 0 and largest["GPU"] == 0:
        if options.address:
            raise UserError(
                f"search.resources.gpu is {gpu} but the Ray cluster at {options.address!r} has no GPU; "
                f"add GPU nodes or set --set search.resources.gpu=0"
            )
        log.warning("search.resources.gpu is %s but this machine has no GPU: the trials run on the CPU", gpu)
        gpu = 0.0
    if gpu > largest["GPU"]:
        raise UserError(
            f"search.resources.gpu is {gpu} but the largest node of {where} has {largest['GPU']:g} GPU(s): "
            f"a trial runs on one node; lower search.resources.gpu"
        )
    if cpu > largest["CPU"]:
        raise UserError(
            f"search.resources.cpu is {cpu} but the largest node of {where} has {largest['CPU']:g} CPU(s): "
            f"a trial runs on one node; lower search.resources.cpu"
            + ("" if options.address else " or raise --num-cpus")
        )
    return {"cpu": cpu, "gpu": gpu}


def _ship_user_code(space: Space) -> None:
    """Recipes loaded from a path and `custom:` files are no importable modules on other nodes: send their
    code along by value, so the data objects they define unpickle in every trial."""
    from ray import cloudpickle

    from autotune import recipes

    modules = [recipes.load(space.recipe, space.base_dir)]
    if space.custom:
        from autotune.space import import_custom

        modules.append(import_custom(space.custom))
    for module in modules:
        if not module.__name__.startswith("autotune."):
            cloudpickle.register_pickle_by_value(module)


def _trainable(space: Space, data: Any, resources: dict[str, float], policy: CheckpointPolicy) -> Any:
    _ship_user_code(space)
    return tune.with_resources(tune.with_parameters(_trial, space=space, data=data, policy=policy), resources)


def _filesystem(location: str) -> tuple[Any, str]:
    """(pyarrow file system, path in it) of a local path or a URI, as Ray opens its storage."""
    if "://" in location:
        return pyarrow.fs.FileSystem.from_uri(location)
    return pyarrow.fs.LocalFileSystem(), location


def _saved_trials(experiment: str) -> list[dict[str, Any]]:
    """The trials (id, status, ...) of the newest experiment state Ray saved in `experiment`; [] when none."""
    fs, path = _filesystem(experiment)
    files = fs.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True))
    names = {Path(f.path).name: f.path for f in files if f.type == pyarrow.fs.FileType.File}
    states = sorted(n for n in names if n.startswith("experiment_state-") and n.endswith(".json"))
    if "tuner.pkl" not in names or not states:
        return []
    with fs.open_input_stream(names[states[-1]]) as stream:
        return [json.loads(trial) for trial, _ in json.loads(stream.read()).get("trial_data", [])]


def holds_search(storage: str, name: str) -> bool:
    """Whether the run `name` in `storage` holds a search to resume: Ray saved its state with at least one
    trial. A run stopped before its first trial (a bad setting, an unreachable cluster) holds none."""
    return bool(_saved_trials(run_location(storage, name).experiment))


def _clear(where: RunLocation) -> None:
    """Delete a run: Ray's experiment folder and autotune's state."""
    fs, path = _filesystem(where.experiment)
    if fs.get_file_info(path).type == pyarrow.fs.FileType.Directory:
        fs.delete_dir(path)
    shutil.rmtree(where.state, ignore_errors=True)


def _prepare_run(space: Space, options: RunOptions, where: RunLocation) -> bool:
    """Whether to resume. Refuses to mix a new search into an existing run without --resume/--restart; a run
    folder that holds no trial yet (a failure before the first trial) counts as absent, and is cleared."""
    exists = bool(_saved_trials(where.experiment))
    if options.restart or not exists:
        _clear(where)
    if not exists:
        if options.resume:
            raise UserError(f"there is no run to resume at {where.experiment}; run without --resume to start it")
        return False
    if options.restart:
        return False
    if not options.resume:
        raise UserError(
            f"a run named {space.name!r} already exists at {where.experiment}; pass --resume to continue it or "
            f"--restart to delete it and start again"
        )
    if where.remote and not (where.state / "study.db").is_file():  # resumed on another machine, or cache cleared
        _copy_state(where, upload=False)
    recorded = where.state / "space.fingerprint"
    if not (where.state / "study.db").is_file():
        raise UserError(
            f"the run at {where.experiment} cannot be resumed here: its Optuna study ({where.state / 'study.db'}) "
            f"is missing (resume it where it was started), or use --restart"
        )
    if recorded.exists() and recorded.read_text().strip() != space.fingerprint():
        raise UserError(
            f"the search space changed since {where.experiment} was started; a resumed search must be the same "
            f"search. Undo the change, or use --restart (or another `name:`) to start a new search"
        )
    return True


_STATE_FILES = ("space.fingerprint", "study.db", "summary.json", "trials.csv")


def _copy_state(where: RunLocation, *, upload: bool) -> None:
    """Copy autotune's state files of a run in a URI storage between its local mirror and the URI."""
    fs, path = _filesystem(where.experiment)
    local = pyarrow.fs.LocalFileSystem()
    where.state.mkdir(parents=True, exist_ok=True)
    for name in _STATE_FILES:
        mirror, remote = str(where.state / name), f"{path}/{name}"
        source, source_fs, destination, destination_fs = (
            (mirror, local, remote, fs) if upload else (remote, fs, mirror, local))
        if source_fs.get_file_info(source).type == pyarrow.fs.FileType.File:
            pyarrow.fs.copy_files(source, destination, source_filesystem=source_fs,
                                  destination_filesystem=destination_fs)


def publish_state(where: RunLocation) -> None:
    """Copy autotune's state of a run kept in a URI storage into it, beside Ray's (no-op for a local run): a
    resume on another machine (with the same home folder) fetches it back."""
    if where.remote:
        _copy_state(where, upload=True)


def _first_points(space: Space, before: list[dict[str, Any]], known: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The configurations to evaluate first (`Space.first_points`), less those the warm-start history holds, as
    many as the search runs trials."""
    points = [point for point in space.first_points(before) if point not in known]
    if len(points) > space.search.trials:
        log.info("search.trials is %d: only the first %d of %d known configurations run", space.search.trials,
                 space.search.trials, len(points))
    return points[: space.search.trials]


def run_search(
    space: Space, options: RunOptions, *, data: Any, first_points: list[dict[str, Any]] = (),
    tracking: Tracking | None = None,
) -> tuple[Any, RunLocation, float, bool]:
    """Run the trials, `first_points` (a retrain's current model) and the space's known configurations first,
    reporting them to `tracking` as they run. Returns (Ray's ResultGrid, where the run is, seconds, whether the
    search was interrupted)."""
    where = run_location(options.storage, space.name)
    scheduler = make_scheduler(space)  # before anything is written: its arguments may be wrong
    if options.warm_start and options.resume:
        raise UserError(f"--warm-start with a resumed search: the run at {where.experiment} already holds its "
                        "history; drop --warm-start to resume it, or use --restart to start it again warm")
    # read before _prepare_run: a --restart deletes the run folder, which may be the one to warm-start from
    history = warm_start.read_history(options.warm_start, space) if options.warm_start else None
    resume = _prepare_run(space, options, where)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _init_ray(space, options)
    policy = CheckpointPolicy.of(space, where.experiment)
    trainable = _trainable(space, data, _resources(space, options), policy)
    where.state.mkdir(parents=True, exist_ok=True)
    (where.state / "space.fingerprint").write_text(space.fingerprint() + "\n")
    known = warm_start.add_history(history, where.state / "study.db", space) if history else []
    metric, mode = space.search.metric[0], space.search.mode[0]
    target = _TargetStopper(dict(space.search.stop), dict(space.search.stop_modes)) if space.search.stop else None
    budget = _EpochBudget(space.search.epoch_budget) if space.search.epoch_budget else None
    stoppers = [s for s in (target, budget) if s is not None]
    progress = _Progress(metric, mode, space.search.trials, options.progress_seconds)
    if tracking:
        tracking.start(SearchStart(space.name, where.state, space.source, _flat_settings(space), resume))
        track.register(str(where.state), tracking, lambda values: _epochs(space, values))
    start = time.perf_counter()
    if resume:
        log.info("resuming the search in %s", where.experiment)
        # Trials that failed on their own stay failed (run again, they would fail again and count twice);
        # unfinished ones (running or pending when the search was killed or interrupted) continue.
        tuner = tune.Tuner.restore(
            where.experiment, trainable,
            _resume_config=tune.ResumeConfig(errored=tune.ResumeConfig.ResumeType.SKIP),
        )
    else:
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                metric=metric,
                mode=mode,
                search_alg=_searcher(space, where.state, _first_points(space, list(first_points), known)),
                scheduler=scheduler,
                num_samples=space.search.trials,
                time_budget_s=space.search.time_budget,
                reuse_actors=True,
                trial_dirname_creator=_trial_dirname,
            ),
            run_config=tune.RunConfig(
                name=space.name,
                storage_path=where.storage,
                stop=tune.stopper.CombinedStopper(*stoppers) if len(stoppers) > 1 else next(iter(stoppers), None),
                callbacks=[progress, BestSoFar(policy), JsonLogger(), CsvLogger(), TensorBoardLogger(),
                           track.TrackingCallback(str(where.state)), *stoppers],
                verbose=2 if options.verbose > 1 else 1 if options.verbose else 0,
                checkpoint_config=tune.CheckpointConfig(
                    num_to_keep=space.search.keep_checkpoints,
                    checkpoint_score_attribute=metric,
                    checkpoint_score_order=mode,
                ),
                failure_config=tune.FailureConfig(max_failures=space.search.max_failures),
            ),
        )
    try:
        grid = tuner.fit()
    finally:
        track.unregister(str(where.state))
    seconds = time.perf_counter() - start
    # Ctrl-C (Ray catches SIGINT) saves trials neither TERMINATED nor ERROR (Ray then ends them: only the saved
    # state, the one a resume starts from, tells); a time budget or a reached target does not.
    interrupted = any(t.get("status") not in ("TERMINATED", "ERROR") for t in _saved_trials(where.experiment))
    cut_short = (space.search.time_budget or space.search.sampler == "grid" or (target and target.reached_in(grid))
                 or (budget and budget.reached()))
    interrupted = interrupted or (len(grid) < space.search.trials and not cut_short)
    if not interrupted:  # an interrupted run's RUNNING trials continue when it is resumed
        _close_orphaned_trials(where.state, space, grid)
        if not where.remote:
            _set_aside_orphaned_dirs(where.state, grid)
    return grid, where, seconds, interrupted


def _flat_settings(space: Space) -> dict[str, Any]:
    """The search settings as a tracker records them: {"search.sampler": "tpe", "search.resources.cpu": 1, ...}."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping) and value:
            for key, item in value.items():
                walk(f"{prefix}.{key}", item)
        elif value not in (None, (), {}):
            flat[prefix] = list(value) if isinstance(value, tuple) else value

    walk("search", asdict(space.search))
    flat.update({"export.dir": space.export.dir, "export.promote": space.export.promote, "recipe": space.recipe})
    return flat


def _close_orphaned_trials(run_dir: Path, space: Space, grid: Any) -> None:
    """Close the study's trials left RUNNING (Optuna would wait for them forever). Ray does not tell the searcher
    about the trials running when the search ends (its epoch budget or stop target reached, a killed run not
    resumed): each is told here as `_Searcher` tells a trial, from its last result, COMPLETE if it ran its last
    epoch, else PRUNED at the last epoch it reported (several objectives: FAIL). One that never reported, whose
    configuration another trial of the study was told for, or whose parameters were not all drawn, is FAIL."""
    storage = _study_storage(run_dir)
    try:
        study = optuna.load_study(study_name=space.name, storage=storage)
    except KeyError:  # no trial was ever asked for
        return
    last = {_params_key(r.config): r.metrics for r in grid if r.config and r.metrics}
    trials = study.get_trials(deepcopy=False)
    told = {_params_key(t.params) for t in trials if t.state != optuna.trial.TrialState.RUNNING}
    for trial in trials:
        if trial.state != optuna.trial.TrialState.RUNNING:
            continue
        # A killed run's trial asked again after the resume was told under its new number: this one is a duplicate.
        metrics = {} if _params_key(trial.params) in told else last.get(_params_key(trial.params), {})
        epoch = int(metrics.get("training_iteration", 0) or 0)
        values = [metrics.get(name) for name in space.search.metric]
        try:
            state = _ended_state(values, epoch, _epochs(space, trial.params))
        except UserError:  # asked, but the run was killed before all its parameters were drawn: no configuration
            state = optuna.trial.TrialState.FAIL
        if state == optuna.trial.TrialState.PRUNED and space.search.multi_objective:
            state = optuna.trial.TrialState.FAIL  # Optuna prunes single-objective trials only
        if state == optuna.trial.TrialState.PRUNED:
            storage.set_trial_intermediate_value(trial._trial_id, epoch, values[0])
        storage.set_trial_state_values(trial._trial_id, state,
                                       None if state == optuna.trial.TrialState.FAIL else values)


def _params_key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=repr)


def _set_aside_orphaned_dirs(run_dir: Path, grid: Any) -> None:
    """Trial folders no record knows of (started after Ray's last state save, then killed) move out of the run."""
    known = {Path(r.path).name for r in grid if r.path}
    orphans = [d for d in run_dir.glob("trial_*") if d.is_dir() and d.name not in known]
    if orphans:
        aside = run_dir.parent / f"{run_dir.name}.orphaned"
        aside.mkdir(exist_ok=True)
        for folder in orphans:
            shutil.move(str(folder), aside / folder.name)
        log.info("moved %d partial trial folder(s) of the killed run to %s", len(orphans), aside)


def trial_rows(grid: Any, space: Space) -> list[dict[str, Any]]:
    """One dict per trial: id, status, epochs, whether it was stopped early, best metrics, params, error."""
    epochs_max = max_epochs(space)
    rows = []
    for result in grid:
        config = result.config or {}
        metrics = result.metrics or {}
        history = result.metrics_dataframe
        row: dict[str, Any] = {
            "trial_id": metrics.get("trial_id") or (result.path and Path(result.path).name.removeprefix("trial_")),
            "status": "ERROR" if result.error else "TERMINATED",
            "epochs": int(metrics.get("training_iteration", 0) or 0),
        }
        planned = (space.planned(space.config(config)) if config else None) or epochs_max
        row["stopped_early"] = not result.error and row["epochs"] < planned
        for name, goal in zip(space.search.metric, space.search.mode):
            values = history[name].dropna() if history is not None and name in history else []
            values = [v for v in values if finite(v)]
            row[name] = (max(values) if goal == "max" else min(values)) if values else float("nan")
        row["seconds"] = float(metrics.get("time_total_s", 0.0) or 0.0)
        row["node_id"] = metrics.get("node_id", "")
        row["error"] = track.error_text(result.error) if result.error else ""
        for key, value in config.items():
            row[f"p:{key}"] = value
        row["path"] = result.path
        rows.append(row)
    return rows


def best_checkpoint(grid: Any, space: Space) -> tuple[Any, Any, dict[str, Any]] | None:
    """The best checkpointed epoch over all trials: (its trial's Result, its Checkpoint, its metrics).

    Best by the first metric; ties are broken by the next metrics in turn (`checkpoints.rank`, the order the
    checkpoint policy keeps by), so that with several objectives the exported checkpoint is never one that another
    beats on every metric. A recipe that reports no checkpoint at all: its best reported epoch, with None for the
    checkpoint. None when no trial reported finite metrics (e.g. every trial failed at once).
    """
    best: tuple[Any, Any, dict[str, Any]] | None = None
    best_rank: tuple[float, ...] = ()
    for result in grid:
        for checkpoint, metrics in result.best_checkpoints or []:
            value = rank(metrics, space.search.metric, space.search.mode)
            if value is not None and (best is None or value > best_rank):
                best, best_rank = (result, checkpoint, metrics), value
    if best is not None or any(result.best_checkpoints for result in grid):
        return best
    for result in grid:  # nothing checkpointed: the best report
        history = result.metrics_dataframe
        for metrics in history.to_dict("records") if history is not None else []:
            value = rank(metrics, space.search.metric, space.search.mode)
            if value is not None and (best is None or value > best_rank):
                best, best_rank = (result, None, metrics), value
    return best


def shutdown() -> None:
    """Stop the Ray this process started or joined, and remove the temp folder of a local one (Ray's own logs: a
    trial's error stays in its trial folder)."""
    if ray.is_initialized():
        ray.shutdown()
    shutil.rmtree(_temp_dir(), ignore_errors=True)


def ray_running() -> bool:
    return ray.is_initialized()
