"""Which checkpoints a search keeps (autotune.engine.checkpoints): the policy alone, then through real Ray."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

import autotune
from autotune.engine import checkpoints
from autotune.engine.checkpoints import BestSoFar, CheckpointPolicy, TrialCheckpoints
from engine_helpers import history, toy_space

PEAK_AT_3 = [0.5, 0.7, 0.8, 0.75, 0.7, 0.65, 0.6]  # a learning curve over 7 epochs that peaks at epoch 3


@pytest.fixture
def store(monkeypatch) -> dict:
    """The Ray cluster's key-value store, as a dict: both sides of the policy run without Ray."""
    data: dict[str, bytes] = {}
    monkeypatch.setattr(checkpoints, "kv_put", data.__setitem__)
    monkeypatch.setattr(checkpoints, "kv_get", data.get)
    monkeypatch.setattr(checkpoints, "kv_delete", lambda key: data.pop(key, None))
    return data


def _policy(every: int = 3, modes: tuple[str, ...] = ("max",)) -> CheckpointPolicy:
    metrics = ("val_accuracy", "num_parameters")[: len(modes)]
    return CheckpointPolicy(every, metrics, modes, "best-checkpoint:test")


def _search(curves: list[list[float]], policy: CheckpointPolicy, *, epochs: int | None = 7) -> list[list[int]]:
    """The epochs each trial keeps, trials run one after the other, the driver told of each kept checkpoint."""
    driver = BestSoFar(policy)
    driver.setup()
    kept = []
    for curve in curves:
        trial, epochs_kept = TrialCheckpoints(policy, epochs=epochs), []
        for epoch, accuracy in enumerate(curve, start=1):
            if trial.keep({"val_accuracy": accuracy, "num_parameters": 100.0}, offered=True):
                epochs_kept.append(epoch)
                driver.on_checkpoint(0, [], SimpleNamespace(last_result={"val_accuracy": accuracy}), None)
        kept.append(epochs_kept)
    return kept


@pytest.mark.usefixtures("store")
@pytest.mark.parametrize(("curves", "every", "expected"), [
    # the first trial keeps each epoch better than the ones before, and one 3 epochs after its last kept one;
    # never its last epoch (nothing runs after it to resume)
    ([PEAK_AT_3], 3, [[1, 2, 3, 6]]),
    # a trial below the search's best keeps only what a resume needs
    ([PEAK_AT_3, [a - 0.3 for a in PEAK_AT_3]], 4, [[1, 2, 3], [4]]),
    # ... and its epochs that beat the best kept before them
    ([PEAK_AT_3, [0.4, 0.6, 0.9, 0.5, 0.5, 0.5, 0.5]], 4, [[1, 2, 3], [3]]),
    ([PEAK_AT_3, [0.4, 0.85, 0.9, 0.5, 0.5, 0.5, 0.5]], 4, [[1, 2, 3], [2, 3]]),
    # every epoch: a trial that never improves keeps every epoch but its last
    ([[0.5] * 7], 1, [[1, 2, 3, 4, 5, 6]]),
    ([[0.5] * 7], 10, [[1]]),
])
def test_the_epochs_a_search_keeps(curves, every, expected):
    assert _search(curves, _policy(every)) == expected


@pytest.mark.usefixtures("store")
def test_a_trial_of_unknown_length_keeps_its_last():
    assert _search([[0.5] * 10], _policy(), epochs=None) == [[1, 4, 7, 10]]  # no train.epochs
    assert _search([[0.5] * 10], _policy(), epochs=10) == [[1, 4, 7]]


