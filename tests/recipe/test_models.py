"""Every built-in model and one timm model build for grey and colour inputs and give logits of the right shape."""
from __future__ import annotations

import pytest
import torch

from autotune.errors import UnknownNameError, UserError
from autotune.registry import check_name, exists, names
from autotune.vision.models import build

SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32)]


@pytest.mark.parametrize("arch", names("model"))
@pytest.mark.parametrize("shape", SHAPES)
def test_builtin_model_forward(arch, shape):
    model = build(arch, shape, 7, width=8, depth=2, dropout=0.1)
    assert model(torch.rand(3, *shape)).shape == (3, 7)


@pytest.mark.parametrize("arch", names("model"))
def test_builtin_model_defaults(arch):
    assert build(arch, (1, 8, 8), 10, width=None, depth=None)(torch.rand(2, 1, 8, 8)).shape == (2, 10)


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28)])
def test_timm_resnet18_with_one_channel(shape):
    assert exists("model", "resnet18")
    model = build("resnet18", shape, 10, dropout=0.2).eval()
    assert model.conv1.in_channels == 1
    assert model(torch.rand(2, *shape)).shape == (2, 10)


@pytest.mark.parametrize("arch, kwargs, error, message", [
    ("resnet18", {"width": 32}, UserError, "model.width applies to simple_cnn and mlp"),
    ("simple_cnn", {"kernel": 5}, UserError, "cannot be built"),
    ("resnet_18", {}, UnknownNameError, "did you mean 'resnet18'"),
])
def test_bad_models(arch, kwargs, error, message):
    with pytest.raises(error, match=message):
        build(arch, (1, 28, 28), 10, **kwargs)


def test_unknown_model_lists_close_names():
    assert "simple_cnn" in check_name("model", "simple_cn")
