"""The one place that talks to Ray Tune: trials, scheduling, checkpoints, resume.

`run_search(space, options)` validates nothing (the caller passes a validated `Space`): it loads the data once,
starts (or joins) Ray, runs the trials with Optuna proposing configurations and a scheduler stopping weak ones,
then hands the best checkpoint to `autotune.engine.export`.
"""
from __future__ import annotations

import logging
import math
import os
import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autotune.errors import UserError
from autotune.space.types import Int, Space

# Quiet Ray before it is imported: no usage stats, no experiment banner, no sync warnings.
for _key, _value in {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AIR_NEW_OUTPUT": "0",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    "RAY_DEDUP_LOGS": "0",
}.items():
    os.environ.setdefault(_key, _value)

import optuna  # noqa: E402
import ray  # noqa: E402
from ray import tune  # noqa: E402
from ray.tune.schedulers import (  # noqa: E402
    AsyncHyperBandScheduler,
    FIFOScheduler,
    HyperBandScheduler,
    MedianStoppingRule,
    TrialScheduler,
)
from ray.tune.search import ConcurrencyLimiter  # noqa: E402
from ray.tune.search.optuna import OptunaSearch  # noqa: E402

from autotune.engine.optuna_space import DefineByRun, make_sampler  # noqa: E402

__all__ = ["RunOptions", "run_search", "trial_rows"]

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
    verbose: int = 0


class _Searcher(OptunaSearch):
    """OptunaSearch that tells Optuna a failed trial FAILED (Ray would tell COMPLETE with its last value)."""

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        super().on_trial_complete(trial_id, None if error else result, error)


class _TargetStopper(tune.Stopper, tune.Callback):
    """`search.stop: {metric: target}`: once a trial reaches every target, the whole search stops.

    The trial that reached it stops first; the others stop once its checkpoint is saved (stopping everything
    at the same step would drop that checkpoint: the best one).
    """

    def __init__(self, targets: dict[str, float], modes: dict[str, str]) -> None:
        self.targets, self.modes = targets, modes
        self.reached: str | None = None
        self.saved = False

    def _hit(self, metric: str, value: float | None) -> bool:
        if value is None:
            return False
        target = self.targets[metric]
        return value <= target if self.modes.get(metric) == "min" else value >= target

    def __call__(self, trial_id: str, result: dict) -> bool:
        if self.reached is None and all(self._hit(m, result.get(m)) for m in self.targets):
            self.reached = trial_id
        return self.reached is not None

    def on_checkpoint(self, iteration: int, trials: list, trial: Any, checkpoint: Any, **info: Any) -> None:
        self.saved = self.saved or trial.trial_id == self.reached

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.saved = self.saved or trial.trial_id == self.reached

    def stop_all(self) -> bool:
        return self.saved


class _Progress(tune.Callback):
    """One line per finished trial: its metric, epochs run and the best so far."""

    def __init__(self, metric: str, mode: str, total: int) -> None:
        self.metric, self.mode, self.total = metric, mode, total
        self.done = 0
        self.best: float | None = None

    def _better(self, value: float) -> bool:
        return self.best is None or (value > self.best if self.mode == "max" else value < self.best)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.done += 1
        result = trial.last_result or {}
        value = result.get(self.metric)
        if value is not None and self._better(value):
            self.best = value
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


def max_epochs(space: Space) -> int:
    """The most epochs a trial can run (`train.epochs`, or the top of its range when searched)."""
    for param in space.params:
        if param.name == "train.epochs" and isinstance(param.dist, Int):
            return param.dist.high
    defaults, _ = space.defaults()
    return int(space.config(defaults).get("train", {}).get("epochs", 1))


def make_scheduler(space: Space) -> TrialScheduler:
    """The scheduler named in `search.scheduler`; ASHA's `max_t` is the most epochs a trial can run."""
    name, args = space.search.scheduler, dict(space.search.scheduler_args)
    if name == "fifo":
        return FIFOScheduler()
    if name == "median":
        return MedianStoppingRule(time_attr="training_iteration", **{"grace_period": 1, **args})
    args.setdefault("max_t", max_epochs(space))
    grace = args.get("grace_period", 1)
    if name == "asha" and grace > args["max_t"]:
        raise UserError(
            f"search.scheduler.asha.grace_period is {grace} but a trial runs at most {args['max_t']} epoch(s); "
            f"lower grace_period or raise train.epochs"
        )
    if name == "hyperband":
        return HyperBandScheduler(time_attr="training_iteration", **args)
    if name == "asha":
        return AsyncHyperBandScheduler(time_attr="training_iteration", **{"grace_period": 1, **args})
    raise ValueError(f"unknown scheduler {name!r}")


