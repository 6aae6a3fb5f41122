"""A machine that is not the developer's (shared servers, containers, CI runners): a read-only HOME, a temp folder
named by TMPDIR or RAY_TMPDIR, file names that are not UTF-8, long run names, URI storages. Each gave a traceback
or an error that blamed something else; each is a one-line error or a warning now."""
from __future__ import annotations

import errno
import getpass
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from autotune.api import load_space
from autotune.engine import search
from autotune.errors import UserError
from reliability_helpers import TOY


@pytest.fixture
def no_local_ray(monkeypatch, tmp_path):
    """`search._init_ray` as if this process ran no Ray, registering its local Ray in an empty cache folder, and
    the search module's state of the local Ray restored afterwards (a real Ray of another test is left alone)."""
    monkeypatch.setattr(search.ray, "is_initialized", lambda: False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    yield
    search.shutdown()


def _failing_init(error: OSError) -> Callable[..., None]:
    """A stand-in for `ray_internals.init_local` that fails as Ray's start fails with `error`."""
    def init_local(temp_dir: str, **kwargs: Any) -> None:
        raise error
    return init_local


def test_a_home_where_ray_cannot_write_its_token_is_one_line_naming_the_token_s_variables(
        no_local_ray, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    folder = tmp_path / "home" / ".ray"
    monkeypatch.setattr(search, "init_local", _failing_init(OSError(errno.EROFS, "Read-only file system",
                                                                    str(folder))))
    with pytest.raises(UserError) as raised:
        search._init_ray(search.RunOptions(num_cpus=1), "run")
    message = str(raised.value)
    assert "\n" not in message and f"{folder / 'auth_token'} (Read-only file system: {folder})" in message
    assert "RAY_AUTH_TOKEN_PATH" in message and "RAY_AUTH_TOKEN" in message
    assert "RAY_AUTH_MODE" not in message  # the token protects the local Ray: not turned off


def test_a_temp_folder_ray_cannot_write_is_one_line_naming_ray_tmpdir(no_local_ray, monkeypatch):
    monkeypatch.setenv("RAY_TMPDIR", "/ro")  # short: Ray's sockets must fit
    monkeypatch.setattr(search, "init_local", _failing_init(OSError(errno.EROFS, "Read-only file system", "/ro")))
    with pytest.raises(UserError, match=r"cannot write its temp folder /ro/rt_\d+ "
                                        r"\(Read-only file system: .*\); set RAY_TMPDIR to a folder you can write"):
        search._init_ray(search.RunOptions(num_cpus=1), "run")


def test_a_temp_folder_another_user_left_under_this_pid_is_named_with_its_owner(no_local_ray, monkeypatch):
    """A teammate's killed search left /tmp/rt_<pid>, the pid this search now has: the error said "Permission
    denied: /tmp/rt_29336/session_..." and not whose the folder is."""
    with tempfile.TemporaryDirectory(prefix="at", dir="/tmp") as short:
        folder = Path(short) / f"rt_{os.getpid()}"
        folder.mkdir(mode=0o555)
        monkeypatch.setenv("RAY_TMPDIR", short)
        monkeypatch.setattr(search, "init_local", _failing_init(
            PermissionError(errno.EACCES, "Permission denied", str(folder / "session_2026"))))
        with pytest.raises(UserError) as refused:
            search._init_ray(search.RunOptions(num_cpus=1), "run")
    assert str(refused.value).startswith(f"cannot start the local Ray: it cannot write its temp folder {folder} "
                                         f"({folder} ({getpass.getuser()}, dr-xr-xr-x) is not writable by you")
    assert str(refused.value).endswith("; set RAY_TMPDIR to a folder you can write, with a short path (Ray's socket "
                                       "paths stay under 108 bytes)")


def test_no_usable_temp_folder_is_one_line_too(no_local_ray, monkeypatch):
    monkeypatch.delenv("RAY_TMPDIR", raising=False)

    def no_temp() -> str:
        raise FileNotFoundError(errno.ENOENT, "No usable temporary directory found in ['/tmp']")
    monkeypatch.setattr(search.tempfile, "gettempdir", no_temp)
    with pytest.raises(UserError, match=r"cannot write its temp folder \(No usable temporary directory .*RAY_TMPDIR"):
        search._init_ray(search.RunOptions(num_cpus=1), "run")


def test_a_ray_whose_processes_did_not_come_up_is_one_line_naming_its_logs_which_the_next_search_removes(
        no_local_ray, monkeypatch):
    """Ray's start failed with a traceback ending in "Exception: The current node timed out during startup...", and
    its temp folder, which holds its logs (the only record of why), was removed as the process ended."""
    def timed_out(temp_dir: str, **kwargs: Any) -> None:
        (Path(temp_dir) / "session_latest" / "logs").mkdir(parents=True)
        raise Exception("The current node timed out during startup. This could happen because ...\nmore")

    with tempfile.TemporaryDirectory(prefix="at", dir="/tmp") as short:
        monkeypatch.setenv("RAY_TMPDIR", short)
        monkeypatch.setattr(search, "init_local", timed_out)
        logs = Path(short) / f"rt_{os.getpid()}" / "session_latest" / "logs"
        with pytest.raises(UserError) as raised:
            search._init_ray(search.RunOptions(num_cpus=1), "run")
        assert str(raised.value) == (
            "cannot start the local Ray: The current node timed out during startup. This could happen because ...; "
            f"Ray's logs (raylet.out and .err, gcs_server.out and .err) say why: {logs} (the next search removes them)")
        search.shutdown()
        assert logs.is_dir()

        monkeypatch.setattr(search, "init_local", lambda temp_dir, **kwargs: None)
        monkeypatch.setattr(search.os, "getpid", lambda: 1)  # another process's search, once this one has ended
        search._init_ray(search.RunOptions(num_cpus=1), "run")
        assert not logs.parent.parent.exists()


def test_ray_s_temp_folder_is_in_ray_tmpdir_else_in_python_s_temp_folder(monkeypatch):
    monkeypatch.setenv("RAY_TMPDIR", "/scratch/ray")
    assert search._temp_dir() == f"/scratch/ray/rt_{os.getpid()}"
    monkeypatch.delenv("RAY_TMPDIR")
    monkeypatch.setattr(tempfile, "tempdir", "/scratch/tmp")  # what TMPDIR sets
    assert search._temp_dir() == f"/scratch/tmp/rt_{os.getpid()}"


def test_a_temp_folder_too_long_for_ray_s_sockets_falls_back_to_tmp_with_a_warning(monkeypatch, log_records):
    monkeypatch.setenv("RAY_TMPDIR", "/" + "x" * 60)
    assert search._temp_dir() == f"/tmp/rt_{os.getpid()}"
    assert "too long a path for its sockets" in log_records.text and "RAY_TMPDIR" in log_records.text


def test_ray_s_lock_folder_is_made_as_tmp_is_for_every_user_of_the_machine(monkeypatch, tmp_path):
    """Ray made `_ray_lockfiles` (in /tmp) its first user's alone: on a machine a team shares, every other user's
    `--resume` failed to read the run's saved state (a PermissionError Ray logs), and Ray ran the search again from
    its first trial."""
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    search._refuse_unusable_lock_folder()
    assert (tmp_path / "_ray_lockfiles").stat().st_mode & 0o7777 == 0o1777


@pytest.mark.unprivileged
def test_a_lock_folder_of_ray_this_user_cannot_write_is_one_line_naming_its_owner_and_ray_tmpdir(monkeypatch,
                                                                                                 tmp_path):
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    (tmp_path / "_ray_lockfiles").mkdir(mode=0o555)
    with pytest.raises(UserError) as refused:
        search._refuse_unusable_lock_folder()
    assert str(refused.value).startswith(
        f"cannot write Ray's lock folder {tmp_path}/_ray_lockfiles ({getpass.getuser()}, dr-xr-xr-x): Ray locks there "
        "while it reads a run's saved state back and a checkpoint from a URI storage, and would start this run over; "
        "set RAY_TMPDIR to a folder of your own")


def test_shutdown_removes_the_temp_folder_the_local_ray_used(no_local_ray, monkeypatch):
    with tempfile.TemporaryDirectory(prefix="at", dir="/tmp") as short:
        monkeypatch.setenv("RAY_TMPDIR", short)
        monkeypatch.setattr(search, "init_local", lambda temp_dir, **kwargs: os.makedirs(temp_dir))
        search._init_ray(search.RunOptions(num_cpus=1), "run")
        used = Path(short) / f"rt_{os.getpid()}"
        assert used.is_dir()
        monkeypatch.delenv("RAY_TMPDIR")  # shutdown removes the folder used, whatever the environment says now
        search.shutdown()
        assert not used.exists()


def test_a_local_ray_counts_the_cpus_this_process_may_run_on(no_local_ray, monkeypatch, log_records):
    """A batch job given 1 of a node's 8 cores (`sbatch --cpus-per-task=1`, `taskset -c 0`) started its local Ray
    with the node's 8 CPUs: 8 trials at once shared its one core, and a trial of 2 CPUs was let through. The local
    Ray counts the CPUs of the process's affinity; a --num-cpus past them is taken as given, with a warning."""
    monkeypatch.setattr(search.os, "sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.setattr(search.os, "cpu_count", lambda: 8)
    started: list[int] = []
    monkeypatch.setattr(search, "init_local", lambda temp_dir, **kwargs: started.append(kwargs["num_cpus"]))
    search._init_ray(search.RunOptions(), "run")
    search.shutdown()
    assert started == [1] and not log_records.records
    search._init_ray(search.RunOptions(num_cpus=3), "run")
    assert started == [1, 3]
    assert ("num_cpus=3: the local Ray counts 3 CPUs, but this process may run on 1 (its CPU affinity: a batch "
            "job's allocation, taskset), so its trials share those cores and run slower; leave num_cpus out to "
            "count those it may use") in log_records.messages
    space = load_space({"name": "batch", "recipe": TOY, "search": {"resources": {"cpu": 2}}})
    with pytest.raises(UserError, match="search.resources.cpu is 2.0 but the largest node of the local Ray has 1 CPU"):
        search.check_fits_locally(space, None)


def test_a_local_ray_s_object_store_fits_under_a_limit_on_the_address_space(no_local_ray, monkeypatch):
    """A batch job under `ulimit -v` (RLIMIT_AS), which every Ray process inherits and maps the whole object store
    into: Ray's store, 30 % of the machine's memory, crashed the driver ("shared_memory.cc:46: mmap failed", exit 1)
    under 10 GB on a 24 GB machine, and hung under 8 GB. The store is half of what the process and Ray's start leave
    of the limit; without a limit, or where that is more than Ray's own size, Ray sizes it."""
    started: list[int | None] = []
    monkeypatch.setattr(search, "init_local",
                        lambda temp_dir, **kwargs: started.append(kwargs.get("object_store_memory")))
    monkeypatch.setattr(search, "_address_space_used", lambda: 5 * 2**30)
    for limit, ram in ((16 * 2**30, 256 * 2**30), (16 * 2**30, 8 * 2**30), (search.resource.RLIM_INFINITY, 2**40)):
        monkeypatch.setattr(search, "ram_bytes", lambda: ram)
        monkeypatch.setattr(search.resource, "getrlimit", lambda which: (limit, limit))
        search._init_ray(search.RunOptions(num_cpus=1), "run")
        search.shutdown()
    assert started == [5 * 2**30, None, None]  # (16 - 5 - 1) / 2 GiB; 30 % of 8 GiB is less


@pytest.mark.parametrize("when", ["as Ray starts", "once Ray started"])
def test_a_sigterm_before_the_trials_ends_the_search_with_status_143(no_local_ray, monkeypatch, tmp_path, when):
    """A batch job preempted as its search started Ray: ray.init sets Ray's SIGTERM handler as it starts
    (`sys.exit(15)`), which ended the search with status 15 and no line, where one before ends it with 143
    (128 + SIGTERM), as one before Ray's start does."""
    from ray._private import utils as ray_utils

    def ray_init(temp_dir: str, **kwargs: Any) -> None:  # what ray.init does to this process's SIGTERM, first
        ray_utils.set_sigterm_handler(lambda number, frame: sys.exit(number))
        if when == "as Ray starts":
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(search, "init_local", ray_init)
    monkeypatch.setattr(search, "_resources", lambda space, options: os.kill(os.getpid(), signal.SIGTERM))
    before = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(SystemExit) as ended:
            search.run_search(load_space({"name": "batch", "recipe": TOY}), search.RunOptions(num_cpus=1), data=None,
                              terminated=[])
    finally:
        signal.signal(signal.SIGTERM, before)
    assert ended.value.code == 143


def test_file_names_that_are_not_utf8_are_split_by_their_bytes_and_valid_names_as_before():
    from autotune.splits import text_keys

    # the keys valid names always had: splits, and the data fingerprints built on them, stay as they were
    assert text_keys(["cat/001.png", "été/1.png"]).tolist() == [6470101607939607530, 4376329806717442456]
    windows = b"caf\xe9 0.png".decode("utf-8", "surrogateescape")  # unzipped from Windows, as os.listdir reads it
    digest = hashlib.blake2b(b"caf\xe9 0.png", digest_size=8).digest()
    assert text_keys([windows, "café 0.png"]).tolist() == [int.from_bytes(digest, "little"),
                                                          *text_keys(["café 0.png"]).tolist()]


def _tiny_folder(root: Path) -> Path:
    """2 classes of 2 PNGs each, the files named with bytes that are not UTF-8 (a zip unpacked from Windows)."""
    import numpy as np
    from PIL import Image

    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for i in range(2):
            name = os.path.join(os.fsencode(root / label), b"caf\xe9 %d.png" % i)
            Image.fromarray(np.full((6, 6), 60 * i + (label == "b") * 100, np.uint8)).save(os.fsdecode(name))
    return root


def test_a_cache_folder_that_cannot_be_written_reads_the_images_without_the_cache(monkeypatch, tmp_path,
                                                                                   log_records):
    from autotune.vision.data import FileSplit
    from autotune.vision.datasets import image_folder

    (tmp_path / "a_file").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "a_file"))  # no folder can be made in it, even as root
    images = image_folder(str(_tiny_folder(tmp_path / "photos")), image_size=4, channels=1, memory_limit_mb=0,
                          workers=0)
    assert images.x.cache_key is not None and images.x.cache() is None
    batches = [x for _ in range(2) for x, _ in FileSplit(images.x, images.y).batches(2)]
    assert len(batches) == 4 and tuple(batches[0].shape) == (2, 1, 4, 4)
    warned = [r.getMessage() for r in log_records.records if "cannot keep the decoded images" in r.getMessage()]
    assert len(warned) == 1, warned
    assert "XDG_CACHE_HOME" in warned[0] and "data.cache: false" in warned[0]


@pytest.mark.parametrize("size, refused", [(232, False), (233, True), (255, True)])
def test_a_run_name_is_refused_when_a_file_the_engine_names_after_it_would_not_fit(size, refused):
    from autotune.space._rules import folder_name

    wrong = folder_name("é" + "a" * (size - 2))  # bytes, not characters
    assert (wrong is not None) == refused
    if refused:
        assert f"is {size} bytes long, more than 232" in wrong[0] and ".orphaned" in wrong[0]
    # the longest such file: a retrain's run set aside, NAME-data-<fingerprint>.orphaned
    assert len(f"{'a' * 232}-data-01234567.orphaned") == 255


def test_a_lock_file_name_too_long_says_so(tmp_path):
    from autotune.engine.locks import hold_run
    from autotune.engine.storage import run_location

    with pytest.raises(UserError, match=r"lock file .*: name too long \(256 bytes; a file name holds 255 at most.*\); "
                                        r"give the run a shorter name"):
        with hold_run(run_location(str(tmp_path), "a" * 250)):
            pass


@pytest.mark.parametrize("storage", ["file:///data/runs", "s3://bucket/runs?region=eu-west-1"])
def test_a_run_name_a_uri_cannot_hold_is_refused_naming_it_and_the_fix(storage):
    from autotune.engine.storage import run_location

    with pytest.raises(UserError) as raised:
        run_location(storage, "tab #1 été")
    message = str(raised.value)
    assert "\n" not in message and "'tab #1 été' holds ' ', '#', 'é'" in message and "name=tab-1-ete" in message
    assert "Cannot parse URI" not in message
    assert run_location(storage, "resnet+aug_v1.2").name == "resnet+aug_v1.2"  # what a URI's path holds as written
    assert run_location("runs", "tab #1 été").name == "tab #1 été"  # a local folder holds it


def test_a_class_folder_named_in_another_encoding_loads(tmp_path, caplog):
    """A class folder whose name is not UTF-8 (b'\\xd6k\\xf6', Latin-1 'Ökö' from a Windows zip) failed the load
    with 'surrogates not allowed' while the data's fingerprint was made. A warning that names its files writes
    their bytes as escapes: with surrogates, a log file written as UTF-8 failed on it."""
    import numpy as np
    from PIL import Image

    from autotune import recipes

    root = tmp_path / "photos"
    for label in (b"\xd6k\xf6", b"plain"):
        folder = os.path.join(os.fsencode(root), label)
        os.makedirs(folder)
        for i in range(6):
            Image.fromarray(np.full((6, 6), 30 * i + (label == b"plain") * 90, np.uint8)).save(
                os.fsdecode(os.path.join(folder, b"%d.png" % i)))
    data = recipes.load("image_classification").load_data(
        {"dataset": "image_folder", "root": str(root), "image_size": 4, "channels": 1, "workers": 0,
         "val_fraction": 0.25, "test_fraction": 0.25})
    assert sorted(data.labels) == sorted([os.fsdecode(b"\xd6k\xf6"), "plain"]) and data.fingerprint
    (copies,) = [r.getMessage() for r in caplog.records if "repeat the bytes" in r.getMessage()]  # 90: i=3 and i=0
    assert "(\\xd6k\\xf6/3.png is plain/0.png)" in copies and copies.encode("utf-8")


@pytest.fixture
def no_home(monkeypatch):
    """A container's arbitrary user id: HOME and XDG_CACHE_HOME unset, and no passwd entry for the user id."""
    import pwd

    def no_entry(uid: int) -> Any:
        raise KeyError(f"getpwuid(): uid not found: {uid}")
    monkeypatch.delenv("HOME", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setattr(pwd, "getpwuid", no_entry)


def test_without_a_home_folder_the_cache_folder_is_one_line_naming_xdg_cache_home(no_home, monkeypatch, tmp_path):
    from autotune.cache import cache_dir
    from autotune.errors import NoHome

    with pytest.raises(NoHome) as raised:
        cache_dir()
    assert isinstance(raised.value, UserError) and isinstance(raised.value, OSError)
    assert str(raised.value) == (
        f"there is no home folder: HOME is not set, and the passwd file has no entry for user id {os.getuid()}, "
        "nor is XDG_CACHE_HOME set, for autotune's cache folder; set XDG_CACHE_HOME to a folder you can write")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "autotune"


def test_without_a_home_folder_timm_is_asked_and_the_local_ray_runs_unregistered(no_home):
    """`autotune check` of a space naming a timm model, and `autotune ls models 'res*'`, ended in pathlib's
    RuntimeError "Could not determine home directory" as a traceback."""
    from autotune.engine.locks import LocalRay
    from autotune.vision.models import _timm_cached

    assert _timm_cached("test", lambda: {"models": ["a"]}) == {"models": ["a"]}
    ray = LocalRay("run", 1, "/tmp/rt_1")
    assert ray.others == [] and not ray.leave_temp()


def test_without_a_home_folder_run_and_export_are_one_line_naming_home_before_ray_is_imported(no_home, tmp_path):
    """Ray's import reads the home folder (~/ray_results): `autotune run` and `autotune export` were a traceback of
    its RuntimeError; the check comes before anything imports Ray."""
    script = ("import pwd, sys\n"
              "def no_entry(uid): raise KeyError(uid)\n"
              "pwd.getpwuid = no_entry\n"
              "from autotune.cli import main\n"
              "code = main(['run', sys.argv[1]])\n"
              "assert 'ray' not in sys.modules, 'Ray imported'\n"
              "sys.exit(code)\n")
    space = Path(__file__).parents[2] / "search_spaces" / "digits.yaml"
    done = subprocess.run([sys.executable, "-c", script, str(space)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env={k: v for k, v in os.environ.items() if k != "HOME"})
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        f"autotune run: error: there is no home folder: HOME is not set, and the passwd file has no entry for user id "
        f"{os.getuid()}, and Ray needs one; set HOME to a folder (Ray writes there only its authentication token, "
        "~/.ray/auth_token, which RAY_AUTH_TOKEN_PATH moves to a file you can write)\n")
    import autotune
    from autotune.errors import NoHome

    with pytest.raises(NoHome, match=r"and Ray needs one; set HOME to a folder"):
        autotune.export(tmp_path, "0123abcd")


@pytest.mark.parametrize("scheme", ["file", "s3"])
def test_a_uri_run_whose_local_mirror_cannot_be_written_is_one_line_naming_xdg_cache_home(scheme, monkeypatch,
                                                                                          tmp_path):
    """A file:// run's state folder was made only as the search set up, a traceback of mkdir's PermissionError; an
    s3:// run's lock file, beside it, asked for another --storage."""
    from autotune.engine.locks import hold_run
    from autotune.engine.storage import run_location

    (tmp_path / "a_file").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "a_file"))  # no folder can be made in it, even as root
    where = run_location(f"{scheme}://{tmp_path}/runs", "du")
    with pytest.raises(UserError) as raised:
        with hold_run(where):
            pass
    assert str(raised.value) == (
        f"cannot write the local state of the run {where.experiment} in {where.state} (Not a directory: "
        f"{where.state}): autotune keeps the study and summary of a run in a URI storage in its "
        "cache folder; set XDG_CACHE_HOME to a folder you can write")
