"""The image recipe on imbalanced classes: the balanced accuracy and macro-F1 it reports (scikit-learn's, over
batches), the balanced class weights of its training loss (scikit-learn's sample weights), and the warning when one
class holds most of the training samples."""
from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score, f1_score, log_loss
from sklearn.utils.class_weight import compute_sample_weight

from autotune import registry
from autotune.recipes import image_classification as recipe
from autotune.recipes import written
from autotune.training import class_weights
from autotune.vision.data import Images, prepare
from autotune.vision.datasets import digits

pytestmark = pytest.mark.usefixtures("registry_restored")  # the tests register a dataset


def zeros_among_digits(root: str) -> Images:
    """digits as "zero" or "other": about 10 % zeros."""
    images = digits(root)
    return Images(images.x, (images.y != 0).long(), ["zero", "other"], flip=False)


def test_the_balanced_accuracy_and_macro_f1_are_scikit_learn_s_over_several_batches():
    data = recipe.load_data({"dataset": "digits"})  # 1252 training images: two evaluation batches of 1024
    torch.manual_seed(0)
    model = recipe.make_model({"arch": "simple_cnn", "width": 4, "depth": 1}, data.input_shape, data.num_classes)
    measured = recipe._evaluate_split(model, data.train, data, torch.device("cpu"), None)
    with torch.no_grad():
        predicted = torch.cat([model(prepare(x, data)).argmax(1) for x, _ in data.train.batches(4096)])
    y = data.train.y.numpy()
    assert measured["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, predicted.numpy()))
    assert measured["f1_macro"] == pytest.approx(f1_score(y, predicted.numpy(), average="macro"))
    assert measured["accuracy"] == pytest.approx(float(np.mean(predicted.numpy() == y)))
    assert measured["balanced_accuracy"] != pytest.approx(measured["accuracy"])  # an untrained model's classes differ


def test_balanced_class_weights_weigh_the_loss_as_scikit_learn_s_sample_weights():
    y = torch.tensor([0] * 12 + [1] * 3 + [2] * 5)
    logits = torch.randn(20, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    weighted = recipe._loss(logits, y, 0.0, class_weights(y, 3).double())
    expected = log_loss(y.numpy(), logits.softmax(1).numpy(), sample_weight=compute_sample_weight("balanced", y))
    assert weighted.item() == pytest.approx(expected, rel=1e-6)
    assert recipe._loss(logits, y, 0.0).item() == pytest.approx(log_loss(y.numpy(), logits.softmax(1).numpy()))


def test_a_dominant_class_is_a_warning_and_class_weight_balanced_trains_and_is_kept(tmp_path, caplog, monkeypatch):
    registry.register("dataset")(zeros_among_digits)
    monkeypatch.setattr(logging.getLogger("autotune"), "propagate", True)  # as tests/reliability's log_records
    with caplog.at_level(logging.WARNING, logger="autotune"):
        data = recipe.load_data({"dataset": "zeros_among_digits"})
    warned = [r.getMessage() for r in caplog.records if "of the training samples" in r.getMessage()]
    assert len(warned) == 1 and "class 'other' is 89.6% of the training samples" in warned[0], warned
    assert "search.metric: val_balanced_accuracy" in warned[0] and "train.class_weight: balanced" in warned[0]

    reports = []

    def report(metrics, checkpoint):
        reports.append(metrics)
        shutil.rmtree(tmp_path / "checkpoint", ignore_errors=True)
        with written(checkpoint) as directory:
            shutil.copytree(directory, tmp_path / "checkpoint")

    config = {"data": {"dataset": "zeros_among_digits"}, "model": {"arch": "simple_cnn", "width": 8, "depth": 2},
              "optimizer": {"lr": 0.05}, "train": {"epochs": 2, "batch_size": 64, "class_weight": "balanced"}}
    recipe.train(config, report, data=data)
    assert [r["epoch"] for r in reports] == [1, 2] and all(0 < r["val_balanced_accuracy"] <= 1 for r in reports)
    state = torch.load(tmp_path / "checkpoint" / "checkpoint.pt", weights_only=True)
    assert state["config"]["train"]["class_weight"] == "balanced"
    assert set(recipe.evaluate(str(tmp_path / "checkpoint"), data)) == {"test_accuracy", "test_loss",
                                                                         "test_balanced_accuracy", "test_f1_macro"}


def test_class_weight_takes_none_or_balanced_only():
    from autotune.errors import SpaceError
    from autotune.api import load_space

    with pytest.raises(SpaceError, match="train.class_weight"):
        load_space("name: t\nrecipe: image_classification\ntrain: {class_weight: inverse}\n")


@pytest.mark.parametrize("samples, warned", [(200, True), (1000, False)])
def test_a_validation_split_too_small_to_rank_trials_is_a_warning(samples, warned, caplog, monkeypatch):
    """200 images validated each trial on about 20, where one image moves val_accuracy by 5 points: said, with
    the key that mends it."""
    monkeypatch.setattr(logging.getLogger("autotune"), "propagate", True)
    with caplog.at_level(logging.WARNING, logger="autotune"):
        data = recipe.load_data({"dataset": "fake", "samples": samples, "image_size": 8, "classes": 2})
    lines = [r.getMessage() for r in caplog.records if "the validation split holds" in r.getMessage()]
    assert len(lines) == warned, lines
    if warned:
        val = len(data.val.y)
        assert lines[0].startswith(f"dataset 'fake': the validation split holds {val} samples: each moves "
                                   f"val_accuracy by {100 / val:.1f} points") and "raise data.val_fraction" in lines[0]
