"""Fixtures every test folder shares."""
from __future__ import annotations

import logging
import os
import shutil

import pytest


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
    """A developer's MLFLOW_TRACKING_URI or WANDB_* would switch tracking on for every test search."""
    names = [n for n in os.environ if n == "MLFLOW_TRACKING_URI" or n.startswith("WANDB_")]
    saved = {n: os.environ.pop(n) for n in names}
    yield
    os.environ.update(saved)
