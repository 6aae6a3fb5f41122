"""Load an exported model directory and predict, with no recipe and no training code.

    model = autotune.load_model("models/digits")
    result = model.predict(images)       # arrays (N,C,H,W), (N,H,W), (H,W[,C]): numpy or torch, integers 0..255 or
                                         # floats in [0, 1]; PIL images or image files of any size
    result.labels, result.probabilities  # one label per image; (N, classes) probabilities

The directory holds `model.pt` (TorchScript: float images in [0, 1], NCHW, normalisation built in) and
`model.json` (the model card: labels, input_shape, ...).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import torch

from autotune.model_dir import load_torchscript, read_card
from autotune.vision.inference import Resize, array_batch, image_pixels

__all__ = ["Predictor", "Predictions", "load_model"]


@dataclass(frozen=True)
class Predictions:
    labels: list[str]  # the most probable label of each image
    probabilities: np.ndarray  # (N, classes), rows sum to 1, columns in the order of Predictor.labels
    indices: np.ndarray  # (N,) class index of each label


class Predictor:
    """A loaded model and its card; `predict` converts images to the input shape the model expects."""

    def __init__(self, model: torch.jit.ScriptModule, card: dict[str, Any], directory: str | Path | None = None
                 ) -> None:
        self.model = model.eval()
        self.card = card
        self.directory = directory  # the folder it was loaded from, for its repr
        self.labels: list[str] = list(card["labels"])
        self.input_shape: tuple[int, int, int] = tuple(card["input_shape"])  # type: ignore[assignment]
        self.resize = Resize.of(card)  # how training brought images to input_shape

    def __repr__(self) -> str:
        shown = ", ".join(self.labels[:5]) + (", ..." if len(self.labels) > 5 else "")
        return (f"Predictor({str(self.directory or self.card.get('name', '?'))!r}: image classification of "
                f"{len(self.labels)} classes ({shown}), input {'x'.join(map(str, self.input_shape))})")

    def predict(self, images: Any, batch_size: int = 256) -> Predictions:
        """Predict a batch (or one image): arrays of the input size (numpy or torch; integers 0..255 or floats in
        [0, 1], as `autotune predict` reads a .npy file: other values are a UserError, not a guess at their scale),
        or PIL images or image file paths of any size, as training takes them (converted as in training:
        `autotune.vision.inference.image_pixels`). An empty batch has no predictions."""
        x = self._to_tensor(images)
        with torch.no_grad():
            logits = torch.cat([self.model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]) if len(x) \
                else torch.empty((0, len(self.labels)))
        probabilities = torch.softmax(logits.float(), dim=1).numpy()
        indices = probabilities.argmax(axis=1)
        return Predictions([self.labels[i] for i in indices], probabilities, indices)

    def _to_tensor(self, images: Any) -> torch.Tensor:
        """float (N, C, H, W) in [0, 1]. Images and files are converted and resized; arrays are read as a .npy
        file is (`array_batch`: the input size, integers 0..255 or floats in [0, 1])."""
        if _is_image(images):
            images = [images]
        if isinstance(images, Sequence) and images and _is_image(images[0]):
            images = [image_pixels(image, self.input_shape, self.resize, max_pixels=None) for image in images]
        array = np.asarray(images)
        if array.size == 0 and (array.ndim == 1 or array.shape[1:] == self.input_shape):  # no images
            return torch.empty((0, *self.input_shape))
        array = array_batch(array, self.input_shape)
        scale = 255.0 if array.dtype == np.uint8 else 1.0
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32) / scale)


def _is_image(obj: Any) -> bool:
    """A PIL image or the path of an image file."""
    return type(obj).__module__.startswith("PIL.") or isinstance(obj, (str, PurePath))


def load_model(directory: str | Path) -> Predictor:
    """The exported model in `directory` (model.pt + model.json), ready to predict."""
    card = read_card(directory)
    return Predictor(load_torchscript(Path(directory) / "model.pt"), card, directory)
