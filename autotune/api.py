"""The Python API: `load_space` and `fit`.

    result = autotune.fit("search_spaces/digits.yaml", overrides=["search.trials=8"], num_cpus=2)
    print(result.best_config, result.best_metrics, result.model_dir)
"""
from __future__ import annotations

import json
import logging
import math
import os
import random
import shlex
import signal
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from autotune import recipes
from autotune.errors import NoHome, SearchFailed, StorageFull, UserError
from autotune.logs import configured, lines_to
from autotune.paths import expanded, home, room_for, shown, write_whole
from autotune.preflight import check_address, cluster_address, preflight
from autotune.run_options import on_the_command_line, option
from autotune.space import Choice, Grid, Space, sampler_arguments
from autotune.space import load_space as _load_space
from autotune.space.loader import OverridesNamed
from autotune.space.types import positions
from autotune.threads import trial_threads
from autotune.tracking import Tracking, TrialRecord

if TYPE_CHECKING:
    from autotune.engine.result import SearchResult
    from autotune.engine.storage import RunLocation

__all__ = ["export", "fit", "load_space", "SearchFailed", "pareto_front"]

log = logging.getLogger("autotune")

_Best = tuple[Any, Any, dict[str, Any]]  # the best trial's Ray Result, its best Checkpoint (or None), its metrics


def _schema_for(name: str, base: str | None) -> Any:
    return recipes.load(name, base).SCHEMA


def load_space(source: str | Path | Mapping[str, Any] | Space, overrides: Iterable[str] | None = None) -> Space:
    """Read and validate a search space (a YAML path, a YAML string or a dict) against its recipe's schema;
    `overrides`: `key.path=value` strings (one string alone counts as one override, not as its characters). Its
    problems name the overrides as the caller gives them (`overrides=[...]`; `--set` from `autotune`'s commands)."""
    if isinstance(source, Space):
        return source
    named = OverridesNamed(python=not on_the_command_line())
    return _load_space(source, () if overrides is None else overrides, schema_for=_schema_for, named=named)


def pareto_front(trials: pd.DataFrame, metric: tuple[str, ...], mode: tuple[str, ...]) -> list[dict[str, Any]]:
    """The trials no other trial beats on every metric at once (multi-objective searches)."""
    sign = [1.0 if m == "max" else -1.0 for m in mode]
    points = [
        (row, [s * float(row[name]) for name, s in zip(metric, sign)])
        for row in trials.to_dict("records")
        if all(isinstance(row.get(n), (int, float)) and math.isfinite(row[n]) for n in metric)
    ]

    def dominated(p: list[float]) -> bool:
        return any(all(a >= b for a, b in zip(q, p)) and any(a > b for a, b in zip(q, p)) for _, q in points)

    return [row for row, p in points if not dominated(p)]


def fit(
    space: str | Path | Mapping[str, Any] | Space,
    *,
    overrides: Iterable[str] | None = None,
    storage: str = "runs",
    address: str | None = None,
    num_cpus: int | None = None,
    num_gpus: float | None = None,
    resume: bool = False,
    restart: bool = False,
    warm_start: str | Path | None = None,
    export: bool = True,
    if_data_changed: bool = False,
    verbose: int = 0,
    progress_seconds: float = 10.0,
    resume_command: str | None = None,
) -> SearchResult | None:
    """Run the search the space describes and export the best model. Returns a `SearchResult`.

    `space` is a path, a YAML string, a dict or a loaded `Space`; `overrides` are `key.path=value` strings.
    `address` joins an existing Ray cluster ("auto" or "ray://host:port"; None: the one $RAY_ADDRESS names, else
    a local Ray; a cluster this process joined itself is used as it is); `storage` is a folder or URI for
    the run (trials, checkpoints, the Optuna study, TensorBoard logs). While trials run, a line per finished trial
    and, at most every `progress_seconds` (<= 0: never), a line on the running ones are logged: the `autotune`
    logger's records, written to stderr unless the program set up logging (`autotune.logs`). `print(result)` gives
    the summary `autotune run` ends with.
    A run of the same space that stopped before its end (killed, interrupted) is continued, as with `resume=True`;
    one that ended is refused (UserError) unless `resume` or `restart` says what to do with it.
    One process at a time runs a run: starting one that another process runs raises UserError at once, as does a
    second `fit` of this process while one runs (Ray runs one search per process). A Ctrl-C returns the result,
    interrupted; one before the first trial, or once the trials ended (while the best model is exported), raises
    KeyboardInterrupt after a line saying what continues the run.
    A SIGTERM while trials run (a CI runner's time limit) stops the search as Ctrl-C does, then raises `Terminated`
    (a SystemExit of status 143) holding the result.
    The caller's global random generators and signal handlers are left as they were, but SIGTERM's once it stopped
    the search: it stays ignored while the process ends (`Terminated`). Models are built in float32, as in the trials,
    whatever torch's default dtype the caller set (its own again after). Optuna's verbosity is the caller's again
    after (the search lowers it to WARNING while it runs).

    The space's default configuration (when it gives `default:` values) and its `search.start` points are the
    first trials. `warm_start="runs/x"` tells the sampler the finished trials of that earlier run whose parameters
    still fit the space (they are not run again); it cannot be combined with `resume`.

    `if_data_changed=True` is for retraining pipelines: it returns None, doing nothing, when the data is the
    one the current canonical model was trained on, or data a previous retrain already searched; otherwise it
    searches in a run named after the data (resumed if a previous retrain was cut short), with the current
    model's parameters as the first trial, and promotes the new model only if it beats the current one on the
    new test split.

    On a joined cluster, a search whose whole cluster is lost (its GCS unreachable for 50 s, 10 s before Ray
    itself would end the process) ends the process with exit status 4 and one line on stderr naming the run's
    folder and `resume_command`, what continues the run (`autotune run` gives its command line; None: the
    equivalent `autotune.fit(..., resume=True)` call).
    """
    _check_options(num_cpus, num_gpus, resume, restart, if_data_changed, export)
    _home_for_ray()
    with _one_fit_at_a_time(), _random_states_kept(), _float32_models(), _optuna_quiet(), \
            nullcontext() if configured() else lines_to(sys.stderr):
        from autotune.engine import search
        from autotune.engine.locks import hold_run, refuse_running
        from autotune.engine.storage import check_choice, run_location, stopped_before_its_end, unfinished_trials

        space = load_space(space, overrides)
        for problem in space.warnings:  # the recipe's warnings on the space, before its data loads
            log.warning("%s", problem)
        model_name = space.name  # a retrain's run is named after its data; its model keeps this name
        if not if_data_changed:  # a run another process runs, or --resume or its absence not fitting the run,
            where = run_location(storage, space.name)  # are refused before the data loads
            refuse_running(where)
            if not (resume or restart) and stopped_before_its_end(space, where):
                _say_continued(where.experiment, warm_start)
                resume, warm_start = True, None
            check_choice(space, where, resume=resume, restart=restart, warm_start=warm_start is not None)
        recipe = recipes.load(space.recipe, space.base_dir)
        loads = _DataLoads(space, recipe)
        given_as, address = option("address") if address else "RAY_ADDRESS", cluster_address(address)
        tracking = _check_before_ray(space, recipe, loads, address, given_as, export, retrain=if_data_changed)
        if address is None:
            search.check_fits_locally(space, num_cpus)
        elif "://" not in storage and not expanded(storage).is_absolute():
            log.warning("the storage %r is a folder relative to this machine's working directory (%s), and the "
                        "trials on the cluster's other nodes write there too: give --storage a folder every node "
                        "shares at the same path (NFS), or a URI (s3://...); see docs/cluster.md", storage,
                        Path(storage).resolve())
        first_points: list[dict[str, Any]] = []
        if if_data_changed:
            retrain = _retrain_plan(space, loads, storage)
            if retrain is None:
                return None
            space, first_points, resume, again = retrain
            restart = restart or again
        options = search.RunOptions(
            storage=storage, address=address, num_cpus=num_cpus, num_gpus=num_gpus, resume=resume,
            restart=restart, warm_start=str(warm_start) if warm_start is not None else None, verbose=verbose,
            progress_seconds=progress_seconds, resume_command=resume_command or _resume_call(if_data_changed),
        )
        terminated: list[int] = []  # the SIGTERMs received
        with _ctrl_c_told(storage, space.name, resume_command, if_data_changed), \
                hold_run(run_location(storage, space.name)), _ray_for_the_search(terminated) as handlers:
            grid, where, seconds, interrupted, broken_recipe, ended = search.run_search(
                space, options, data=None if loads.keys else loads.get(None), first_points=first_points,
                tracking=tracking, terminated=terminated)
            _ctrl_c_back(handlers)
            trials, best, records = _trials_and_best(grid, space, unfinished_trials(where) if interrupted else set(),
                                                     tracking)
            result = _search_result(space, where, trials, best, seconds, interrupted)
            result.resumed = resume
            result.ended = ended
            result.warm_start = (str(expanded(warm_start).resolve()) if warm_start is not None else
                                 (_earlier_summary(result) or {}).get("warm_start"))
            _fail_if_nothing_to_export(result, best, broken_recipe, tracking, records, where)
            if export and best is not None and not interrupted:
                try:
                    _export_best(space, recipe, loads, best, result, model_name)
                except EditedUnderTheRun as err:  # no resume exports it: the run ends, its trials recorded
                    _record_failure(result, str(err), tracking, records, where, _space_record(space, model_name))
                    raise
                except StorageFull as err:  # the run's end is not recorded: its resume exports the best trial
                    raise StorageFull(f"{err}; then resume the search ({option('resume')})") from err
            with room_for("the run's records (summary.json, trials.csv)", result.run_dir,  # its resume runs no trial
                          f"free space, then resume it ({option('resume')})"):
                _finish(result, tracking, records, where, _space_record(space, model_name))
            if result.interrupted and resume_command is None:  # `autotune run` prints its own command
                log.warning("The search was interrupted (%s): %s continues it", where.experiment,
                            _resume_call(if_data_changed))
        if terminated:  # read once the handlers are back: a SIGTERM while Ray shut down counts too
            raise Terminated(result, handlers.get(signal.SIGTERM, signal.SIG_DFL))
        return result


