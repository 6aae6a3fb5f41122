"""Fixtures for the reliability tests: a CLI runner, a working folder, a small local Ray (helpers:
reliability_helpers.py)."""
from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path

import pytest

import autotune.cli
from autotune import registry
from reliability_helpers import start_ray


@pytest.fixture
def cli(monkeypatch, capsys):
    """Run `autotune ARGV...` in this process -> (exit code, stdout, stderr); argparse's exits count as codes."""
    present = {k: m for k, m in autotune.cli.COMMANDS.items() if importlib.util.find_spec(f"autotune.cli.{m}")}
    monkeypatch.setattr(autotune.cli, "COMMANDS", present)  # sub-commands still being written elsewhere

    def run(*argv: str) -> tuple[int, str, str]:
        try:
            code = autotune.cli.main([str(a) for a in argv])
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def in_tmp(tmp_path, monkeypatch) -> Path:
    """Work in an empty folder: runs/ and models/ of a run land there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def log_records(caplog, monkeypatch):
    """caplog of the "autotune" logger's warnings (`autotune run` stops that logger propagating to caplog)."""
    monkeypatch.setattr(logging.getLogger("autotune"), "propagate", True)
    caplog.set_level(logging.WARNING, logger="autotune")
    return caplog


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


@pytest.fixture(scope="module")
def local_ray():
    """A 2-CPU local Ray for the tests of a module (Ray's quiet environment is set by importing the engine)."""
    import autotune.engine.search  # noqa: F401
    import ray

    if ray.is_initialized():
        ray.shutdown()
    start_ray(num_cpus=2)
    yield
    ray.shutdown()
