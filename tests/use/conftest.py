"""A real (tiny) search, run once per test session: its exported model feeds predict and serve, its run folder
feeds report. Digits, 4 small MLPs, at most 3 epochs, ASHA: a few seconds after Ray starts."""
from __future__ import annotations

import logging
import os

import pytest

from use_support import Searched, search_in

SPACE = """
name: tiny
recipe: image_classification
data: {dataset: digits, val_fraction: 0.15, test_fraction: 0.15}
model:
  arch: mlp
  width: {choice: [16, 32]}
  depth: 1
  dropout: {uniform: [0.0, 0.2]}
optimizer:
  name: adamw
  lr: {loguniform: [1.0e-3, 3.0e-2]}
train: {epochs: 3, batch_size: 64}
search:
  metric: val_accuracy
  mode: max
  trials: 8
  max_concurrent: 1  # one at a time: the trials reach the rung in one order, so the same ones stop at each run
  seed: 0
  scheduler: {asha: {grace_period: 2, reduction_factor: 2}}  # half stop at epoch 2; 3+ run all 3 (importance)
  resources: {cpu: 1}
export: {dir: models/tiny}
"""


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the searches of these tests (short temp dir: socket paths must stay short)."""
    import autotune.engine.search  # noqa: F401  (sets Ray's quiet environment first)
    import ray

    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
             _temp_dir=f"/tmp/rt_{os.getpid()}")
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def searched(tmp_path_factory, ray_session) -> Searched:
    return search_in(tmp_path_factory.mktemp("search"), SPACE)


@pytest.fixture(scope="session")
def digits_test():
    """The held-out test split of the searched data, as uint8 (N, 1, 8, 8) images and labels."""
    from autotune.recipes import image_classification as recipe

    data = recipe.load_data({"dataset": "digits", "val_fraction": 0.15, "test_fraction": 0.15})
    return data.test.x.numpy(), data.test.y.numpy()