def _say_continued(run: str, warm_start: str | Path | None) -> None:
    """Say that the search started again continues its run `run`, which stopped before its end (a batch job requeued
    after its preemption reruns its command as it was), and that a `warm_start` given is not told again: the run's
    study holds the history it gave."""
    log.info("The run at %s stopped before its end: this search continues it, as %s does (%s starts it again)%s",
             shown(run), option("resume"), option("restart"),
             f"; {option('warm_start')} is not told again: its study holds that history" if warm_start else "")


class Terminated(SystemExit):
    """A SIGTERM stopped the search as a Ctrl-C does (its state saved, to be resumed), or came after its trials
    ended. `fit` raises it once the run's end is recorded, so that the process ends with status 143 (128 +
    SIGTERM), as the signal asked, unless the caller catches it; `result` is the search, interrupted or ended. SIGTERM
    stays ignored while the process ends; a caller that goes on puts its own handler back:
    `signal.signal(signal.SIGTERM, stop.handler)`."""

    def __init__(self, result: SearchResult, handler: Any) -> None:
        super().__init__(128 + signal.SIGTERM)
        self.result = result
        self.handler = handler


_fitting = threading.Lock()  # held while a `fit` of this process runs


@contextmanager
def _one_fit_at_a_time() -> Iterator[None]:
    """One `fit` at a time in a process (its threads): a second one at once is a UserError, not a crash deep in Ray,
    which runs one search per process."""
    if not _fitting.acquire(blocking=False):
        raise UserError("another autotune.fit runs in this process: Ray runs one search per process; wait for it to "
                        "return, or run the other search in a process of its own")
    try:
        yield
    finally:
        _fitting.release()


@contextmanager
def _random_states_kept() -> Iterator[None]:
    """The caller's global random generators (Python's `random`, numpy's, torch's CPU one where torch is imported)
    as they were before: the models built in this process, Ray's start and its schedulers draw from them, so a
    script seeded before a `fit` or `export` drew other numbers after it. The search's own draws follow
    search.seed, not these."""
    import numpy as np

    torch = sys.modules.get("torch")
    python, numpy, torch_state = random.getstate(), np.random.get_state(), torch.get_rng_state() if torch else None
    try:
        yield
    finally:
        random.setstate(python)
        np.random.set_state(numpy)
        if torch_state is not None:
            torch.set_rng_state(torch_state)


@contextmanager
def _float32_models() -> Iterator[None]:
    """torch's default dtype float32 while this process builds and tests models (the dry run, the export), as in the
    trial workers that trained them; the caller's own again after. A notebook's `torch.set_default_dtype(
    torch.float64)` built the exported model in float64, whose test on float32 images failed once every trial had
    run ("Input type (torch.FloatTensor) and weight type (torch.DoubleTensor) should be the same")."""
    torch = sys.modules.get("torch")  # not imported: its default is float32 when the recipe imports it
    dtype = torch.get_default_dtype() if torch else None
    if dtype is not None:
        torch.set_default_dtype(torch.float32)
    try:
        yield
    finally:
        if dtype is not None:
            torch.set_default_dtype(dtype)


@contextmanager
def _optuna_quiet() -> Iterator[None]:
    """Optuna quiet while `fit` or `export` runs, its verbosity the caller's again after (`engine.study.optuna_quiet`;
    the engine, and Optuna with it, load as the call starts)."""
    from autotune.engine.study import optuna_quiet

    with optuna_quiet():
        yield


@contextmanager
def _ctrl_c_told(storage: str, name: str, resume_command: str | None, if_data_changed: bool) -> Iterator[None]:
    """A Ctrl-C that reaches `fit` (one before the first trial, while Ray starts or the study is made; a second one
    while Ray stops the trials) ends it with a short KeyboardInterrupt, after a line saying what continues the run
    `name`: the resume call when it holds a search to resume, else the same call, which starts it again (`autotune
    run`, which gives `resume_command`, prints its own)."""
    try:
        yield
    except KeyboardInterrupt:
        from autotune.engine.storage import holds_search, run_location

        if resume_command is None:
            where = run_location(storage, name).experiment
            if if_data_changed or holds_search(storage, name):
                log.warning("The search was interrupted (%s): %s continues it", where, _resume_call(if_data_changed))
            else:
                log.warning("The search was interrupted before its first trial (%s holds nothing to resume): the "
                            "same call starts it again", where)
        raise KeyboardInterrupt from None


def _resume_call(if_data_changed: bool) -> str:
    """The call that continues a run from Python, as `autotune run` names its command (a retrain resumes by
    itself)."""
    return f"autotune.fit(<the same space and arguments>{'' if if_data_changed else ', resume=True'})"


def _check_options(num_cpus: Any, num_gpus: Any, resume: bool, restart: bool, if_data_changed: bool,
                   export: bool) -> None:
    """What `autotune run`'s command line refuses, refused from Python too (a UserError), before the space is read;
    the options named as the caller gives them (`autotune.run_options`)."""
    if num_cpus is not None and (isinstance(num_cpus, bool) or not isinstance(num_cpus, int) or num_cpus < 1):
        raise UserError(f"num_cpus must be a whole number >= 1 (or None: those this process may run on), got "
                        f"{num_cpus!r}")
    if num_gpus is not None and (isinstance(num_gpus, bool) or not isinstance(num_gpus, (int, float))
                                 or not math.isfinite(num_gpus) or num_gpus < 0):
        raise UserError(f"num_gpus must be a finite number >= 0 (or None: what Ray finds), got {num_gpus!r}")
    if resume and restart:
        raise UserError("resume and restart together: resume continues the run, restart deletes it; pass one")
    if if_data_changed and resume:
        raise UserError(f"{option('resume')} with {option('if_data_changed')}: a retrain resumes its own interrupted "
                        f"search by itself (its run is named after the data); drop {option('resume')}")
    if if_data_changed and not export:
        raise UserError(f"{option('no_export')} with {option('if_data_changed')}: a retrain exports and "
                        f"fingerprints its model, else the next retrain searches the same data again; drop "
                        f"{option('no_export')}, or drop {option('if_data_changed')} to search only")


def _check_before_ray(space: Space, recipe: Any, loads: _DataLoads, address: str | None, given_as: str,
                      export: bool, retrain: bool = False) -> Tracking:
    """What can fail in seconds, checked before Ray starts: the recipe on its data (export.dir writable, every
    searched model builds and fits), the cluster's address (given as `given_as`), the trackers (a retrain's goes on
    without a tracking server that does not answer, and fills it in later). Returns the trackers."""
    data = loads.get(None)
    if data is not None and not loads.keys:
        log.info("%s", recipes.described(data))
    preflight(space, recipe, data, export=export)
    check_address(address, given_as=given_as)  # ray.init retries an unreachable address for minutes
    tracking = Tracking.of(space)
    tracking.check(outage_ok=retrain)  # an unreachable tracker, or its package missing: one line before Ray starts
    if loads.keys:
        log.warning("data.%s is searched: each trial loads its own data%s", ", data.".join(loads.keys),
                    _split_searched(recipe, loads.keys))
    return tracking


