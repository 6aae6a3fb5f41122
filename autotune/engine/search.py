"""The run of a search: Ray Tune runs the trials, Optuna proposes them, a scheduler stops weak ones.

`run_search(space, options, data=...)` validates nothing (the caller passes a validated `Space`): it starts (or
joins) Ray, starts or resumes the run in its storage (`autotune.engine.storage`), runs the trials and returns Ray's
ResultGrid, which `autotune.engine.result_grid` reads.
"""
from __future__ import annotations

import functools
import logging
import math
import os
import resource
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import optuna
import ray
from ray import tune

from autotune import recipes
from autotune.engine import track, warm_start
from autotune.engine.checkpoints import BestSoFar, CheckpointPolicy
from autotune.engine.export import source_digests
from autotune.engine.full_disk import StopWhenFull, full_key, raise_if_full
from autotune.engine.locks import LocalRay
from autotune.engine.lost_nodes import moving_trials
from autotune.engine.node_storage import check_every_node_writes
from autotune.engine.optuna_space import derived_seed
from autotune.engine.progress import Progress
from autotune.engine.ray_internals import (CsvLogger, ForgetEndedTrials, JsonLogger, TensorBoardLogger,
                                            auth_token_path, init_local, joined_address, limit_restored_search,
                                            lock_folder, no_callback_usage_tag, restore_from_kept_checkpoints,
                                            saves_when_trials_end, shutdown_keeping_sigterm, sigterm_kept,
                                            trial_errors_shown,
                                            whole_state_uploads, working_dir_files)
from autotune.engine.result_grid import reaches, trial_id_of
from autotune.engine.schedulers import SavedScheduler, make_scheduler, planned_epochs
from autotune.engine.searcher import (close_orphaned_trials, make_searcher, make_study_file,
                                      points_to_evaluate)
from autotune.engine.stoppers import BrokenReports, EpochBudget, TargetStopper, TimeBudget
from autotune.engine.run_records import BUDGETS, recorded_end, started_budgets, started_trials
from autotune.engine.running_clock import running_time, ticking
from autotune.engine.storage import (
    RunLocation,
    holds_search,  # autotune.cli.run imports it from here
    prepare_run,
    record_code,
    run_location,
    set_aside_orphaned_dirs,
    unfinished_trials,
)
from autotune.engine.summary import size_text
from autotune.engine.trial import trainable, trial_dirname
from autotune.engine.watchdog import watching_cluster
from autotune.errors import StorageFull, UserError
from autotune.machine import ram_bytes, usable_cpus
from autotune.paths import FULL, FULL_BELOW, blocking, owned, shown
from autotune.run_options import arguments, option
from autotune.space.types import Space
from autotune.tracking import SearchStart, Tracking

__all__ = ["RunOptions", "fits_at_once", "holds_search", "ray_running", "run_search", "shutdown"]

log = logging.getLogger("autotune")

_local_ray: LocalRay | None = None  # the registration of the local Ray this process started
_ray_temp: str | None = None  # the temp folder of the local Ray this process started
# Ray's longest Unix socket path inside its temp folder (its session folder is named for the start's time and pid),
# and the longest such a path may be (108 bytes on Linux, 104 on macOS, the final NUL included)
_SOCKET_TAIL = len("/session_2026-12-06_16-16-09_123456_4194304/sockets/plasma_store.1")
_SOCKET_MAX = (104 if sys.platform == "darwin" else 108) - 1
_RAY_STORE_SHARE = 0.3  # the share of the machine's memory Ray gives a local Ray's object store by default
_RAY_MIN_STORE = 75 * 2**20  # the smallest object store Ray starts with
_RAY_START_SPACE = 2**30  # the address space ray.init adds to this process beside the object store (its threads)
_NAMED = 3  # files named in the warning of files left in the trials' working directories


@dataclass(frozen=True)
class RunOptions:
    """How to run a search, as opposed to what to search (the space)."""

    storage: str = "runs"  # a local folder or a URI (s3://, gs://, a shared path on a cluster)
    address: str | None = None  # None: a local Ray (or a cluster this process joined); else an existing cluster
    num_cpus: int | None = None  # local Ray only; None: the CPUs this process may run on
    num_gpus: float | None = None  # local Ray only; None: what Ray detects
    resume: bool = False
    restart: bool = False
    warm_start: str | None = None  # an earlier run's folder: its finished trials become this search's history
    verbose: int = 0
    progress_seconds: float = 10.0  # a progress line while trials run, at most this often; <= 0: none
    resume_command: str = ""  # what continues the run (a command line, a call), named if its cluster is lost


