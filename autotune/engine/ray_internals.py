"""Ray's private APIs that the engine relies on, in one place: an upgrade of Ray that changes one of them breaks
this file only. Each use says why no public API does.
"""
from __future__ import annotations

import contextlib
import errno
import fnmatch
import glob
import json
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from google.protobuf.struct_pb2 import ListValue
import numpy as np
import pandas as pd
import pyarrow.fs
import ray
from ray.exceptions import RayActorError, RayTaskError
from ray.experimental import internal_kv
from ray.tune import search as ray_search
from ray.tune.callback import Callback
from ray.tune.experiment import Trial
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback, TBXLoggerCallback
from ray.tune.result import AUTO_RESULT_KEYS
from ray.tune.schedulers import AsyncHyperBandScheduler
from ray.tune.schedulers.async_hyperband import _Bracket
from ray.tune.stopper import TimeoutStopper

from autotune.engine.heap import trim_heap
from autotune.engine.history import best_values, final_run, finite, reports
from autotune.errors import Diverged
from autotune.paths import FULL
from autotune.space.types import Choice, Grid, Param, Pow2


def _import_tensorboardx_without_torch() -> None:
    """Import tensorboardX without importing torch. tensorboardX's writer imports torch when it is installed (only
    to accept its tensors where it takes numpy arrays), which adds about 470 MiB to the driver's memory; the driver
    logs numbers only, and a recipe that uses torch imports it itself (in the driver too, then before this runs or
    normally after it). While tensorboardX loads, `import torch` fails (a None in `sys.modules`: Python's way to
    block an import)."""
    if "torch" in sys.modules or "tensorboardX" in sys.modules:
        return
    sys.modules["torch"] = None  # type: ignore[assignment]
    try:
        import tensorboardX  # noqa: F401
    finally:
        del sys.modules["torch"]


_import_tensorboardx_without_torch()
from tensorboardX import SummaryWriter  # noqa: E402
from tensorboardX.proto.api_pb2 import (DataType, Experiment, HParamInfo, Interval, MetricInfo,  # noqa: E402
                                        MetricName, Status)
from tensorboardX.proto.event_pb2 import Event, SessionLog  # noqa: E402
from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData  # noqa: E402
from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata  # noqa: E402

if TYPE_CHECKING:
    import optuna
    from ray.tune.search.optuna import OptunaSearch

__all__ = ["CsvLogger", "ForgetEndedTrials", "JsonLogger", "RESULT_KEYS", "TensorBoardLogger", "actor_node",
           "asked_trial", "auth_token_path", "diverged", "gcs_reconnect_timeout_s", "init_local", "joined_address",
           "kv_delete", "kv_get", "kv_put", "lock_folder", "lost_node", "lost_nodes_apart", "mark_told",
           "no_callback_usage_tag", "remove_partial_checkpoint", "restore_from_kept_checkpoints", "restore_whole_state",
           "saved_trials", "saves_when_trials_end", "sigterm_kept", "study_of", "told", "waits_for_driver",
           "whole_state_uploads", "write_trial_file"]

_log = logging.getLogger("autotune")

# The keys Ray adds to every result (training_iteration, time_total_s, ...). `ray.tune.result` is not documented, and
# no public API lists them.
RESULT_KEYS = frozenset(AUTO_RESULT_KEYS)


def init_local(temp_dir: str, **kwargs: Any) -> None:
    """Start a local Ray keeping its sockets and logs in `temp_dir`. ray.init takes that folder only as the private
    `_temp_dir`; the environment variable RAY_TMPDIR names the folder above it (Ray adds `ray/`) for every Ray this
    process and its children start. Ray's processes start in a session of their own (Ray's `ConsolePopen`, private):
    a SIGTERM to this process's group (systemd's KillMode=control-group, `kill -- -PGID`, a CI runner's) killed
    them with the search, which then waited 60 s for its GCS and failed (exit 1, no resume line), where it stops
    as on Ctrl-C. They still end with this process (Ray's fate sharing on Linux; `ray.shutdown`)."""
    from ray._private import services

    popen = services.ConsolePopen
    services.ConsolePopen = _own_session(popen)
    try:
        ray.init(_temp_dir=temp_dir, **kwargs)
    finally:
        services.ConsolePopen = popen


@contextlib.contextmanager
def sigterm_kept() -> Iterator[None]:
    """ray.init without its SIGTERM handler, which it sets as it starts (`sys.exit(15)`, through the private
    `ray._private.utils.set_sigterm_handler`): this process keeps its own, and a SIGTERM while Ray starts ends the
    search as that handler says (it ended with status 15 and no line)."""
    from ray._private import utils

    set_handler = utils.set_sigterm_handler
    utils.set_sigterm_handler = lambda handler: None
    try:
        yield
    finally:
        utils.set_sigterm_handler = set_handler


def _own_session(popen: type) -> type:
    """`popen` (a subprocess.Popen class) starting each process in a new session, off this process's group."""
    class OwnSession(popen):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            if sys.platform != "win32":
                kwargs.setdefault("start_new_session", True)
            super().__init__(*args, **kwargs)

    return OwnSession


def shutdown_keeping_sigterm() -> None:
    """`ray.shutdown()`, keeping this process's SIGTERM handler. Ray's core worker puts the default one back as it
    shuts down (C++'s `RayLog::UninstallSignalAction`; `signal.getsignal` still names the old one), then Ray removes
    its spilled objects and stops the local Ray's processes, about a second in which a SIGTERM killed the process
    (exit -15) where autotune ignores a second one while a search stops. The handler is set again at the first call
    after the core worker is gone (the private `ray._private.state.state.disconnect`), and once Ray is down."""
    from ray._private import state

    main = threading.current_thread() is threading.main_thread()  # handlers are set in the main thread only
    handler = signal.getsignal(signal.SIGTERM) if main else None
    gcs_state = state.state
    disconnect = gcs_state.disconnect

    def set_again() -> None:
        if handler is not None:  # None: set outside Python, not restorable
            signal.signal(signal.SIGTERM, handler)

    def disconnect_keeping() -> Any:
        set_again()
        return disconnect()

    gcs_state.disconnect = disconnect_keeping
    try:
        ray.shutdown()
    finally:
        del gcs_state.disconnect  # the class's own again
        set_again()


def auth_token_path() -> Path:
    """Where a local Ray writes the authentication token it makes when it finds none (~/.ray/auth_token): Ray
    starts a local cluster with token authentication unless RAY_AUTH_MODE says otherwise, and reads a token from
    RAY_AUTH_TOKEN, else the file RAY_AUTH_TOKEN_PATH names, else this file. The path is only in a private module."""
    from ray._private.authentication.authentication_token_setup import _get_default_token_path

    return _get_default_token_path()


def lock_folder() -> Path:
    """The folder of the file locks Ray takes while it reads a run's saved state back (a resume) and a checkpoint
    from a URI storage: `_ray_lockfiles` in RAY_TMPDIR, else TMPDIR, else /tmp, shared by every user of the machine
    (`ray.air._internal.filelock`, private). Made here when missing as /tmp is (1777: every user locks there, each
    lock file its maker's), where Ray would make it its first user's alone, and every other user's resume would fail
    to read the run's state, which Ray then starts over (it logs the PermissionError, as an error, and runs the
    search from its first trial)."""
    from ray._common.utils import get_default_system_temp_dir
    from ray.air._internal.filelock import RAY_LOCKFILE_DIR

    folder = Path(get_default_system_temp_dir(), RAY_LOCKFILE_DIR)
    with contextlib.suppress(OSError):  # there already, or its parent not writable: the caller checks
        folder.mkdir()
        folder.chmod(0o1777)
    return folder


def joined_address() -> str | None:
    """The address of the Ray cluster this process joined before the search (its own `ray.init(address=...)`, or
    Ray Client); None for a Ray it started itself, or none. `global_worker.node` is private: a joined cluster's
    node is not the head this process started."""
    from ray.util.client import ray as client

    if client.is_connected():
        return "ray://"
    node = getattr(ray._private.worker.global_worker, "node", None) if ray.is_initialized() else None  # noqa: SLF001
    return ray.get_runtime_context().gcs_address if node is not None and not node.is_head() else None