def _split_searched(recipe: Any, keys: list[str]) -> str:
    """What searching `keys` costs where some decide the split of a recipe that splits with `autotune.splits`
    (`SETTINGS`: the seed, the fractions, the key or order columns): its trials are ranked on different validation
    samples, for the warning; "" otherwise."""
    from autotune.splits import SCHEME, SETTINGS, declared

    split = [key for key in keys if key in SETTINGS]
    if not split or declared(recipe) != SCHEME:
        return ""
    named = ", ".join(f"data.{key}" for key in split)
    return (f"; {named} decide{'s' * (len(split) == 1)} which samples validate, so the trials are ranked on different "
            f"validation samples, and the best may have drawn the easiest ones: set {named} once, and search the "
            "model and its training")


@contextmanager
def _ray_for_the_search(terminated: Sequence[int] = ()) -> Iterator[dict[int, Any]]:
    """Ray for the search: a Ray this process already runs is used and left running; one the search starts is
    shut down at the end. The process's SIGINT, SIGTERM and SIGUSR1 handlers are its own again after the search: Ray
    (SIGTERM) and Ray Tune set their own for a search and leave them, so the next Ctrl-C of a notebook or script did
    nothing. Once a SIGTERM stopped the search (`terminated`), SIGTERM stays ignored: the process is ending, and a
    second one with the default handler back killed `autotune run` as it printed the summary and the command that
    resumes it (exit -15). It yields the handlers it found, by signal number. PYTHONBREAKPOINT is the process's own
    again once the Ray the search started or joined is shut down: ray.init points it at Ray's debugger and leaves it,
    so the program's next `breakpoint()` was skipped (an ERROR line: "Module 'debugpy>=1.8.0' cannot be loaded"),
    or, with debugpy installed (as Jupyter has it), raised "AttributeError: 'Worker' object has no attribute
    'core_worker'"."""
    from autotune.engine import search

    started_ray = not search.ray_running()
    main = threading.current_thread() is threading.main_thread()  # handlers are set in the main thread only
    handlers = {number: signal.getsignal(number)
                for number in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)} if main else {}
    breakpoint_hook = os.environ.get("PYTHONBREAKPOINT")
    try:
        yield dict(handlers)
    finally:
        try:
            if started_ray:
                search.shutdown()  # a Ctrl-C while Ray stops: KeyboardInterrupt once it stopped
        finally:
            if started_ray:
                _set_environ("PYTHONBREAKPOINT", breakpoint_hook)
            for number, handler in handlers.items():
                if handler is not None and not (number == signal.SIGTERM and terminated):  # None: set outside Python
                    signal.signal(number, handler)
            if main and terminated:  # one received as the handlers were put back too
                signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _ctrl_c_back(handlers: dict[int, Any]) -> None:
    """The caller's SIGINT handler again once the trials ended (`handlers`, as `_ray_for_the_search` found them): Ray
    Tune's, which it leaves, only asks a running search to stop, so a Ctrl-C (a notebook's Stop) while the best model
    was exported and tested did nothing, and `fit` returned as if none had come. A KeyboardInterrupt from there on
    leaves the run to a resume, which exports it."""
    handler = handlers.get(signal.SIGINT)
    if handler is not None:  # None: set outside Python, or not the main thread
        signal.signal(signal.SIGINT, handler)


def _set_environ(name: str, value: str | None) -> None:
    """Set the environment variable `name` to `value`; None: unset it."""
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def _trials_and_best(grid: Any, space: Space, unfinished: set[str],
                     tracking: Tracking) -> tuple[pd.DataFrame, _Best | None, list[TrialRecord]]:
    """The trials as a DataFrame, in the order they started (`unfinished`: an interrupted search's trials that a
    resume continues), the best checkpoint (`result_grid.best_checkpoint`; of equals, the first started), and the
    trials as `tracking`'s trackers record them (none without a tracker)."""
    from autotune.engine.result_grid import best_checkpoint, in_start_order, trial_rows
    from autotune.engine.track import trial_records

    grid = in_start_order(grid, space.name)  # Ray's grid of a resumed search is in another order
    rows = trial_rows(grid, space, unfinished)
    records = trial_records(grid, rows, space) if tracking else []
    return _trials_frame(rows, space), best_checkpoint(grid, space), records


def _fail_if_nothing_to_export(result: SearchResult, best: _Best | None, broken_recipe: str | None,
                               tracking: Tracking, records: list[TrialRecord], where: RunLocation) -> None:
    """Raises SearchFailed, told to the trackers, when a search that ran to its end has no best (no trial reported),
    every trial failed (some perhaps after reporting), or its broken recipe stopped it (a report without the
    searched metric, whatever its trials reported before; its first trials' same error): no model of such a search
    is exported. Its
    summary.json and trials.csv are written first, so that `autotune report` shows each trial's error."""
    trials = result.trials
    every_one_failed = not trials.empty and bool((trials["status"] == "ERROR").all())
    if result.interrupted or (best is not None and not every_one_failed and not broken_recipe):
        return
    failure = _failure_text(trials, result.metric[0], broken_recipe, result.ended)
    _record_failure(result, failure, tracking, records, where)
    raise SearchFailed(failure)


def _record_failure(result: SearchResult, failure: str, tracking: Tracking, records: list[TrialRecord],
                    where: RunLocation, space: dict[str, Any] | None = None) -> None:
    """Record the end of a search that failed (`failure`, why): summary.json with its error and trials.csv, what
    `autotune report` and `autotune export --trial` read, the trackers' end, the state published to a URI storage."""
    from autotune.engine.storage import publish_state

    _write_summary(result, error=failure, space=space)
    tracking.finish({"name": result.name, "error": failure}, None, "failed", records)
    publish_state(where)


def _trial_ids(trials: pd.DataFrame) -> list[str]:
    """The search's trial ids, as trials.csv lists them."""
    return [str(t) for t in trials["trial_id"]] if "trial_id" in trials else []


def _search_result(space: Space, where: RunLocation, trials: pd.DataFrame, best: _Best | None, seconds: float,
                   interrupted: bool) -> SearchResult:
    """The `SearchResult` of the search, before its export: the best trial's parameters, config and metrics, and
    with several objectives the Pareto front."""
    from autotune.engine.lost_nodes import read_moves
    from autotune.engine.result import SearchResult
    from autotune.engine.track import metrics_of

    result = SearchResult(
        name=space.name, run_dir=where.state, metric=space.search.metric, mode=space.search.mode,
        best_trial_id=None, best_params={}, best_config={}, best_metrics={}, trials=trials, seconds=seconds,
        interrupted=interrupted, run_uri=where.experiment if where.remote else None,
        moved=read_moves(where.state, _trial_ids(trials)), positions=positions(space.params),
    )
    if best is not None:
        best_result, _, best_metrics = best
        result.best_trial_id = Path(best_result.path).name.removeprefix("trial_")
        result.best_params = dict(best_result.config)
        result.best_config = space.config(result.best_params)
        epoch = best_metrics.get("training_iteration")
        result.best_metrics = {**({"epoch": float(epoch)} if isinstance(epoch, (int, float)) else {}),
                               **metrics_of(best_metrics)}  # the recipe's own (its epoch too), not Ray's pid, time
    if space.search.multi_objective:
        result.pareto = pareto_front(trials, space.search.metric, space.search.mode)
    return result


def _export_best(space: Space, recipe: Any, loads: _DataLoads, best: _Best, result: SearchResult,
                 model_name: str) -> None:
    """Export the best checkpoint (`_export`) as the model `model_name`; a recipe without export(), or that reported
    no checkpoint, exports nothing, with a line saying so."""
    best_result, checkpoint, _ = best
    if not hasattr(recipe, "export"):
        log.info("recipe %r defines no export(): no model exported (the best trial's folder: %s)",
                 space.recipe, best_result.path)
    elif checkpoint is None:
        log.info("recipe %r reported no checkpoint: no model exported", space.recipe)
    else:
        with checkpoint.as_directory() as checkpoint_dir:
            _export(space, recipe, loads, Path(checkpoint_dir), result, model_name)


def _finish(result: SearchResult, tracking: Tracking, records: list[TrialRecord], where: RunLocation,
            space: dict[str, Any]) -> None:
    """Record the search's end: summary.json (with `space`, `_space_record`) and trials.csv, the trackers' end (with
    the model when it was promoted), and autotune's state published to a URI storage."""
    from autotune.engine.storage import publish_state

    summary = _write_summary(result, space=space)
    promoted = bool(result.promotion and result.promotion.get("promoted"))
    tracking.finish(summary, result.model_dir if promoted else None,
                    "interrupted" if result.interrupted else "finished", records)
    result.tracked = tracking.where()
    _record_behind(result.run_dir, tracking.behind())
    publish_state(where)