def _set_threads(cpus: float) -> None:
    import torch

    threads = max(1, int(cpus))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def _trial(config: dict[str, Any], *, space: Space, data: Any) -> None:
    """One Ray trial: the sampled labels become the recipe's config; the recipe trains and reports."""
    from autotune import recipes

    _set_threads(space.search.resources.cpu)
    if space.custom:
        from autotune.space import import_custom

        import_custom(space.custom)
    recipe = recipes.load(space.recipe, space.base_dir)
    trial_config = space.config(config)
    node_id = ray.get_runtime_context().get_node_id()

    def report(metrics: dict[str, float], checkpoint_dir: str | None = None) -> None:
        checkpoint = tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        tune.report({**metrics, "node_id": node_id}, checkpoint=checkpoint)

    previous = tune.get_checkpoint()
    with previous.as_directory() if previous else nullcontext(None) as checkpoint:
        recipe.train(trial_config, report, data=data, checkpoint=checkpoint)


def _trial_dirname(trial: Any) -> str:
    return f"trial_{trial.trial_id}"


def _storage(options: RunOptions) -> str:
    if "://" in options.storage:
        return options.storage
    return str(Path(options.storage).expanduser().resolve())


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
    # Unix socket paths must stay under 107 bytes: keep Ray's temp dir short.
    ray.init(_temp_dir=f"/tmp/rt_{os.getpid()}", **kwargs)


def _searcher(space: Space, run_dir: Path, warm_start: list[dict[str, Any]]) -> Any:
    metric, mode = space.search.metric, space.search.mode
    storage = optuna.storages.RDBStorage(f"sqlite:///{run_dir / 'study.db'}")
    searcher = _Searcher(
        space=DefineByRun(space.params),
        metric=list(metric) if len(metric) > 1 else metric[0],
        mode=list(mode) if len(mode) > 1 else mode[0],
        sampler=make_sampler(space.search, space.params),
        storage=storage,
        study_name=space.name,
        points_to_evaluate=warm_start or None,
    )
    if space.search.max_concurrent:
        return ConcurrencyLimiter(searcher, max_concurrent=space.search.max_concurrent)
    return searcher


def _resources(space: Space, options: RunOptions) -> dict[str, float]:
    """The trial's resources; a GPU share on a local Ray without a GPU falls back to the CPU, with a warning."""
    cpu, gpu = space.search.resources.cpu, space.search.resources.gpu
    available = ray.cluster_resources().get("GPU", 0)
    if gpu > 0 and available == 0:
        if options.address:
            raise UserError(
                f"search.resources.gpu is {gpu} but the Ray cluster at {options.address!r} has no GPU; "
                f"add GPU nodes or set --set search.resources.gpu=0"
            )
        log.warning("search.resources.gpu is %s but this machine has no GPU: the trials run on the CPU", gpu)
        gpu = 0.0
    if gpu > available > 0:
        raise UserError(f"search.resources.gpu is {gpu} but the largest Ray offers is {available} GPU(s)")
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


def _trainable(space: Space, data: Any, resources: dict[str, float]) -> Any:
    _ship_user_code(space)
    return tune.with_resources(tune.with_parameters(_trial, space=space, data=data), resources)


def _run_dir_state(space: Space, options: RunOptions, run_dir: Path) -> bool:
    """Whether to resume; refuses to mix a new search into an existing run without --resume/--restart."""
    exists = run_dir.exists() and any(run_dir.iterdir())
    if options.restart and exists:
        shutil.rmtree(run_dir)
        return False
    if not exists:
        if options.resume:
            raise UserError(f"there is no run to resume at {run_dir}; run without --resume to start it")
        return False
    if not options.resume:
        raise UserError(
            f"a run named {space.name!r} already exists at {run_dir}; pass --resume to continue it or "
            f"--restart to delete it and start again"
        )
    if not tune.Tuner.can_restore(str(run_dir)):
        raise UserError(f"{run_dir} holds no resumable search (it stopped before its first trial); use --restart")
    recorded = run_dir / "space.fingerprint"
    if recorded.exists() and recorded.read_text().strip() != space.fingerprint():
        raise UserError(
            f"the search space changed since {run_dir} was started; a resumed search must be the same search. "
            f"Undo the change, or use --restart (or another `name:`) to start a new search"
        )
    return True