def gcs_reconnect_timeout_s() -> float:
    """How long Ray's core worker waits for a GCS it lost before it ends this process ("Failed to connect to GCS
    within N seconds"): Ray's config `gcs_rpc_server_reconnect_timeout_s`, 60 unless the environment's
    RAY_gcs_rpc_server_reconnect_timeout_s sets it. The config is not readable from Python."""
    try:
        return float(os.environ.get("RAY_gcs_rpc_server_reconnect_timeout_s", 60))
    except ValueError:
        return 60.0


def no_callback_usage_tag() -> None:
    """Skip Ray Tune's count of the search's callbacks for its usage statistics (`ray.air._internal.usage`), which the
    engine turns off (RAY_USAGE_STATS_ENABLED=0): the count imports Ray's W&B, MLflow, Comet and Aim integrations,
    and with them wandb and mlflow where installed, only to compare class names (1-2 s of every search's start)."""
    from ray._common.usage.usage_lib import usage_stats_enabled
    from ray.air._internal import usage

    if getattr(usage.tag_callbacks, "_autotune", False):
        return
    ray_tag = usage.tag_callbacks

    def tag_callbacks(callbacks: Any) -> bool:
        return bool(usage_stats_enabled() and ray_tag(callbacks))

    tag_callbacks._autotune = True  # type: ignore[attr-defined]
    usage.tag_callbacks = tag_callbacks


def saved_trials(fs: pyarrow.fs.FileSystem, path: str) -> list[dict[str, Any]]:
    """The trials (id, status, ...) of the newest experiment state Ray saved in the folder `path` of `fs`, each with
    `reported`: the number of reports that state knows of (its last result's training_iteration); [] when none.
    The experiment state files (`experiment_state-*.json` beside `tuner.pkl`) are Ray's private format: no public
    API reads the trials' saved statuses short of loading the whole experiment (`ExperimentAnalysis`,
    `Tuner.restore`); `Tuner.can_restore` says only whether there is one. The state is read from the newest whole
    set of it where there is one (see `SAVED_STATE`): what a resume starts from. A running search may publish a
    newer set and remove the one being read (a second invocation checks the run, a test polls it): it is read
    again from the newer one."""
    if fs.get_file_info(f"{path}/tuner.pkl").type != pyarrow.fs.FileType.File:
        return []
    for _ in range(_READS - 1):
        try:
            return _trials_in(fs, _newest_whole_set(fs, path) or path)
        except FileNotFoundError:
            continue
    return _trials_in(fs, _newest_whole_set(fs, path) or path)


def _trials_in(fs: pyarrow.fs.FileSystem, folder: str) -> list[dict[str, Any]]:
    """`saved_trials` of the newest experiment state in `folder`."""
    files = fs.get_file_info(pyarrow.fs.FileSelector(folder))
    names = {Path(f.path).name: f.path for f in files if f.type == pyarrow.fs.FileType.File}
    states = sorted(n for n in names if n.startswith("experiment_state-") and n.endswith(".json"))
    if not states:
        return []
    with fs.open_input_stream(names[states[-1]]) as stream:
        saved = json.loads(stream.read()).get("trial_data", [])
    return [{**json.loads(trial), "reported": _reports(json.loads(metadata))} for trial, metadata in saved]


def _reports(metadata: dict[str, Any]) -> int:
    """The reports a trial's saved run metadata knows of (a saved result is Ray's TuneFunctionEncoder's JSON)."""
    last = metadata.get("last_result") or {}
    return int(last.get("training_iteration", 0) or 0) if isinstance(last, dict) else 0


# Ray saves a search's state (the experiment state with its trials, the search generator's trial count, the
# searcher's pickle) into the driver's folder in one call, `TuneController.save_to_dir`, every checkpoint period,
# and copies that folder into the storage in a background thread (`ray.train._internal.storage._upload_to_fs_path`,
# run by the experiment syncer), file by file, while the next save may rewrite the files: nothing public makes the
# saved files one set. A kill during the copy, or a save during it, left the storage with files of two saves; the
# resumed search then read a trial count ahead of its trials (it ran 9 trials of 10) or trials its searcher never
# asked for. The engine holds a lock while Ray saves and while the copy reads the saved files, and publishes each
# set whole: into a folder of its own in the storage, marked whole once every file is there (`SAVED_STATE`), before
# the files are copied over the experiment folder's own, where Ray reads them. A resume puts the newest whole set
# back first (`restore_whole_state`).
SAVED_STATE = ".saved-state"
_WHOLE = "whole"
_READS = 5  # a set replaced while it is read: a newer one is whole by then, and a set is published a period apart
_SAVING = threading.Lock()
_SESSION_FILE = re.compile(r"(?P<kind>.+-)(?P<session>\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2})(?P<suffix>\.\w+)$")


def restore_from_kept_checkpoints() -> None:
    """A trial continued from a checkpoint (a resume, a retry, a lost node) whose latest checkpoint, as Ray's saved
    state records it, is gone from the storage continues from its newest kept checkpoint that is still there, or
    from its start; Ray failed it ("Could not recover from checkpoint as it does not exist on storage anymore"),
    and `--resume` does not rerun a failed trial. It happens when the whole cluster is lost: a trial's newer
    checkpoint, saved after Ray's last saved state, made Ray delete the one that state names (it keeps the best
    `keep_checkpoints` and the latest). Ray's trial restore (`TuneController._schedule_trial_restore`) and its
    checkpoint manager's fields are private."""
    from ray.tune.execution.tune_controller import TuneController

    if getattr(TuneController._schedule_trial_restore, "_autotune", False):
        return
    ray_restore = TuneController._schedule_trial_restore

    def schedule_trial_restore(self: TuneController, trial: Trial) -> bool:
        _kept_checkpoint(trial)
        return ray_restore(self, trial)

    schedule_trial_restore._autotune = True  # type: ignore[attr-defined]
    TuneController._schedule_trial_restore = schedule_trial_restore  # type: ignore[method-assign]


def _kept_checkpoint(trial: Trial) -> None:
    """Point `trial` at its newest kept checkpoint that exists when its latest one is gone (none: its start), with
    a warning that says which."""
    from ray.train._internal.storage import _exists_at_fs_path

    manager = trial.run_metadata.checkpoint_manager
    latest = manager.latest_checkpoint_result
    if latest is None or _exists_at_fs_path(latest.checkpoint.filesystem, latest.checkpoint.path):
        return
    kept = [r for r in manager._checkpoint_results
            if r is not latest and _exists_at_fs_path(r.checkpoint.filesystem, r.checkpoint.path)]
    newest = max(kept, key=lambda r: r.metrics.get("training_iteration", 0), default=None)
    manager._checkpoint_results = kept
    manager._latest_checkpoint_result = newest
    epoch = latest.metrics.get("training_iteration", "?")
    instead = (f"its checkpoint of epoch {newest.metrics.get('training_iteration', '?')}" if newest
               else "its first epoch (no checkpoint of it is left)")
    _log.warning("trial %s: its checkpoint of epoch %s is gone from the storage (%s): it continues from %s",
                 trial.trial_id, epoch, latest.checkpoint.path, instead)


def whole_state_uploads() -> None:
    """Make each copy of the search's state into the storage one whole save (see `SAVED_STATE`). To a local
    storage each file is also copied beside its old self and renamed over it (os.replace: whole or not at all):
    Ray copies in place, and a kill during its copy left a truncated experiment_state-*.json. A file gone between
    the listing and its copy is left for the next copy. The trial folders are copied before the state: a kill
    during the copy leaves the storage's trial files newer than its state, never older (a trial the state calls
    finished has its last results there). Remote stores write each object whole already."""
    from ray.train._internal import storage
    from ray.tune.execution.tune_controller import TuneController

    if getattr(storage._upload_to_fs_path, "_autotune", False):
        return
    ray_upload, ray_save = storage._upload_to_fs_path, TuneController.save_to_dir

    def save_to_dir(self: TuneController) -> None:
        with _SAVING:
            ray_save(self)

    def upload(local_path: str, fs: pyarrow.fs.FileSystem, fs_path: str, exclude: list[str] | None = None) -> None:
        if not os.path.isdir(local_path):
            return ray_upload(local_path, fs, fs_path, exclude)
        exclude = exclude or []
        with tempfile.TemporaryDirectory(prefix="autotune-state-") as held:
            names = _hold_state(local_path, held, exclude)
            stale = _older_sessions(names)
            names = [name for name in names if name not in stale]
            if isinstance(fs, pyarrow.fs.LocalFileSystem):
                _copy_folders_whole(local_path, fs_path, exclude)
            else:
                ray_upload(local_path, fs, fs_path, [*exclude, *names, *stale])
            if any(name.startswith("experiment_state-") for name in names):  # Ray's saved state
                _publish_state(held, names, fs, fs_path)
            else:
                _copy_files(held, names, fs, fs_path)
            _remove_files(stale, local_path, fs, fs_path)

    upload._autotune = True  # type: ignore[attr-defined]
    storage._upload_to_fs_path = upload
    TuneController.save_to_dir = save_to_dir