def _record_behind(run_dir: Path, behind: list[str]) -> None:
    """summary.json's `trackers_behind`: the trackers that missed part of the search and fill it in when the run is
    resumed (a retrain resumes such a run rather than skip its data as searched); gone once none is behind."""
    file = run_dir / "summary.json"
    if not file.is_file():
        return
    summary = json.loads(file.read_text())
    if summary.get("trackers_behind", []) != behind:
        summary = {k: v for k, v in summary.items() if k != "trackers_behind"} | (
            {"trackers_behind": behind} if behind else {})
        file.write_text(json.dumps(summary, indent=2, default=str) + "\n")


def _earlier_summary(result: Any) -> dict[str, Any] | None:
    """The summary.json an earlier session of this resumed run wrote at its end; None for a new run, or one whose
    sessions were all killed before their end was recorded."""
    file = result.run_dir / "summary.json"
    if not result.resumed or not file.is_file():
        return None
    try:
        summary = json.loads(file.read_text())
    except ValueError:
        return None
    return summary if isinstance(summary, dict) else None


def _keep_recorded_export(result: Any, current: dict[str, Any] | None) -> bool:
    """Whether an earlier session of this run ended with the export of the same best checkpoint (a finished run
    resumed): then its decision stands, as its summary recorded it (`result` takes it), and nothing is exported.
    Not where the canonical model is gone (`current` None): the checkpoint is exported again."""
    earlier = _earlier_summary(result) or {}

    def as_json(value: Any) -> str:
        return json.dumps(value, sort_keys=True, default=str)

    if current is None or not (earlier.get("promotion") and earlier.get("model_dir") and not earlier.get("interrupted")
            and earlier.get("best_trial_id") == result.best_trial_id
            and as_json(earlier.get("best_metrics")) == as_json(result.best_metrics)):
        return False
    result.promotion = dict(earlier["promotion"])
    result.test_metrics = dict(earlier.get("test_metrics") or {})
    result.model_dir = Path(earlier["model_dir"])
    mine = Path(result.promotion.get("version_dir") or "").name
    now = current.get("version")
    log.info("this run exported its best checkpoint when it finished (version %s): not exported again; the "
             "canonical model is %s", mine or "?", "that version" if now == mine else f"now version {now}")
    return True


def _exported_before(current: dict[str, Any] | None, card: dict[str, Any]) -> bool:
    """Whether the canonical model's card is this run's export of the same best checkpoint: a run killed after its
    export, before its end was recorded, and resumed (exported again, it would be judged against itself)."""
    same = ("run_dir", "run_uri", "trial_id", "metrics")
    return current is not None and all(current.get(key) == card.get(key) for key in same)


def current_card(space: Space) -> dict[str, Any] | None:
    """The model card of the canonical model at `export.dir`, or None when there is none."""
    card = expanded(space.export.dir) / "model.json"
    return json.loads(card.read_text()) if card.is_file() else None


class _DataLoads:
    """The recipe's data, loaded once per distinct data section the trials (or models) load: the searched data keys
    that change what is loaded (`keys`: e.g. `val_fraction`, an image folder's `image_size`; not the recipe's
    TRAINING_ONLY_DATA_KEYS), and what the recipe derives from the rest of a configuration (`data_for`)."""

    def __init__(self, space: Space, recipe: Any, why: str = "it is read once, before the first trial starts") -> None:
        self.recipe = recipe
        self.why = why  # what the load is for, in the line of a slow one (`_told_when_slow`)
        self.defaults = space.config(space.defaults()[0])
        self.base = self.defaults.get("data", {})
        self.training_only = set(getattr(recipe, "TRAINING_ONLY_DATA_KEYS", ()))
        self.keys = sorted(_searched_data_keys(space) - self.training_only)
        self._loaded: dict[str, Any] = {}

    def section(self, config: Mapping[str, Any] | None) -> dict[str, Any]:
        """The data section the resolved `config` loads (None: the space's defaults): the space's data settings
        with that config's values of the searched loading keys, completed by the recipe."""
        data = (config or {}).get("data", {})
        settings = {k: data.get(k, self.base.get(k)) for k in self.keys}
        full = {**self.defaults, **(config or {}), "data": {**self.base, **settings}}
        return recipes.data_section(self.recipe, full)

    def differing(self, one: Mapping[str, Any] | None, other: Mapping[str, Any] | None) -> list[tuple[str, Any, Any]]:
        """The loading keys whose values differ between two configs' data: (key, one's value, other's value)."""
        a, b = self.section(one), self.section(other)
        return [(k, a.get(k), b.get(k)) for k in sorted((set(a) | set(b)) - self.training_only) if a.get(k) != b.get(k)]

    def get(self, config: Mapping[str, Any] | None) -> Any:
        """The data as the trial (or model) of the resolved `config` loaded it (None: the space's defaults)."""
        section = self.section(config)
        key = json.dumps({k: v for k, v in section.items() if k not in self.training_only}, sort_keys=True,
                         default=repr)
        if key not in self._loaded:
            with _told_when_slow(self.why):
                self._loaded[key] = recipes.load_data(self.recipe, section)
        return self._loaded[key]


LOAD_NOTICE_S = 10.0  # a load still running after this long is told of


@contextmanager
def _told_when_slow(why: str) -> Iterator[None]:
    """One line when the block (a load of the data) still runs after LOAD_NOTICE_S, saying `why` it is loaded: a
    table of millions of rows is read, checked and encoded for a minute or more before the first trial, and the run
    said nothing meanwhile."""
    timer = threading.Timer(LOAD_NOTICE_S, log.info, args=("loading the data: %.0f s so far (%s)", LOAD_NOTICE_S, why))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _searched_data_keys(space: Space) -> set[str]:
    """The keys of the data section that a trial may set to another value than the defaults' (`data.size`,
    `data.transform[a].x` -> size, transform; a choice of whole data sections: every key of its options)."""
    keys: set[str] = set()
    for param in space.params:
        head, _, rest = param.name.partition(".")
        if head != "data" and not head.startswith("data["):
            continue
        if rest:
            keys.add(rest.split(".")[0].split("[")[0])
        dist = param.dist
        options = dist.options if isinstance(dist, Choice) else dist.values if isinstance(dist, Grid) else ()
        keys |= {k for option in options if isinstance(option, Mapping) for k in option}
    return keys


def _retrain_plan(space: Space, loads: _DataLoads,
                  storage: str) -> tuple[Space, list[dict[str, Any]], bool, bool] | None:
    """(space renamed after the data, warm-start points, resume?, restart?) or None when there is nothing to do: the
    data is the current model's, or a previous run searched it already (the model card's `history`), unless that run
    was stopped before its end was recorded (no summary.json): then it is resumed, to finish. A previous run that
    failed, exporting nothing (`_failed_before`), did not search it: it is started again from the start."""
    from autotune.engine.locks import running
    from autotune.engine.optuna_space import derived_seed
    from autotune.engine.run_records import recorded_summary
    from autotune.engine.storage import holds_search, run_location

    card = current_card(space)
    data = loads.get(card.get("config") if card else None)  # loaded as the current model's was: its searched keys
    fingerprint = recipes.fingerprint(data)
    if not fingerprint:
        raise UserError(f"recipe {space.recipe!r} gives its data no fingerprint: --if-data-changed cannot compare it")
    name = f"{space.name}-data-{fingerprint[:8]}"
    who = running(run_location(storage, name))
    if who:  # an overlapping job (cron): this data is being searched already
        log.info("The data (fingerprint %s) is being searched already (run %s, %s): nothing to do.",
                 fingerprint[:12], name, who)
        return None
    held = holds_search(storage, name)
    summary = recorded_summary(run_location(storage, name).state) if held else None
    failed = _failed_before(summary)
    unrecorded = held and summary is None
    behind = (summary or {}).get("trackers_behind") if held else None
    if unrecorded:
        log.info("The search of this data (run %s) was stopped before its end was recorded: resuming it.", name)
    elif behind:
        log.info("The search of this data (run %s) ended, but %s missed part of it: resuming the run to fill it in "
                 "(no trial runs).", name, " and ".join(behind))
    elif card and card.get("data_fingerprint") == fingerprint:
        log.info("The data is unchanged (fingerprint %s) since %s was trained: nothing to do.",
                 fingerprint[:12], space.export.dir)
        return None
    tried = [h for h in (card or {}).get("history", []) if h.get("data_fingerprint") == fingerprint]
    if tried and not unrecorded and not behind:
        last = tried[-1]
        log.info("The data (fingerprint %s) was searched already (run %s, %s): its model was %s. Nothing to do.",
                 fingerprint[:12], last.get("run", "?"), last.get("created", "?"), _verdict(last, card))
        return None
    warm = _current_point(space, card)
    if failed:
        log.info("The last search of this data (run %s) failed, exporting no model (%s): searching it again from the "
                 "start.", name, failed)
    if not unrecorded and not behind:
        if card is None:
            log.info("There is no current model at %s yet: searching the data (fingerprint %s).",
                     space.export.dir, fingerprint[:12])
        else:
            log.info("The data changed (fingerprint %s, the current model's is %s): searching again%s.",
                     fingerprint[:12], str(card.get("data_fingerprint") or "unknown")[:12],
                     ", starting from the current model's configuration" if warm else "")
    promote = "if_better" if space.export.promote == "always" else space.export.promote
    space = replace(
        space, name=name,
        search=replace(space.search, seed=derived_seed(space.search.seed, fingerprint)),
        export=replace(space.export, promote=promote),
    )
    return space, warm, held and not failed, bool(failed)