def run_search(
    space: Space, options: RunOptions, *, data: Any, first_points: list[dict[str, Any]] = (),
    tracking: Tracking | None = None, terminated: list[int],
) -> tuple[Any, RunLocation, float, bool, str | None, str | None]:
    """Run the trials, `first_points` (a retrain's current model) and the space's known configurations first,
    reporting them to `tracking` as they run. Returns (Ray's ResultGrid, where the run is, seconds, whether the
    search was interrupted, why it stopped as its recipe is broken (`BrokenReports.error_in`) or None, why a
    setting ended it before its trials, or None). `terminated` gets the SIGTERMs received, `_sigterm_stops_it`: one
    received after the trials too, until the process's handler is put back."""
    space = _within_the_grid(space)
    where = run_location(options.storage, space.name)
    scheduler = make_scheduler(space)  # before anything is written: its arguments may be wrong
    # read before prepare_run: a --restart deletes the run folder, which may be the one to warm-start from
    history = warm_start.read_history(options.warm_start, space) if options.warm_start else None
    if options.resume or where.remote:
        _refuse_unusable_lock_folder()
    resume = prepare_run(space, where, resume=options.resume, restart=options.restart,
                         warm_start=bool(options.warm_start))
    recipe = recipes.load(space.recipe, space.base_dir)
    record_code(where.state, source_digests(recipe, space.custom),
                {"recipe": str(getattr(recipe, "__file__", None)), "custom": str(space.custom)}, resumed=resume)
    ended_before = _ended_before(space, where) if resume else None
    if resume:
        space = _started_count(space, where)
    _sigterm_ends_the_process()
    _init_ray(options, where.experiment)
    # a cluster this process joined itself (ray.init(address=...)) is searched as one given as --address
    options = replace(options, address=options.address or joined_address())
    policy = CheckpointPolicy.of(space, where.experiment)
    full = full_key(where.experiment)
    resources = _resources(space, options)
    if options.address:  # a node that cannot write the storage is refused before any trial runs there
        check_every_node_writes(where.experiment)
    trials = space.search.trials
    log.info("Searching %r: %d trial%s, sampler %s, scheduler %s, metric %s", space.name, trials, "s" * (trials != 1),
             space.search.sampler, space.scheduler_run()[0], "/".join(space.search.metric))  # once it can start
    run = trainable(space, data, resources, policy, full)
    where.state.mkdir(parents=True, exist_ok=True)
    (where.state / "space.fingerprint").write_text(space.fingerprint() + "\n")
    make_study_file(where.state)
    known = warm_start.add_history(history, where.state / "study.db", space) if history else []
    target = TargetStopper(dict(space.search.stop), dict(space.search.stop_modes)) if space.search.stop else None
    budget = EpochBudget(space.search.epoch_budget, where.experiment) if space.search.epoch_budget else None
    clock = TimeBudget(space.search.time_budget, where.experiment) if space.search.time_budget else None
    broken = BrokenReports()
    if tracking:
        tracking.start(SearchStart(space.name, where.state, space.source, track.flat_settings(space), resume))
        track.register(str(where.state), tracking, lambda values: planned_epochs(space, values), _reached(space))
    no_callback_usage_tag()
    whole_state_uploads()  # a kill or a save while Ray copies the search's state leaves one whole save of it
    saves_when_trials_end()  # a trial that ended before a kill is in the state a resume starts from
    restore_from_kept_checkpoints()  # a trial whose latest checkpoint is gone continues from an older one
    # on the local Ray, at most as many trials at once as it runs (see fits_at_once), a resumed search too; on a
    # cluster, search.max_concurrent
    at_once = None if options.address else fits_at_once(resources, ray.cluster_resources())
    limit = min(filter(None, (space.search.max_concurrent, at_once)), default=None)
    start = running_time()  # the time the search runs: not a suspended machine's, nor a stopped search's
    if resume:
        log.info("resuming the search in %s", where.experiment)
        # Trials that failed on their own stay failed (run again, they would fail again and count twice);
        # unfinished ones (running or pending when the search was killed or interrupted) continue.
        tuner = tune.Tuner.restore(where.experiment, run, resume_unfinished=True, resume_errored=False,
                                   restart_errored=False)
        limit_restored_search(tuner, limit)  # this run's, not its first start's
    else:
        seed = derived_seed(space.search.seed, warm_start.told(history)) if history else None
        searcher = make_searcher(space, where.state, points_to_evaluate(space, list(first_points), known), limit,
                                 seed, full)
        stoppers = [s for s in (clock, target, budget) if s] + [broken]  # the clock first: it counts at every step
        tuner = tune.Tuner(run, tune_config=_tune_config(space, searcher, scheduler),
                           run_config=_run_config(space, options, where, policy, stoppers, scheduler))
    try:
        # a trial whose node is lost is retried elsewhere, not counted as failed
        with moving_trials(where.state), trial_errors_shown(options.verbose > 0), _cluster_watched(options, where), \
                _sigterm_stops_it(terminated), ticking(), _ray_temp_full():
            grid = tuner.get_results() if ended_before else tuner.fit()  # an ended run's searcher is finished
    finally:
        track.unregister(str(where.state))
        raise_if_full(full, where.experiment, None if where.remote else where.experiment)  # Ray's own error too
    seconds = running_time() - start
    _warn_of_working_dir_files(space.name)
    ended = ended_before["ended"] if ended_before else _ended_early(space, grid, target, budget, clock, seconds)
    broken_recipe = broken.error_in(grid, space.name, cut_short=not ended and len(grid) < space.search.trials)
    interrupted = not broken_recipe and not ended_before and _interrupted(space, where, grid, ended)
    if not interrupted:  # an interrupted run's RUNNING trials continue when it is resumed
        close_orphaned_trials(where.state, space, grid)
        if not where.remote:
            set_aside_orphaned_dirs(where.state, grid, functools.partial(_ended_in_study, where, space))
    return grid, where, seconds, interrupted, broken_recipe, ended


