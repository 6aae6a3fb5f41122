"""A function registered in the user's own script (its `__main__`) or in a module of theirs beside it, not in a
`custom:` file, reaches the trials: the driver's registrations that a trial would not make again travel with it."""
from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import types

OPTIMIZERS = '''
import autotune
import torch


@autotune.register("optimizer")
def plain_sgd(params, lr, weight_decay, **kwargs):
    return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay)
'''

SCRIPT = '''
import json
import autotune
import my_optimizers  # a module of the user's, beside the script
from torch import nn


@autotune.register("model")
def tiny_linear(in_chans, num_classes, input_size, hidden=16, **kwargs):
    return nn.Sequential(nn.Flatten(), nn.Linear(in_chans * input_size * input_size, hidden), nn.ReLU(),
                         nn.Linear(hidden, num_classes))


result = autotune.fit("""
name: regdigits
recipe: image_classification
data: {dataset: digits, augment: none}
model: {arch: tiny_linear, hidden: {choice: [8, 32]}}
optimizer: {name: plain_sgd, lr: 0.1}
train: {epochs: 1}
search: {metric: val_accuracy, mode: max, trials: 2, max_concurrent: 1, seed: 0, resources: {cpu: 1}}
""", num_cpus=1, export=False)
print(json.dumps(result.trials["status"].tolist()))
'''


def test_what_the_script_that_calls_fit_registers_trains_in_every_trial(tmp_path):
    (tmp_path / "search.py").write_text(SCRIPT)
    (tmp_path / "my_optimizers.py").write_text(OPTIMIZERS)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "TUNE_"))}
    run = subprocess.run([sys.executable, "search.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads(run.stdout.splitlines()[-1]) == ["TERMINATED", "TERMINATED"], run.stdout + run.stderr


def test_a_package_of_the_users_is_shipped_by_value_and_an_installed_one_is_not(tmp_path, monkeypatch):
    """On a cluster, the other nodes may lack the user's package beside the script: its code goes with the trials.
    `__main__` is pickled by value anyway; an installed package (torch) is there on every node."""
    import torch

    from autotune.engine.trial import _registered_by

    (tmp_path / "users_models").mkdir()
    (tmp_path / "users_models" / "__init__.py").write_text("")
    (tmp_path / "users_models" / "nets.py").write_text("def net(in_chans, num_classes, input_size):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        net = importlib.import_module("users_models.nets").net
        in_main = types.FunctionType(net.__code__, {}, "main")
        in_main.__module__ = "__main__"  # a function of the user's script
        entries = [("model", "net", net), ("model", "main", in_main), ("optimizer", "sgd", torch.optim.SGD)]
        assert _registered_by(entries) == [sys.modules["users_models"]]
    finally:
        for name in ("users_models", "users_models.nets"):
            sys.modules.pop(name, None)



CLASS_NAMES = '''
import torch


class Shapes:
    def __init__(self):
        self.classes = ["disc", "square"]  # the name of the submodule torch.classes
        self.x = torch.zeros(2)


def class_names():
    return Shapes().classes
'''


def test_user_code_that_uses_torch_and_an_attribute_named_classes_pickles(tmp_path, monkeypatch):
    """cloudpickle took `self.classes` for the submodule `torch.classes`, and failed to pickle that object: such code
    from a `custom:` file or the user's module is shipped to the trials, and unpickles in another process."""
    from ray import cloudpickle

    from autotune.engine.trial import _ship_user_code

    (tmp_path / "shapes_data.py").write_text(CLASS_NAMES)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        module = importlib.import_module("shapes_data")
        _ship_user_code([module])
        (tmp_path / "fn.pkl").write_bytes(cloudpickle.dumps((module.class_names, module.Shapes())))
    finally:
        sys.modules.pop("shapes_data", None)
        cloudpickle.unregister_pickle_by_value(module)
    load = f"import pickle; fn, data = pickle.load(open({str(tmp_path / 'fn.pkl')!r}, 'rb')); print(fn(), data.classes)"
    run = subprocess.run([sys.executable, "-c", load], cwd="/", capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["['disc',", "'square']", "['disc',", "'square']"]
