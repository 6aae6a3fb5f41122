"""`model.pretrained`: a weights file the test makes from a timm model, timm's own weights from its cache (a cache
folder the test fills, in the Hugging Face cache's real layout), and `true` offline with nothing cached: one line
before anything trains. Nothing is downloaded."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file

from autotune.errors import UserError
from autotune.recipes import image_classification as recipe

ARCH = "test_resnet"  # timm's own test network: 0.4 M parameters
TAGGED = "test_resnet.r160_in1k"  # its pretrained tag, on the hub as timm/test_resnet.r160_in1k
HEAD = ("fc.weight", "fc.bias")
CONV = "conv1.0.weight"  # the first convolution, adapted to the input's channels


@pytest.fixture(scope="module")
def source() -> dict[str, torch.Tensor]:
    """The weights of a 1000-class, 3-channel network, as a user's checkpoint of it holds them."""
    torch.manual_seed(1)
    return {k: v.clone() for k, v in timm.create_model(ARCH, num_classes=1000).state_dict().items()}


@pytest.fixture(params=[".safetensors", ".pth"])
def weights_file(request, source, tmp_path) -> Path:
    path = tmp_path / f"weights{request.param}"
    if request.param == ".safetensors":
        save_file(source, str(path))
    else:
        torch.save(source, path)
    return path


def test_a_weights_file_loads_all_but_the_new_head(weights_file, source):
    model = recipe.make_model({"arch": ARCH, "pretrained": str(weights_file)}, (3, 32, 32), 5)
    loaded = model.state_dict()
    assert loaded["fc.weight"].shape == (5, source["fc.weight"].shape[1])  # the dataset's 5 classes
    same = [k for k in source if k not in HEAD and torch.equal(loaded[k], source[k])]
    assert same == [k for k in source if k not in HEAD and k in loaded] and len(same) > 50
    scratch = recipe.make_model({"arch": ARCH}, (3, 32, 32), 5).state_dict()
    assert not torch.equal(scratch[CONV], source[CONV])  # without it, the weights are not the file's


def test_one_channel_input_adapts_the_first_convolution(weights_file, source):
    model = recipe.make_model({"arch": ARCH, "pretrained": str(weights_file)}, (1, 32, 32), 3)
    conv = model.state_dict()[CONV]
    assert conv.shape[1] == 1
    torch.testing.assert_close(conv, source[CONV].sum(dim=1, keepdim=True))  # timm's adapt_input_conv


def test_weights_of_another_network_are_one_line(tmp_path, source, caplog):
    """A file with tensors the network lacks (a deeper network's: timm loaded it with a 2,500-character warning, and
    the search went on), or missing some, or with other shapes (a 5-line PyTorch dump), or not weights at all."""
    def refused(tensors, message: str, name: str = "w.safetensors") -> str:
        path = tmp_path / name
        save_file(tensors, str(path)) if name.endswith(".safetensors") else torch.save(tensors, path)
        with pytest.raises(UserError, match=message) as info:
            recipe.make_model({"arch": ARCH, "pretrained": str(path)}, (3, 32, 32), 5)
        assert "\n" not in str(info.value)
        return str(info.value)

    deeper = {**source, "layer5.0.conv1.weight": torch.zeros(4, 4, 3, 3), "layer5.0.bn1.weight": torch.zeros(4)}
    text = refused(deeper, f"does not hold {ARCH}'s weights: 2 tensors that {ARCH} does not have "
                           r"\(layer5.0.bn1.weight, layer5.0.conv1.weight\)")
    assert text.endswith(f"give a weights file of '{ARCH}', or set model.arch to the network the file is of")
    assert "Unexpected keys" not in caplog.text
    shallower = {k: v for k, v in source.items() if not k.startswith("layer4.")}
    refused(shallower, rf"\d+ of {ARCH}'s tensors missing \(layer4\.")
    reshaped = {**source, "bn1.weight": torch.zeros(3)}
    refused(reshaped, rf"cannot be loaded into '{ARCH}' \(RuntimeError: Error\(s\) in loading state_dict for "
                      r"ResNet:; size mismatch for bn1.weight", "w.pth")
    refused({"epoch": torch.tensor(3)}, rf"does not hold {ARCH}'s weights: 1 tensors that", "junk.pth")


def test_a_missing_file_and_a_model_without_weights_say_so(tmp_path, weights_file):
    with pytest.raises(UserError, match="no such weights file"):
        recipe.make_model({"arch": ARCH, "pretrained": str(tmp_path / "nope.safetensors")}, (3, 32, 32), 5)
    with pytest.raises(UserError, match="model.pretrained applies to timm models"):
        recipe.make_model({"arch": "mlp", "pretrained": str(weights_file)}, (3, 32, 32), 5)


