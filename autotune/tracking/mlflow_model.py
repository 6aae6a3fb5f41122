"""The exported model as an MLflow model, in the form its recipe's `input_example(model_dir)` says it takes:

- an array (the image recipe's: a float image batch): the TorchScript model.pt under `mlflow.pytorch`, which
  `mlflow.pytorch.load_model` and `mlflow.pyfunc.load_model` call with that array;
- a DataFrame (the tabular recipe's: a row of its columns): a pyfunc model that predicts rows with the recipe's
  `load_model`, so `mlflow.pyfunc.load_model(uri).predict(frame)` and `mlflow models serve` take the table's own
  columns and answer with a DataFrame of its predictions (`label` and `probability`, or `value`), as
  `autotune.load_model(folder).predict(rows)` does. Its signature takes every column as optional: a missing value
  is one the model reads as missing, as training did;
- no example (another recipe's model.pt): the TorchScript model under `mlflow.pytorch`, without one.

Imports mlflow: only a search that tracks to MLflow loads it.
"""
from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

import mlflow.pyfunc

__all__ = ["save", "RowsModel", "frame"]


class RowsModel(mlflow.pyfunc.PythonModel):
    """An exported model folder (its `model` artifact) as a pyfunc model: `predict(DataFrame)` -> a DataFrame, one
    row per input row, of what `autotune.load_model(folder).predict(rows)` gives (`frame`). A row the model
    refuses is an MlflowException (INVALID_PARAMETER_VALUE) whose message names the row and the column, which
    `mlflow models serve` answers with, where another error is its generic "unexpected error"."""

    # MLflow checks predict's type hints as the class is made, and warns where there are none; its own hook for a
    # model that validates its input itself skips that (the signature below still names the columns)
    _skip_type_hint_validation = True

    def load_context(self, context: Any) -> None:
        from autotune import load_model

        self._predictor = load_model(context.artifacts["model"])

    def predict(self, context: Any, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

        from autotune.errors import UserError

        try:
            return frame(self._predictor.predict(model_input))
        except UserError as err:
            raise MlflowException(str(err), error_code=INVALID_PARAMETER_VALUE) from None


def frame(records: list[dict[str, Any]]) -> Any:
    """Prediction records as a DataFrame whose every row has every key: one a record lacks is None (JSON's null),
    not pandas' NaN, which `mlflow models serve` would write as a bare `NaN` that JSON readers refuse (a row
    without `unseen_categories`)."""
    import pandas as pd

    keys = dict.fromkeys(key for record in records for key in record)
    return pd.DataFrame([{key: record.get(key) for key in keys} for record in records], columns=list(keys),
                        dtype=object).infer_objects()


def save(model_dir: Path, out: Path, example: Any) -> None:
    """Write the MLflow model of the exported folder `model_dir` into the new folder `out`, in the form `example`
    (its recipe's input example, or None) says it takes."""
    import pandas as pd

    if isinstance(example, pd.DataFrame):
        _save_rows(model_dir, out, example)
    else:
        _save_torchscript(model_dir, out, example)


def _save_torchscript(model_dir: Path, out: Path, example: Any) -> None:
    """model.pt under mlflow.pytorch, its card beside it (`extra_files`)."""
    import mlflow.pytorch
    import torch

    model = torch.jit.load(str(model_dir / "model.pt"), map_location="cpu")
    mlflow.pytorch.save_model(model, str(out), serialization_format="pickle",  # what a ScriptModule takes
                              extra_files=[str(model_dir / "model.json")], input_example=example)


def _save_rows(model_dir: Path, out: Path, example: Any) -> None:
    """A RowsModel holding `model_dir` (its `model` artifact), its signature the columns of `example`, each optional
    and of any type (see the module's docstring), and the columns of the predictions for it; its requirements are
    this autotune's and torch's (no inference: that would load the model again in another process)."""
    from mlflow.models import infer_signature
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, Schema

    from autotune import load_model

    inferred = infer_signature(example, frame(load_model(str(model_dir)).predict(example)))
    inputs = Schema([ColSpec(AnyType(), column.name, required=False) for column in inferred.inputs.inputs])
    mlflow.pyfunc.save_model(
        str(out), python_model=RowsModel(), artifacts={"model": str(model_dir)}, input_example=example,
        signature=ModelSignature(inputs=inputs, outputs=inferred.outputs),
        pip_requirements=[f"{name}=={importlib.metadata.version(name)}" for name in ("autotune", "torch")])
