"""Optuna proposing the trials (Ray's OptunaSearch on the run's study.db), and what Optuna is told of their ends.

    searcher = make_searcher(space, run_dir, points_to_evaluate(space, before, known))
    close_orphaned_trials(run_dir, space, grid)   # after the search: no study trial left RUNNING
"""
from __future__ import annotations

import copy
import functools
import json
import logging
import os
import sqlite3
import warnings
from collections.abc import Container, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
from optuna.storages._cached_storage import _CachedStorage
from optuna.storages._rdb.models import TrialIntermediateValueModel as Values
from optuna.storages._rdb.models import TrialModel as Trials
from optuna.trial import FrozenTrial, TrialState
from ray.tune.search.optuna import OptunaSearch
from sqlalchemy import bindparam, exists, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from autotune.engine.checkpoints import finite
from autotune.engine.full_disk import is_full
from autotune.engine.optuna_space import DefineByRun, make_sampler
from autotune.engine.ray_internals import asked_trial, diverged, kv_put, limited, mark_told, study_of, told
from autotune.engine.schedulers import planned_epochs
from autotune.errors import UserError
from autotune.space.types import Space

__all__ = ["close_orphaned_trials", "make_searcher", "make_study_file", "points_to_evaluate"]

log = logging.getLogger("autotune")


