"""Fixtures every test folder shares: a local Ray, the in-process CLI, and helpers the folders' tests have in common
(a free port, waiting on a subprocess, a run's Optuna study, the registry restored after a test registers)."""
from __future__ import annotations

import ctypes
import logging
import os
import runpy
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

import autotune.cli
from autotune import registry

# The property tests try the same examples on every run, so a red main means a change broke something; a longer,
# random hunt (AUTOTUNE_FUZZ_EXAMPLES=5000) draws new ones each time.
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("hunt", derandomize=False)
settings.load_profile("hunt" if os.environ.get("AUTOTUNE_FUZZ_EXAMPLES") else "repeatable")


_CAP_VERSION_3 = 0x20080522  # linux/capability.h: _LINUX_CAPABILITY_VERSION_3, two 32-bit words per set
_DAC_OVERRIDES = (1 << 1) | (1 << 2)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _drop_root_s_override() -> None:
    """This process keeps root's user id but no longer reads, writes or enters a file or folder past its permission
    bits (capget and capset: its effective and permitted CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH dropped), so the
    kernel refuses it, as the owner of the files a test made, what it refuses any user (os.access says so too)."""
    libc = ctypes.CDLL(None, use_errno=True)
    header, data = _CapHeader(_CAP_VERSION_3, 0), (_CapData * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    data[0].effective &= ~_DAC_OVERRIDES
    data[0].permitted &= ~_DAC_OVERRIDES
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")


def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """A test marked `unprivileged` (one of file permissions: a teammate's folder) where the tests run as root, as CI
    does: root reads and writes any file, so such a test was skipped, and could not fail. It runs in a forked child
    without root's override of permissions (`_drop_root_s_override`); its failure's traceback is this test's."""
    if pyfuncitem.get_closest_marker("unprivileged") is None or os.geteuid() != 0:
        return None
    kwargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: nothing of pytest's runs here but the test's function
        os.close(read)
        code = 0
        try:
            _drop_root_s_override()
            pyfuncitem.obj(**kwargs)
        except BaseException:
            os.write(write, traceback.format_exc().encode())
            code = 1
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        failure = pipe.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0:
        pytest.fail(f"as root without its override of file permissions:\n{failure}", pytrace=False)
    return True


@pytest.fixture(scope="module")
def local_ray():
    """A quiet 2-CPU local Ray for the tests of a module (a short temp dir: Unix socket paths stay short)."""
    import autotune.engine.search  # noqa: F401  (sets Ray's quiet environment before Ray is imported)
    import ray

    if ray.is_initialized():
        ray.shutdown()
    temp_dir = f"/tmp/rt_{os.getpid()}"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
             _temp_dir=temp_dir)
    yield
    ray.shutdown()
    shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(autouse=True, scope="session")
def no_tracking_from_the_environment():
    """A developer's MLFLOW_TRACKING_URI or WANDB_* would switch tracking on for every test search, and a
    RAY_ADDRESS would send the tests' local Rays (num_cpus=2) to that cluster."""
    names = [n for n in os.environ if n in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS") or n.startswith("WANDB_")]
    saved = {n: os.environ.pop(n) for n in names}
    yield
    os.environ.update(saved)


@pytest.fixture(autouse=True, scope="session")
def own_cache(tmp_path_factory):
    """autotune's cache (run mirrors, the register of local Rays) in a folder of this test session's own: the
    user's stays untouched, and searches of tests run side by side (pytest-xdist's workers) do not warn of each
    other's local Ray."""
    saved = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if saved is None:
        os.environ.pop("XDG_CACHE_HOME")
    else:
        os.environ["XDG_CACHE_HOME"] = saved


@pytest.fixture
def registry_restored():
    """Forget the datasets and models a test registers (and the custom files it imported) after it."""
    registry.names("dataset")  # the built-ins, registered before the snapshot
    saved = {kind: dict(table) for kind, table in registry._entries.items()}
    yield
    registry._entries.clear()
    registry._entries.update(saved)
    for name in [n for n in sys.modules if n.startswith("autotune_custom_")]:
        del sys.modules[name]


@pytest.fixture
def cli(capsys) -> Callable[..., tuple[int, str, str]]:
    """Run `autotune ARGV...` in this process -> (exit code, stdout, stderr); argparse's exits count as codes."""
    def run(*argv: Any) -> tuple[int, str, str]:
        try:
            code = autotune.cli.main([str(a) for a in argv])
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture(scope="session")
def free_port() -> Callable[[], int]:
    """tests/use/use_support.py's `free_port()` (a loopback port nothing listens on), for the folders that do not
    have use_support on their import path."""
    return runpy.run_path(str(Path(__file__).parent / "use" / "use_support.py"))["free_port"]


@pytest.fixture(scope="session")
def wait_for() -> Callable[..., None]:
    """`wait_for(condition, process, what, timeout=90)`: poll `condition` every 0.1 s while a subprocess (a search)
    runs; fail with the process's output if it exits first, or after `timeout` seconds naming `what`."""
    def wait(condition: Callable[[], Any], process: subprocess.Popen, what: str, timeout: float = 90) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if condition():
                return
            assert process.poll() is None, process.communicate()
            time.sleep(0.1)
        raise AssertionError(f"{what}: not within {timeout} s")

    return wait


@pytest.fixture(scope="session")
def study_of() -> Callable[[Any], Any]:
    """`study_of(result)`: the Optuna study a search's run folder persisted (its study.db)."""
    import optuna

    def load(result: Any) -> optuna.Study:
        return optuna.load_study(study_name=result.name, storage=f"sqlite:///{result.run_dir}/study.db")

    return load
