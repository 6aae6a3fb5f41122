"""Fixtures for the reliability tests: a working folder and the autotune logger's warnings (the CLI runner, `cli`,
the small local Ray, `local_ray`, and a restored registry, `registry_restored`, are in tests/conftest.py; helpers:
reliability_helpers.py)."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest


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