# Ray saves the search's state at most every 10 s (`_ExperimentCheckpointManager`, its period "auto": 10 s, or 19
# times the last save's time when longer). A trial that ended after the last save was unknown to the state a resume
# started from: the restored searcher asked for its configuration again, and it ran again as a new trial. The engine
# saves the state at the first step after a trial ends, as Ray saves when a trial has kept `num_to_keep` checkpoints
# (a forced save: it also waits for the previous copy into the storage), at most once every END_SAVE_SHARE times
# the last such save's time: the driver spends at most 1/(1 + END_SAVE_SHARE) of its time on them, Ray's own share.
END_SAVE_SHARE = 19


def saves_when_trials_end() -> None:
    """Save the search's state soon after each trial ends (see END_SAVE_SHARE). Ray's controller step
    (`TuneController.checkpoint`, its status changes `_set_trial_status`) and its checkpoint manager
    (`_checkpoint_manager`, `_last_save_time`) are private; the engine's marks live on the manager, which Ray makes
    anew for each controller and does not save."""
    from ray.tune.execution.tune_controller import TuneController

    if getattr(TuneController.checkpoint, "_autotune", False):
        return
    ray_status, ray_checkpoint = TuneController._set_trial_status, TuneController.checkpoint

    def set_trial_status(self: TuneController, trial: Trial, status: str) -> None:
        ray_status(self, trial, status)
        if status in (Trial.TERMINATED, Trial.ERROR):
            self._checkpoint_manager._autotune_ended = True

    def checkpoint(self: TuneController, force: bool = False, wait: bool = False) -> None:
        manager = self._checkpoint_manager
        start, saved = time.monotonic(), manager._last_save_time
        due = getattr(manager, "_autotune_ended", False) and start >= getattr(manager, "_autotune_next", 0.0)
        ray_checkpoint(self, force or due, wait or due)
        if manager._last_save_time != saved:  # saved: the ended trials are in it
            manager._autotune_ended = False
            if due:
                manager._autotune_next = time.monotonic() + END_SAVE_SHARE * (time.monotonic() - start)

    checkpoint._autotune = True  # type: ignore[attr-defined]
    TuneController._set_trial_status = set_trial_status  # type: ignore[method-assign]
    TuneController.checkpoint = checkpoint  # type: ignore[method-assign]


def _excluded(relative: str, exclude: list[str]) -> bool:
    return any(fnmatch.fnmatch(os.path.normpath(relative), pattern) for pattern in exclude)


def _older_sessions(names: list[str]) -> list[str]:
    """The files among `names` that an earlier session of the run saved (Ray names its state files for the session
    that writes them, and a resume copies every earlier session's into its folder): a resume reads the newest
    session's files only, and the others were copied at each save, a set more per resume (15 MB at 1,000 trials)."""
    sessions = {name: found["session"] for name in names if (found := _SESSION_FILE.match(name))}
    newest = max((s for name, s in sessions.items() if name.startswith("experiment_state-")), default=None)
    return [name for name, session in sessions.items() if newest is not None and session < newest]


def _remove_files(names: list[str], local_path: str, fs: pyarrow.fs.FileSystem, fs_path: str) -> None:
    """Remove the files `names` from Ray's folder `local_path` and from `fs_path` of the storage, where they are."""
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(local_path, name))
        if fs.get_file_info(f"{fs_path}/{name}").type == pyarrow.fs.FileType.File:
            fs.delete_file(f"{fs_path}/{name}")


def _hold_state(local_path: str, held: str, exclude: list[str]) -> list[str]:
    """Copy the files at the top of Ray's folder (its saved state) into `held` while Ray does not save; their names."""
    names = []
    with _SAVING:
        for entry in os.scandir(local_path):
            if entry.is_file() and not _excluded(entry.name, exclude):
                try:
                    shutil.copyfile(entry.path, os.path.join(held, entry.name))
                except FileNotFoundError:  # removed since the listing by another writer: left for the next copy
                    if os.path.exists(entry.path):
                        raise
                    continue
                names.append(entry.name)
    return sorted(names)


def _copy_folders_whole(local_path: str, fs_path: str, exclude: list[str]) -> None:
    """Copy the folders below `local_path` (the trials') into the local `fs_path`, each file whole, and each only
    when it changed since its last copy (`_copy_changed`): each save copied every trial's files again (a second at
    1,000 trials)."""
    for folder, _, files in os.walk(local_path, topdown=False):
        relative = os.path.relpath(folder, local_path)
        if relative == ".":
            continue
        target = os.path.normpath(os.path.join(fs_path, relative))
        os.makedirs(target, exist_ok=True)
        for name in files:
            if not _excluded(os.path.join(relative, name), exclude):
                _copy_changed(os.path.join(folder, name), os.path.join(target, name))


def _copy_changed(source: str, destination: str) -> None:
    """`_copy_whole`, unless `destination` has the size and modification time of `source` (rsync's quick check;
    each copy is given its source's time). A TensorBoard event file that `destination` holds the start of gets the
    rest appended instead (`_append_rest`). Nothing if `source` is gone."""
    try:
        stat = os.stat(source)
    except FileNotFoundError:
        return
    try:
        there = os.stat(destination)
    except FileNotFoundError:
        there = None
    if there is None or (there.st_size, there.st_mtime_ns) != (stat.st_size, stat.st_mtime_ns):
        if not (there is not None and os.path.basename(source).startswith(_EVENT_FILE)
                and _append_rest(source, destination, there.st_size, stat.st_mtime_ns)):
            _copy_whole(source, destination, stat.st_mtime_ns)


# TensorBoard's event files (tensorboardX's names): only ever appended to. TensorBoard reads each as it grows, from
# the file it opened: a copy renamed over it was never read (a running search's curves stopped at the copy
# TensorBoard first opened, and its HParams table lacked the trials that ended after that).
_EVENT_FILE = "events.out.tfevents."
_CHECKED_TAIL = 4096  # bytes: the end of the destination, compared with the same bytes of the source


def _append_rest(source: str, destination: str, have: int, mtime_ns: int) -> bool:
    """Append to `destination` (`have` bytes long) the bytes of `source` after its first `have`, and give it the
    modification time `mtime_ns`, when its last bytes are those of `source` at the same place (it holds a copy of
    the start of `source`); the file stays the one its readers opened. False, with nothing written, otherwise."""
    start = max(have - _CHECKED_TAIL, 0)
    try:
        with open(source, "rb") as src, open(destination, "r+b") as dst:
            src.seek(start)
            dst.seek(start)
            if src.read(have - start) != dst.read():
                return False
            shutil.copyfileobj(src, dst)
    except FileNotFoundError:
        return False
    os.utime(destination, ns=(mtime_ns, mtime_ns))
    return True


