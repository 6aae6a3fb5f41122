"""Bad data at the level of `autotune.vision.data.load`: what the CLI table cannot see (warnings and counts,
streamed folders, the contract of a dataset function, damaged files of every format)."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from autotune import registry
from autotune.errors import UserError
from autotune.vision.data import FileSplit, Images, TensorSplit, load
from autotune.vision.datasets import read_idx
from autotune.vision.models import build
from reliability_helpers import write_idx


@pytest.fixture
def folder(tmp_path):
    """cat/ and dog/ of 6 PNGs each, plus a damaged PNG, an empty .jpg, a text file, and hidden folders."""
    from PIL import Image

    for label, value in (("cat", 10), ("dog", 240)):
        (tmp_path / label).mkdir()
        for i in range(6):
            Image.fromarray(np.full((5, 7, 3), value, dtype=np.uint8)).save(tmp_path / label / f"{i}.png")
    noise = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "dog" / "broken.png")
    whole = (tmp_path / "dog" / "broken.png").read_bytes()
    (tmp_path / "dog" / "broken.png").write_bytes(whole[: len(whole) // 2])  # its header is whole, its data not
    (tmp_path / "cat" / "empty.jpg").write_bytes(b"")
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / "cat" / ".thumbs").mkdir()
    Image.fromarray(np.zeros((5, 5, 3), dtype=np.uint8)).save(tmp_path / "cat" / ".thumbs" / "0.png")
    return tmp_path


def test_unreadable_images_are_skipped_counted_and_reported(folder, log_records):
    data = load("image_folder", str(folder), val_fraction=0.2, test_fraction=0.2, image_size=4)
    assert data.labels == ["cat", "dog"] and isinstance(data.train, TensorSplit)
    assert len(data.train) + len(data.val) + len(data.test) == 12 and data.skipped == 2
    [record] = [r for r in log_records.records if "skipped" in r.getMessage()]  # not a class missing from a split
    assert record.name == "autotune" and record.levelname == "WARNING"
    assert record.getMessage() == (
        f"image_folder: skipped 2 of 14 image files in {folder} that cannot be read: cat/empty.jpg "
        "(empty file), dog/broken.png (OSError); remove or repair them to silence this warning")


def test_a_streamed_folder_skips_a_file_damaged_past_its_header_at_load(folder, log_records):
    """A file whose header is whole (dog/broken.png) failed every trial that read it when the folder was streamed:
    every file is decoded once at load, so it is skipped as in memory, and no batch fails."""
    data = load("image_folder", str(folder), val_fraction=0.2, test_fraction=0.2, image_size=4, memory_limit_mb=0,
                workers=0)
    assert isinstance(data.train, FileSplit) and data.skipped == 2
    assert "skipped 2 of 14 image files" in log_records.records[0].getMessage()
    assert not any(f.endswith("broken.png") for s in (data.train, data.val, data.test) for f in s.images.files)
    assert all(len(x) for s in (data.train, data.val, data.test) for x, _ in s.batches(4))


def test_the_skipped_files_do_not_change_the_fingerprint_of_the_readable_ones(folder):
    before = load("image_folder", str(folder), image_size=4, val_fraction=0.2, test_fraction=0.2)
    (folder / "dog" / "broken.png").unlink()
    after = load("image_folder", str(folder), image_size=4, val_fraction=0.2, test_fraction=0.2)
    assert (before.skipped, after.skipped) == (2, 1) and before.fingerprint == after.fingerprint
    assert before.train.head(3).shape == (3, 3, 4, 4)


pytestmark = pytest.mark.usefixtures("registry_restored")  # the tests register datasets and models


def _register(fn):
    """Register `fn` as a dataset for one test."""
    registry.register("dataset")(fn)
    return fn.__name__


def _images(**change):
    fields = {"x": torch.zeros(20, 1, 4, 4, dtype=torch.uint8), "y": torch.arange(20) % 2, "labels": ["a", "b"]}
    return Images(**{**fields, **change})


@pytest.mark.parametrize("returned, message", [
    ({"x": 1}, "returned a dict"),
    (_images(x=torch.zeros(20, 1, 4, 4)), "returned x of dtype torch.float32 and shape (20, 1, 4, 4)"),
    (_images(x=torch.zeros(20, 4, 4, dtype=torch.uint8)), "shape (20, 4, 4)"),
    (_images(x=np.zeros((20, 1, 4, 4), dtype=np.uint8)), "returned x as a ndarray"),
    (_images(y=torch.arange(19) % 2), "returned 20 images with labels y of shape (19,)"),
    (_images(y=(torch.arange(20) % 2).float()), "labels y of dtype torch.float32: class indices are integers"),
    (_images(x=torch.zeros(20, 16, 16, 1, dtype=torch.uint8)),
     "x of shape (20, 16, 16, 1), channels last (N, H, W, C): give x.permute(0, 3, 1, 2)"),
    (_images(y=[0, 1] * 10), "labels y of shape list"),
    (_images(labels=["a"]), "returned label indices from 0 to 1 for 1 label names"),
    (_images(y=torch.arange(20) % 2 - 1), "label indices from -1 to 0"),
    (_images(x=torch.zeros(0, 1, 4, 4, dtype=torch.uint8), y=torch.zeros(0, dtype=torch.int64)), "holds no samples"),
    (_images(test=(torch.zeros(3, 1, 4, 4, dtype=torch.uint8), torch.zeros(2, dtype=torch.int64))),
     "returned 3 images with labels y of shape (2,)"),
    (_images(keys=tuple("abc")), "returned keys that are not 20 strings, one per sample"),
    (_images(keys=tuple(range(20))), "returned keys that are not 20 strings"),
])
def test_what_a_dataset_function_returns_is_checked(returned, message):
    def my_images(root: str):
        return returned

    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        load(_register(my_images), "unused", val_fraction=0.2, test_fraction=0.2)
    assert "\n" not in str(info.value)


def test_a_failing_dataset_function_names_itself_its_line_and_its_error():
    def my_images(root: str, size: int = 8):
        table = {"train": root}
        return table["val"]

    with pytest.raises(UserError) as info:
        load(_register(my_images), "/data/x")
    line = my_images.__code__.co_firstlineno + 2
    assert str(info.value) == f"dataset 'my_images' (test_data_errors.py, line {line}) failed: KeyError: 'val'"


@pytest.mark.parametrize("content, message", [
    (b"", "is not an IDX file (bad magic number none: empty file)"),
    (b"\x00\x00\x08", "is not an IDX file"),
    (b"\x00\x00\x08\x03\x00\x00", "is not an IDX file"),  # the header is cut inside its dimensions
    (b"\x00\x00\x07\x01\x00\x00\x00\x01\x00", "is not an IDX file (bad magic number 00000701)"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x05\x01\x02", "is damaged: its header declares (5,) (5 bytes of data), the file "
     "holds 2"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x01\x01\x02", "the file holds 2"),
])
def test_damaged_idx_files(tmp_path, content, message):
    (tmp_path / "x-images-idx3-ubyte").write_bytes(content)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_idx(tmp_path / "x-images-idx3-ubyte")


def test_damaged_gzip_idx_file(tmp_path):
    write_idx(tmp_path / "x-images-idx3-ubyte.gz", np.zeros((4, 2, 2), dtype=np.uint8))
    raw = (tmp_path / "x-images-idx3-ubyte.gz").read_bytes()
    (tmp_path / "x-images-idx3-ubyte.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(UserError, match=r"cannot read .*x-images-idx3-ubyte.gz: Compressed file ended"):
        read_idx(tmp_path / "x-images-idx3-ubyte.gz")
    (tmp_path / "y-images-idx3-ubyte.gz").write_bytes(b"plain, not gzip")
    with pytest.raises(UserError, match="Not a gzipped file"):
        read_idx(tmp_path / "y-images-idx3-ubyte.gz")


@pytest.mark.parametrize("batch, message", [
    (b"not a pickle", "cannot read .*data_batch_1 as a CIFAR python batch \\(UnpicklingError"),
    (pickle.dumps({"labels": [1]}), "data_batch_1 is not a CIFAR python batch: it lacks data"),
    (pickle.dumps([1, 2]), "AttributeError"),
])
def test_damaged_cifar_files(tmp_path, batch, message):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "data_batch_1").write_bytes(batch)
    (folder / "test_batch").write_bytes(batch)
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": ["a", "b"]}))
    with pytest.raises(UserError, match=message):
        load("cifar10", str(tmp_path), download=False)


def test_a_model_factory_that_raises_names_itself():
    def my_net(in_chans: int, num_classes: int, input_size: int, dropout: float = 0.0):
        return torch.nn.Linear(in_chans * input_size**2, num_classes * [1][dropout > 1])

    registry.register("model")(my_net)
    with pytest.raises(UserError, match=r"^model 'my_net' \(test_data_errors.py, line \d+\) failed: IndexError"):
        build("my_net", (1, 4, 4), 2, dropout=2.0)
    assert build("my_net", (1, 4, 4), 2).out_features == 2
    with pytest.raises(UserError, match="model 'my_net' cannot be built: it takes no argument 'width'; its "
                       "arguments: dropout"):
        build("my_net", (1, 4, 4), 2, width=3)


@pytest.mark.parametrize("dataset", ["idx", "image_folder"])
def test_a_data_root_this_user_cannot_list_is_one_line(tmp_path, monkeypatch, dataset):
    """Root lists any folder whatever its mode, so (the tests run as root) the permission check asks through a
    stand-in for os.access that refuses this one folder, as the OS does for another user and mode 000."""
    import os

    import autotune.vision.datasets as datasets

    root = tmp_path / "locked"
    root.mkdir()
    real = os.access
    monkeypatch.setattr(datasets.os, "access", lambda path, mode: real(path, mode) and path != root)
    with pytest.raises(UserError, match=f"{dataset} data.root '{root}' is not readable by this user: fix its perm"):
        load(dataset, root=str(root))