def _warn_of_working_dir_files(name: str) -> None:
    """A warning naming the files the trials wrote into their working directories (a relative path: a recipe's own
    plot or log), which the run folder does not keep and the local Ray deletes with its temp folder."""
    files = working_dir_files(name)
    if not files:
        return
    size = size_text(sum(path.stat().st_size for path in files))
    named = [shown(Path(*path.parts[path.parts.index("working_dirs") + 1:])) for path in files[:_NAMED]]
    more = f", +{len(files) - _NAMED} more" if len(files) > _NAMED else ""
    log.warning("trials wrote %d file%s (%s) into their working directories, which the run folder does not keep (a "
                "local Ray deletes them when the search ends): %s%s; to keep a file, write it into the checkpoint "
                "folder that report() saves, or to an absolute path", len(files), "s" * (len(files) != 1), size,
                ", ".join(named), more)


@contextmanager
def _ray_temp_full() -> Iterator[None]:
    """Around the search: a full disk (ENOSPC, EDQUOT) under the local Ray's temp folder, where the driver saves the
    search's state before it is copied into the storage, is StorageFull naming that folder and RAY_TMPDIR; it was
    "the disk filled up", with no folder, or Ray's traceback. A full disk elsewhere passes."""
    try:
        yield
    except OSError as err:
        if err.errno not in FULL or _ray_temp is None or shutil.disk_usage(_ray_temp).free >= FULL_BELOW:
            raise
        raise StorageFull(f"the disk of Ray's temp folder {shown(_ray_temp)} is full "
                          f"({size_text(shutil.disk_usage(_ray_temp).free)} free), where the search's state is saved "
                          f"before it is copied into the storage; free space there, or set RAY_TMPDIR to a folder on a "
                          f"larger disk; then resume the search ({option('resume')})") from err


def _sigterm_ends_the_process() -> None:
    """Until the trials run (`_sigterm_stops_it`), a SIGTERM ends the process with status 143, as the default action
    does, also while Ray starts (`ray_internals.sigterm_kept`): Ray's handler (`sys.exit(15)`) ended a search
    SIGTERMed between Ray's start and its trials with status 15 and no line. The main thread only: Python handles
    signals there."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _end_the_process)


def _end_the_process(number: int, frame: Any) -> None:
    """A signal's handler that ends the process as the signal's default action does (status 128 + its number),
    running the `finally` blocks on the way: Ray is shut down and the run's lock released."""
    raise SystemExit(128 + number)


@contextmanager
def _sigterm_stops_it(terminated: list[int]) -> Iterator[None]:
    """A SIGTERM (what a CI runner sends at its time limit) while the trials run stops the search as a Ctrl-C does:
    it is handed to Ray Tune's handler of SIGINT and SIGUSR1, which saves the search's state, its unfinished trials
    to be resumed, and `terminated` records it. Ray's own (ray.init's: sys.exit inside Tune's loop) failed the
    trials with a traceback; a second SIGTERM aborted the process. One before Tune's loop set its handler ends the
    process at once (SystemExit 143); a second one, once the search stops, is ignored (`autotune.api.fit` keeps it
    ignored while the process ends). One after the trials ended (the export, the
    run's records) is recorded in `terminated` too, so that the run ends as it would have, then exits 143: Ray's
    handler ended the process with status 15 and no line, its summary unprinted. The main thread only: Python
    handles signals there."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    outside = signal.getsignal(signal.SIGUSR1)  # the process's: Tune's replaces it while its loop runs

    def stop(number: int, frame: Any) -> None:
        tune_stop = signal.getsignal(signal.SIGUSR1)
        if not callable(tune_stop) or tune_stop is outside:
            _end_the_process(number, frame)
        if not terminated:
            log.warning("SIGTERM received: stopping the search, its state saved to be resumed")
        terminated.append(number)
        tune_stop(number, frame)

    def after(number: int, frame: Any) -> None:
        if not terminated:
            log.warning("SIGTERM received after the trials ended: the run's export and records are finished first, "
                        "then autotune exits with status 143")
        terminated.append(number)

    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN if terminated else after)


def _ended_before(space: Space, where: RunLocation) -> dict[str, Any] | None:
    """The end an earlier session of the resumed run `where` recorded (summary.json's `ended`, None when it ran all
    its trials), when it ended rather than was interrupted, with a line saying that it does not continue: Ray saved
    its searcher as finished. None when the run was interrupted, or killed before its end was recorded."""
    summary = recorded_end(where.state)
    if summary is None:
        return None
    why = summary.get("ended") or ("its search failed" if summary.get("error") else "it ran all its trials")
    if summary.get("trackers_behind"):  # resumed to fill in a tracker
        log.info("this run ended (%s): no trial runs; %s is filled in with what it missed", why,
                 " and ".join(summary["trackers_behind"]))
        return {"ended": summary.get("ended")}
    log.warning("this run ended (%s): %s continues an interrupted run, not one that ended, so no trial runs; to "
                "search more, start a new run from its trials: %s (where export.dir is made from the name, as "
                "models/${name} is, also override export.dir=%s to export where this run does)", why, option("resume"),
                arguments(option("warm_start", where.experiment), option("overrides", f"name={space.name}-2")),
                space.export.dir)
    return {"ended": summary.get("ended")}


def _ended_in_study(where: RunLocation, space: Space) -> set[str]:
    """The ids of the Ray trials whose end the run's Optuna study recorded (COMPLETE or PRUNED)."""
    study = optuna.load_study(study_name=space.name, storage=f"sqlite:///{where.state / 'study.db'}")
    return {str(t.user_attrs.get("autotune_trial_id")) for t in study.get_trials(deepcopy=False)
            if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)}


