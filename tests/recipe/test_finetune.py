"""Fine-tuning: `train.freeze_epochs` (only the classifier trains at first) and `optimizer.backbone_lr_mult`, from
weights the test makes (a 1000-class timm network saved as a file), across a resume in the frozen phase."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file

from autotune.errors import UserError
from autotune.recipes import image_classification as recipe
from autotune.recipes import written
from autotune.training import make_schedule

ARCH = "test_resnet"
HEAD = ("fc.weight", "fc.bias")


class Checkpoints:
    """A `report` that keeps every epoch's checkpoint state (`stop_after`: the engine stops the trial there)."""

    def __init__(self, folder: Path, stop_after: int | None = None) -> None:
        self.folder, self.stop_after = folder, stop_after
        self.states: dict[int, dict] = {}

    def __call__(self, metrics, checkpoint):
        epoch = metrics["epoch"]
        with written(checkpoint) as directory:
            shutil.copytree(directory, self.folder / str(epoch))
        self.states[epoch] = torch.load(self.folder / str(epoch) / "checkpoint.pt", weights_only=True)
        if epoch == self.stop_after:
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    torch.manual_seed(3)
    source = {k: v.clone() for k, v in timm.create_model(ARCH, num_classes=1000).state_dict().items()}
    path = tmp_path_factory.mktemp("weights") / "test_resnet.safetensors"
    save_file(source, str(path))
    return path, source


@pytest.fixture(scope="module")
def data():
    return recipe.load_data({"dataset": "fake", "samples": 96, "image_size": 32, "classes": 3})


def config(weights_file: Path, **train) -> dict:
    return {"model": {"arch": ARCH, "pretrained": str(weights_file)},
            "optimizer": {"lr": 0.05, "backbone_lr_mult": 0.1},
            "train": {"epochs": 3, "batch_size": 32, "freeze_epochs": 2, **train}}


def _backbone(state: dict) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state["model"].items() if k not in HEAD}


def test_the_backbone_stays_the_pretrained_one_while_frozen_then_learns(weights, data, tmp_path):
    path, source = weights
    kept = Checkpoints(tmp_path)
    recipe.train(config(path), kept, data=data)
    for epoch in (1, 2):  # frozen: every backbone tensor, BatchNorm statistics included, is the file's
        backbone = _backbone(kept.states[epoch])
        assert all(torch.equal(v, source[k]) for k, v in backbone.items()), epoch
        assert kept.states[epoch]["phase"] == "frozen"
    assert not torch.equal(kept.states[2]["model"]["fc.weight"], kept.states[1]["model"]["fc.weight"])
    thawed = _backbone(kept.states[3])
    changed = [k for k, v in thawed.items() if v.is_floating_point() and not torch.equal(v, source[k])]
    assert kept.states[3]["phase"] == "full" and len(changed) > len(thawed) // 2


def test_the_backbone_learns_at_its_share_of_the_learning_rate(weights):
    path, _ = weights
    model = recipe.make_model({"arch": ARCH, "pretrained": str(path)}, (3, 32, 32), 3)
    optimizer = recipe.make_optimizer(model, {"name": "sgd", "lr": 0.2, "momentum": 0.9, "weight_decay": 0.0,
                                              "schedule": "none", "warmup_epochs": 0.0, "backbone_lr_mult": 0.1})
    backbone, classifier = optimizer.param_groups
    assert backbone["lr"] == pytest.approx(0.02) and classifier["lr"] == 0.2
    assert {id(p) for p in classifier["params"]} == {id(model.fc.weight), id(model.fc.bias)}
    onecycle = make_schedule(optimizer, {"schedule": "onecycle", "lr": 0.2, "warmup_epochs": 0.0}, 10, 2)
    for _ in range(5):  # the peak of the cycle: each group at its own maximum
        optimizer.step()
        onecycle.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(optimizer.param_groups[1]["lr"] * 0.1)


def test_a_resume_in_the_frozen_phase_continues_exactly(weights, data, tmp_path):
    path, _ = weights
    whole = Checkpoints(tmp_path / "whole")
    recipe.train(config(path), whole, data=data)
    first = Checkpoints(tmp_path / "first", stop_after=1)
    with pytest.raises(KeyboardInterrupt):
        recipe.train(config(path), first, data=data)
    rest = Checkpoints(tmp_path / "rest")
    recipe.train(config(path), rest, data=data, checkpoint=str(tmp_path / "first" / "1"))
    assert sorted(rest.states) == [2, 3] and rest.states[2]["phase"] == "frozen"
    for name, tensor in whole.states[3]["model"].items():
        assert torch.equal(rest.states[3]["model"][name], tensor), name


def test_a_model_without_a_classifier_cannot_be_fine_tuned_apart(data):
    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 3, 3)

        def forward(self, x):
            return self.conv(x).mean(dim=(2, 3))

    from autotune.vision.finetune import head

    with pytest.raises(UserError, match="no classifier to fine-tune apart"):
        head(Pooled())


def test_a_pretrained_model_is_fed_the_normalisation_it_was_trained_with(weights, data, tmp_path):
    """timm's test network was trained with mean = std = 0.5 per channel; the fake images' own std is 0.29.
    Training, the checkpoint's card, evaluation and the export all use the network's."""
    path, _ = weights
    assert data.std[0] == pytest.approx(0.29, abs=0.02)
    kept = Checkpoints(tmp_path)
    recipe.train(config(path, epochs=1, freeze_epochs=0), kept, data=data)
    card = kept.states[1]["data"]
    assert card["mean"] == [0.5, 0.5, 0.5] and card["std"] == [0.5, 0.5, 0.5]
    exported = recipe.export(str(tmp_path / "1"), data, str(tmp_path / "model"))
    assert exported["std"] == [0.5, 0.5, 0.5]
    (tmp_path / "model" / "model.json").write_text(json.dumps(exported))  # the engine writes the card
    from autotune.vision.predictor import load_model

    model = load_model(tmp_path / "model")
    accuracy = float((model.predict(data.test.x.numpy()).indices == data.test.y.numpy()).mean())
    assert recipe.evaluate(str(tmp_path / "1"), data)["test_accuracy"] == pytest.approx(accuracy)
    scratch = Checkpoints(tmp_path / "scratch")
    recipe.train({**config(path, epochs=1, freeze_epochs=0), "model": {"arch": ARCH}}, scratch, data=data)
    assert scratch.states[1]["data"]["std"] == pytest.approx(list(data.std))  # from scratch: the data's own