def _publish_state(held: str, names: list[str], fs: pyarrow.fs.FileSystem, fs_path: str) -> None:
    """Publish the files `names` held in the local folder `held`: first Ray's saved state among them (its files
    named for a Ray session) as a whole set in the storage's `SAVED_STATE` folder (older sets removed once it is
    marked whole), then every file over the experiment folder's own (Ray's state, and the engine's files that
    Ray's resume copied into its folder). The sets are numbered in order. Where the disk has no room for the set
    (ENOSPC), the sets are removed and the files copied in place only, as Ray copies them, where they all fit
    (`_in_place_order`): a search stopped by a full disk (autotune.engine.full_disk) must still save its last
    state, or `--resume` would run finished trials again, and a resume must not put an older set back over it."""
    local = pyarrow.fs.LocalFileSystem()
    sets = f"{fs_path}/{SAVED_STATE}"
    older = [s.path for s in fs.get_file_info(pyarrow.fs.FileSelector(sets, allow_not_found=True))
             if s.type == pyarrow.fs.FileType.Directory]
    current = f"{sets}/{max((int(Path(p).name) for p in older if Path(p).name.isdigit()), default=0) + 1:012d}"
    try:
        fs.create_dir(current)
        for name in filter(_SESSION_FILE.match, names):
            pyarrow.fs.copy_files(os.path.join(held, name), f"{current}/{name}", source_filesystem=local,
                                  destination_filesystem=fs)
        with fs.open_output_stream(f"{current}/{_WHOLE}"):
            pass
    except OSError as err:
        if err.errno not in FULL and "No space left" not in str(err):
            raise
        fs.delete_dir(sets)
        if isinstance(fs, pyarrow.fs.LocalFileSystem):
            names = _in_place_order(held, names, fs_path)
    else:
        for path in older:
            fs.delete_dir(path)
    _copy_files(held, names, fs, fs_path)


def _in_place_order(held: str, names: list[str], fs_path: str) -> list[str]:
    """The files `names` of the local folder `held` in an order in which each fits over its copy in `fs_path` in
    place (those that shrink first); where they do not all fit, ENOSPC before any is copied: the storage keeps the
    previous save whole, rather than files of two saves (a resume then runs a trial short) or one cut short."""
    growth = {name: _growth(os.path.join(held, name), os.path.join(fs_path, name)) for name in names}
    if sum(growth.values()) > shutil.disk_usage(fs_path).free:
        raise OSError(errno.ENOSPC, f"no room for the search's saved state in {fs_path}", fs_path)
    return sorted(names, key=growth.__getitem__)


