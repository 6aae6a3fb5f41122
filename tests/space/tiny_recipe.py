"""A recipe for the space tests: a schema and trivial functions that import nothing heavy."""
from __future__ import annotations

from autotune.space.schema import Field, Schema, Section

SCHEMA = Schema(
    data=Section(
        dataset=Field(str, choices=("digits", "mnist"), help="which data set"),
        root=Field(str, default="~/data"),
        val_fraction=Field(float, default=0.1, low=0.0, high=0.5),
    ),
    model=Section(
        arch=Field(str, default="mlp", choices=("mlp", "cnn", "resnet")),
        dropout=Field(float, default=0.0, low=0.0, high=0.9),
        width=Field(int, default=64, low=1),
        block=Field(str, default=None, nullable=True, registry="tiny_block"),
        head=Field((str, dict), default="linear"),
    ),
    optimizer=Section(
        name=Field(str, default="sgd", choices=("sgd", "adamw")),
        lr=Field(float, default=0.01, low=0.0, high=10.0),
        momentum=Field(float, default=0.9, low=0.0, high=1.0),
        weight_decay=Field(float, default=0.0, low=0.0),
    ),
    train=Section(
        epochs=Field(int, default=3, low=1),
        batch_size=Field(int, default=32, low=1),
        label=Field(str, default="run"),
        note=Field(str, default="", nullable=True),
    ),
    budget="train.epochs",  # early stopping counts the epochs a trial reports
)


def load_data(data: dict) -> dict:
    return data


def train(config: dict, report, *, data=None, checkpoint=None) -> None:
    report({"val_accuracy": 0.5, "val_loss": 1.0}, None)


def evaluate(checkpoint: str, data) -> dict:
    return {"test_accuracy": 0.5}


def export(checkpoint: str, data, out_dir: str) -> dict:
    return {}
