"""Engine tests share one small local Ray per module; specific tests start their own cluster shapes."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

HERE = Path(__file__).parent
TOY = str(HERE / "toy_recipe.py")


def start_ray(**kwargs) -> None:
    import ray

    ray.init(
        include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
        _temp_dir=f"/tmp/rt_{os.getpid()}", **kwargs,
    )


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


def toy_space(name: str = "toy", *, trials: int = 6, extra: str = "", search: str = "", export: str = "") -> str:
    """A YAML space over the toy recipe."""
    return f"""
name: {name}
recipe: {TOY}
model:
  x: {{uniform: [0.0, 1.0]}}
  y: {{uniform: [0.0, 1.0]}}
train: {{epochs: 4}}
{extra}
search:
  metric: val_accuracy
  mode: max
  trials: {trials}
  max_concurrent: 2
  seed: 0
  resources: {{cpu: 1}}
{search}
export:
  dir: models/{name}
{export}
"""
