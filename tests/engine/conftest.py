"""Engine test fixtures (`local_ray`, one small Ray per module, is in tests/conftest.py); specific tests start
their own cluster shapes."""
from __future__ import annotations

import pytest


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run in a fresh folder: runs/ and models/ land there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