def _failed_before(summary: Mapping[str, Any] | None) -> str | None:
    """The error of a retrain's earlier run whose search failed and exported no model (its summary.json's `error`):
    the data counts as not searched, so the run is started again rather than resumed (resumed, an ended run runs
    no trial and fails with its old error; with another space, it is refused). None for any other run."""
    if not summary or not summary.get("error") or summary.get("model_dir") or summary.get("interrupted"):
        return None
    return str(summary["error"])


def _verdict(entry: Mapping[str, Any], card: Mapping[str, Any]) -> str:
    """What became of the model of a history `entry`: "promoted (its reason)", "not promoted (its reason)", and
    ", then rolled back (to version V, DATE)" when `autotune rollback` left it (its history entry says so)."""
    from autotune.engine.export import rolled_back_from

    verdict = f"{'promoted' if entry.get('promoted') else 'not promoted'} ({entry.get('reason', '')})"
    left = [h for h in card.get("history", []) if rolled_back_from(h) == entry.get("version")]
    if left:  # the data stays searched: a rollback is a decision about its model
        verdict += f", then rolled back (to version {left[-1].get('version')}, {left[-1].get('created', '?')})"
    return verdict


def _current_point(space: Space, card: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The current model's parameters as the retrain's first trial, those the space still searches; none when one
    of them no longer fits its distribution (a narrowed range, a dropped option), which a line says."""
    from autotune.space.points import complete_point

    names = {p.name for p in space.params}
    point = {k: v for k, v in (card or {}).get("params", {}).items() if k in names}
    problems = complete_point(space.params, point)[1] if point else []
    if problems:
        name, message, _ = problems[0]
        log.info("The current model's configuration no longer fits the space (%s %s): the retrain starts without it.",
                 name, message)
        return []
    return [point] if point else []


def _trials_frame(rows: list[dict[str, Any]], space: Space) -> pd.DataFrame:
    """The trials as a DataFrame, with its columns even when no trial started (a search interrupted at once);
    `best_epoch`, `not_finite_from` and the integer parameters as whole numbers where a trial has one (trials.csv
    writes 2, not 2.0, also for a conditional parameter, blank where its option was not chosen); the parameters in
    the space's order (`autotune check`'s), not in the order the trials first sampled them."""
    columns = ["trial_id", "status", "epochs", "best_epoch", "stopped_early", *space.search.metric, "not_finite_from",
               "seconds", "node_id", "error", "path"]
    if not rows:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(rows)
    whole = [column for column in frame if column.startswith("p:") and _whole_numbers(column, rows)]
    return frame[_params_in_order(list(frame), space)].astype(
        {"best_epoch": "Int64", "not_finite_from": "Int64", **dict.fromkeys(whole, "Int64")})


def _whole_numbers(column: str, rows: list[dict[str, Any]]) -> bool:
    """Whether every trial that has a value in `column` has an integer there (not a bool), and one trial does."""
    values = [row[column] for row in rows if row.get(column) is not None]
    return bool(values) and all(isinstance(v, int) and not isinstance(v, bool) for v in values)


def _params_in_order(columns: list[str], space: Space) -> list[str]:
    """`columns` with the parameters' (`p:NAME`) where the first of them is, in the order of `space.params`."""
    order = {f"p:{param.name}": i for i, param in enumerate(space.params)}
    params = sorted((c for c in columns if c.startswith("p:")), key=lambda c: order.get(c, len(order)))
    first = next((i for i, c in enumerate(columns) if c.startswith("p:")), len(columns))
    rest = [c for c in columns if not c.startswith("p:")]
    return rest[:first] + params + rest[first:]


def _failure_text(trials: pd.DataFrame, metric: str, broken_recipe: str | None = None,
                  ended: str | None = None) -> str:
    """Why a search exports nothing, in one line: `broken_recipe`, why its broken recipe stopped it (a report
    without a searched metric, or its first trials' same error: `BrokenReports.error_in`); `metric`, the first
    searched metric;
    `ended`, why a setting ended the search early (a time budget that ran out before any report)."""
    failed = trials[trials["error"].fillna("").astype(str) != ""] if "error" in trials else trials.iloc[:0]
    errors = failed["error"].tolist()
    if broken_recipe:
        return f"{len(errors)} of {len(trials)} trials failed, and {broken_recipe}"
    if not errors:
        epochs = int(pd.to_numeric(trials.get("epochs", pd.Series(dtype=float))).sum())
        if epochs:  # trials reported, but no value of the metric was a finite number
            return (f"no report held a finite value of {metric!r} ({len(trials)} trials, {epochs} epochs reported, "
                    f"each NaN or infinite): check how the recipe computes it; a trial that cannot go on (its loss "
                    f"diverged) can raise autotune.errors.Diverged")
        if ended:
            return (f"{ended} before any trial finished an epoch: raise it (it counts the trials' start-up too, "
                    "a few seconds each)")
        return "no trial reported a metric; check that the recipe calls report() each epoch"
    if len(errors) < len(trials):  # the others reported nothing (stopped by the time budget before a report)
        return (f"{len(errors)} of {len(trials)} trials failed and the others reported nothing"
                f"{_most_common_error(failed)}")
    return f"all {len(trials)} trials failed{_most_common_error(failed)}"


def _most_common_error(failed: pd.DataFrame) -> str:
    """The error of the first trial (in the order they started) with the most common kind of error, and the kinds
    where they differ: "; trial ID's error: ValueError: ..." or " (3 ValueError, 1 MemoryError); trial ID's ..."."""
    kinds = failed["error"].astype(str).str.split(":").str[0]
    counts = kinds.value_counts(sort=False)  # in the trials' order, so ties go to the first
    most = max(counts.index, key=lambda kind: counts[kind])
    shown = failed[kinds == most].iloc[0]
    kinds_text = ", ".join(f"{counts[kind]} {kind}" for kind in sorted(counts.index, key=lambda k: -counts[k]))
    mixed = f" ({kinds_text})" if len(counts) > 1 else ""
    from autotune.engine.summary import traceback_file

    file = traceback_file(shown.get("path"))
    return f"{mixed}; trial {shown['trial_id']}'s error: {shown['error']}" + (f"; its traceback: {file}" if file else "")


def _top_trials(result: Any, k: int = 5) -> list[dict[str, Any]]:
    metric, mode = result.metric[0], result.mode[0]
    ok = result.trials[result.trials["status"] != "ERROR"]
    ranked = ok.sort_values(metric, ascending=mode == "min").head(k)
    columns = ["trial_id", *result.metric, "epochs", *[c for c in ranked.columns if c.startswith("p:")]]
    return json.loads(ranked[columns].to_json(orient="records", double_precision=15))  # pandas' default: 10


def _search_card(space: Space, result: Any) -> dict[str, Any]:
    """The model card's `search`: what the search was and how it was seeded, so that it can be run again (the
    sampler's seed of a warm-started search is derived from `seed` and the trials it was told), the threads each
    trial trained on, which `autotune train MODEL_DIR` uses again, and `trials_run`: how many configurations the
    model was chosen among (`trials` is how many were asked for; a time budget or a stop ends a search sooner).
    The sampler's arguments are those it was built with, autotune's defaults among them (`multivariate` for tpe),
    and `scheduler: auto` is recorded with what it ran as for this space (`scheduler_run`): the search as it ran,
    for a reader who runs it again with Optuna and Ray alone."""
    search = space.search
    ran, ran_args = space.scheduler_run()
    return {"metric": list(search.metric), "mode": list(search.mode), "trials": search.trials,
            "trials_run": len(result.trials), "seed": search.seed, "sampler": search.sampler,
            "sampler_args": sampler_arguments(search, space.params), "scheduler": search.scheduler,
            "scheduler_args": dict(search.scheduler_args),
            **({"scheduler_run": {"name": ran, "args": dict(ran_args)}} if search.scheduler == "auto" else {}),
            "max_concurrent": search.max_concurrent,
            "threads": trial_threads(search.resources.cpu),
            **({"warm_start": result.warm_start} if result.warm_start else {})}


