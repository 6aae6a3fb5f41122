"""Where a run lives and what is kept there: Ray's experiment folder (a local folder or a URI) and autotune's own
state beside it (study.db, space.fingerprint, space.json and space.trials, summary.json, trials.csv), mirrored locally
for a URI storage.

    where = run_location("s3://bucket/runs", "digits")   # where.experiment, where.state (the local mirror)
    resume = prepare_run(space, where, resume=True, restart=False)   # refuses to mix a new search into an existing run
    publish_state(where)                                 # at the end: the mirror copied into the URI
"""
from __future__ import annotations

import json
import logging
import os
import re
import shlex
import shutil
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.fs

from autotune.cache import run_mirror
from autotune.engine.lost_nodes import MOVES_FILE
from autotune.engine.ray_internals import restore_whole_state, saved_trials
from autotune.engine.relocation import STARTED_FILE, started_in
from autotune.engine.run_records import (BUDGETS_FILE, SPACE_FILE, TRIALS_FILE, record_space, record_start,
                                         recorded_end, recorded_space)
from autotune.errors import UserError
from autotune.paths import blocking, expanded
from autotune.run_options import arguments, option
from autotune.space.types import Space
from autotune.tracking.mlflow_runs import STATE_FILE as TRACKING_FILE

__all__ = ["RunLocation", "run_location", "check_choice", "filesystem", "holds_search", "unfinished_trials",
           "prepare_run", "publish_state", "record_code", "set_aside_orphaned_dirs"]

log = logging.getLogger("autotune")

_ABSENT = object()  # a key one of two compared spaces lacks

# autotune's own state of a run, copied between a URI storage and its local mirror: the lost-node moves and the
# tracker's run ids too (a resume elsewhere continues the same MLflow parent run and keeps the moves it reports)
_FORMAT_FILE = "engine.format"  # the STATE_FORMAT a run started with
_SOURCES_FILE = "sources.json"  # the SHA-256 of the recipe's and the custom: file's code the run last ran
_EDITED = "edited"  # its key that is true once a session of the run ran other code than an earlier one
_STATE_FILES = (MOVES_FILE, "space.fingerprint", SPACE_FILE, TRIALS_FILE, BUDGETS_FILE, _FORMAT_FILE,
                _SOURCES_FILE, "study.db", "summary.json", TRACKING_FILE, "trials.csv")
# The version of the search state a run saves for its resume: Ray pickles autotune's progress callback, searcher and
# schedulers into it, and a resume unpickles them into this autotune's classes. Raise it with a change to those
# classes that an earlier run's pickles would not fit (a new attribute, a renamed one): such a run is then refused
# in one line, not failed mid-search with an AttributeError.
STATE_FORMAT = 1
SHOWN_CHANGES = 5  # changed key paths a refused resume names
# What a URI's path holds as written (RFC 3986), '%' aside (pyarrow would decode "%20"): a run name with any other
# character (a space, '#', a non-ASCII letter) makes the run's URI one pyarrow cannot parse, or another folder's
_NOT_IN_A_URI = re.compile(r"[^A-Za-z0-9\-._~!$&'()*+,;=@]")


@dataclass(frozen=True)
class RunLocation:
    """Where a run lives. Ray's experiment folder `experiment` (trials, checkpoints, TensorBoard logs) is
    `storage/name`, a local path or a URI. `state` is the local folder of autotune's own state (study.db,
    space.fingerprint, space.json, space.trials, summary.json, trials.csv, moves.jsonl, tracking.json, started_at): the
    experiment folder itself for a local storage, a mirror under `~/.cache/autotune/runs/` for a URI, copied into
    the URI at the end of the search (`publish_state`)."""

    storage: str
    name: str
    state: Path

    @property
    def experiment(self) -> str:
        """`storage/name`; a URI's query (`?endpoint_override=...`, which configures its file system, as Ray reads
        it) stays at the end."""
        base, mark, query = self.storage.partition("?") if self.remote else (self.storage, "", "")
        return f"{base}/{self.name}{mark}{query}"

    @property
    def remote(self) -> bool:
        return "://" in self.storage

    def trial_folder(self, trial_id: str) -> str:
        """The folder of the run's trial `trial_id` (`trial_<id>` in `experiment`; a URI's query at the end)."""
        base, mark, query = self.experiment.partition("?") if self.remote else (self.experiment, "", "")
        return f"{base}/trial_{trial_id}{mark}{query}"


