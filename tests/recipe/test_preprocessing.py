"""A pretrained model's preprocessing: timm's data config (input size, interpolation, centre crop) decides how an
image folder is resized for training, and the model card carries it to predict, serve and load_model. The resize
is checked pixel for pixel against timm's own evaluation transform."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from safetensors.torch import save_file

import autotune
from autotune.errors import UserError
from autotune.vision.inference import Resize, to_pixels
from autotune.recipes import image_classification as recipe
from autotune.vision import data as vision_data
from autotune.vision.datasets import image_folder

ARCH = "test_resnet"  # timm's own test network; its pretrained configuration: 160 px, bilinear, crop_pct 0.95


def _photo(width: int, height: int, seed: int) -> Image.Image:
    """A smooth random photo (noise blown up), so that every interpolation gives different pixels."""
    noise = np.random.default_rng(seed).integers(0, 256, (max(2, height // 8), max(2, width // 8), 3), dtype=np.uint8)
    return Image.fromarray(noise).resize((width, height), Image.Resampling.BICUBIC)


@pytest.mark.parametrize("interpolation,crop_pct", [("bicubic", 0.95), ("bilinear", 0.875), ("bicubic", 1.0)])
@pytest.mark.parametrize("size", [(500, 375), (375, 500), (64, 64), (20, 31)])
def test_the_resize_is_timms_evaluation_transform(interpolation, crop_pct, size):
    from timm.data import create_transform

    target = 48
    timm_transform = create_transform(input_size=(3, target, target), interpolation=interpolation,
                                      crop_pct=crop_pct, mean=(0, 0, 0), std=(1, 1, 1))
    image = _photo(*size, seed=sum(size))
    ours = to_pixels(image, (3, target, target), Resize(interpolation, crop_pct))
    assert ours.shape == (3, target, target)
    np.testing.assert_allclose(ours / 255.0, timm_transform(image).numpy(), atol=1e-6)


def test_without_a_crop_the_whole_image_is_resized():
    image = _photo(90, 30, seed=0)
    whole = to_pixels(image, (3, 16, 16))
    assert np.array_equal(whole, np.asarray(image.resize((16, 16), Image.Resampling.BILINEAR)).transpose(2, 0, 1))
    assert not np.array_equal(whole, to_pixels(image, (3, 16, 16), Resize("bilinear", 1.0)))  # 1.0 cuts the centre


def test_a_wrong_interpolation_or_crop_is_one_line(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        _photo(20, 20, seed=len(cls)).save(tmp_path / cls / "x.png")
    with pytest.raises(UserError, match="image_folder interpolation must be one of nearest, bilinear, bicubic"):
        image_folder(str(tmp_path), interpolation="cubic")
    with pytest.raises(UserError, match=r"image_folder crop_pct must be a share in \(0, 1\]"):
        image_folder(str(tmp_path), crop_pct=1.5)


def test_a_pretrained_model_fills_what_the_space_leaves_out():
    config = {"data": {"dataset": "image_folder", "root": "photos"}, "model": {"arch": ARCH, "pretrained": True}}
    assert recipe.data_for(config) == {**recipe.with_defaults(config)["data"], "image_size": 160,
                                        "interpolation": "bilinear", "crop_pct": 0.95}
    config["data"]["image_size"] = 64  # the space's own value wins
    assert recipe.data_for(config)["image_size"] == 64 and recipe.data_for(config)["crop_pct"] == 0.95
    scratch = {**config, "model": {"arch": ARCH, "pretrained": False}}
    assert "crop_pct" not in recipe.data_for(scratch)
    tensors = {"data": {"dataset": "fake", "image_size": 32}, "model": {"arch": ARCH, "pretrained": True}}
    assert "crop_pct" not in recipe.data_for(tensors)  # fixed-size tensors: nothing to resize


@pytest.fixture
def photos(tmp_path) -> Path:
    """Two classes of photos of several sizes and aspects."""
    root = tmp_path / "photos"
    for i in range(16):
        (root / "ab"[i % 2]).mkdir(parents=True, exist_ok=True)
        _photo(40 + 7 * i, 60 - 2 * i, seed=i).save(root / "ab"[i % 2] / f"{i}.jpg", quality=92)
    return root


def test_a_fine_tuned_model_predicts_files_as_it_was_trained_on_them(tmp_path, photos):
    torch.manual_seed(1)
    weights = tmp_path / "w.safetensors"
    save_file(timm.create_model(ARCH, num_classes=1000).state_dict(), str(weights))
    (tmp_path / "space.yaml").write_text(
        f"name: ft\ndata: {{dataset: image_folder, root: {photos}, image_size: 32, val_fraction: 0.25, "
        f"test_fraction: 0.25}}\nmodel: {{arch: {ARCH}, pretrained: {weights}}}\n"
        "train: {epochs: 1, batch_size: 4}\n")
    out = tmp_path / "model"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-m", "autotune", "train", "space.yaml", "--out", str(out)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    card = json.loads((out / "model.json").read_text())
    assert card["resize"] == {"interpolation": "bilinear", "crop_pct": 0.95}  # timm's, for test_resnet
    assert card["input_shape"] == [3, 32, 32]  # the space's image_size

    files = sorted(photos.rglob("*.jpg"))
    model = autotune.load_model(out)
    trained = image_folder(str(photos), image_size=32, interpolation="bilinear", crop_pct=0.95)
    by_name = dict(zip([p for label in ("a", "b") for p in sorted((photos / label).iterdir())], trained.x.numpy()))
    expected = model.predict(np.stack([by_name[f] for f in files])).probabilities
    np.testing.assert_allclose(model.predict(files).probabilities, expected, atol=1e-5)
    squashed = np.stack([to_pixels(Image.open(f), (3, 32, 32)) for f in files])  # without the card's resize
    assert not np.allclose(model.predict(squashed).probabilities, expected, atol=1e-5)


def test_lr_find_and_training_normalise_with_the_pretrained_mean_and_std(tmp_path, monkeypatch):
    torch.manual_seed(1)
    weights = tmp_path / "w.safetensors"
    save_file(timm.create_model(ARCH, num_classes=1000).state_dict(), str(weights))
    config = {"data": {"dataset": "fake", "samples": 48, "image_size": 32, "classes": 3},
              "model": {"arch": ARCH, "pretrained": str(weights)}, "train": {"epochs": 1, "batch_size": 16}}
    seen: list[tuple[float, ...]] = []
    prepare = vision_data.prepare  # the recipe imports it when each of its functions runs
    monkeypatch.setattr(vision_data, "prepare",
                        lambda x, data, **kw: seen.append((*data.mean, *data.std)) or prepare(x, data, **kw))
    pretrained = (*timm.get_pretrained_cfg(ARCH).mean, *timm.get_pretrained_cfg(ARCH).std)
    own = recipe.load_data(config["data"])
    assert max(abs(a - b) for a, b in zip(pretrained, (*own.mean, *own.std))) > 0.1  # the dataset's differ

    recipe.lr_find(config, steps=3)
    assert seen and set(seen) == {pretrained}
    seen.clear()
    recipe.train(config, lambda metrics, checkpoint: None)
    assert seen and set(seen) == {pretrained}