def _cluster_watched(options: RunOptions, where: RunLocation) -> AbstractContextManager[None]:
    """On a joined cluster, a watchdog that ends the process, naming `options.resume_command`, when the cluster is
    gone (see `autotune.engine.watchdog`); none on a local Ray, nor under Ray Client (ray://: the search's loop
    runs on the cluster)."""
    if not options.address or options.address.startswith("ray://"):
        return nullcontext()
    gcs = ray.get_runtime_context().gcs_address
    cluster = options.address if options.address == gcs else f"{options.address} (GCS {gcs})"
    return watching_cluster(gcs, cluster, where.experiment, options.resume_command)


def _within_the_grid(space: Space) -> Space:
    """Under `sampler: grid`, at most one trial per grid point (Optuna's grid sampler would run points again), and
    a line that says so; a warning when the trials leave points out, or when the space searches nothing."""
    same = space.same_trials()
    if same:
        log.warning("%s", same)
    size = space.grid_size() if space.search.sampler == "grid" else None
    if size is None or space.search.trials == size:
        return space
    if space.search.trials < size:
        log.warning("search.trials is %d: %d of the grid's %d points run (search.trials: %d runs each once)",
                    space.search.trials, space.search.trials, size, size)
        return space
    log.info("the grid has %d points: %d trials run, each point once (search.trials is %d)", size, size,
             space.search.trials)
    return replace(space, search=replace(space.search, trials=size))


def _started_count(space: Space, where: RunLocation) -> Space:
    """`space` with the trial count its run `where` started with (Ray's restored search keeps it), and a warning
    when `search.trials` now differs; `space` itself for a run that did not record it. Also with its budgets where
    the run started without one now given, or with one now left out (`_started_budgets`)."""
    space = _started_budgets(space, where)
    started = started_trials(where.state)
    if started is None or started == space.search.trials:
        return space
    log.warning("search.trials is %d, but this run started with %d: a resumed search keeps its trial count; start a "
                "new run (%s, another name:, or %s) to run %s", space.search.trials, started, option("restart"),
                option("warm_start", "RUN_DIR"), "more" if space.search.trials > started else "fewer")
    return replace(space, search=replace(space.search, trials=started))


def _started_budgets(space: Space, where: RunLocation) -> Space:
    """`space` with the time and epoch budget its run `where` started with where one of the two has none: Ray's
    restored search keeps the budgets it started with, and a budget given only now was silently not applied (the
    summary then said it ran out when this session outlasted it), one left out now still ended the search unsaid;
    a warning says so. Two budgets that differ are the stoppers' to tell (`autotune.engine.stoppers`)."""
    started = started_budgets(where.state)
    for key in BUDGETS if started is not None else ():
        then, now = started.get(key), getattr(space.search, key)
        if (then is None) == (now is None):
            continue
        log.warning("search.%s is %s, but this run started %s: a resumed search keeps the budgets it started with; "
                    "start a new run (%s, another name:, or %s) to search %s", key, _budget_text(key, now),
                    "without one" if then is None else f"with {_budget_text(key, then)}", option("restart"),
                    option("warm_start", "RUN_DIR"), "with it" if then is None else "without it")
        space = replace(space, search=replace(space.search, **{key: then}))
    return space


def _budget_text(key: str, value: float | None) -> str:
    """A budget's value as the messages give it: "40 s", "300 epochs", or null."""
    if value is None:
        return "null"
    return f"{value:g} s" if key == "time_budget" else f"{value} epochs"


def _tune_config(space: Space, searcher: Any, scheduler: Any) -> tune.TuneConfig:
    """What to run: the trials Optuna proposes, the scheduler stopping weak ones, by the first metric."""
    return tune.TuneConfig(
        metric=space.search.metric[0],
        mode=space.search.mode[0],
        search_alg=searcher,
        scheduler=scheduler,
        num_samples=space.search.trials,
        reuse_actors=True,
        trial_dirname_creator=trial_dirname,
    )


