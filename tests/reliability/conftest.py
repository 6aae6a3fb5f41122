"""Fixtures for the reliability tests: a working folder, the autotune logger's warnings and a restored registry (the
CLI runner, `cli`, and the small local Ray, `local_ray`, are in tests/conftest.py; helpers: reliability_helpers.py)."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from autotune import registry


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
