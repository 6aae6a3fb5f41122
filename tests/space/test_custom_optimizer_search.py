"""An optimizer registered in a space's `custom:` file is used by every trial of a real (tiny) Ray search."""
from __future__ import annotations

import logging
import os

import pytest

CUSTOM = '''\
import autotune
import torch


@autotune.register("optimizer")
def logged_adam(params, lr, weight_decay, **kwargs):
    with open(LOG, "a") as log:  # each trial runs in a Ray worker process
        log.write(f"{lr}\\n")
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
'''

SPACE = """\
name: custom_optimizer
recipe: image_classification
custom: my_optimizers.py
data: {dataset: digits}
model: {arch: mlp, width: 16, depth: 1}
optimizer: {name: logged_adam, lr: {loguniform: [1.0e-3, 1.0e-2]}, schedule: none}
train: {epochs: 1, batch_size: 128}
search: {trials: 2, sampler: random, scheduler: fifo, max_concurrent: 2, resources: {cpu: 1}}
"""


@pytest.fixture
def ray_session():
    import autotune.engine.search  # noqa: F401  (sets Ray's quiet environment first)
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
                 _temp_dir=f"/tmp/rt_{os.getpid()}")
    yield
    if started:
        ray.shutdown()


def test_a_custom_optimizer_trains_every_trial_of_a_search(tmp_path, monkeypatch, ray_session):
    import autotune

    log = tmp_path / "calls.txt"
    (tmp_path / "my_optimizers.py").write_text(CUSTOM.replace("LOG", repr(str(log))))
    (tmp_path / "space.yaml").write_text(SPACE)
    monkeypatch.chdir(tmp_path)
    result = autotune.fit(str(tmp_path / "space.yaml"), export=False)
    assert len(result.trials) == 2 and (result.trials["status"] == "TERMINATED").all()
    sampled = sorted(result.trials["p:optimizer.lr"])
    assert sorted(float(line) for line in log.read_text().split()) == pytest.approx(sampled)
