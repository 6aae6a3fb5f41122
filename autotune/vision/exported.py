"""What `autotune report` and MLflow ask of an exported image classifier (model.pt + model.json): its predictions
on the held-out test split, with the test images, and an input it takes.

    predictions = test_predictions("models/digits", data)   # autotune.recipes.ClassPredictions
    example = input_example("models/digits")                # zeros, float32 (1, C, H, W)
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from autotune.recipes import ClassPredictions
from autotune.vision.predictor import load_model

if TYPE_CHECKING:
    from autotune.vision.data import Data

__all__ = ["input_example", "test_predictions"]


def test_predictions(model_dir: str | Path, data: Data) -> ClassPredictions:
    """The model's predictions on `data`'s test split, the test images among them (uint8 (N, C, H, W))."""
    model = load_model(model_dir)
    images = np.concatenate([x.cpu().numpy() for x, _ in data.test.batches(1024)])
    splits = {name: getattr(data, name).y.cpu().numpy() for name in ("train", "val", "test")}
    return ClassPredictions.of(data.labels, model.predict(images).probabilities, splits, images)


def input_example(model_dir: str | Path) -> np.ndarray:
    """A black image of the model's input shape: float32 (1, C, H, W)."""
    card = json.loads((Path(model_dir) / "model.json").read_text())
    return np.zeros((1, *card["input_shape"]), dtype=np.float32)