def _reached(space: Space) -> Callable[[dict[str, Any]], bool] | None:
    """Whether a report reaches the space's `search.stop` target, as the stopper judges it; None without one."""
    if not space.search.stop:
        return None
    return functools.partial(reaches, targets=space.search.stop, modes=space.search.stop_modes or {})


def _run_config(space: Space, options: RunOptions, where: RunLocation, policy: CheckpointPolicy,
                stoppers: list[Any], scheduler: Any) -> tune.RunConfig:
    """How to run it: where, what ends it early, what it logs, reports and saves with its state (the scheduler's
    decisions), which checkpoints it keeps."""
    metric, mode = space.search.metric[0], space.search.mode[0]
    return tune.RunConfig(
        name=space.name,
        storage_path=where.storage,
        stop=tune.stopper.CombinedStopper(*stoppers) if len(stoppers) > 1 else next(iter(stoppers), None),
        callbacks=[Progress(metric, mode, space.search.trials, options.progress_seconds,
                            functools.partial(planned_epochs, space), policy, _reached(space)), BestSoFar(policy),
                   JsonLogger(), CsvLogger(), TensorBoardLogger(space.params, space.search.metric, space.search.mode),
                   track.TrackingCallback(str(where.state)),
                   StopWhenFull(full_key(where.experiment)), *stoppers, SavedScheduler(scheduler),
                   ForgetEndedTrials()],
        verbose=2 if options.verbose > 1 else 1 if options.verbose else 0,
        checkpoint_config=tune.CheckpointConfig(
            num_to_keep=space.search.keep_checkpoints,
            checkpoint_score_attribute=metric,
            checkpoint_score_order=mode,
        ),
        failure_config=tune.FailureConfig(max_failures=space.search.max_failures),
    )


def _ended_early(space: Space, grid: Any, target: TargetStopper | None, budget: EpochBudget | None,
                 clock: TimeBudget | None, seconds: float) -> str | None:
    """Why the search ran fewer trials than it asked for, or cut them short, when a setting ended it (a reached
    `search.stop` target, the epoch budget, the time budget `clock`); None when it ran them all or nothing of these
    ended it (a Ctrl-C). A reached target, or the time budget run out, ends it also when every trial had started
    (they were cut short: trials at once >= search.trials, or a queued trial). `seconds`: the search's time in this
    process."""
    by = target.reached_in(grid) if target else None
    if by:
        return f"trial {by} reached the stop target ({target})"
    timed_out = f"{clock} ran out" if clock and clock.ran_out(seconds) else None
    if len(grid) >= space.search.trials:
        return timed_out
    if budget and budget.reached_in(grid):
        return f"{budget} is used up"
    return timed_out


def _interrupted(space: Space, where: RunLocation, grid: Any, ended: str | None) -> bool:
    """Whether the search was interrupted (Ctrl-C, a kill): Ray saved unfinished trials (a trial the search ended
    as failed is not one, whatever a save before its failure says), or fewer trials than asked for ran while no
    setting (`ended`) ended it early."""
    if unfinished_trials(where) - {str(trial_id_of(result)) for result in grid if result.error}:
        return True
    return len(grid) < space.search.trials and not ended


def _init_ray(options: RunOptions, run: str) -> None:
    """Join the Ray cluster at `options.address`, or start a local Ray for the run `run`; nothing when this process
    runs one. A local Ray is registered while it runs; when another autotune search runs one on this machine too,
    a warning says that the two share the CPUs."""
    global _local_ray, _ray_temp
    ignored = [option(name, value) for name, value in (("num_cpus", options.num_cpus), ("num_gpus", options.num_gpus))
               if value is not None]
    if ray.is_initialized():
        ignored += [option("address", options.address)] if options.address else []
        if ignored:
            log.warning("%s not applied: this process runs a Ray already (ray.init before the search), and the "
                        "search uses it as it is (%s CPUs); give them to ray.init instead", " and ".join(ignored),
                        f"{ray.cluster_resources().get('CPU', 0):g}")
        return
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": options.verbose > 0,
        "logging_level": {0: logging.ERROR, 1: logging.WARNING}.get(options.verbose, logging.INFO),
        "configure_logging": True,
    }
    if options.address:
        if ignored:
            log.warning("%s not applied: it sizes a local Ray, and the search runs on the cluster's nodes",
                        " and ".join(ignored))
        try:
            with _sigint_deferred(), sigterm_kept():
                joined = ray.init(address=options.address, **kwargs)
        except Exception as err:  # Ray raises ConnectionError, RuntimeError or ValueError here
            raise UserError(
                f"cannot reach the Ray cluster at {options.address!r}: {err}; start it with `ray start --head` "
                f"(see docs/cluster.md), give this process the cluster's token where it uses token authentication "
                f"(RAY_AUTH_MODE=token, RAY_AUTH_TOKEN), or drop {option('address')} to run locally"
            ) from None
        log.info("Joined the Ray cluster at %s: %s", options.address,
                 cluster_text(getattr(joined, "dashboard_url", None)))
        return
    kwargs["num_cpus"] = options.num_cpus or usable_cpus()
    kwargs.update(_store_within_address_space())
    if options.num_cpus:
        _warn_past_affinity(options.num_cpus)
    if options.num_gpus is not None:
        kwargs["num_gpus"] = options.num_gpus
    try:
        _ray_temp = _temp_dir()
        _local_ray = LocalRay(run, kwargs["num_cpus"], _ray_temp)
        if _local_ray.others:
            _warn_shared_cpus(_local_ray.others, kwargs["num_cpus"])
        with _sigint_deferred(), sigterm_kept():
            init_local(_ray_temp, **kwargs)
    except OSError as err:
        raise _cannot_start_ray(err, _ray_temp) from None
    except Exception as err:  # Ray's processes did not come up (Ray raises a bare Exception, or RuntimeError)
        raise _ray_did_not_start(err) from None