class _Searcher(OptunaSearch):
    """OptunaSearch that tells Optuna what Optuna's own pruning would. Ray tells every trial COMPLETE with its last
    value, so a sampler would take a 1-epoch accuracy for a final one. Here a trial stopped before its last epoch
    (by the scheduler, a stop target or the epoch budget) is PRUNED, holding the value of every epoch it ran as
    intermediate values (TPE ranks it below the trials that got further), as is one whose last value is not finite
    or whose recipe raised `Diverged` (a training that diverged: NaN at that epoch, which TPE ranks last there); a
    trial that ran every epoch is COMPLETE; a failed one FAILED. Several objectives: COMPLETE with the last values
    (Optuna keeps no intermediate values); FAIL, with a warning, when one is not finite (Ray's left the trial
    RUNNING), or when the recipe raised `Diverged` (Optuna prunes single-objective trials only)."""

    def __init__(self, *, planned_epochs: Any, full: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._planned_epochs = planned_epochs  # sampled values -> the epochs that trial runs if not stopped
        self._full = full  # the key that tells StopWhenFull the storage is full (full_disk.full_key)
        self._reported: dict[str, int] = {}  # trial id -> the last epoch told to Optuna as an intermediate value
        self._named = False  # whether the study's objectives are named yet

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        """Ray's suggestion, its Optuna trial given the user attribute `autotune_trial_id` (the id the summary,
        trials.csv and the trackers show), and the study its objectives' names (optuna-dashboard's labels)."""
        with self._unless_full():
            config = super().suggest(trial_id)
            ot_trial = asked_trial(self, trial_id)
            if ot_trial is not None:
                ot_trial.set_user_attr("autotune_trial_id", trial_id)
                if not self._named:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")  # set_metric_names is experimental
                        study_of(self).set_metric_names(self.metric if isinstance(self.metric, list)
                                                        else [self.metric])
                    self._named = True
            return config
        return None  # the disk is full: no trial, and the search stops

    @contextmanager
    def _unless_full(self) -> Iterator[None]:
        """Around a write to the study: SQLite's full disk tells `StopWhenFull` (as a trial's full checkpoint does),
        which stops the search to be resumed, rather than ending it in a traceback. A searcher pickled without the
        key (a run started before it) raises as before."""
        try:
            yield
        except Exception as err:
            key = getattr(self, "_full", None)
            if key is None or not _disk_full(err):
                raise
            log.debug("the Optuna study's disk is full: %s", err)
            kv_put(key, f"the Optuna study: {err}".encode())

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """The epoch's value as the trial's intermediate value at that epoch (`_record`)."""
        ot_trial = asked_trial(self, trial_id)
        if isinstance(self.metric, list) or told(self, trial_id) or ot_trial is None:
            with self._unless_full():
                super().on_trial_result(trial_id, result)  # Ray's answers: nothing, or a warning
            return
        self._record(trial_id, ot_trial, int(result.get("training_iteration", 0)), float(result[self.metric]))

    def _record(self, trial_id: str, ot_trial: optuna.Trial, epoch: int, value: float) -> None:
        """`value` as the trial's intermediate value at `epoch`, replacing one told before: a trial continued
        from a checkpoint (a resume, a retry) retrains the epochs after it, and Optuna's `Trial.report` would keep
        the abandoned run's values of those epochs (and warn). `_storage` and `_trial_id` are Optuna's private
        names; `_set_intermediate_value` writes what `Trial.report` would."""
        with self._unless_full():
            if _set_intermediate_value(study_of(self)._storage, ot_trial._trial_id, epoch, value):  # noqa: SLF001
                self._reported[trial_id] = epoch
            # else its end was told before a stop Ray's state missed: the study keeps what it was told

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        value = (result or {}).get(self.metric) if isinstance(self.metric, str) else None
        ot_trial = asked_trial(self, trial_id)
        verdict = error and diverged(trial_id)
        if ot_trial is not None and self._told_before(ot_trial):
            mark_told(self, trial_id)  # told before a kill that Ray's saved state did not see
            return
        if verdict and ot_trial is not None and isinstance(self.metric, str) and not told(self, trial_id):
            self._record(trial_id, ot_trial, self._reported.get(trial_id, 0) + 1, float("nan"))
            self._tell(ot_trial, state=optuna.trial.TrialState.PRUNED)  # NaN at the epoch it diverged: ranked last
        elif not error and ot_trial is not None and isinstance(self.metric, list) and not told(self, trial_id) \
                and _non_finite(trial_id, result or {}, self.metric):
            self._tell(ot_trial, state=optuna.trial.TrialState.FAIL)  # Ray's left it RUNNING
        elif error or told(self, trial_id) or ot_trial is None or value is None:
            with self._unless_full():
                super().on_trial_complete(trial_id, None if error else result, error)
        else:
            epoch = int(result.get("training_iteration", 0))
            state = _ended_state([value], epoch, self._planned_epochs(ot_trial.params))
            if state != optuna.trial.TrialState.FAIL and epoch > self._reported.get(trial_id, 0):
                self._record(trial_id, ot_trial, epoch, float(value))  # the last epoch: Ray tells it here only
            if state == optuna.trial.TrialState.COMPLETE:
                self._tell(ot_trial, value)
            else:
                self._tell(ot_trial, state=state)  # PRUNED: valued at its last epoch
        mark_told(self, trial_id)
        self._reported.pop(trial_id, None)

    def _told_before(self, ot_trial: optuna.Trial) -> bool:
        """Whether the study already holds this trial's end. A search killed after telling Optuna that a trial
        ended, but before Ray saved its own state (every 10 s), runs that trial again when resumed; the study keeps
        what it was told the first time. (`_storage` and `_trial_id` are Optuna's private names: its public API
        reads one trial's state only through `Study.get_trials`, every trial of the study each time; its storage's
        `get_trial` loads the whole trial, which a state does not need.)"""
        storage, trial = study_of(self)._storage, ot_trial._trial_id  # noqa: SLF001
        with storage._backend.engine.connect() as connection:  # noqa: SLF001  (_CachedStorage's RDBStorage)
            return connection.execute(_TRIAL_STATE, {"trial": trial}).scalar_one().is_finished()

    def _tell(self, ot_trial: optuna.Trial, value: float | None = None, **state: Any) -> None:
        """Tell Optuna, as Ray does: the trial's state is stored first, so a sampler's hook failing after it
        only warns. GridSampler calls `Study.stop()` once its grid is exhausted, which fails outside
        `Study.optimize`; the search's trial count ends it anyway."""
        try:
            with self._unless_full():
                study_of(self).tell(ot_trial, value, **state)
        except RuntimeError as err:
            if "Study.stop" not in str(err):
                log.warning("telling Optuna the result of trial %s failed: %s", ot_trial.number, err)


def _disk_full(err: BaseException | None) -> bool:
    """Whether `err`, or an error it was raised from (Optuna's StorageInternalError wraps SQLAlchemy's, which wraps
    sqlite3's), says the disk is full."""
    while err is not None:
        if "database or disk is full" in str(err) or (isinstance(err, OSError) and is_full(err)):
            return True
        err = err.__cause__ or err.__context__
    return False


def _non_finite(trial_id: str, result: dict, metrics: list[str]) -> bool:
    """Whether a trial of several objectives ended with a value that is not a finite number, which the sampler can
    only take as a failure (though its earlier epochs count in the summary and the export); the user is told."""
    wrong = {name: result.get(name) for name in metrics if not finite(result.get(name))}
    if wrong:
        log.warning("trial %s: its last report's %s is not a finite number, so the sampler takes the trial as failed "
                    "and learns nothing from it; report finite values for every objective", trial_id,
                    ", ".join(f"{name} ({value})" for name, value in wrong.items()))
    return bool(wrong)


def _ended_state(values: list[Any], epoch: int, planned: int) -> optuna.trial.TrialState:
    """What Optuna is told of a trial that ended at `epoch` with `values`: FAIL without an epoch, COMPLETE when it
    ran its `planned` epochs with finite values, else PRUNED: stopped early, or ended on a value that is not finite
    (a training that diverged), as Optuna's successive halving prunes a NaN. TPE ranks a pruned trial whose last
    value is NaN below every trial at its epoch, where it leaves a failed one out: it learns to avoid the diverging
    region. (Several objectives: the caller makes PRUNED FAIL, as Optuna prunes single-objective trials only.)"""
    if not epoch:
        return optuna.trial.TrialState.FAIL
    if epoch >= planned and all(map(finite, values)):
        return optuna.trial.TrialState.COMPLETE
    return optuna.trial.TrialState.PRUNED


def _set_intermediate_value(storage: Any, trial_id: int, step: int, value: float) -> bool:
    """Store `value` as the RUNNING trial `trial_id`'s intermediate value at `step` (replacing one stored before),
    as Optuna's `set_trial_intermediate_value` does, in one SQL statement on Optuna's own table and value encoding
    (`TrialIntermediateValueModel`, private: Optuna has no cheaper public write). Optuna's own call loads the trial
    and the step's row through its ORM first: a third of the driver's time per report at 1,000 trials x 10 epochs
    (bench measure 4; 1.3 ms against 0.22 ms a value, docs/benchmarks.md). False, writing nothing, when the trial has ended."""
    stored, kind = Values.intermediate_value_to_stored_repr(value)
    with storage._backend.engine.begin() as connection:  # noqa: SLF001  (_CachedStorage's RDBStorage)
        return connection.execute(_UPSERT_VALUE, {"trial": trial_id, "step": step, "value": stored,
                                                  "kind": kind}).rowcount > 0


def _upsert_value() -> Any:
    """`_set_intermediate_value`'s statement, built once: insert the row, or replace the step's, where the trial
    is RUNNING."""
    running = select(Trials.trial_id).where(Trials.trial_id == bindparam("trial"), Trials.state == TrialState.RUNNING)
    rows = select(bindparam("trial", type_=Values.trial_id.type), bindparam("step", type_=Values.step.type),
                  bindparam("value", type_=Values.intermediate_value.type),
                  bindparam("kind", type_=Values.intermediate_value_type.type)).where(exists(running))
    statement = sqlite_insert(Values.__table__).from_select(
        ["trial_id", "step", "intermediate_value", "intermediate_value_type"], rows)
    return statement.on_conflict_do_update(
        index_elements=["trial_id", "step"],
        set_={"intermediate_value": statement.excluded.intermediate_value,
              "intermediate_value_type": statement.excluded.intermediate_value_type})


_UPSERT_VALUE = _upsert_value()
_TRIAL_STATE = select(Trials.state).where(Trials.trial_id == bindparam("trial"))


def _sqlite(path: str) -> sqlite3.Connection:
    """A connection to the study's SQLite file that hands its writes to the OS without waiting for the disk
    (`synchronous=OFF`): each report writes to the study, and a commit that waits costs about 15 ms on a busy disk.
    A killed or crashed process loses nothing (the OS writes the file); only a crash of the OS itself could."""
    connection = sqlite3.connect(path, check_same_thread=False)
    connection.execute("PRAGMA synchronous=OFF")
    return connection


class _StudyCache(_CachedStorage):
    """Optuna's cache of an RDB study (what `optuna.create_study` wraps an RDBStorage in: private, no public
    alternative) that finds the trials in unfinished states (WAITING, RUNNING) among the unfinished trials it
    tracks anyway, rather than among every trial of the study. `Study.ask` asks for the WAITING ones each time (an
    enqueued configuration goes first): at 10,000 trials that scan was an eighth of the driver's time per trial
    (bench measure 4b). Any other question is Optuna's own."""

    def get_all_trials(self, study_id: int, deepcopy: bool = True,
                       states: Container[TrialState] | None = None) -> list[FrozenTrial]:
        if states is None or any(state in states for state in TrialState if state.is_finished()):
            return super().get_all_trials(study_id, deepcopy, states)
        self._read_trials_from_remote_storage(study_id)  # after it, every unfinished trial is among these ids
        with self._lock:
            study = self._studies[study_id]
            numbers = [self._trial_id_to_study_id_and_number[trial_id][1] for trial_id in study.unfinished_trial_ids]
            trials = sorted((study.trials[n] for n in numbers if study.trials[n].state in states),
                            key=lambda trial: trial.number)
        return copy.deepcopy(trials) if deepcopy else trials


def make_study_file(run_dir: Path) -> None:
    """Make the run's study file RUN_DIR/study.db, empty, with the modes the umask leaves (group-writable under
    `umask 002`, so that a teammate can resume the run), where SQLite would make it rw-r--r-- whatever the umask;
    one that is there is left as it is."""
    os.close(os.open(run_dir / "study.db", os.O_RDONLY | os.O_CREAT, 0o666))


def _study_storage(run_dir: Path) -> _StudyCache:
    """The run's Optuna study storage, RUN_DIR/study.db (its connections made by `_sqlite`, also when Ray
    unpickles the searcher of a resumed run), behind `_StudyCache`."""
    path = str(run_dir / "study.db")
    return _StudyCache(optuna.storages.RDBStorage(
        f"sqlite:///{path}", engine_kwargs={"creator": functools.partial(_sqlite, path)}))


def make_searcher(space: Space, run_dir: Path, points: list[dict[str, Any]], limit: int | None = None,
                  seed: int | None = None, full: str | None = None) -> Any:
    """The search's searcher: Optuna's sampler (seeded with `seed`, None: `search.seed`) on the study in
    RUN_DIR/study.db, evaluating `points` first, running at most `limit` trials at once (None: no limit). `full`:
    the key that tells the search the study's disk is full (`full_disk.full_key`; None: such an error raises)."""
    metric, mode = space.search.metric, space.search.mode
    searcher = _Searcher(
        planned_epochs=functools.partial(planned_epochs, space),
        full=full,
        space=DefineByRun(space.params),
        metric=list(metric) if len(metric) > 1 else metric[0],
        mode=list(mode) if len(mode) > 1 else mode[0],
        sampler=make_sampler(space.search, space.params, seed),
        storage=_study_storage(run_dir),
        study_name=space.name,
        points_to_evaluate=points or None,
    )
    return limited(searcher, limit)


def points_to_evaluate(space: Space, before: list[dict[str, Any]], known: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The configurations to evaluate first (`Space.first_points`), less those the warm-start history holds, as
    many as the search runs trials."""
    points = [point for point in space.first_points(before) if point not in known]
    if len(points) > space.search.trials:
        log.info("search.trials is %d: only the first %d of %d known configurations run", space.search.trials,
                 space.search.trials, len(points))
    return points[: space.search.trials]


def close_orphaned_trials(run_dir: Path, space: Space, grid: Any) -> None:
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
    ended = {_params_key(t.params) for t in trials if t.state != optuna.trial.TrialState.RUNNING}
    for trial in trials:
        if trial.state != optuna.trial.TrialState.RUNNING:
            continue
        # A killed run's trial asked again after the resume was told under its new number: this one is a duplicate.
        metrics = {} if _params_key(trial.params) in ended else last.get(_params_key(trial.params), {})
        epoch = int(metrics.get("training_iteration", 0) or 0)
        values = [metrics.get(name) for name in space.search.metric]
        try:
            state = _ended_state(values, epoch, planned_epochs(space, trial.params))
        except UserError:  # asked, but the run was killed before all its parameters were drawn: no configuration
            state = optuna.trial.TrialState.FAIL
        if state == optuna.trial.TrialState.PRUNED and space.search.multi_objective:
            state = optuna.trial.TrialState.FAIL  # Optuna prunes single-objective trials only
        if state == optuna.trial.TrialState.PRUNED:
            storage.set_trial_intermediate_value(trial._trial_id, epoch, values[0])
        kept = state != optuna.trial.TrialState.FAIL and all(map(finite, values))
        storage.set_trial_state_values(trial._trial_id, state, values if kept else None)


def _params_key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=repr)
