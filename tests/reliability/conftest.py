"""Fixtures for the reliability tests: a CLI runner and a working folder (the small local Ray, `local_ray`, is in
tests/conftest.py; helpers: reliability_helpers.py)."""
from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path

import pytest

import autotune.cli
from autotune import registry


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
    """caplog of the "autotune" logger's warnings (while `autotune run` runs, that logger does not propagate)."""
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
