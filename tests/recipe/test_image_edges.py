"""Image data at the edges of what a classifier can learn from: one class, label names without samples, copies of
one file, images left right in data.root."""
from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from autotune import registry
from autotune.errors import UserError
from autotune.vision.data import Images, load

pytestmark = pytest.mark.usefixtures("registry_restored")  # the tests register datasets


@pytest.fixture
def warnings_seen(caplog, monkeypatch):
    """The autotune logger's warnings, as caplog sees them."""
    monkeypatch.setattr(logging.getLogger("autotune"), "propagate", True)
    with caplog.at_level(logging.WARNING, logger="autotune"):
        yield lambda: [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def _load(dataset: str, root: str = "unused", **kwargs) -> object:
    return load(dataset, root, val_fraction=0.2, test_fraction=0.2, split_seed=0, **kwargs)


def _dataset(y: torch.Tensor, labels: list[str]) -> str:
    """A dataset function returning len(y) grey 4x4 images of labels y, registered as `edge`."""
    def edge(root: str) -> Images:
        return Images(torch.zeros(len(y), 1, 4, 4, dtype=torch.uint8), y, labels)

    registry.register("dataset")(edge)
    return "edge"


@pytest.mark.parametrize(("dataset", "kwargs", "labels", "name"), [
    (None, {}, ["seven"], "seven"),
    ("fake", {"samples": 20, "image_size": 4, "classes": 1}, None, "class_0"),
    (None, {}, ["seven", "eight"], "seven"),  # named two classes, holds one
])
def test_one_class_is_refused_naming_the_dataset_and_the_class(dataset, kwargs, labels, name):
    """It trained, scored 1.0 and predicted that class for anything (image_folder alone refused it)."""
    dataset = dataset or _dataset(torch.zeros(20, dtype=torch.int64), labels)
    with pytest.raises(UserError, match=f"dataset {dataset!r} holds one class only \\('{name}'\\); a model needs at "
                                        "least two"):
        _load(dataset, **kwargs)


def test_a_label_name_without_samples_is_a_warning(warnings_seen):
    dataset = _dataset(torch.arange(30) % 2, ["zero", "one", "never_seen"])
    data = _load(dataset)
    assert data.num_classes == 3
    warned = [m for m in warnings_seen() if "no sample is of" in m]
    assert len(warned) == 1 and "class 'never_seen'" in warned[0] and "3 label names" in warned[0], warned


def test_every_label_with_samples_is_no_warning(warnings_seen):
    _load(_dataset(torch.arange(30) % 3, ["a", "b", "c"]))
    assert not [m for m in warnings_seen() if "no sample is of" in m]


def _folder(root, copies: int = 6, classes: tuple[str, ...] = ("cat", "dog")):
    """A class folder per class, each of `copies` byte-identical PNGs."""
    for value, name in enumerate(classes):
        (root / name).mkdir()
        Image.fromarray(np.full((4, 4), 60 * value, np.uint8)).save(root / name / "0.png")
        for i in range(1, copies):
            shutil.copyfile(root / name / "0.png", root / name / f"{i}.png")
    return root


@pytest.mark.parametrize("memory_limit_mb", [1024.0, 0.0])  # held in memory, streamed through the cache
def test_copies_of_one_file_are_counted_in_a_warning(tmp_path, warnings_seen, memory_limit_mb):
    root = _folder(tmp_path)
    data = _load("image_folder", str(root), image_size=4, channels=1, workers=0, memory_limit_mb=memory_limit_mb)
    warned = [m for m in warnings_seen() if "repeat the bytes of another" in m]
    assert len(warned) == 1 and "10 of 12 image files" in warned[0] and "(cat/1.png is cat/0.png)" in warned[0]
    assert len(data.fingerprint) == 64


def test_a_folder_without_copies_warns_of_none_and_keeps_its_fingerprint(image_root, warnings_seen):
    """The files are read once for their digests and pixels: the fingerprint is the one of their bytes."""
    first = _load("image_folder", str(image_root), image_size=4, memory_limit_mb=0.0, workers=0)
    assert not [m for m in warnings_seen() if "repeat the bytes" in m]
    from autotune.vision import data as module

    module._FILE_DIGESTS.clear()  # the fingerprint now reads every file again
    assert _load("image_folder", str(image_root), image_size=4, memory_limit_mb=0.0,
                 workers=0).fingerprint == first.fingerprint


def test_images_right_in_the_root_are_a_warning_naming_one(tmp_path, warnings_seen):
    root = _folder(tmp_path)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(root / "stray.png")
    shutil.copyfile(root / "stray.png", root / "other.jpg.png")
    (root / "notes.txt").write_text("not an image")
    data = _load("image_folder", str(root), image_size=4, channels=1)
    assert len(data.train) + len(data.val) + len(data.test) == 12
    warned = [m for m in warnings_seen() if "right in data.root" in m]
    assert len(warned) == 1 and "left out 2 image files" in warned[0] and "(e.g. other.jpg.png)" in warned[0]


def test_class_folders_alike_but_for_case_or_unicode_form_are_a_warning_naming_each(tmp_path, warnings_seen):
    """A 'café' folder made on macOS (decomposed, 'e' and an accent) beside one made elsewhere (one character) are
    two folders, and so two classes that look alike in every list; 'Cat' beside 'cat' too. Each group is named,
    the decomposed one marked, and the load goes on: each folder stays a class of its own."""
    root = _folder(tmp_path, copies=4, classes=("caf\u00e9", "cafe\u0301", "cat", "Cat", "猫"))
    data = _load("image_folder", str(root), image_size=4, channels=1)
    assert len(data.labels) == 5
    (line,) = [m for m in warnings_seen() if "differ only by" in m]
    assert "('Cat', 'cat'; 'cafe\u0301' (decomposed: NFD), 'caf\u00e9')" in line and "猫" not in line