def _export(space: Space, recipe: Any, loads: _DataLoads, checkpoint_dir: Path, result: Any,
            model_name: str, chosen: str | None = None) -> None:
    """Export the best checkpoint as the model `model_name` (the card's `name`; `run_name` is the run's, which
    differs for a retrain). The new model is written and tested with the data its trial loaded. The
    current model (`promote: if_better`) is tested on that same data, or, when the search samples data keys that
    change what is loaded (e.g. an image size) and its values differ, on the same data loaded with its own
    values: the same test images, each as its model takes them. The card says which. `chosen`: why it is promoted
    whatever export.promote says (`autotune export --trial`)."""
    from autotune.engine.export import export_model, versions_dir

    if chosen is None and _keep_recorded_export(result, current_card(space)):
        return
    data = loads.get(result.best_config)
    card = _model_card(space, recipe, result, model_name, data)
    current = current_card(space)
    if _exported_before(current, card):
        result.test_metrics = dict(current.get("test_metrics") or {})
        result.model_dir = expanded(space.export.dir).absolute()
        before = current.get("promotion", {})
        then = before.get("reason", "promoted")  # the export's reason then, no longer so now
        result.promotion = {**before, "promoted": True,
                            "reason": f"exported by this run before it was stopped ({then})",
                            "version_dir": str(versions_dir(result.model_dir) / str(current.get("version")))}
        if chosen is None:  # `autotune export --trial` says it in its own promotion line
            log.info("the canonical model is already this run's best checkpoint (exported before the run was stopped)")
        return
    differing = loads.differing(result.best_config, current.get("config") if current else None)
    current_data = loads.get(current.get("config")) if current and differing else data
    compared_on = "on the same test split" if not differing else "on the same test images, each model with its own " + (
        ", ".join(f"data.{k} (new {new!r}, current {old!r})" for k, new, old in differing))
    twin, twin_mode = space.test_twin()  # the held-out metric that decides `promote: if_better`
    resplit = _resplit(space, recipe, current, result.best_config) if space.export.promote == "if_better" else None

    fingerprint = recipes.fingerprint(data)

    def evaluate(model_dir: Path, data: Any) -> dict[str, float]:
        return _evaluate(recipe, model_dir, data)

    def evaluate_current(model_dir: Path) -> dict[str, float]:
        if resplit:  # untestable on this split, as a model missing a column is: the new one is promoted
            raise UserError(resplit)
        return evaluate(model_dir, current_data)

    decision = export_model(
        Path(space.export.dir),
        write=lambda out: _recipe_export(space, recipe, checkpoint_dir, data, out, result),
        evaluate=lambda model_dir: evaluate(model_dir, data),
        evaluate_current=evaluate_current,
        compared_on=compared_on,
        card=card,
        metric=twin,
        mode=twin_mode,
        promote=space.export.promote,
        min_improvement=space.export.min_improvement,
        chosen=chosen,
        data_fingerprint=fingerprint,
    )
    result.test_metrics = decision.pop("test_metrics")
    result.promotion = decision
    result.model_dir = expanded(space.export.dir).absolute()
    result.model_warning = _one_class(recipe, decision.get("version_dir"), data, result.test_metrics)


class EditedUnderTheRun(UserError):
    """The recipe's export() failed on a checkpoint of a run whose code was edited while it ran, or since: the
    checkpoint may be of the code before the edit, which a resume cannot change, so the search ends with its trials
    recorded."""


def _recipe_export(space: Space, recipe: Any, checkpoint_dir: Path, data: Any, out: Path, result: Any
                   ) -> dict[str, Any]:
    """The recipe's export() of `result`'s best checkpoint into `out`: the model card's fields. Its failure, where the
    run's code was edited while it ran (`code_edited`) or since (its `recorded_sources` are not today's), is
    EditedUnderTheRun, which says that the checkpoint may be of the code before the edit, and the ways on."""
    from autotune.engine.export import source_digests
    from autotune.engine.storage import code_edited, recorded_sources

    try:
        return recipes.call(recipe, "export", str(checkpoint_dir), data, str(out))
    except UserError as err:
        then = recorded_sources(result.run_dir)
        since = any(then.get(role, digest) != digest
                    for role, digest in source_digests(recipe, space.custom).items())
        if not since and not code_edited(result.run_dir):
            raise
        run, listed = shlex.quote(str(result.run_uri or result.run_dir)), Path(result.run_dir) / "trials.csv"
        why = (f"the recipe's code was edited since the run {run} ran: its checkpoints are of the code before the "
               "edit, which its export() cannot read; undo the edit to export them" if since else
               f"the recipe's code was edited while the run {run} ran: the checkpoint of trial {result.best_trial_id} "
               "may be of the code before the edit, which its export() cannot read; export a trial that the edited "
               f"code trained (`autotune export {run} --trial ID`; {listed} lists the trials), undo the edit")
        raise EditedUnderTheRun(f"{str(err).rstrip()}\n{why}, or search again with {option('restart')}") from err


def _trained_by(run_dir: Path) -> dict[str, str]:
    """The digests of the code that the run at `run_dir` last ran (`recorded_sources`), which trained its checkpoints:
    a model exported after the recipe was edited records the code that trained it, not today's, so that `autotune
    train MODEL_DIR` says the edit. Empty for a run that recorded none."""
    from autotune.engine.storage import recorded_sources

    return {role: digest for role, digest in recorded_sources(run_dir).items() if isinstance(digest, str)}


def _model_card(space: Space, recipe: Any, result: Any, model_name: str, data: Any) -> dict[str, Any]:
    """The card of the model that exports `result`'s best checkpoint, trained and tested on `data` (the export adds
    what the recipe's export() writes, the test metrics and, for a canonical model, its promotion and version)."""
    from autotune.engine.export import library_versions, operator, source_digests
    from autotune.machine import machine
    from autotune.splits import declared
    from autotune.tracking import settings_of
    from autotune.tracking.mlflow_alias import registered_entry

    return {
        "name": model_name,
        "run_name": result.name,
        "recipe": space.recipe,
        "base_dir": space.base_dir,
        "custom": space.custom,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "created_by": operator(),
        "trial_id": result.best_trial_id,
        "params": result.best_params,
        "config": result.best_config,
        "metrics": result.best_metrics,
        "search": _search_card(space, result),
        "top_trials": _top_trials(result),
        **({"pareto": json.loads(json.dumps(result.pareto, default=str))} if result.pareto else {}),
        "run_dir": str(result.run_dir),
        **({"run_uri": result.run_uri} if result.run_uri else {}),
        "versions": library_versions(),
        "machine": machine(),  # the driver's: on a cluster (--address) the trials ran on its nodes
        "sources": _trained_by(result.run_dir) or source_digests(recipe, space.custom),
        "split": declared(recipe),  # how its data was split: a retrain tests the current model on a keyed one only
        "samples": recipes.split_sizes(data),  # what its metrics and test metrics were measured on
        **({"registered": registered} if (registered := registered_entry(settings_of(space).mlflow)) else {}),
    }


def _one_class(recipe: Any, model_dir: str | Path | None, data: Any, test_metrics: Mapping[str, Any]) -> str | None:
    """Why the model exported to `model_dir` is of no use where it predicts one class for every test sample
    (`ClassPredictions.one_class`), logged as a warning; None where it does not, or where the recipe gives no
    class predictions (its `test_predictions`). Its `test_metrics` rule it out where they can
    (`_may_predict_one_class`), so that an export passes over the test split once more only where it may."""
    if model_dir is None or not hasattr(recipe, "test_predictions") or not _may_predict_one_class(test_metrics):
        return None
    try:
        predictions = recipes.call(recipe, "test_predictions", str(model_dir), data)
    except UserError as err:  # the recipe's own code: the export stands, and `autotune report` says what failed
        log.debug("the exported model's test predictions could not be checked: %s", err)
        return None
    why = predictions.one_class() if isinstance(predictions, recipes.ClassPredictions) else ""
    if why:
        log.warning("%s", why)
    return why or None


def _may_predict_one_class(test_metrics: Mapping[str, Any]) -> bool:
    """Whether a model of these test metrics may predict one class for every test sample: one that does scores a
    balanced accuracy (the mean of the classes' recalls) of 1/k, k the test split's classes, or 0; True without it."""
    score = test_metrics.get("test_balanced_accuracy")
    if not isinstance(score, (int, float)) or isinstance(score, bool) or not math.isfinite(score):
        return True
    return score < 1e-9 or (score <= 0.5 + 1e-3 and abs(score * round(1 / score) - 1) < 1e-3)  # 1e-3: a rounded score


def _evaluate(recipe: Any, model_dir: Path, data: Any) -> dict[str, float]:
    """The test metrics of the model in `model_dir` on `data`'s held-out split; none without the recipe's evaluate()."""
    return recipes.call(recipe, "evaluate", str(model_dir), data) if hasattr(recipe, "evaluate") else {}


