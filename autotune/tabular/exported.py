"""What `autotune report` asks of an exported tabular model (model.pt + model.json): its predictions on the
held-out test split.

    predictions = test_predictions("models/tabular", data)   # ClassPredictions, or ValuePredictions (regression)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from autotune.recipes import ClassPredictions, ValuePredictions
from autotune.tabular.data import Data, Preprocessing
from autotune.tabular.rows import load_model

__all__ = ["test_predictions"]

BATCH = 8192


def test_predictions(model_dir: str | Path, data: Data) -> ClassPredictions | ValuePredictions:
    """The model's predictions on `data`'s test split: each row's class and its probability, with the classes of
    each split's rows (classification), or each row's value in the target's units (regression)."""
    model, card = load_model(model_dir)
    preprocessing = Preprocessing.from_card(card)  # the model's own encoding: the data may be newer than it
    test = data.test_for(preprocessing)
    with torch.no_grad():
        outputs = torch.cat([model(numeric.cpu(), categorical.cpu())
                             for numeric, categorical, _ in test.batches(BATCH)]).double()
    truth = test.y.cpu().numpy()
    if preprocessing.task == "regression":
        return ValuePredictions(preprocessing.target, truth.astype(float), outputs.numpy())
    labels = list(preprocessing.labels)
    index = np.array([labels.index(name) if name in labels else -1 for name in data.labels], dtype=np.int64)
    splits = {name: index[getattr(data, name).y.cpu().numpy()] for name in ("train", "val")}
    return ClassPredictions.of(labels, torch.softmax(outputs, dim=1).numpy(), {**splits, "test": truth})