@contextmanager
def _sigint_deferred() -> Iterator[None]:
    """A Ctrl-C while Ray starts raises KeyboardInterrupt once its start ended, in the main thread (where Python
    handles signals): raised inside ray.init, it left the Ray processes started so far (gcs_server, raylet, ...)
    running until this process exits, as a Ray that `shutdown` does not see (ray.is_initialized() is False). A
    handler set outside Python (not restorable) is left as it is."""
    main = threading.current_thread() is threading.main_thread()
    if not main or signal.getsignal(signal.SIGINT) is None:
        yield
        return
    caught: list[int] = []
    before = signal.signal(signal.SIGINT, lambda number, frame: caught.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)
    if caught:
        raise KeyboardInterrupt


def _warn_past_affinity(num_cpus: int) -> None:
    """Say that the local Ray is given more CPUs (`num_cpus`) than this process may run on (a batch job's
    allocation, `taskset`): its trials share those cores."""
    usable = usable_cpus()
    if num_cpus <= usable:
        return
    log.warning("%s: the local Ray counts %d CPUs, but this process may run on %d (its CPU affinity: a batch job's "
                "allocation, taskset), so its trials share those cores and run slower; leave %s out to count "
                "those it may use", option("num_cpus", num_cpus), num_cpus, usable, option("num_cpus"))


def _warn_shared_cpus(others: list[dict[str, Any]], num_cpus: int) -> None:
    """Say that this search's local Ray and those of `others` (other autotune searches) share the machine's CPUs,
    when they claim more CPUs than it has (searches whose --num-cpus split the cores are not warned)."""
    claimed = num_cpus + sum(int(o.get("num_cpus", 0)) for o in others)
    if claimed <= (os.cpu_count() or 1):
        return
    runs = ", ".join(f"{o.get('run', '?')} (pid {o.get('pid', '?')}, {o.get('num_cpus', '?')} CPUs)" for o in others)
    log.warning(
        "another autotune search runs its own Ray on this machine: %s. This search starts one too: the searches "
        "share the %d cores (%d CPUs claimed in all), and their trials run slower. To split the cores, give each "
        "search %s; to schedule both on one Ray, start it with `ray start --head` (docs/cluster.md) and "
        "run each search with %s", runs, os.cpu_count() or 1, claimed, option("num_cpus"), option("address", "auto"))