def _resplit(space: Space, recipe: Any, current: Mapping[str, Any] | None, config: Mapping[str, Any]) -> str | None:
    """Why the current model (its card) cannot be compared on the test split of the data `config` loads, when the
    split settings changed since it was trained (`autotune.splits.trained_share`: another seed or key columns, a
    test fraction past its held-out share), or its data was split by another scheme (`autotune.splits.scheme_of`:
    an autotune before the keyed split; the recipe's own split, then or now, `autotune.splits.declared`): part of
    that test split was (or may have been) its training data, where it would score too well. None when none of it
    was, or the card is another recipe's (its data section reads otherwise)."""
    from autotune.splits import OWN, SCHEME, declared, scheme_of, trained_share

    if not current or current.get("recipe") != space.recipe or not isinstance(current.get("config"), Mapping):
        return None
    scheme = scheme_of(current)
    if OWN in (scheme, declared(recipe)):
        return _not_compared("its data or the new data was split the recipe's own way (a recipe declares the "
                             "keyed split of autotune.splits by SPLIT = autotune.splits.SCHEME): the new test split "
                             "may hold data the current model trained on, where it would score too well")
    before = recipes.data_section(recipe, dict(current["config"]))
    if scheme != SCHEME:  # its samples were drawn into splits otherwise: as by another seed
        before = {**before, "split_seed": None}
    share, changed = trained_share(before, recipes.data_section(recipe, dict(config)))
    if share <= 0:
        return None
    cause = (f"it was trained on a split an earlier autotune drew ({scheme}, before the keyed split of 2026-12-05)"
             if scheme != SCHEME else f"the data split changed since it was trained ({', '.join(changed)})")
    return _not_compared(f"{cause}: about {share:.0%} of the new test split is, on average, data it trained on, "
                         f"where it would score too well")


def _not_compared(why: str) -> str:
    """`why` the current model is not compared with the new one, said in a warning line."""
    log.warning("the current model is not compared with the new one: %s", why)
    return why