def run_location(storage: str, name: str) -> RunLocation:
    """The run folders of the search `name` in `storage` (a folder, or a URI such as s3://bucket/runs, whose query
    is left out of the local mirror's path)."""
    if "://" not in storage:
        folder = expanded(storage).resolve()
        return RunLocation(str(folder), name, folder / name)
    _check_uri_name(storage, name)
    base, mark, query = storage.partition("?")
    base = base.rstrip("/")
    return RunLocation(base + mark + query, name, run_mirror(f"{base}/{name}"))


def _check_uri_name(storage: str, name: str) -> None:
    """A UserError, before anything starts, when the run's `name` holds characters that the URI `storage`'s path
    cannot hold as written."""
    bad = sorted(set(_NOT_IN_A_URI.findall(name)))
    if not bad:
        return
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    suggested = re.sub(r"[^A-Za-z0-9._-]+", "-", plain).strip("-") or "my_search"
    raise UserError(f"the run name {name!r} holds {', '.join(map(repr, bad))}, which the path of a URI storage "
                    f"({storage}) cannot hold as written; name the run with letters, digits, '-', '_' and '.' "
                    f"({option('overrides', f'name={suggested}')}), or give a local folder "
                    f"({option('storage', 'runs')})")


def filesystem(location: str) -> tuple[Any, str]:
    """(pyarrow file system, path in it) of a local path or a URI, as Ray opens its storage."""
    if "://" in location:
        return pyarrow.fs.FileSystem.from_uri(location)
    return pyarrow.fs.LocalFileSystem(), location


class DamagedState(UserError):
    """Ray's saved state of a run cannot be read (a file cut short): no resume can continue it."""


def _saved_trials(where: RunLocation) -> list[dict[str, Any]]:
    """The trials (id, status, ...) Ray last saved in the run's experiment folder; [] when none. DamagedState where
    its saved state is cut short or damaged (a disk that filled up as it was copied), which was a JSONDecodeError's
    traceback."""
    try:
        return saved_trials(*filesystem(where.experiment))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DamagedState(f"the saved state of the run at {where.experiment} cannot be read ({err}): a file of it is "
                           "cut short or damaged (a disk that filled up while it was written), and no resume can "
                           f"continue it; start the run again with {option('restart')}") from None


def holds_search(storage: str, name: str) -> bool:
    """Whether the run `name` in `storage` holds a search to resume: Ray saved its state with at least one
    trial. A run stopped before its first trial (a bad setting, an unreachable cluster) holds none."""
    return bool(_saved_trials(run_location(storage, name)))


def unfinished_trials(where: RunLocation) -> set[str]:
    """The ids of the trials Ray's saved state holds neither TERMINATED nor ERROR: those a resume continues. Ctrl-C
    (Ray catches SIGINT) saves them so, then ends them: only the saved state, the one a resume starts from, tells;
    a time budget or a reached target does not."""
    return {str(t.get("trial_id")) for t in _saved_trials(where) if t.get("status") not in ("TERMINATED", "ERROR")}


def _clear(where: RunLocation) -> None:
    """Delete a run: Ray's experiment folder and autotune's state (its W&B offline runs not synced yet are moved
    aside first, `_keep_unsynced`)."""
    _keep_unsynced(where.state)
    fs, path = filesystem(where.experiment)
    if fs.get_file_info(path).type == pyarrow.fs.FileType.Directory:
        fs.delete_dir(path)
    shutil.rmtree(where.state, ignore_errors=True)


def _keep_unsynced(state: Path) -> None:
    """Move the run's W&B offline runs that `wandb sync` has not uploaded (no `*.synced` file: wandb sync writes one)
    out of the run to be deleted, beside it, with a warning saying where: a `--restart` deleted them silently."""
    unsynced = [run for run in sorted(state.glob("wandb/offline-run-*"))
                if run.is_dir() and not any(run.glob("*.synced"))]
    if not unsynced:
        return
    kept = state.parent / f".{state.name}.wandb-unsynced" / time.strftime("%Y%m%d-%H%M%S")
    kept.mkdir(parents=True, exist_ok=True)
    for run in unsynced:
        shutil.move(str(run), str(kept / run.name))
    log.warning("the run's %d W&B offline run%s not synced yet moved to %s before the run was deleted: upload them "
                "with `wandb sync %s/offline-run-*`", len(unsynced), "s" * (len(unsynced) > 1), kept, kept)


