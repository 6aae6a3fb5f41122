"""What `autotune report` and an MLflow search ask of an exported tabular model (model.pt + model.json): its
predictions on the held-out test split, and a row it reads.

    predictions = test_predictions("models/tabular", data)   # ClassPredictions, or ValuePredictions (regression)
    example = input_example("models/tabular")                # one row (a DataFrame) of the columns it reads
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from autotune.recipes import ClassPredictions, ValuePredictions
from autotune.tabular.data import Data, Preprocessing
from autotune.tabular.rows import load_model

__all__ = ["input_example", "test_predictions"]

BATCH = 8192


def input_example(model_dir: str | Path) -> pd.DataFrame:
    """One row of the columns the model reads, in its card's order: each number its training median, each category
    its first value ("" for a column that held none)."""
    _, card = load_model(model_dir)
    preprocessing = Preprocessing.from_card(card)
    row = {**dict(zip(preprocessing.numeric, preprocessing.median)),
           **{column: values[0] if values else "" for column, values in preprocessing.categories.items()}}
    return pd.DataFrame([row])


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