def _write_summary(result: Any, error: str | None = None, space: dict[str, Any] | None = None) -> dict[str, Any]:
    """summary.json and trials.csv in the run's state folder; returns the summary. `error`: why a search that
    exports nothing failed; `space`: what `export` reads of the space (`_space_record`). `seconds` is the run's
    search time: the earlier sessions' that recorded their end (a resumed run's), and this one's
    (`session_seconds`)."""
    seconds_before = float((_earlier_summary(result) or {}).get("seconds") or 0.0)
    summary = {
        "name": result.name,
        "metric": list(result.metric),
        "mode": list(result.mode),
        "best_trial_id": result.best_trial_id,
        "best_params": result.best_params,
        "best_metrics": result.best_metrics,
        "test_metrics": result.test_metrics,
        "model_dir": str(result.model_dir) if result.model_dir else None,
        "run_uri": result.run_uri,  # a URI storage's run, where its trials are (None: beside this file)
        "promotion": result.promotion,
        "seconds": seconds_before + result.seconds,  # the run's: this session's and the earlier ones' that ended
        "session_seconds": result.seconds,
        "interrupted": result.interrupted,
        "ended": result.ended,  # why a setting ended the search before its trials (a stop target, a budget)
        "pareto": result.pareto,
        "moved": result.moved,
        "warm_start": result.warm_start,  # the earlier run whose finished trials were the sampler's history
        "model_warning": result.model_warning,  # why the exported model is of no use (it predicts one class)
        **({"error": error} if error else {}),
        **({"space": space} if space else {}),
    }
    if result.run_dir.exists():  # each whole or as it was: a disk that fills up cuts neither short
        write_whole(result.run_dir / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
        write_whole(result.run_dir / "trials.csv", result.trials.to_csv(index=False))
    return summary


def _space_record(space: Space, model_name: str) -> dict[str, Any]:
    """What `export` needs of the space besides the run's space.json (its recipe, ingredients and search): where its
    files are, its export settings (export.dir made absolute, as the search wrote it) and its model's name (a
    retrain's run is named after its data)."""
    return {"base_dir": space.base_dir, "custom": space.custom, "model_name": model_name,
            "export": {"dir": str(expanded(space.export.dir).absolute()), "promote": space.export.promote,
                       "min_improvement": space.export.min_improvement}}


def export(run_dir: str | Path, trial_id: str, out: str | Path | None = None) -> SearchResult:
    """Export trial `trial_id` of the finished run in `run_dir` as a model, tested on the held-out split as the
    search's own export is: its best checkpoint (the epoch its row of trials.csv and the Pareto front show).

    Without `out`, it becomes the canonical model at the space's export.dir, whatever `export.promote` says (it was
    chosen by trial id): replaced atomically, the one before kept for `autotune rollback`. With `out`, a plain model
    folder there, as `autotune train --out` writes one. Returns the run's `SearchResult` with that trial as its best
    (`model_dir`, `test_metrics`). A UserError when `run_dir` is not a finished run, the trial is not one of its
    trials, the trial kept no checkpoint, or `out` is a canonical model (writing into it would replace its current
    version in place).
    """
    from autotune.model_dir import check_not_a_canonical_model

    if out is not None:  # `autotune export --out` refuses it by this check too
        without = "leave out --out" if on_the_command_line() else "give out=None"
        check_not_a_canonical_model(str(out), option("out"), option("out", "models/NAME-trial"),
                                    f"{without} to make the trial the new version of the run's canonical model (its "
                                    "export.dir; `autotune rollback` goes back)")
    _home_for_ray()
    with _random_states_kept(), _float32_models(), _optuna_quiet():
        return _export_trial(run_dir, str(trial_id), None if out is None else Path(expanded(out)))


def _home_for_ray() -> None:
    """NoHome, naming HOME, where there is no home folder, before anything imports Ray: Ray's import reads it
    (~/ray_results), and a traceback of its RuntimeError ("Could not determine home directory") was all one saw."""
    try:
        home()
    except NoHome as err:
        raise NoHome(f"{err}, and Ray needs one; set HOME to a folder (Ray writes there only its authentication "
                     "token, ~/.ray/auth_token, which RAY_AUTH_TOKEN_PATH moves to a file you can write)") from None


def _export_trial(run_dir: str | Path, trial_id: str, out: Path | None) -> SearchResult:
    """`export`'s work: the run's trial `trial_id` read from `run_dir`, exported to `out` (None: the canonical
    model)."""
    from autotune.engine.run_records import recorded_summary

    _refuse_a_running_run(str(run_dir))
    state = _run_state(expanded(run_dir).resolve() if "://" not in str(run_dir) else _mirror(str(run_dir)))
    summary = recorded_summary(state) or {}
    space = _run_space(state, summary)
    trials = pd.read_csv(state / "trials.csv", dtype={"trial_id": str})
    where = _where(state, summary)
    best = _trial_best(where, summary, trials, space, trial_id)
    checkpoint = best[1]
    recipe = recipes.load(space.recipe, space.base_dir)
    if not hasattr(recipe, "export"):
        raise UserError(f"recipe {space.recipe!r} defines no export(): it writes no model to export")
    result = _search_result(space, where, trials, best, float(summary.get("seconds") or 0.0), False)
    loads = _DataLoads(space, recipe, "to test the exported model on its held-out split")
    model_name = str((summary.get("space") or {}).get("model_name") or space.name)
    with checkpoint.as_directory() as checkpoint_dir:
        if out is None:
            _export_chosen(space, recipe, loads, Path(checkpoint_dir), result, model_name)
        else:
            _export_plain(space, recipe, loads, Path(checkpoint_dir), result, model_name, out)
    return result


def _mirror(uri: str) -> Path:
    """The local mirror of a run kept at a URI, where its state (space.json, summary.json, trials.csv) is."""
    from autotune.cache import run_mirror

    return run_mirror(uri)


def _refuse_a_running_run(run_dir: str) -> None:
    """A UserError naming the process that runs the run at `run_dir` (a folder, or a URI) now, if one does: a
    resumed run's trials.csv is of its last session, and its trials' checkpoints change under the resume."""
    from autotune.engine.locks import running
    from autotune.engine.storage import run_location

    base, mark, query = run_dir.partition("?") if "://" in run_dir else (run_dir, "", "")
    storage, _, name = base.rstrip("/").rpartition("/")
    where = run_location(storage + mark + query, name)
    if holder := running(where):
        raise UserError(f"the run at {where.experiment} is running ({holder}): its trials and their checkpoints "
                        "change until it ends; export a trial once it has ended")


def _run_state(folder: Path) -> Path:
    """`folder` when it holds a finished run's state (space.json and trials.csv); else a UserError saying what to
    give."""
    if (folder / "space.json").is_file() and (folder / "trials.csv").is_file():
        return folder
    what = ("its search has not ended (no trials.csv yet): resume it with `autotune run SPACE --resume` first"
            if (folder / "space.json").is_file() else
            "it has no space.json: an autotune before runs recorded their space made it, and its trials cannot be "
            "exported one by one (its exported model stays usable; a new search can warm-start from it)"
            if (folder / "trials.csv").is_file() else
            "no space.json and trials.csv there: give the folder of a finished run, runs/<name> as `autotune run` "
            "prints it")
    raise UserError(f"{folder} is not a finished autotune run: {what}")


def _run_space(state: Path, summary: Mapping[str, Any]) -> Space:
    """The run's space, rebuilt from its state: space.json (recipe, ingredients with the --set overrides applied,
    search) and summary.json's `space` (where its files are, its export settings); a run that recorded no `space`
    takes those from the model it exported, else the defaults (export.dir models/<name>)."""
    from autotune.engine.run_records import recorded_space, started_trials

    recorded = recorded_space(state) or {}
    if not isinstance(recorded.get("ingredients"), dict) or not recorded.get("recipe"):
        raise UserError(f"{state / 'space.json'} does not record the run's recipe and ingredients (a run of an older "
                        "autotune): train the trial's configuration with `autotune train SPACE --set ... --out DIR`")
    about = dict(summary.get("space") or _exported_card(summary))
    base = about.get("base_dir")
    recipe = str(recorded["recipe"])
    if base and recipe.endswith(".py") and not Path(recipe).is_absolute():
        recipe = str(Path(base) / recipe)
    recorded_search = recorded.get("search") or {}
    search = {k: recorded_search[k] for k in ("metric", "mode", "seed") if k in recorded_search}
    for key in ("sampler", "scheduler"):  # as written: `tpe`, or `{tpe: {n_startup_trials: 5}}`
        if recorded_search.get(key):
            args = recorded_search.get(f"{key}_args")
            search[key] = {recorded_search[key]: args} if args else recorded_search[key]
    trials = started_trials(state)
    export = about.get("export") or ({"dir": summary["model_dir"]} if summary.get("model_dir") else {})
    document = {"name": summary.get("name") or state.name, "recipe": recipe,
                **({"custom": about["custom"]} if about.get("custom") else {}), **recorded["ingredients"],
                "search": {**search, **({"trials": trials} if trials else {})}, "export": export}
    space = load_space(document)
    return replace(space, base_dir=base or space.base_dir)


def _exported_card(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The card of the model a run exported (its version, else its canonical folder); {} when there is none."""
    for folder in ((summary.get("promotion") or {}).get("version_dir"), summary.get("model_dir")):
        try:
            card = json.loads((Path(folder) / "model.json").read_text()) if folder else None
        except (OSError, ValueError):
            card = None
        if isinstance(card, dict):
            return {"base_dir": card.get("base_dir"), "custom": card.get("custom"), "model_name": card.get("name")}
    return {}


def _trial_result(where: RunLocation, summary: Mapping[str, Any], trials: pd.DataFrame, trial_id: str) -> Any:
    """The Ray `Result` of the run's trial `trial_id`, read from its folder; a UserError naming some of the run's
    trials (those of the Pareto front first) when it has none of that id."""
    from autotune.engine.checkpoints import read_trial

    known = [str(t) for t in trials["trial_id"]]
    if trial_id not in known:
        front = [str(r["trial_id"]) for r in summary.get("pareto") or []]
        shown = list(dict.fromkeys([*front, *known]))[:5]
        more = f" (and {len(known) - len(shown)} more in trials.csv)" if len(known) > len(shown) else ""
        raise UserError(f"the run {where.state} has no trial {trial_id!r}: give one of its trials, e.g. "
                        f"{', '.join(shown) or 'none: it ran none'}{more}")
    folder = where.trial_folder(trial_id)
    try:
        return read_trial(folder)
    except (OSError, RuntimeError, ValueError) as err:
        raise UserError(f"trial {trial_id}'s folder {folder} cannot be read ({err}): it reported nothing, or its "
                        "files are gone") from None


def _trial_best(where: RunLocation, summary: Mapping[str, Any], trials: pd.DataFrame, space: Space,
                trial_id: str) -> _Best:
    """The best checkpoint the run's trial `trial_id` kept (`result_grid.best_checkpoint`), with the metrics it came
    with: the epoch its row of trials.csv shows, else (a line says so) the best of the others it kept. A UserError
    when it kept none."""
    from autotune.engine.result_grid import best_checkpoint

    best = best_checkpoint([_trial_result(where, summary, trials, trial_id)], space)
    if best is None or best[1] is None:
        raise UserError(_no_checkpoint(where.state, trial_id, trials))
    trial, checkpoint, metrics = best  # read from result.json, whose config Ray flattens into config/<key> columns
    metrics = {k: v for k, v in metrics.items() if not k.startswith("config/")}
    row = trials[trials["trial_id"] == trial_id].iloc[0]
    if not all(math.isclose(float(row.get(name, math.nan)), float(metrics.get(name, math.nan)), rel_tol=1e-9)
               for name in space.search.metric):
        log.warning("trial %s kept no checkpoint of the epoch trials.csv shows: exporting the best it kept, epoch %s "
                    "(%s)", trial_id, metrics.get("training_iteration", "?"),
                    ", ".join(f"{name}={metrics.get(name)}" for name in space.search.metric))
    return trial, checkpoint, metrics


def _no_checkpoint(state: Path, trial_id: str, trials: pd.DataFrame) -> str:
    """Why trial `trial_id` cannot be exported (it kept no checkpoint), and what to do instead."""
    kept = [str(t) for t in trials["trial_id"] if any((state / f"trial_{t}").glob("checkpoint_*"))]
    others = f"; trials of this run that kept one: {', '.join(kept[:5])}" if kept else ""
    return (f"trial {trial_id} kept no checkpoint to export (a search of one objective keeps only those that beat "
            f"its best so far): train its configuration (its p: columns in {state / 'trials.csv'}) with `autotune "
            f"train SPACE --set KEY=VALUE ... --out DIR`{others}")


def _where(state: Path, summary: Mapping[str, Any]) -> RunLocation:
    """Where the run whose state folder is `state` lives: beside it, or at the URI its summary names."""
    from autotune.engine.storage import RunLocation

    base, mark, query = str(summary.get("run_uri") or state).partition("?")
    storage, _, name = base.rpartition("/")
    return RunLocation(storage + mark + query, name, state)


def _export_chosen(space: Space, recipe: Any, loads: _DataLoads, checkpoint_dir: Path, result: SearchResult,
                   model_name: str) -> None:
    """Export `result`'s best checkpoint as the canonical model whatever `export.promote` says (`_export`), its card
    saying it was chosen by trial id; nothing when it is the canonical model already."""
    run = shlex.quote(str(result.run_uri or result.run_dir))
    chosen = f"chosen by trial id: `autotune export {run} --trial {result.best_trial_id}` (export.promote not applied)"
    before = (current_card(space) or {}).get("version")
    _export(space, recipe, loads, checkpoint_dir, result, model_name, chosen=chosen)
    now = current_card(space) or {}
    if now.get("version") == before:
        result.promotion = {**result.promotion, "reason": f"trial {result.best_trial_id} of this run is the canonical "
                            f"model already (version {before}): nothing exported"}
    else:
        follow_registry(now)


def follow_registry(card: Mapping[str, Any]) -> None:
    """Move the MLflow registry's `champion` to the model of `card`, made current by an export or a rollback, where
    its search registered its exports: logged, a failure as a warning (the local model is current either way)."""
    from autotune.tracking.mlflow_alias import follow_card

    try:
        followed = follow_card(card)
    except UserError as err:
        log.warning("%s", err)
        return
    if followed:
        log.info("%s", followed)


def _export_plain(space: Space, recipe: Any, loads: _DataLoads, checkpoint_dir: Path, result: SearchResult,
                  model_name: str, out: Path) -> None:
    """Export `result`'s best checkpoint as a plain model folder `out` (no versions, no promotion), as `autotune
    train --out` writes one, tested on the held-out split of the data its trial loaded."""
    from autotune.engine.export import file_digests

    data = loads.get(result.best_config)
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.json").unlink(missing_ok=True)  # an earlier model's card: evaluate() would read the new model by it
    fingerprint = recipes.fingerprint(data)  # the data's, over the recipe's (`export_model`)
    card = {**_model_card(space, recipe, result, model_name, data),
            **_recipe_export(space, recipe, checkpoint_dir, data, out, result),
            **({"data_fingerprint": fingerprint} if fingerprint else {})}
    result.test_metrics = _evaluate(recipe, out, data)
    (out / "model.json").write_text(json.dumps({**card, "test_metrics": result.test_metrics,
                                                "files": file_digests(out)}, indent=2, default=str) + "\n")
    result.model_dir = out.absolute()
    result.model_warning = _one_class(recipe, out, data, result.test_metrics)