CHECK_RETRY_SECONDS = 10  # how long the storage check lets a GCS client retry (its own limit: 15 minutes); 20 took 48 s


def _retrying_briefly(uri: str) -> str:
    """`uri`, for the storage check only: a gs:// one with a retry limit of CHECK_RETRY_SECONDS unless it names one.
    Without credentials pyarrow's GCS client retries for its full limit before it fails."""
    scheme, _, rest = uri.partition("://")
    if scheme not in ("gs", "gcs") or "retry_limit_seconds=" in rest:
        return uri
    return f"{uri}{'&' if '?' in rest else '?'}retry_limit_seconds={CHECK_RETRY_SECONDS}"


def _check_storage(where: RunLocation) -> None:
    """One line, before Ray starts, when a URI storage cannot be opened or read: a scheme pyarrow does not know, a
    bucket it cannot reach, credentials it lacks."""
    try:
        fs, path = filesystem(_retrying_briefly(where.experiment))
        fs.get_file_info(path)
    except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
        raise UserError(f"cannot open the storage {where.storage!r}: {' '.join(str(err).split())}; check the URI "
                        f"and its credentials, or give a local folder ({option('storage', 'runs')})") from None


def check_choice(space: Space, where: RunLocation, *, resume: bool, restart: bool, warm_start: bool = False) -> bool:
    """Whether the run `where` exists (holds a trial). A UserError where --resume or its absence does not fit it:
    a resumed search warm-started, no run to resume, or a new search that would mix into an existing run. Writes
    nothing, so that it can refuse before the data loads."""
    if warm_start and resume:
        raise UserError(f"{option('warm_start')} with a resumed search: the run at {where.experiment} already "
                        f"holds its history; drop {option('warm_start')} to resume it, or use {option('restart')} "
                        "to start it again warm")
    if where.remote:
        _check_storage(where)
    try:
        exists = bool(_saved_trials(where))
    except DamagedState:
        if not restart:
            raise
        exists = True  # cleared by the restart
    if resume and not exists:
        raise UserError(f"there is no run to resume at {where.experiment}; run without {option('resume')} to "
                        "start it")
    if resume and not where.remote:
        _check_not_moved(where)
    if exists and not (resume or restart):
        raise UserError(_exists(space, where))
    return exists


def stopped_before_its_end(space: Space, where: RunLocation) -> bool:
    """Whether `where` holds a run of `space` that stopped before its end was recorded (a kill, a Ctrl-C, a batch
    job's preemption): the same search started again continues it, as --resume does. A run whose saved state
    cannot be read, or a storage that cannot be opened (a URI of no known scheme, a bucket not reached), is not one
    (`check_choice` says why, in one line)."""
    try:
        saved = bool(_saved_trials(where))
    except (DamagedState, OSError, ValueError):  # pyarrow's ArrowInvalid is a ValueError
        return False
    return saved and recorded_end(where.state) is None and not _space_changed(where, space)


def _exists(space: Space, where: RunLocation) -> str:
    """Why a new search of `space` is refused where the run `where` exists, and the ways on: a resume where it
    searched the same space (or recorded none), else a search of the edited space that starts from its trials."""
    there = f"a run named {space.name!r} already exists at {where.experiment}"
    if not _space_changed(where, space):
        return f"{there}; pass {option('resume')} to continue it or {option('restart')} to delete it and start again"
    warm = option("warm_start", where.experiment)
    return (f"{there}, of another search space{_changes(where.state, space)}, which {option('resume')} cannot "
            f"continue; to search the edited space from that run's finished trials, give it another name "
            f"({arguments(option('overrides', 'name=...'), warm)}), or replace that run "
            f"({arguments(option('restart'), warm)})")


def _space_changed(where: RunLocation, space: Space) -> bool:
    """Whether the run `where` recorded the fingerprint of a space other than `space` (False: the same, or none)."""
    recorded = where.state / "space.fingerprint"
    return recorded.exists() and recorded.read_text().strip() != space.fingerprint()


