"""Engine tests share one small local Ray per module; specific tests start their own cluster shapes."""
from __future__ import annotations

import pytest

from engine_helpers import start_ray


@pytest.fixture(scope="module")
def local_ray():
    import autotune.engine.search  # noqa: F401  (sets Ray's quiet environment first)
    import ray

    if ray.is_initialized():
        ray.shutdown()
    start_ray(num_cpus=2)
    yield
    ray.shutdown()


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run in a fresh folder: runs/ and models/ land there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