def _growth(source: str, destination: str) -> int:
    """The bytes of disk that copying `source` over `destination` in place takes beyond what `destination` holds
    (negative where it shrinks), in the disk's blocks."""
    block = os.statvfs(os.path.dirname(destination)).f_frsize
    try:
        held = os.stat(destination).st_blocks * 512
    except FileNotFoundError:
        held = 0
    return -(-os.path.getsize(source) // block) * block - held


def _copy_files(held: str, names: list[str], fs: pyarrow.fs.FileSystem, fs_path: str) -> None:
    """Copy the files `names` of the local folder `held` into `fs_path` of `fs`, each whole."""
    for name in names:
        if isinstance(fs, pyarrow.fs.LocalFileSystem):
            _copy_whole(os.path.join(held, name), os.path.join(fs_path, name))
        else:
            pyarrow.fs.copy_files(os.path.join(held, name), f"{fs_path}/{name}",
                                  source_filesystem=pyarrow.fs.LocalFileSystem(), destination_filesystem=fs)


def restore_whole_state(fs: pyarrow.fs.FileSystem, path: str) -> None:
    """Put the newest whole set of Ray's saved state (see `SAVED_STATE`) back over the experiment folder `path` of
    `fs`, whose files a kill during a copy may have left from two saves, and remove the files of a later Ray
    session that the set has not (a resumed search killed before its first whole save); nothing when there is no
    whole set."""
    whole = _newest_whole_set(fs, path)
    if whole is None:
        return
    names = {Path(f.path).name for f in fs.get_file_info(pyarrow.fs.FileSelector(whole))} - {_WHOLE}
    newest = {}
    for name in names:
        if match := _SESSION_FILE.match(name):
            newest[match["kind"], match["suffix"]] = max(name, newest.get((match["kind"], match["suffix"]), ""))
    for file in fs.get_file_info(pyarrow.fs.FileSelector(path)):
        match = _SESSION_FILE.match(file.base_name)
        if match and file.base_name > newest.get((match["kind"], match["suffix"]), file.base_name):
            fs.delete_file(file.path)
    for name in sorted(names):
        fs.copy_file(f"{whole}/{name}", f"{path}/{name}")


def _newest_whole_set(fs: pyarrow.fs.FileSystem, path: str) -> str | None:
    """The newest set of Ray's saved state marked whole in the experiment folder `path` of `fs`; None if none."""
    sets = fs.get_file_info(pyarrow.fs.FileSelector(f"{path}/{SAVED_STATE}", allow_not_found=True))
    whole = sorted(s.path for s in sets if s.type == pyarrow.fs.FileType.Directory
                   and fs.get_file_info(f"{s.path}/{_WHOLE}").type == pyarrow.fs.FileType.File)
    return whole[-1] if whole else None


def _copy_whole(source: str, destination: str, mtime_ns: int | None = None) -> None:
    """Copy a file beside `destination` and rename it over it (given the modification time `mtime_ns`, if any);
    nothing if `source` is gone by then. Where the disk has no room for both (ENOSPC), the file is copied in place
    as Ray copies it, where it fits there: a search stopped by a full disk (autotune.engine.full_disk) must still
    save its last state, or `--resume` would run finished trials again; where it does not fit, the old file stays
    (a copy cut short by the full disk left Ray's experiment state unreadable: `--resume` failed in a
    JSONDecodeError)."""
    staged = os.path.join(os.path.dirname(destination), f".upload-{uuid.uuid4().hex}.part")
    try:
        shutil.copyfile(source, staged)
        if mtime_ns is not None:
            os.utime(staged, ns=(mtime_ns, mtime_ns))
        os.replace(staged, destination)
    except FileNotFoundError:
        if os.path.exists(source):
            raise
    except OSError as err:
        if err.errno not in FULL:
            raise
        Path(staged).unlink(missing_ok=True)
        if _growth(source, destination) > shutil.disk_usage(os.path.dirname(destination)).free:
            raise  # copied in place, it would be cut short where the disk fills: the old file stays whole
        shutil.copyfile(source, destination)
    finally:
        Path(staged).unlink(missing_ok=True)


class _OwnValueBracket(_Bracket):
    """Ray's bracket, its cutoff taken over the finite values recorded at the rung and the judged trial's own.

    A value that is not finite (NaN: a diverged training; an infinity, which the search ranks no better) ranks below
    every other, as Optuna's successive halving prunes a NaN: the trial stops at a rung that holds a finite value, and
    stands there as -inf. At a rung without one it goes on, as the first trial at a rung does (a recipe may report NaN
    for an epoch without a value, every trial alike). Ray's went on with a NaN at every rung, and an infinity in the
    better direction made the cutoff of its rung NaN, which stopped no later trial there."""

    _judged: float | None = None

    def on_result(self, trial: Trial, cur_iter: int, cur_rew: float | None) -> str:
        self._judged = cur_rew if cur_rew is None or np.isfinite(cur_rew) else -np.inf
        try:
            return super().on_result(trial, cur_iter, self._judged)
        finally:
            self._judged = None

    def cutoff(self, recorded: dict[str, float]) -> float | None:
        values = [v for v in (*recorded.values(), self._judged) if v is not None and np.isfinite(v)]
        return float(np.percentile(values, (1 - 1 / self.rf) * 100)) if values else None


def judge_with_own_value(scheduler: AsyncHyperBandScheduler) -> None:
    """Make Ray's ASHA keep a trial at a rung only if its value is in the top 1/rf of the values recorded there
    counting its own, as successive halving keeps the top 1/rf of a rung (Ray's `_Bracket.on_result` takes the
    quantile of the others' values alone: at rf 3, a trial second of three went on when above the 2/3 point between
    the other two). The rule is the private `_Bracket.cutoff` of the brackets in `_brackets`; no argument sets it."""
    for bracket in scheduler._brackets:
        bracket.__class__ = _OwnValueBracket


def asha_state(scheduler: AsyncHyperBandScheduler) -> dict[str, Any]:
    """What Ray's ASHA has decided so far, to be saved with the search's state: the values recorded at each rung
    of each bracket (`_Bracket._rungs`, highest rung first) and the bracket of each live trial (`_trial_info`).
    Ray saves no scheduler state, and keeps both privately."""
    index = {id(bracket): i for i, bracket in enumerate(scheduler._brackets)}
    return {"rungs": [[dict(recorded) for _, recorded in bracket._rungs] for bracket in scheduler._brackets],
            "trials": {trial_id: index[id(bracket)] for trial_id, bracket in scheduler._trial_info.items()}}


def set_asha_state(scheduler: AsyncHyperBandScheduler, state: dict[str, Any]) -> None:
    """Give Ray's ASHA the rung values and trial brackets of `asha_state`."""
    for bracket, rungs in zip(scheduler._brackets, state["rungs"]):
        for (_, recorded), saved in zip(bracket._rungs, rungs):
            recorded.clear()
            recorded.update(saved)
    scheduler._trial_info = {trial_id: scheduler._brackets[i] for trial_id, i in state["trials"].items()}


def time_budget(stopper: TimeoutStopper) -> tuple[float, float]:
    """The seconds of Ray's time-budget stopper `stopper`, and those left of them: Ray keeps both privately
    (`_timeout_seconds`, `_budget`), and what is left is saved with a search's state and restored on resume."""
    return float(stopper._timeout_seconds), float(stopper._budget)


def spend_time_budget(stopper: TimeoutStopper, now: float) -> bool:
    """Ray's time-budget stopper `stopper`'s `stop_all` on a clock read as `now` (Ray's own reads `time.time`, which
    a suspended machine's sleep and a clock set forward spend): whether the budget ran out. What is left is Ray's
    private `_budget`, saved with the search's state; `_last_check` the clock's read before (None at the search's
    start, and after a restore)."""
    if stopper._last_check is not None:
        stopper._budget -= now - stopper._last_check
    stopper._last_check = now
    return stopper._budget <= 0


def asha_has_trial(scheduler: AsyncHyperBandScheduler, trial_id: str) -> bool:
    """Whether Ray's ASHA has put the trial `trial_id` in a bracket (`_trial_info`, private)."""
    return trial_id in scheduler._trial_info


def asha_milestones(scheduler: AsyncHyperBandScheduler, trial_id: str | None = None) -> list[float]:
    """The milestones (epochs, possibly fractional) of the bracket of Ray's ASHA that a trial is in, or of its first
    bracket without a trial: Ray keeps them in `_trial_info` and `_Bracket._rungs`, with no public accessor."""
    bracket = scheduler._brackets[0] if trial_id is None else scheduler._trial_info[trial_id]
    return sorted(milestone for milestone, _ in bracket._rungs)


def working_dir_files(experiment: str) -> list[Path]:
    """The files that the trials of the experiment named `experiment` left in their working directories on this node.
    Ray runs each trial in `<session>/artifacts/<time>/<experiment>/working_dirs/<trial folder>`
    (`StorageContext.trial_working_directory`), copies none of it into the storage (`SyncConfig.sync_artifacts` is
    off) and leaves it to its session's temp folder, `<session>/artifacts` (Ray's private `_get_ray_train_session_dir`:
    the private `_global_node`'s session folder). No file under Ray Client (ray://), whose node is remote."""
    node = ray._private.worker._global_node if ray.is_initialized() else None
    if node is None:
        return []
    root = Path(node.get_session_dir_path(), "artifacts")
    return sorted(path for path in root.glob(f"*/{glob.escape(experiment)}/working_dirs/*/**/*") if path.is_file())


def write_trial_file(name: str, text: str) -> None:
    """In a trial: write `text` into the file `name` of the trial's folder in the storage (removing it for "");
    where the driver reads it (the storage, a URI's too) even when the trial's worker ends right after. Ray names
    that folder only in the trial's private storage context (`ray.train._internal.session.get_storage`)."""
    from ray.train._internal.session import get_storage

    storage = get_storage()
    path = f"{storage.trial_fs_path}/{name}"
    if not text:
        try:
            storage.storage_filesystem.delete_file(path)
        except OSError:  # there was none
            pass
        return
    with storage.storage_filesystem.open_output_stream(path) as out:
        out.write(text.encode())


def waits_for_driver(thread_id: int) -> bool:
    """In a trial: whether its thread `thread_id` waits in `tune.report` for the driver to take the result. Ray's
    private `_TrainSession._report_training_result` holds the trial's thread, its checkpoint already in the storage,
    until the driver asks for the next result: a driver stopped with Ctrl-Z (Ray's processes, in sessions of their
    own, are not) asks for none until it is continued. No public API says that a report waits."""
    from ray.train._internal.session import _TrainSession

    waiting = _TrainSession._report_training_result.__code__
    frame = sys._current_frames().get(thread_id)
    while frame is not None and frame.f_code is not waiting:
        frame = frame.f_back
    return frame is not None


def remove_partial_checkpoint() -> None:
    """In a trial whose checkpoint failed to reach the storage: remove what was copied of it. Ray names the folder
    it copies into only in the trial's private storage context (`ray.train._internal.session.get_storage`)."""
    from ray.train._internal.session import get_storage

    storage = get_storage()
    try:
        storage.storage_filesystem.delete_dir(storage.checkpoint_fs_path)
    except OSError:  # nothing was copied
        pass


# A trial whose node died (a spot instance reclaimed, a raylet killed) ends in an actor error that Ray's
# `Trial.handle_error` counts against FailureConfig.max_failures as it counts the trial's own exceptions, unless the
# autoscaler drained the node as preempted. Tune calls no hook before that count, and no public API tells a lost node
# from a trial's crash: the engine wraps `Trial.handle_error` to give the count back when the node the trial last
# reported from is declared dead by the cluster (its GCS does so once the node misses its health checks: 16 s with
# Ray's defaults; the driver waits for it, only on an actor error whose node may be lost, never on a trial's own
# exception). A worker process that died on a live node (an out-of-memory kill, a crash in native code, a trial
# ended at its timeout) is the error the GCS writes from its raylet's report, `_WORKER_DIED`: its raylet was alive to
# report it, so nothing is waited for; the driver, which waits in Tune's loop, held every other trial 30 s per death.
_NODE_DEATH_WAIT_S = 30.0
_WORKER_DIED = "because its worker process has died. Worker exit type:"
_NODE_ID = re.compile(r"[Nn]ode I[Dd]: ([0-9a-f]{16,})")
_lost_node_listener: Callable[[Any, str], None] | None = None
_diverged: set[str] = set()  # failed trials whose recipe raised Diverged, until the searcher asks (`diverged`)


def lost_node(error: BaseException | None, node: str | None) -> str | None:
    """The id of the node whose loss ended a trial with `error`: `node` (where the trial last reported from, else
    the node the error names, else the node of the actor it names: a reused actor's next trial has reported
    nothing) when `error` is its actor dying or unreachable and the cluster declares that node dead within
    _NODE_DEATH_WAIT_S; None for any other error (the trial's own exception, its actor's crash, its worker process's
    death that its node's raylet reported)."""
    cause = error.as_instanceof_cause() if isinstance(error, RayTaskError) else error
    if not isinstance(cause, RayActorError) or cause.actor_init_failed or _WORKER_DIED in str(cause):
        return None
    named = _NODE_ID.search(str(cause))
    node = node or (named.group(1) if named else None) or actor_node(cause.actor_id)
    if node is None:
        return None
    deadline = time.monotonic() + _NODE_DEATH_WAIT_S
    while True:
        if not {n["NodeID"]: n["Alive"] for n in ray.nodes()}.get(node, False):
            return node
        if time.monotonic() > deadline:
            return None
        time.sleep(0.2)


def actor_node(actor_id: str | None) -> str | None:
    """The id of the node the actor `actor_id` (hex) was placed on, from Ray's actor table (private: the public
    state API needs the dashboard); None when unknown."""
    from ray._private.state import actors

    if not actor_id:
        return None
    try:
        info = actors(actor_id)
    except Exception:  # the GCS's own errors (it may be going away with the node): unknown
        return None
    return (info or {}).get("Address", {}).get("NodeID") or None


@contextmanager
def lost_nodes_apart(listener: Callable[[Any, str], None]) -> Iterator[None]:
    """While the block runs, a trial that fails because its node was lost is not counted as a failure, nor keeps
    that error (Ray then retries it from its last checkpoint, whatever max_failures is), and
    `listener(trial, node_id)` is told; a trial whose recipe raised `Diverged` is not retried (`diverged`)."""
    global _lost_node_listener
    if not getattr(Trial.handle_error, "_autotune", False):
        ray_handle_error = Trial.handle_error

        def handle_error(trial: Trial, exc: BaseException | None = None) -> None:
            failures = trial.run_metadata.num_failures
            ray_handle_error(trial, exc)
            if isinstance(getattr(exc, "cause", None), Diverged):
                trial.max_failures = 0  # a verdict on its configuration: retried, it would diverge again
                _diverged.add(trial.trial_id)
                return
            where = (trial.last_result or {}).get("node_id")
            node = lost_node(exc, where) if _lost_node_listener is not None else None
            if node is not None:
                _not_failed(trial, failures)
                _lost_node_listener(trial, node)

        handle_error._autotune = True  # type: ignore[attr-defined]
        Trial.handle_error = handle_error  # type: ignore[method-assign]
    _lost_node_listener = listener
    try:
        yield
    finally:
        _lost_node_listener = None


def diverged(trial_id: str) -> bool:
    """Whether Ray's trial `trial_id` has just failed because its recipe raised `Diverged`: Ray tells the searcher
    only that it failed (`on_trial_complete(error=True)`), after `Trial.handle_error` saw the exception. Asked once,
    by the searcher, for each failed trial."""
    if trial_id in _diverged:
        _diverged.discard(trial_id)
        return True
    return False


def _not_failed(trial: Trial, failures: int) -> None:
    """Take back what Ray's `Trial.handle_error` recorded of a trial that moves: the failure count it had before
    (`failures`) and its error (the run metadata's error files, private), as Ray's resume drops the error of a trial
    it continues. Ray's Result of a trial not TERMINATED carries the recorded error: a moved trial still waiting
    for a node when the search was interrupted was called failed, and a resume continued it."""
    metadata = trial.run_metadata
    metadata.num_failures = failures
    metadata.error_filename = metadata.pickled_error_filename = None
    metadata.invalidate_cache()


# OptunaSearch keeps privately the Optuna trial it asked for each Ray trial (`_ot_trials`), the Ray trials whose end
# it told Optuna (`_completed_trials`) and its study (`_ot_study`), with no public access: the engine's searcher
# reads them to tell Optuna a trial's end itself (PRUNED with its intermediate values, where OptunaSearch tells
# COMPLETE).


def asked_trial(searcher: OptunaSearch, trial_id: str) -> optuna.Trial | None:
    """The Optuna trial `searcher` asked for Ray's trial `trial_id`; None when it asked none."""
    return searcher._ot_trials.get(trial_id)


def told(searcher: OptunaSearch, trial_id: str) -> bool:
    """Whether `searcher` told Optuna the end of Ray's trial `trial_id`."""
    return trial_id in searcher._completed_trials


def mark_told(searcher: OptunaSearch, trial_id: str) -> None:
    """Record that the end of Ray's trial `trial_id` was told: `searcher` does not tell it again, and drops the
    Optuna trial it asked for it (OptunaSearch reads it only until the end is told, and keeps every one otherwise:
    in the driver and in each save of the searcher's state)."""
    searcher._completed_trials.add(trial_id)
    searcher._ot_trials.pop(trial_id, None)


def study_of(searcher: OptunaSearch) -> optuna.Study:
    """The Optuna study `searcher` asks and tells."""
    return searcher._ot_study


# A restored Tuner runs the searcher it was created with (pickled in the run's tuner.pkl): `Tuner.restore` takes no
# searcher. The engine wraps it anew, in this run's concurrency limit. Ray's SearchGenerator then restores each
# wrapper's saved state, found by the wrapper's class name (`name:ConcurrencyLimiter`), `max_concurrent` included.


class ConcurrencyLimiter(ray_search.ConcurrencyLimiter):
    """Ray's ConcurrencyLimiter (and named as it, under which its state is saved) that keeps its own limit when Ray
    restores the state saved by the run's first start (the trials then live are restored): a resumed search runs
    on other CPUs, or on a cluster."""

    def set_state(self, state: dict[str, Any]) -> None:
        limit = self.max_concurrent
        super().set_state(state)
        self.max_concurrent = limit


def limited(searcher: Any, limit: int | None) -> Any:
    """`searcher` (perhaps already behind a limit, Ray's or this module's) running at most `limit` trials at once
    (None: no limit)."""
    inner = searcher.searcher if isinstance(searcher, ray_search.ConcurrencyLimiter) else searcher
    return ConcurrencyLimiter(inner, max_concurrent=limit) if limit else inner


def limit_restored_search(tuner: Any, limit: int | None) -> None:
    """Run the restored `tuner`'s searcher at most `limit` trials at once (None: no limit), whatever its first start
    ran; set before it runs (and restores its state)."""
    config = tuner._local_tuner._tune_config
    config.search_alg = limited(config.search_alg, limit)


# The Ray cluster's own key-value store (held by its GCS): the driver publishes there what every trial reads while
# it runs (the rank of the best checkpoint of the search so far). Ray's public alternative is an actor, a process
# of its own per search.
_NAMESPACE = "autotune"


def kv_put(key: str, value: bytes) -> None:
    internal_kv._internal_kv_put(key, value, overwrite=True, namespace=_NAMESPACE)


def kv_get(key: str) -> bytes | None:
    return internal_kv._internal_kv_get(key, namespace=_NAMESPACE)


def kv_delete(key: str) -> None:
    internal_kv._internal_kv_del(key, namespace=_NAMESPACE)


class _Writer(SummaryWriter):
    """tensorboardX's writer as Ray uses it for one trial (add each scalar of a result, then flush), made cheap per
    result: the result's scalars go into one event at that flush (tensorboardX makes an event per scalar, each
    through its writer thread's queue), and the flush does not wait for the disk (tensorboardX's does, with
    fsync). Events are written as they are added (`_DirectEvents`); the file is flushed at Ray's state saves
    (`TensorBoardLogger.get_state`) and when the writer closes, at the trial's end."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.file_writer.event_writer = _DirectEvents(self.file_writer.event_writer)
        self._values: list[Summary.Value] = []
        self._step: int | None = None

    def add_scalar(self, tag: str, scalar_value: float, global_step: int | None = None, *args: Any,
                   **kwargs: Any) -> None:
        self._values.append(Summary.Value(tag=tag, simple_value=float(scalar_value)))
        self._step = global_step

    def flush(self) -> None:
        if self._values:
            self.file_writer.add_summary(Summary(value=self._values), self._step)
            self._values = []

    def close(self) -> None:
        self.flush()
        writer = self.file_writer
        super().close()
        if writer is not None:  # tensorboardX keeps every FileWriter until the process exits (an atexit hook each,
            writer.event_writer = _ClosedEvents()  # never removed): let it keep a stub, not the closed events file


class _DirectEvents:
    """tensorboardX's EventFileWriter `queued` (private) without its thread: an event goes to the file's buffer as it
    is added, so that a flush holds every event added before it. tensorboardX's thread wrote a queued event when it
    got to it, and its flush passed over the queue: a state save's flush could leave a running trial's last report,
    or its HParams session, out of the file Ray then synced."""

    def __init__(self, queued: Any) -> None:
        queued._worker.stop()  # noqa: SLF001  (nothing is queued yet: the writer was just made)
        queued._event_queue.close()  # noqa: SLF001  (and its feeder thread, which the stop started, ends)
        queued._event_queue.join_thread()  # noqa: SLF001
        self._events = queued._ev_writer  # noqa: SLF001
        self._logdir = queued.get_logdir()

    def add_event(self, event: Any) -> None:
        self._events.write_event(event)

    def flush(self) -> None:
        self._events.flush()

    def close(self) -> None:
        self._events.close()

    def get_logdir(self) -> str:
        return self._logdir


class _ClosedEvents:
    """What a closed tensorboardX FileWriter holds in place of its event writer: its atexit hook calls `close`."""

    def close(self) -> None:
        pass


class TensorBoardLogger(TBXLoggerCallback):
    """Ray's TensorBoard logger (the same files, scalars and hparams per trial), writing one event per result and
    not waiting for the disk after each. The running trials' files are written out each time Ray saves the
    search's state, before it copies the run's files to the storage: a Ctrl-C, whose last save comes after the
    trials' last reports, loses no scalar, and a kill loses those since the last save, not the trials' results. A
    trial that starts again from a checkpoint (a resume, a retry, a lost node) retrains the epochs after it into a
    new event file: the file starts with a restart at that epoch (TensorBoard's SessionLog START), so TensorBoard
    drops the abandoned run's values of those epochs from the earlier files. A failed trial's HParams session ends
    as failed (Ray's says success for every trial). Every trial's file holds the same HParams experiment (the
    table's columns): each of `params`, the searched parameters (every option's), and the metrics, the searched
    `metrics` first: TensorBoard shows the first five of each, and Ray's own numbers came first (`done`, ...). An
    ended trial's file also holds the values of its best epoch, `best/<metric>` at its last epoch: the table shows
    each metric's last value, not the one the search ranks the trial by. A logger pickled by a run started before
    it knew the space (Ray restores the callbacks a run was started with) has none of these: it writes no
    experiment, as before, and TensorBoard takes the columns from the trials' sessions."""

    _params: tuple[Param, ...] = ()  # the class's, for a logger unpickled from a run saved before it had its own
    _metrics: tuple[str, ...] = ()
    _modes: tuple[str, ...] = ()

    def __init__(self, params: tuple[Param, ...], metrics: tuple[str, ...], modes: tuple[str, ...]) -> None:
        super().__init__()
        self._summary_writer_cls = _Writer  # private: Ray's only way to choose the writer it opens per trial
        self._ending_failed = False
        self._params, self._metrics, self._modes = params, metrics, modes

    def get_state(self) -> None:
        """Called as Ray saves the search's state (`CallbackList.save_to_dir`), before it syncs the run's files:
        each running trial's events, written to its file's buffer as they were added (`_DirectEvents`), are flushed
        (Ray's writer, private; tensorboardX's flush also syncs the file to the disk: a few files, at Ray's state
        saves, not at each report). Nothing to save."""
        for writer in self._trial_writer.values():
            writer.flush()
            writer.file_writer.flush()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        """The writers of the trials the search leaves unfinished (interrupted, to be resumed) are closed, their
        events written out: each holds a writer thread, which stayed, with its file open, in the caller's process
        (a notebook's) until a garbage collection. Their HParams sessions stay open, as the trials are."""
        for trial in list(self._trial_writer):
            self._trial_writer.pop(trial).close()
            self._trial_result.pop(trial, None)
        super().on_experiment_end(trials, **info)

    def log_trial_end(self, trial: Trial, failed: bool = False) -> None:
        """A trial that never reported (Ray writes no HParams for it) has its session ended here."""
        self._ending_failed = failed
        try:
            if trial in self._trial_writer and not self._trial_result.get(trial):
                status = Status.STATUS_FAILURE if failed else Status.STATUS_SUCCESS
                self._hparams(trial, {}, lambda summary: _session_ended(summary, status)
                              if _holds(summary, _SESSION_END_TAG) else None)
            super().log_trial_end(trial, failed)
        finally:
            self._ending_failed = False

    def _try_log_hparams(self, trial: Trial, result: dict) -> None:
        """Ray's HParams of the trial, with the search's experiment (`_experiment`) in place of the one Ray writes
        in every trial's file with that trial's own parameters and metrics (TensorBoard shows the first it finds,
        so a conditional space's other options had no columns). The session of a failed trial ends with the status
        failure."""
        self._log_best(trial)
        status = Status.STATUS_FAILURE if self._ending_failed else Status.STATUS_SUCCESS
        self._hparams(trial, result, lambda summary: (self._experiment(result) if self._params else None)
                      if _holds(summary, _EXPERIMENT_TAG) else _session_ended(summary, status))

    def _hparams(self, trial: Trial, result: dict, rewrite: Callable[[Summary], Summary | None]) -> None:
        """Write Ray's HParams summaries of the trial (experiment, session start, session end), each as `rewrite`
        returns it (None: not written)."""
        writer = self._trial_writer[trial].file_writer
        add = writer.add_summary

        def add_rewritten(summary: Summary, *args: Any, **kwargs: Any) -> None:
            if (rewritten := rewrite(summary)) is not None:
                add(rewritten, *args, **kwargs)

        writer.add_summary = add_rewritten  # an instance attribute, for this call only
        try:
            super()._try_log_hparams(trial, result)
        finally:
            del writer.add_summary

    def _log_best(self, trial: Trial) -> None:
        """Write the values of the trial's best epoch (`best_values`: as the summary ranks the trial, from its
        result.json, each epoch once) as `best/<metric>`, at its last epoch."""
        reports = _final_reports(Path(trial.local_path, "result.json"), self._metrics)
        if reports.empty:
            return
        writer = self._trial_writer[trial]
        for name, value in best_values(reports, self._metrics, self._modes).items():
            if finite(value):
                writer.add_scalar(f"{_BEST_PREFIX}{name}", value, int(reports["training_iteration"].max()))
        writer.flush()

    def _experiment(self, result: dict) -> Summary:
        """The HParams experiment: a column for each searched parameter, then the metrics: the searched ones (their
        best epoch's values, then their last), then the others of `result` (a trial's last, its keys TensorBoard's
        tags) by name, none of Ray's own."""
        searched = [f"{prefix}{name}" for prefix in (_BEST_PREFIX, _TAG_PREFIX) for name in self._metrics]
        others = sorted(tag for tag in result if tag not in searched
                        and tag.removeprefix(_TAG_PREFIX) not in _RAY_NUMBERS | {"should_checkpoint"})
        experiment = Experiment(hparam_infos=[_hparam_info(param) for param in self._params],
                                metric_infos=[MetricInfo(name=MetricName(tag=tag)) for tag in searched + others])
        content = HParamsPluginData(experiment=experiment, version=0).SerializeToString()
        metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="hparams", content=content))
        return Summary(value=[Summary.Value(tag=_EXPERIMENT_TAG, metadata=metadata)])

    def log_trial_start(self, trial: Trial) -> None:
        super().log_trial_start(trial)
        restored = trial.latest_checkpoint_result  # the checkpoint the trial starts from; None: from its first epoch
        epoch = int((restored.metrics or {}).get("training_iteration", 0) or 0) if restored else 0
        self._trial_writer[trial].file_writer.add_event(  # private: Ray's writer per trial
            Event(step=epoch + 1, session_log=SessionLog(status=SessionLog.START)))
        # its HParams session starts now: the table lists a running trial, and an interrupted one, as not ended
        self._hparams(trial, {}, lambda summary: summary if _holds(summary, _SESSION_START_TAG) else None)


_EXPERIMENT_TAG, _SESSION_START_TAG, _SESSION_END_TAG = (
    "_hparams_/experiment", "_hparams_/session_start_info", "_hparams_/session_end_info")
_TAG_PREFIX = "ray/tune/"  # Ray's, before each reported key
_BEST_PREFIX = "best/"  # before each searched metric: the value of the trial's best epoch


def _final_reports(file: Path, metrics: tuple[str, ...]) -> pd.DataFrame:
    """The epochs (`training_iteration`) and `metrics` of a trial's result.json, each epoch once (`final_run`); empty
    without any."""
    frame = final_run(reports(file.read_text() if file.is_file() else ""))
    return frame.reindex(columns=["training_iteration", *metrics]) if not frame.empty else frame


def _hparam_info(param: Param) -> HParamInfo:
    """The HParams column of `param`: its values' type, and its labels (a choice) or its range (a number)."""
    dist = param.dist
    if not isinstance(dist, (Choice, Grid, Pow2)):
        return HParamInfo(name=param.name, type=DataType.DATA_TYPE_FLOAT64,
                          domain_interval=Interval(min_value=dist.low, max_value=dist.high))
    labels = [label for label in dist.labels if label is not None]  # a None is not logged
    if labels and all(isinstance(label, bool) for label in labels):
        kind = DataType.DATA_TYPE_BOOL
    elif labels and all(isinstance(label, (int, float)) and not isinstance(label, bool) for label in labels):
        kind = DataType.DATA_TYPE_FLOAT64
    else:
        kind = DataType.DATA_TYPE_STRING
    domain = ListValue()
    domain.extend(labels)
    return HParamInfo(name=param.name, type=kind, domain_discrete=domain)


def _holds(summary: Summary, tag: str) -> bool:
    """Whether `summary` holds a value of `tag`."""
    return any(value.tag == tag for value in summary.value)


def _session_ended(summary: Summary, status: int) -> Summary:
    """`summary` with the status of its HParams session end (tensorboardX's `hparams` writes success), if it holds
    one."""
    for value in summary.value:
        if value.tag == _SESSION_END_TAG:
            data = HParamsPluginData.FromString(value.metadata.plugin_data.content)
            data.session_end_info.status = status
            value.metadata.plugin_data.content = data.SerializeToString()
    return summary


class _LocalLogFirst:
    """Ray's result loggers, when a trial (re)starts from a checkpoint, copy the trial's log file from the storage
    over the driver's local one (`_restore_from_remote`, private). The storage's copy is synced in the background
    and may lag: a trial that fails right after a checkpointed report, and is retried, lost that report's line
    (result.json held epochs 1-5, 7, 8 after a retry from epoch 6). The local file, where it exists, is the newer:
    it is kept; the storage's copy is used only where there is none (a search resumed by a new driver)."""

    def _restore_from_remote(self, file_name: str, trial: Any) -> None:
        if not Path(trial.local_path, file_name).exists():
            super()._restore_from_remote(file_name, trial)  # type: ignore[misc]


class JsonLogger(_LocalLogFirst, JsonLoggerCallback):
    """Ray's result.json logger, keeping the driver's newer local file on a trial's restart, and forgetting an
    ended trial's config (`_trial_configs`, private, which Ray keeps for every trial: ray#64231); a trial that
    starts again has it written again at its start."""

    def log_trial_end(self, trial: Trial, failed: bool = False) -> None:
        super().log_trial_end(trial, failed)
        self._trial_configs.pop(trial, None)


class CsvLogger(_LocalLogFirst, CSVLoggerCallback):
    """Ray's progress.csv logger, keeping the driver's newer local file on a trial's restart, and forgetting an
    ended trial (`_trial_continue`, private, set again at its start)."""

    def log_trial_end(self, trial: Trial, failed: bool = False) -> None:
        super().log_trial_end(trial, failed)
        self._trial_continue.pop(trial, None)


class ForgetEndedTrials(Callback):
    """Drops what Ray keeps in the driver of each ended trial but reads only while it runs (`run_metadata`, private,
    and no public setting turns it off): the last 5 and 10 values of every number the trial reported
    (`metric_n_steps`, a deque per number and window: about 16 KiB a trial), and the max/min/average of Ray's own
    numbers (`metric_analysis` of `training_iteration`, `time_total_s`, `pid`, ...: about 4 KiB), and, once the
    trial reported, the reference to Ray's default result of its actor (an object Ray's core keeps while
    referenced). The recipe's metrics keep theirs (`get_best_result(metric, scope=...)` reads them), and the last result, the checkpoints and
    everything a resume and the export read stay. An ended trial never reports again here: a resumed search leaves
    failed trials failed, and a trial run again from scratch gets new metadata.

    Every `TRIM_EVERY` ended trials, and after each save of the experiment state (Ray asks the callbacks for their
    state last), it also hands the C heap's free pages back to the system (glibc's `malloc_trim`; nothing
    elsewhere): the driver's transient work, the saves above all (every trial's state, the pickled searcher), leaves
    the heap fragmented, and its free pages (about 15 KiB a trial on Linux) are otherwise never returned."""

    TRIM_EVERY = 50

    def __init__(self) -> None:
        self.ended = 0

    def on_trial_complete(self, iteration: int, trials: list, trial: Trial, **info: Any) -> None:
        self._forget(trial)

    def on_trial_error(self, iteration: int, trials: list, trial: Trial, **info: Any) -> None:
        self._forget(trial)

    def get_state(self) -> None:  # called as Ray saves the experiment state: nothing to save, a heap to trim
        trim_heap()

    def _forget(self, trial: Trial) -> None:
        forget_ended(trial)
        self.ended += 1
        if self.ended % self.TRIM_EVERY == 0:
            trim_heap()


_RAY_NUMBERS = RESULT_KEYS | {"done"}


def forget_ended(trial: Trial) -> None:
    """Drop what an ended trial's metadata holds for its run only (see `ForgetEndedTrials`)."""
    metadata = trial.run_metadata
    metadata.metric_n_steps = {}
    metadata.metric_analysis = {k: v for k, v in metadata.metric_analysis.items() if k not in _RAY_NUMBERS}
    if set(metadata.last_result) - {"trial_id"}:  # it reported: the future of Ray's default result is never read
        trial._default_result_or_future = None


class _NotTheIncompleteTrials:
    """Drops Ray Tune's "Trials did not complete: [...]" record (the summary names each failed trial and why)."""

    def filter(self, record: Any) -> bool:
        return not str(record.msg).startswith("Trials did not complete")


class _NotAFullDisk:
    """Drops Ray Tune's "Saving experiment state to storage ... failed" ERROR record and its traceback when the
    storage is full (ENOSPC): the search stops on it, and `StorageFull` says so in one line with the way out."""

    def filter(self, record: Any) -> bool:
        err = record.exc_info[1] if record.exc_info else None
        while err is not None:
            if isinstance(err, OSError) and err.errno in FULL:
                return False
            err = err.__cause__ or err.__context__
        return True


@contextmanager
def trial_errors_shown(shown: bool) -> Iterator[None]:
    """While a search runs: Ray Tune's own log of each failed trial (an ERROR line and its traceback, per trial) and
    of the trials that did not complete, only where `shown` (`-v`); autotune's progress line and summary give each
    failure in one line; a failed save of the search's state on a full disk, which StorageFull reports, too; and
    the cluster's messages about its nodes (`_raylet_messages_shown`). A TUNE_PRINT_ALL_TRIAL_ERRORS of the
    environment is kept."""
    given = os.environ.get("TUNE_PRINT_ALL_TRIAL_ERRORS")
    if given is None:
        os.environ["TUNE_PRINT_ALL_TRIAL_ERRORS"] = "1" if shown else "0"  # read as the search starts
    # the error of a trial stopped while it failed, which Tune never reads, is logged by Ray as "unhandled"
    ignored = not shown and "RAY_IGNORE_UNHANDLED_ERRORS" not in os.environ
    if ignored:
        os.environ["RAY_IGNORE_UNHANDLED_ERRORS"] = "1"
    quiet, logger = _NotTheIncompleteTrials(), logging.getLogger("ray.tune.tune")
    full, saving = _NotAFullDisk(), logging.getLogger("ray.tune.execution.experiment_state")
    if not shown:
        logger.addFilter(quiet)
        saving.addFilter(full)
    try:
        with _raylet_messages_shown(shown):
            yield
    finally:
        logger.removeFilter(quiet)
        saving.removeFilter(full)
        if given is None:
            del os.environ["TUNE_PRINT_ALL_TRIAL_ERRORS"]
        if ignored:
            del os.environ["RAY_IGNORE_UNHANDLED_ERRORS"]


@contextmanager
def _raylet_messages_shown(shown: bool) -> Iterator[None]:
    """While a search runs: the error messages the cluster sends the driver (a worker node's raylet terminated,
    with the last 20 lines of its log, twice; the node marked dead), only where `shown` (`-v`). Ray prints them on
    stdout whatever `log_to_driver` says: its thread `listen_error_messages` (private, as is the printer) prints
    each through the module's `print_to_stdstream`, as from the pid "raylet". autotune says in one line which trial
    lost its node and where it goes on (`lost_nodes`), and why a trial failed."""
    from ray._private import worker

    ray_print = worker.print_to_stdstream
    if not shown:
        worker.print_to_stdstream = _without_raylet(ray_print)
    try:
        yield
    finally:
        worker.print_to_stdstream = ray_print


def _without_raylet(ray_print: Callable[..., None]) -> Callable[..., None]:
    """Ray's printer `ray_print` less the raylet's messages (other output, a worker's, printed as it is)."""
    def print_to_stdstream(data: dict[str, Any], ignore_prefix: bool) -> None:
        if data.get("pid") != "raylet":
            ray_print(data, ignore_prefix)

    return print_to_stdstream