def _check_not_moved(where: RunLocation) -> None:
    """A UserError when the local run `where` was started in another folder and moved or copied here: Ray's saved
    state, the pickled searcher (its study.db) and callbacks hold the folder it was started in, so a resume would
    write there (or fail where it is gone). One that the folder it started in leads to (a link left there) resumes
    through it. A run started before its folder was recorded is not checked."""
    started, here = started_in(where.state), Path(where.experiment).resolve()
    if started is None or started.resolve() == here:
        return
    old, new = shlex.quote(str(started)), shlex.quote(str(here))
    ways = (f"resume the original there, which is still at {started}" if started.exists() else
            f"move it back (`mv {new} {old}`) and resume it there, or leave a link there (`mkdir -p "
            f"{shlex.quote(str(started.parent))} && ln -s {new} {old}`) and resume it here")
    raise UserError(f"the run at {here} was started at {started} and moved or copied here: its saved state points at "
                    f"{started}, so {option('resume')} continues it only through that folder: {ways}; or, to go on "
                    f"from its finished trials here, start a new search with {option('warm_start', where.experiment)} "
                    f"and another name ({option('overrides', 'name=...')})")


def prepare_run(space: Space, where: RunLocation, *, resume: bool, restart: bool, warm_start: bool = False) -> bool:
    """Whether to resume. Refuses what `check_choice` refuses; a run folder that holds no trial yet (a failure
    before the first trial) counts as absent, and is cleared. A resumed run's saved Ray state is put back as one
    save wrote it (a kill while it was copied may have left two saves); a run that is refused or started again is
    not written to. A started run records its trial count (`started_trials`)."""
    if not check_choice(space, where, resume=resume, restart=restart, warm_start=warm_start) or restart:
        _refuse_unwritable(where, restart=True)
        _clear(where)
        record_start(where.state, space)
        if not where.remote:
            (where.state / STARTED_FILE).write_text(f"{Path(where.experiment).resolve()}\n")
        (where.state / _FORMAT_FILE).write_text(f"{STATE_FORMAT}\n")
        return False
    if where.remote and not (where.state / "study.db").is_file():  # resumed on another machine, or cache cleared
        _copy_state(where, upload=False)
    if not (where.state / "study.db").is_file():
        raise UserError(
            f"the run at {where.experiment} cannot be resumed here: its Optuna study ({where.state / 'study.db'}) "
            f"is missing (resume it where it was started), or use {option('restart')}"
        )
    _check_state_format(where)
    _refuse_unwritable(where)
    if _space_changed(where, space):
        raise UserError(
            f"the search space changed since {where.experiment} was started{_changes(where.state, space)}; a resumed "
            f"search must be the same search. Undo the change, or use {option('restart')} (or another `name:`) to "
            f"start a new search, with {option('warm_start', where.experiment)} to start it from that run's finished "
            "trials"
        )
    restore_whole_state(*filesystem(where.experiment))
    record_space(where.state, space)
    return True


def _refuse_unwritable(where: RunLocation, *, restart: bool = False) -> None:
    """A UserError, before a resume (or a `restart`'s deletion) changes anything, naming the first file or folder of
    the run `where` that this user cannot write (a teammate's run, made under `umask 022`): a resume writes the
    study, Ray's saved state and the trials' folders, and failed mid-search on them (SQLite's "attempt to write a
    readonly database"); a --restart failed in a traceback from pyarrow's delete, or deleted part of the run."""
    for folder, _, files in os.walk(where.state):
        for path in (folder, *(os.path.join(folder, name) for name in files)):
            if not os.access(path, os.W_OK, follow_symlinks=False):
                doing = (f"start the run at {where.experiment} again (that deletes it)" if restart else
                         f"resume the run at {where.experiment} (a resume writes into it)")
                on = (f"run this search under another name ({option('overrides', 'name=...')})" if restart else
                      f"go on from its finished trials in a run of your own: "
                      f"{option('warm_start', where.experiment)} with another {option('overrides', 'name=...')}")
                raise UserError(f"cannot {doing}: {blocking(path, where.experiment)}; or {on}")


def record_code(state: Path, digests: dict[str, str], files: dict[str, str], *, resumed: bool) -> None:
    """Record the digests of the code the run at `state` runs (`export.source_digests`: "recipe", "custom"). A
    resumed run whose code differs from what it last ran is warned of, naming the file (`files`: each role's path):
    its fingerprint covers the space, not the code, and a fix to the code is a fair reason to resume."""
    if resumed:
        then = recorded_sources(state)
        edited = sorted(role for role, digest in digests.items() if then.get(role, digest) != digest)
        for role in edited:
            log.warning("the %s file %s was edited since this run last ran: the trials that continue or start now "
                        "run the edited code, those that ended ran the old one; to search with the edited code "
                        "alone, use %s", role, files[role], option("restart"))
        digests = {**digests, **({_EDITED: True} if edited or then.get(_EDITED) is True else {})}
    (state / _SOURCES_FILE).write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")


