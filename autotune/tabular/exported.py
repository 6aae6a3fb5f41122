"""What `autotune report` asks of an exported tabular model (model.pt + model.json): its predictions on the
held-out test split.

    predictions = test_predictions("models/tabular", data)   # ClassPredictions, or ValuePredictions (regression)
"""
from __future__ import annotations

from pathlib import Path

import torch

from autotune.recipes import ClassPredictions, ValuePredictions
from autotune.tabular.data import Data
from autotune.tabular.rows import load_model

__all__ = ["test_predictions"]

BATCH = 8192


def test_predictions(model_dir: str | Path, data: Data) -> ClassPredictions | ValuePredictions:
    """The model's predictions on `data`'s test split: each row's class and its probability, with the classes of
    each split's rows (classification), or each row's value in the target's units (regression)."""
    model, _ = load_model(model_dir)
    with torch.no_grad():
        outputs = torch.cat([model(numeric.cpu(), categorical.cpu())
                             for numeric, categorical, _ in data.test.batches(BATCH)]).double()
    truth = data.test.y.cpu().numpy()
    if data.preprocessing.task == "regression":
        return ValuePredictions(data.preprocessing.target, truth.astype(float), outputs.numpy())
    splits = {name: getattr(data, name).y.cpu().numpy() for name in ("train", "val", "test")}
    return ClassPredictions.of(data.labels, torch.softmax(outputs, dim=1).numpy(), splits)
