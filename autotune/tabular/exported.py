"""What `autotune report` and an MLflow search ask of an exported tabular model (model.pt + model.json): its
predictions on the held-out test split, and a row it reads.

    predictions = test_predictions("models/tabular", data)   # ClassPredictions, or ValuePredictions (regression)
    predictions.reference                                      # a linear model's, fitted on the same train rows
    example = input_example("models/tabular")                # one row (a DataFrame) of the columns it reads
"""
from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import sparse
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import OneHotEncoder

from autotune.recipes import ClassPredictions, Reference, ValuePredictions
from autotune.tabular.data import Data, Preprocessing, Split, withheld_columns
from autotune.tabular.rows import load_model

__all__ = ["input_example", "reference", "test_predictions"]

BATCH = 8192
REFERENCE_ROWS = 100_000  # the most train rows the reference model is fitted on (a seeded sample of larger splits)


def input_example(model_dir: str | Path) -> pd.DataFrame:
    """One row of the columns the model reads, in its card's order: each number its training median, each category
    its first value; "" (missing) for a column that held none, and for one of nearly a value per training row
    (`withheld_columns`: an id, a name, an e-mail address), whose first value is a person's, not an example."""
    _, card = load_model(model_dir)
    preprocessing = Preprocessing.from_card(card)
    withheld = withheld_columns(card)
    row = {**dict(zip(preprocessing.numeric, preprocessing.median)),
           **{column: values[0] if values and column not in withheld else ""
              for column, values in preprocessing.categories.items()}}
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
        return ValuePredictions(preprocessing.target, truth.astype(float), outputs.numpy(), reference(data))
    labels = list(preprocessing.labels)
    index = np.array([labels.index(name) if name in labels else -1 for name in data.labels], dtype=np.int64)
    splits = {name: index[getattr(data, name).y.cpu().numpy()] for name in ("train", "val")}
    predictions = ClassPredictions.of(labels, torch.softmax(outputs, dim=1).numpy(), {**splits, "test": truth})
    found = reference(data)
    return predictions if found is None else dataclasses.replace(
        predictions, reference=Reference(found.name, index[found.predicted]))


def reference(data: Data) -> Reference | None:
    """A linear model's predictions on `data`'s test split: scikit-learn's LogisticRegression (a classifier; its
    defaults but max_iter=1000, which converges on more tables) or Ridge, with their default settings, fitted on the train split's rows (at most REFERENCE_ROWS of them) as the
    model reads them (standardised numbers and missing flags, each category one-hot); its classes are `data`'s
    class indices. None where the train split holds one class."""
    train, test = _sampled(data.train), data.test
    classifier = data.preprocessing.task == "classification"
    y = train.y.cpu().numpy()
    if classifier and len(np.unique(y)) < 2:
        return None
    encoder = OneHotEncoder(handle_unknown="ignore").fit(train.categorical.cpu().numpy()) \
        if train.categorical.shape[1] else None
    model = LogisticRegression(max_iter=1000) if classifier else Ridge()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a ConvergenceWarning: the reference is scored as it ends
        model.fit(_linear_inputs(train, encoder), y)
        predicted = model.predict(_linear_inputs(test, encoder))
    rows = f"{len(train):,}" if len(train) == len(data.train) else f"{len(train):,} of the {len(data.train):,}"
    settings = "its defaults, max_iter=1000" if classifier else "its defaults"
    return Reference(f"scikit-learn's {type(model).__name__} ({settings}) fitted on the same {rows} train rows",
                     predicted)


def _sampled(split: Split) -> Split:
    """`split`, or a seeded sample of REFERENCE_ROWS of its rows where it holds more."""
    if len(split) <= REFERENCE_ROWS:
        return split
    keep = torch.from_numpy(np.sort(np.random.default_rng(0).choice(len(split), REFERENCE_ROWS, replace=False)))
    return dataclasses.replace(split, numeric=split.numeric[keep], categorical=split.categorical[keep],
                               y=split.y[keep], rows=split.rows[keep.numpy()])


def _linear_inputs(split: Split, encoder: OneHotEncoder | None) -> sparse.csr_matrix:
    """A split's rows as a linear model reads them: its numeric inputs, and each categorical index one-hot (sparse;
    `encoder` None: a table of no categorical column)."""
    numeric = sparse.csr_matrix(split.numeric.cpu().numpy().astype(np.float64))
    if encoder is None:
        return numeric
    return sparse.hstack([numeric, encoder.transform(split.categorical.cpu().numpy())], format="csr")