def recorded_sources(state: Path) -> dict[str, Any]:
    """The digests of the code the run at `state` last ran (`record_code`); empty for a run started before its code
    was recorded."""
    try:
        recorded = json.loads((state / _SOURCES_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return recorded if isinstance(recorded, dict) else {}


def code_edited(state: Path) -> bool:
    """Whether the run at `state` ran its recipe's or custom file's code in more than one version: a session resumed
    after an edit (`record_code`), whose trials that ended before ran the code before it."""
    return recorded_sources(state).get(_EDITED) is True


def _check_state_format(where: RunLocation) -> None:
    """A UserError when the run `where` saved its search state in another format than this autotune's (or before the
    format was recorded, 2026-12-06): its resume would unpickle objects this autotune's classes do not fit, and fail
    mid-search. Its finished trials still warm-start a new search (they are read from its study and trials.csv)."""
    try:
        recorded = (where.state / _FORMAT_FILE).read_text().strip()
    except OSError:
        recorded = None
    if recorded == str(STATE_FORMAT):
        return
    made = ("an earlier autotune, before runs recorded the format of their saved state" if recorded is None
            else f"an autotune whose saved state has format {recorded} (this one reads {STATE_FORMAT})")
    raise UserError(f"the run at {where.experiment} was started by {made}: this autotune cannot resume it; to go on "
                    f"from its finished trials, start a new search with {option('warm_start', where.experiment)} and "
                    f"another name ({option('overrides', 'name=...')})")


def _changes(state: Path, space: Space) -> str:
    """' (train.epochs: 1 -> 2, ...)': the key paths whose values differ from the recorded space's; '' when the run
    recorded none."""
    before = recorded_space(state)
    if before is None:
        return ""
    now = json.loads(space.definition())
    changed = [f"{path}: {_shown(old)} -> {_shown(new)}" for path, old, new in _diff(before, now)]
    more = f", and {len(changed) - SHOWN_CHANGES} more" if len(changed) > SHOWN_CHANGES else ""
    return f" ({', '.join(changed[:SHOWN_CHANGES])}{more})" if changed else ""


def _diff(before: Any, now: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """(key path, earlier value, new value) of every leaf that differs; an ingredient's path drops 'ingredients.'."""
    if isinstance(before, dict) and isinstance(now, dict):
        found = []
        for key in sorted(set(before) | set(now)):
            inner = key if path in ("", "ingredients") else f"{path}.{key}"
            found += _diff(before.get(key, _ABSENT), now.get(key, _ABSENT), inner)
        return found
    return [] if before == now else [(path, before, now)]


def _shown(value: Any) -> str:
    return "(absent)" if value is _ABSENT else json.dumps(value)


def _copy_state(where: RunLocation, *, upload: bool) -> None:
    """Copy autotune's state files of a run in a URI storage between its local mirror and the URI."""
    fs, path = filesystem(where.experiment)
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


def set_aside_orphaned_dirs(run_dir: Path, grid: Any, ended: Callable[[], set[str]] = set) -> None:
    """Trial folders no record knows of (started after Ray's last state save, then killed) move out of the run; the
    log line says how many were of trials that had ended (their ids in `ended()`, read only where there are such
    folders: the study recorded their end, and the kill came before Ray saved it) and how many were cut short."""
    known = {Path(r.path).name for r in grid if r.path}
    orphans = [d for d in run_dir.glob("trial_*") if d.is_dir() and d.name not in known]
    if not orphans:
        return
    aside = run_dir.parent / f"{run_dir.name}.orphaned"
    aside.mkdir(exist_ok=True)
    for folder in orphans:
        shutil.move(str(folder), aside / folder.name)
    ids = ended()
    finished = sum(folder.name.removeprefix("trial_") in ids for folder in orphans)
    kinds = [f"{finished} of trials that had ended" if finished else "",
             f"{len(orphans) - finished} of trials cut short" if len(orphans) > finished else ""]
    log.info("moved %d trial folder(s) of the killed run, unknown to Ray's last saved state, to %s (%s): the "
             "resumed search ran trials in their place", len(orphans), aside, ", ".join(filter(None, kinds)))
