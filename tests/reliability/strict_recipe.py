"""The engine tests' toy recipe, strict about its data as the image recipe is: `export` and `evaluate` refuse
data other than the data the model was trained on, and a larger `data.size` scores a little higher (so that a
search over `data.size` has a best size)."""
from __future__ import annotations

import json
from pathlib import Path

from autotune import recipes
from autotune.errors import UserError

toy = recipes.load(str(Path(__file__).parents[1] / "engine" / "toy_recipe.py"))
SCHEMA, load_data, SPLIT = toy.SCHEMA, toy.load_data, toy.SPLIT  # the toy's keyed split: a retrain compares


def _bonus(size: int) -> float:
    return size / 10_000


def train(config: dict, report, *, data=None, checkpoint: str | None = None) -> None:
    def scored(metrics: dict, checkpoint=None) -> None:
        report({**metrics, "val_accuracy": metrics["val_accuracy"] + _bonus(config["data"]["size"])}, checkpoint)

    toy.train(config, scored, data=data, checkpoint=checkpoint)


def _check(state_file: Path, data) -> None:
    trained_on = json.loads(state_file.read_text())["config"]["data"]["size"]
    if data is None or data.size != trained_on:
        raise UserError(f"the data differs from the data this model was trained on (size {trained_on})")


def evaluate(model_dir: str, data) -> dict:
    _check(Path(model_dir) / "toy_model.json", data)
    metrics = toy.evaluate(model_dir, data)
    return {**metrics, "test_accuracy": metrics["test_accuracy"] + _bonus(data.size)}


def export(checkpoint: str, data, out_dir: str) -> dict:
    _check(Path(checkpoint) / "state.json", data)
    return toy.export(checkpoint, data, out_dir)