def _store_within_address_space() -> dict[str, int]:
    """The local Ray's `object_store_memory` under a limit on the process's address space (`ulimit -v`, a batch job's
    memory limit on some clusters), which every Ray process inherits and maps the whole object store into beside
    its own libraries (torch's take 3 GB): Ray sizes the store at 30 % of the machine's memory, so a limit below that
    failed Ray's start ("The current node timed out during startup", or the driver's crash in "mmap failed"). Half
    of what this process and Ray's start leave of the limit, where that is below Ray's own size; nothing where no
    limit is set."""
    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    ram = ram_bytes()
    if limit == resource.RLIM_INFINITY or ram is None:
        return {}
    store = max(_RAY_MIN_STORE, (limit - _address_space_used() - _RAY_START_SPACE) // 2)
    return {"object_store_memory": store} if store < ram * _RAY_STORE_SHARE else {}


def _address_space_used() -> int:
    """The bytes of address space this process maps now (Linux's /proc/self/statm); 0 where the system does not
    say."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _temp_dir() -> str:
    """The temp folder of the local Ray this process starts: `rt_<pid>` in RAY_TMPDIR, else in Python's temp folder
    (TMPDIR, ...), else in /tmp, with a warning, when Ray's Unix sockets there would pass their length limit."""
    name = f"rt_{os.getpid()}"
    folder = os.path.join(os.environ.get("RAY_TMPDIR") or tempfile.gettempdir(), name)
    if len(os.fsencode(folder)) + _SOCKET_TAIL <= _SOCKET_MAX:
        return folder
    log.warning("the local Ray keeps its files in /tmp/%s: %s is too long a path for its sockets (Ray adds %d bytes "
                "to it, and a socket's path holds %d at most); set RAY_TMPDIR to a shorter folder", name, folder,
                _SOCKET_TAIL, _SOCKET_MAX)
    return f"/tmp/{name}"


def _refuse_unusable_lock_folder() -> None:
    """A UserError, before anything is written, when this user cannot write the folder of Ray's file locks
    (`lock_folder`), which a resume and a URI storage's checkpoints need: another user of the machine made it theirs
    alone."""
    folder = lock_folder()
    if os.access(folder, os.W_OK | os.X_OK):
        return
    owner = f" ({owned(folder)})" if folder.is_dir() else ""
    raise UserError(
        f"cannot write Ray's lock folder {shown(folder)}{owner}: Ray locks there while it reads a run's saved state "
        f"back and a checkpoint from a URI storage, and would start this run over; set RAY_TMPDIR to a folder of your "
        f"own (export RAY_TMPDIR=/tmp/$USER: Ray keeps its lock folder and the search's temp folder there), or ask "
        f"its owner to `chmod 1777 {shown(folder)}` (as /tmp is: every user locks there)")


def _cannot_start_ray(err: OSError, temp: str | None) -> UserError:
    """The one-line error of a local Ray that could not start: it could not write its authentication token, its temp
    folder `temp` (None: Python found no temp folder it can write), or something else `err` names."""
    why = f"{err.strerror or err}" + (f": {err.filename}" if err.filename else "")
    token = auth_token_path()
    if _on_the_way(err.filename, token):
        return UserError(
            f"cannot start the local Ray: it cannot write its authentication token to {token} ({why}); make "
            f"{token.parent} writable, or keep a token in a file you can write and name it in RAY_AUTH_TOKEN_PATH "
            f"(python -c 'import secrets; print(secrets.token_hex(32))' > FILE; export RAY_AUTH_TOKEN_PATH=FILE), "
            f"or give the token itself in RAY_AUTH_TOKEN")
    if temp is None or _on_the_way(err.filename, Path(temp)):
        if isinstance(err, PermissionError) and err.filename:  # another user's: a killed search's, of the same pid
            why = blocking(os.fsdecode(err.filename))
        return UserError(
            f"cannot start the local Ray: it cannot write its temp folder{f' {temp}' if temp else ''} ({why}); set "
            f"RAY_TMPDIR to a folder you can write, with a short path (Ray's socket paths stay under "
            f"{_SOCKET_MAX + 1} bytes)")
    return UserError(f"cannot start the local Ray: {why}")


def _ray_did_not_start(err: Exception) -> UserError:
    """The one-line error of a local Ray whose processes did not come up, naming Ray's logs, which say why: its temp
    folder is left to the next search to remove (`shutdown` removed it, and with it the only record of the cause),
    where this process registered its Ray (the registration names the folder)."""
    global _ray_temp
    folders = [Path(_ray_temp, "session_latest", "logs"), Path(_ray_temp)] if _ray_temp else []
    logs = next((folder for folder in folders if folder.is_dir()), None)
    kept = logs is not None and _local_ray is not None and _local_ray.leave_temp()
    if kept:
        _ray_temp = None
    lines = str(err).strip().splitlines()
    text = f"cannot start the local Ray: {lines[0] if lines else type(err).__name__}"
    return UserError(f"{text}; Ray's logs (raylet.out and .err, gcs_server.out and .err) say why: {shown(logs)} "
                     "(the next search removes them)" if kept else text)


def _on_the_way(filename: Any, path: Path) -> bool:
    """Whether `filename` (an OSError's) is `path`, a folder above it, or a file in it."""
    if not filename:
        return False
    failed = Path(os.fsdecode(filename))
    return failed == path or failed in path.parents or path in failed.parents


def cluster_text(dashboard: str | None = None) -> str:
    """What the Ray cluster this process joined has, in words: "3 nodes, 12 CPUs, 1 GPU (the largest node: 4 CPUs,
    1 GPU); dashboard http://10.0.0.1:8265" (`dashboard`: its host:port, where the cluster runs one)."""
    nodes = _live_nodes()
    total, largest = ray.cluster_resources(), _largest_node(nodes)

    def amounts(have: dict[str, float]) -> str:
        return ", ".join(f"{have.get(kind, 0):g} {kind}{'s' * (have.get(kind, 0) != 1)}" for kind in ("CPU", "GPU"))

    return (f"{len(nodes)} node{'s' * (len(nodes) != 1)}, {amounts(total)} (the largest node: {amounts(largest)})"
            + (f"; dashboard http://{dashboard.removeprefix('http://')}" if dashboard else ""))


def _live_nodes() -> list[dict[str, Any]]:
    """The Ray cluster's live nodes, as `ray.nodes()` describes them."""
    return [n for n in ray.nodes() if n.get("Alive")]


def _largest_node(nodes: list[dict[str, Any]], kinds: tuple[str, ...] = ("CPU", "GPU")) -> dict[str, float]:
    """The most of each of `kinds` (Ray's resource names) one of the live `nodes` offers (a trial runs on one
    node)."""
    have = [n.get("Resources", {}) for n in nodes]
    return {kind: max((float(n.get(kind, 0)) for n in have), default=0.0) for kind in kinds}


def fits_at_once(trial: dict[str, Any], total: dict[str, float]) -> int | None:
    """How many trials of `trial`'s resources (`_resources`) the Ray resources `total` run at once (at least 1;
    None, no limit, for a trial that asks for no CPU, GPU or custom resource).

    A local search runs no more trials than that: a trial queued beyond them made Ray start a worker for it, then
    kill that worker when the trial took an ended trial's worker instead (Tune reuses them), a worker start per
    trial. On a cluster (`--address`) trials stay queued, as an autoscaler scales on the ones waiting."""
    needs = {"CPU": trial["cpu"], "GPU": trial["gpu"], **trial.get("custom_resources", {})}
    shares = [total.get(kind, 0.0) / need for kind, need in needs.items() if need > 0]
    return max(1, math.floor(min(shares) + 1e-9)) if shares else None


def _resources(space: Space, options: RunOptions) -> dict[str, Any]:
    """The trial's resources as Ray Tune takes them ({"cpu", "gpu", "custom_resources"}), checked against the
    largest node (a trial never spans nodes); a GPU share on a local Ray without a GPU falls back to the CPU, with
    a warning."""
    cpu, gpu, custom = space.search.resources.cpu, space.search.resources.gpu, dict(space.search.resources.custom)
    nodes = _live_nodes()
    largest = _largest_node(nodes)
    where = f"the Ray cluster at {options.address!r}" if options.address else "the local Ray"
    if gpu > 0 and largest["GPU"] == 0:
        if options.address:
            raise UserError(
                f"search.resources.gpu is {gpu} but the Ray cluster at {options.address!r} has no GPU; "
                f"add GPU nodes or set {option('overrides', 'search.resources.gpu=0')}"
            )
        log.warning("search.resources.gpu is %s but this machine has no GPU: the trials run on the CPU", gpu)
        gpu = 0.0
    if gpu > largest["GPU"]:
        raise _larger_than_a_node("gpu", gpu, largest["GPU"], where, local=False)
    if cpu > largest["CPU"]:
        raise _larger_than_a_node("cpu", cpu, largest["CPU"], where, local=not options.address)
    for name, amount in custom.items():
        _check_custom(name, amount, nodes, where, local=not options.address)
    return {"cpu": cpu, "gpu": gpu, **({"custom_resources": custom} if custom else {})}


def _check_custom(name: str, amount: float, nodes: list[dict[str, Any]], where: str, *, local: bool) -> None:
    """A UserError when no live node of `where` has `amount` of the custom resource `name`: Ray would keep every
    trial waiting for a node that has it. (The local Ray autotune starts has none.)"""
    most = _largest_node(nodes, (name,))[name]
    if most >= amount:
        return
    theirs = sorted({k for n in nodes for k in n.get("Resources", {}) if k not in _RAY_OWN and not k.startswith(
        ("node:", "accelerator_type:"))})
    has = f"the largest amount a node has is {most:g}" if most else (
        f"no node has it (their custom resources: {', '.join(theirs)})" if theirs else "no node has a custom resource")
    start = f"ray start {'--head ' * local}--resources='{{\"{name}\": {amount:g}}}'"
    then = f" and search on it with {option('address', 'auto')}" if local else ""
    raise UserError(f"search.resources.custom.{name} is {amount:g}, but on {where} {has}: a trial would wait for a "
                    f"node that has it; start {'a Ray' if local else 'a node'} with `{start}`{then}, or lower or "
                    f"remove search.resources.custom.{name}")


_RAY_OWN = ("CPU", "GPU", "memory", "object_store_memory")  # what Ray counts on every node besides custom resources


def check_fits_locally(space: Space, num_cpus: int | None) -> None:
    """Before the local Ray starts (none runs in this process): a UserError when a trial asks for more CPUs than
    it will have (`num_cpus`, else those this process may run on)."""
    cpus = num_cpus or usable_cpus()
    if not ray_running() and space.search.resources.cpu > cpus:
        raise _larger_than_a_node("cpu", space.search.resources.cpu, cpus, "the local Ray", local=True)


def _larger_than_a_node(kind: str, asked: float, largest: float, where: str, *, local: bool) -> UserError:
    """The error of a trial that asks for more of `kind` (cpu, gpu) than the largest node of `where` has."""
    return UserError(f"search.resources.{kind} is {asked} but the largest node of {where} has {largest:g} "
                     f"{kind.upper()}(s): a trial runs on one node; lower search.resources.{kind}"
                     + (f" or raise {option('num_cpus')}" if local else ""))




def shutdown() -> None:
    """Stop the Ray this process started or joined, and remove the temp folder of a local one (Ray's own logs: a
    trial's error stays in its trial folder). A Ctrl-C while Ray stops raises KeyboardInterrupt once it stopped."""
    global _local_ray, _ray_temp
    if ray.is_initialized():
        with _sigint_deferred():
            shutdown_keeping_sigterm()
    if _local_ray is not None:
        _local_ray.close()
        _local_ray = None
    if _ray_temp is not None:
        shutil.rmtree(_ray_temp, ignore_errors=True)
        _ray_temp = None


def ray_running() -> bool:
    return ray.is_initialized()