def test_a_report_without_a_checkpoint_counts_and_a_resumed_trial_counts_from_its_checkpoint(store):
    policy = _policy(every=3)
    trial = TrialCheckpoints(policy, epochs=20)
    assert [trial.keep({"val_accuracy": 0.5}, offered=epoch != 3) for epoch in range(1, 7)] == [
        True, False, False, True, False, False]  # epoch 3 offered none: epoch 4 is 3 epochs after epoch 1
    assert trial.metadata() == {"iteration": 6}
    store[policy.best_key] = b"[1.0]"  # another trial is better
    resumed = TrialCheckpoints(policy, epochs=8, resumed_from={"iteration": 5})  # its 3rd report is its last epoch
    assert [resumed.keep({"val_accuracy": 0.1}, offered=True) for _ in range(3)] == [False, False, False]
    assert resumed.metadata() == {"iteration": 8}


def test_the_driver_publishes_the_best_kept_rank_and_clears_it(store):
    policy = _policy(modes=("max", "min"))
    driver = BestSoFar(policy)
    store[policy.best_key] = b"[9.0, -1.0]"  # left by an earlier process of this search: not to be trusted
    driver.setup()
    assert policy.best_key not in store
    for result in ({"val_accuracy": 0.8, "num_parameters": 50.0}, {"val_accuracy": float("nan")},
                   {"val_accuracy": 0.8, "num_parameters": 20.0}, {"val_accuracy": 0.7, "num_parameters": 1.0}):
        driver.on_checkpoint(0, [], SimpleNamespace(last_result=result), None)
    assert json.loads(store[policy.best_key]) == [0.8, -20.0]  # ties on the first metric: the second decides
    driver.on_experiment_end([])
    assert policy.best_key not in store


# ------------------------------------------------------------------------------------------- with Ray
def _kept_epochs(trial_dir: str | Path) -> list[int]:
    folders = Path(trial_dir).glob("checkpoint_*")
    return sorted(json.loads((folder / "state.json").read_text())["epoch"] for folder in folders)


@pytest.mark.usefixtures("local_ray")
@pytest.mark.parametrize("offer", ["folder", "save"])
def test_a_search_keeps_only_the_checkpoints_the_policy_needs(in_tmp, offer):
    """One trial at a time: each keeps epoch 3 (its peak, or 3 epochs after its start) and epoch 6 (3 after it),
    and epochs 1 and 2 only when they beat every trial before it; a `save` function runs only for those."""
    saves = in_tmp / "saves"
    saves.mkdir()
    text = toy_space("policy", trials=4, concurrent=1, search=", sampler: random, scheduler: fifo, "
                     "checkpoint_every: 3, keep_checkpoints: 20",
                     train=f"{{epochs: 7, peak_epoch: 3, offer: {offer}, count_saves_in: {saves}}}")
    result = autotune.fit(text)
    paths = sorted(result.trials["path"], key=lambda path: history(path)[0]["t_start"])
    best_before = float("-inf")
    for path in paths:
        accuracy = {r["epoch"]: r["val_accuracy"] for r in history(path)}
        beaten = [epoch for epoch in (1, 2) if accuracy[epoch] > best_before]
        assert _kept_epochs(path) == sorted({*beaten, 3, 6}), (accuracy, best_before)
        best_before = max(best_before, accuracy[3])
    kept = sorted(epoch for path in paths for epoch in _kept_epochs(path))
    assert len(paths) == 4 and len(kept) < 4 * 7
    if offer == "save":  # save() ran for the kept checkpoints only
        assert sorted(int(line) for line in (saves / "saves").read_text().split()) == kept


@pytest.mark.usefixtures("local_ray")
def test_the_export_is_the_best_epoch_of_the_search(in_tmp):
    """The accuracy peaks at epoch 3 of 8, and `checkpoint_every: 4` never keeps epoch 3 for a resume: only
    "better than every checkpoint kept before" does, with 2 trials running at a time."""
    text = toy_space("peak", trials=6, train="{epochs: 8, peak_epoch: 3}",
                     search=", sampler: random, scheduler: fifo, checkpoint_every: 4")
    result = autotune.fit(text)
    best = max((r for path in result.trials["path"] for r in history(path)), key=lambda r: r["val_accuracy"])
    exported = json.loads(Path("models/toy/toy_model.json").read_text())
    assert (exported["epoch"], exported["acc"]) == (3, best["val_accuracy"])