def test_the_model_s_own_errors_are_not_blamed_on_the_weights_file(weights_file):
    """`model.drop_rate` (the recipe passes model.dropout to timm as drop_rate) failed as `model.pretrained '...'
    cannot be loaded into ... (TypeError: ... got multiple values for keyword argument 'drop_rate')`."""
    with pytest.raises(UserError, match=r"^model.drop_rate is set by the recipe itself: use model.dropout \(passed "
                                        r"to timm as drop_rate\)$"):
        recipe.make_model({"arch": ARCH, "pretrained": str(weights_file), "drop_rate": 0.2}, (3, 32, 32), 5)
    with pytest.raises(UserError) as info:  # an argument the network's class refuses: the model's error
        recipe.make_model({"arch": ARCH, "pretrained": str(weights_file), "colour": 1}, (3, 32, 32), 5)
    assert str(info.value).startswith(f"model '{ARCH}' cannot be built with ['colour', 'pretrained']: ")
    assert "colour" in str(info.value) and "model.pretrained" not in str(info.value)


def _hub_cache(root: Path, weights: dict[str, torch.Tensor]) -> Path:
    """A Hugging Face hub cache holding timm/test_resnet.r160_in1k's model.safetensors, in the cache's layout."""
    repo = root / "models--timm--test_resnet.r160_in1k"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    save_file(weights, str(snapshot / "model.safetensors"))
    return snapshot / "model.safetensors"


def _offline(tmp_path: Path, hub: Path) -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(hub), "TORCH_HOME": str(tmp_path / "torch"),
            "XDG_CACHE_HOME": str(tmp_path / "cache")}


SPACE = """
name: finetune
data: {{dataset: fake, samples: 96, image_size: 32, channels: 3, classes: 3}}
model: {{arch: {arch}, pretrained: true}}
train: {{epochs: 1, batch_size: 32}}
search: {{trials: 1}}
export: {{dir: models/finetune}}
"""


def test_true_offline_with_nothing_cached_is_one_line_before_ray(tmp_path):
    (tmp_path / "space.yaml").write_text(SPACE.format(arch=TAGGED))
    hub = tmp_path / "hub"
    done = subprocess.run([sys.executable, "-m", "autotune", "run", "space.yaml", "--num-cpus", "1"], cwd=tmp_path,
                          env=_offline(tmp_path, hub), capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    (line,) = [x for x in done.stderr.splitlines() if "pretrained" in x]
    assert str(hub) in line and "timm/test_resnet.r160_in1k" in line and "model.safetensors" in line
    assert not (tmp_path / "runs").exists()  # nothing started


def test_true_where_the_hub_cannot_be_reached_is_one_line_at_once(tmp_path, monkeypatch):
    """Offline without HF_HUB_OFFLINE, the Hugging Face client retried for minutes (about 48 lines of its retries,
    3 minutes for the shipped finetune space's 4 networks) before timm's error."""
    from huggingface_hub import constants

    from autotune.vision.models import build

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "ENDPOINT", "https://127.0.0.1:9")  # nothing listens: refused at once
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    started = time.perf_counter()
    with pytest.raises(UserError) as info:
        build(TAGGED, (3, 32, 32), 3, pretrained=True)
    assert time.perf_counter() - started < 10
    text = str(info.value)
    assert "cannot be downloaded (127.0.0.1:9: Connection refused)" in text and str(tmp_path / "hub") in text


def test_true_loads_timms_cached_weights_and_the_card_records_them(tmp_path, source):
    hub = tmp_path / "hub"
    cached = _hub_cache(hub, source)
    (tmp_path / "space.yaml").write_text(SPACE.format(arch=TAGGED))
    out = tmp_path / "model"
    done = subprocess.run([sys.executable, "-m", "autotune", "train", "space.yaml", "--out", str(out)], cwd=tmp_path,
                          env=_offline(tmp_path, hub), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    card = json.loads((out / "model.json").read_text())
    assert card["pretrained"]["sha256"] == hashlib.sha256(cached.read_bytes()).hexdigest()
    assert "timm/test_resnet.r160_in1k" in card["pretrained"]["source"]


def test_a_weights_file_is_recorded_on_the_card(tmp_path, source):
    weights = tmp_path / "mine.safetensors"
    save_file(source, str(weights))
    (tmp_path / "space.yaml").write_text(SPACE.format(arch=ARCH).replace("pretrained: true",
                                                                          f"pretrained: {weights}"))
    out = tmp_path / "model"
    done = subprocess.run([sys.executable, "-m", "autotune", "train", "space.yaml", "--out", str(out)], cwd=tmp_path,
                          env=_offline(tmp_path, tmp_path / "hub"), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    card = json.loads((out / "model.json").read_text())
    assert card["pretrained"] == {"source": f"file:{weights}", "file": str(weights),
                                  "sha256": hashlib.sha256(weights.read_bytes()).hexdigest()}


def test_a_value_that_is_neither_a_flag_nor_a_weights_file_is_refused(tmp_path):
    (tmp_path / "space.yaml").write_text(SPACE.format(arch=ARCH).replace("pretrained: true", "pretrained: imagenet"))
    done = subprocess.run([sys.executable, "-m", "autotune", "check", "space.yaml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "model.pretrained" in done.stderr and "weights file" in done.stderr, done.stderr