def run_search(space: Space, options: RunOptions, *, data: Any, warm_start: list[dict[str, Any]] = ()) -> tuple[Any, Path, float, bool]:
    """Run the trials. Returns (Ray's ResultGrid, the run dir, seconds, whether the search was interrupted)."""
    storage = _storage(options)
    local = "://" not in storage
    run_dir = Path(storage) / space.name if local else Path(storage.split("://", 1)[1]) / space.name
    resume = _run_dir_state(space, options, run_dir) if local else options.resume
    if local:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "space.fingerprint").write_text(space.fingerprint() + "\n")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    scheduler = make_scheduler(space)  # before Ray starts: its arguments may be wrong
    _init_ray(space, options)

    trainable = _trainable(space, data, _resources(space, options))
    metric, mode = space.search.metric[0], space.search.mode[0]
    stopper = (
        _TargetStopper(dict(space.search.stop), dict(zip(space.search.metric, space.search.mode)))
        if space.search.stop
        else None
    )
    progress = _Progress(metric, mode, space.search.trials)
    start = time.perf_counter()
    if resume:
        log.info("resuming the search in %s", run_dir)
        tuner = tune.Tuner.restore(str(run_dir), trainable, resume_errored=True)
    else:
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                metric=metric,
                mode=mode,
                search_alg=_searcher(space, run_dir, list(warm_start)),
                scheduler=scheduler,
                num_samples=space.search.trials,
                time_budget_s=space.search.time_budget,
                reuse_actors=True,
                trial_dirname_creator=_trial_dirname,
            ),
            run_config=tune.RunConfig(
                name=space.name,
                storage_path=storage,
                stop=stopper,
                callbacks=[progress, stopper] if stopper else [progress],
                verbose=2 if options.verbose > 1 else 1 if options.verbose else 0,
                checkpoint_config=tune.CheckpointConfig(
                    num_to_keep=space.search.keep_checkpoints,
                    checkpoint_score_attribute=metric,
                    checkpoint_score_order=mode,
                ),
                failure_config=tune.FailureConfig(max_failures=space.search.max_failures),
            ),
        )
    grid = tuner.fit()
    seconds = time.perf_counter() - start
    # Ctrl-C (Ray catches SIGINT) leaves trials neither TERMINATED nor ERROR; a time budget or target does not.
    interrupted = any(t.status not in ("TERMINATED", "ERROR") for t in grid._experiment_analysis.trials)
    cut_short = space.search.time_budget or space.search.sampler == "grid" or (stopper and stopper.reached)
    interrupted = interrupted or (len(grid) < space.search.trials and not cut_short)
    if local and not interrupted:  # an interrupted run's RUNNING trials continue when it is resumed
        _close_orphaned_trials(run_dir, space.name)
        _set_aside_orphaned_dirs(run_dir, grid)
    return grid, run_dir, seconds, interrupted


def _close_orphaned_trials(run_dir: Path, name: str) -> None:
    """Mark FAIL the study's trials left RUNNING by a killed or interrupted run (Optuna would wait forever)."""
    storage = optuna.storages.RDBStorage(f"sqlite:///{run_dir / 'study.db'}")
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:  # no trial was ever asked for
        return
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)


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
        planned = space.config(config).get("train", {}).get("epochs", epochs_max) if config else epochs_max
        row["stopped_early"] = not result.error and row["epochs"] < planned
        for name, goal in zip(space.search.metric, space.search.mode):
            values = history[name].dropna() if history is not None and name in history else []
            values = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
            row[name] = (max(values) if goal == "max" else min(values)) if values else float("nan")
        row["seconds"] = float(metrics.get("time_total_s", 0.0) or 0.0)
        row["node_id"] = metrics.get("node_id", "")
        row["error"] = _error_text(result.error) if result.error else ""
        for key, value in config.items():
            row[f"p:{key}"] = value
        row["path"] = result.path
        rows.append(row)
    return rows


def _error_text(error: BaseException) -> str:
    """The recipe's own exception from Ray's wrapper: its type and message, one line."""
    cause = getattr(error, "cause", None) or error
    text = str(cause).strip().splitlines()
    last = text[-1] if text else type(cause).__name__
    return last if ":" in last else f"{type(cause).__name__}: {last}"


def best_checkpoint(grid: Any, space: Space) -> tuple[Any, Any, dict[str, Any]] | None:
    """The best checkpointed epoch over all trials: (its trial's Result, its Checkpoint, its metrics).

    None when no trial saved a checkpoint with a finite metric (e.g. every trial failed at once).
    """
    metric, mode = space.search.metric[0], space.search.mode[0]
    best: tuple[Any, Any, dict[str, Any]] | None = None
    for result in grid:
        for checkpoint, metrics in result.best_checkpoints or []:
            value = metrics.get(metric)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                continue
            if best is None or (value > best[2][metric] if mode == "max" else value < best[2][metric]):
                best = (result, checkpoint, metrics)
    return best


def shutdown() -> None:
    """Stop the local Ray this process started."""
    if ray.is_initialized():
        ray.shutdown()


def ray_running() -> bool:
    return ray.is_initialized()
