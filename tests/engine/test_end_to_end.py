"""A real search with the image recipe on the shared MNIST 10k: TPE + ASHA, 2 concurrent trials, export, reload."""
from __future__ import annotations

import glob
import hashlib
import json
from pathlib import Path

import numpy as np
import optuna
import pytest

import autotune
from autotune import recipes
from engine_helpers import hparams_of, run_histories

pytestmark = pytest.mark.usefixtures("local_ray")

MNIST = (Path(__file__).parents[2] / ".." / "shared" / "data" / "mnist").resolve()

SPACE = f"""
name: mnist_e2e
recipe: image_classification
data: {{dataset: idx, root: {MNIST}, val_fraction: 0.1, test_fraction: 0.1}}
model:
  arch: {{choice: [mlp, simple_cnn]}}
  width: {{choice: [8, 16]}}
  depth: 2
optimizer: {{name: adamw, lr: {{loguniform: [1.0e-4, 3.0e-2]}}}}
train: {{epochs: 4, batch_size: 128}}
search:
  trials: 8
  sampler: tpe
  scheduler: {{asha: {{grace_period: 1, reduction_factor: 2}}}}
  max_concurrent: 2
  seed: 0
  resources: {{cpu: 1}}
export: {{dir: models/mnist_e2e, promote: if_better}}
"""


@pytest.mark.skipif(not MNIST.is_dir(), reason=f"the shared MNIST set is not at {MNIST}")
def test_mnist_search_end_to_end(in_tmp):
    result = autotune.fit(SPACE)
    trials = result.trials
    assert len(trials) == 8 and (trials["status"] == "TERMINATED").all()
    assert trials["stopped_early"].any(), "ASHA stopped no trial early"

    # The export holds the best trial: the best val_accuracy any trial reported at any epoch (its own files).
    histories = run_histories(result.run_dir)
    assert len(histories) == 8
    best_id = max(histories, key=lambda t: max(r["val_accuracy"] for r in histories[t]))
    best_params = json.loads((result.run_dir / f"trial_{best_id}" / "params.json").read_text())
    model_dir = Path("models/mnist_e2e")
    card = json.loads((model_dir / "model.json").read_text())
    assert card["trial_id"] == best_id and card["params"] == best_params
    assert card["metrics"]["val_accuracy"] == max(r["val_accuracy"] for r in histories[best_id])
    best_report = max(histories[best_id], key=lambda r: r["val_accuracy"])
    assert set(card["metrics"]) == {"epoch", "train_loss", "val_loss", "val_accuracy", "val_balanced_accuracy",
                                    "val_f1_macro", "epoch_seconds", "samples_per_second", "num_parameters"}, \
        card["metrics"]  # none of Ray's
    assert card["metrics"]["epoch"] == best_report["training_iteration"] and card["metrics"] == result.best_metrics
    assert card["config"] == result.best_config and card["params"] == result.best_params
    assert card["config"]["model"]["arch"] == result.best_params["model.arch"]
    assert card["labels"] == [str(i) for i in range(10)] and card["input_shape"] == [1, 28, 28]
    assert card["data_fingerprint"] and card["versions"]["torch"]
    recipe_file = Path(recipes.load("image_classification").__file__)
    assert card["sources"] == {"recipe": hashlib.sha256(recipe_file.read_bytes()).hexdigest()}

    # It reloads without the recipe and reproduces the recorded test accuracy on the held-out split.
    data = recipes.load("image_classification").load_data(card["config"]["data"])
    predictor = autotune.load_model(model_dir)
    predicted = predictor.predict(data.test.x.numpy())
    accuracy = float(np.mean(predicted.indices == data.test.y.numpy()))
    assert accuracy == pytest.approx(card["test_metrics"]["test_accuracy"], abs=1e-9)
    assert accuracy > 0.85

    # TensorBoard: scalars and hparams for every trial; the Optuna study: one entry per trial.
    events = glob.glob(f"{result.run_dir}/trial_*/events.out.tfevents*")
    assert len(events) == 8
    for event_file in events:
        found = hparams_of(event_file)
        assert "ray/tune/val_accuracy" in found["scalars"] and "model.arch" in found["hparams"]
    study = optuna.load_study(study_name="mnist_e2e", storage=f"sqlite:///{result.run_dir}/study.db")
    assert len(study.trials) == 8
    ran = {params: len(histories[t]) for t in histories
           for params in [json.dumps(histories[t][0]["config"], sort_keys=True)]}
    for trial in study.trials:  # PRUNED when ASHA stopped it, with each epoch it ran; COMPLETE after its 4th
        epochs = ran[json.dumps(trial.params, sort_keys=True)]
        assert trial.state.name == ("COMPLETE" if epochs == 4 else "PRUNED"), (trial, epochs)
