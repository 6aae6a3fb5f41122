"""Every built-in dataset, offline: splits, shapes, determinism, the test split held out, clear errors."""
from __future__ import annotations

import pickle

import pytest
import torch

from autotune.errors import UnknownNameError, UserError
from autotune.registry import get, names
from autotune.vision.data import Data, FileSplit, TensorSplit, load, prepare
from autotune.vision.datasets import _download, read_idx

CASES = {  # dataset -> (kwargs, input shape, number of classes, samples split, official test samples)
    "mnist": ({}, (1, 28, 28), 10, 60, 20),
    "fashion_mnist": ({}, (1, 28, 28), 10, 60, 20),
    "cifar10": ({}, (3, 32, 32), 10, 60, 20),
    "digits": ({}, (1, 8, 8), 10, 1797, 0),
    "fake": ({"samples": 50, "image_size": 16, "channels": 3, "classes": 4}, (3, 16, 16), 4, 50, 0),
}


def _load(name: str, root, **kwargs) -> Data:
    return load(name, str(root), val_fraction=0.1, test_fraction=0.1, split_seed=0, download=False, **kwargs)


def assert_split_sizes(data: Data, n: int, official_test: int = 0) -> None:
    """The n samples are all in train, val and test (or the official test set is), each of val and test about a
    tenth: a binomial draw, within 4 of its standard deviations."""
    sizes = len(data.train), len(data.val), len(data.test)
    if official_test:
        assert sizes[0] + sizes[1] == n and sizes[2] == official_test
    else:
        assert sum(sizes) == n
    for size in sizes[1:3 if not official_test else 2]:
        assert abs(size - 0.1 * n) <= 4 * (n * 0.1 * 0.9) ** 0.5 and size > 0


def test_every_registered_dataset_is_tested():
    shipped = {n for n in names("dataset") if get("dataset", n).__module__.startswith("autotune.")}  # not a test's
    assert shipped == {*CASES, "idx", "image_folder"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_dataset_loads_and_splits(name, data_root):
    kwargs, shape, classes, n, official_test = CASES[name]
    data = _load(name, data_root, **kwargs)
    assert_split_sizes(data, n, official_test)
    assert data.input_shape == shape and data.num_classes == classes
    assert isinstance(data.train, TensorSplit) and data.train.x.dtype == torch.uint8
    assert data.train.x.shape[1:] == shape and int(data.train.y.max()) < classes
    assert len(data.mean) == len(data.std) == shape[0] and all(s > 0 for s in data.std)
    assert len(data.fingerprint) == 64
    assert _load(name, data_root, **kwargs).fingerprint == data.fingerprint  # deterministic
    again = pickle.loads(pickle.dumps(data))
    assert again.fingerprint == data.fingerprint and torch.equal(again.train.x, data.train.x)


def test_official_test_set_is_the_test_split(data_root):
    data = _load("mnist", data_root)
    t10k = read_idx(data_root / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz")
    assert torch.equal(data.test.x[:, 0], torch.from_numpy(t10k.copy()))


def test_split_seed_changes_the_split_but_never_overlaps():
    a = load("digits", "unused", split_seed=0)
    b = load("digits", "unused", split_seed=1)
    assert a.fingerprint != b.fingerprint
    for data in (a, b):
        rows = [set(map(bytes, split.x.flatten(1).numpy())) for split in (data.train, data.val, data.test)]
        assert len(rows[0] & rows[2]) < 5  # digits holds a few identical images; splits do not share indices


def test_idx_on_the_shared_mnist(shared_mnist):
    data = _load("idx", shared_mnist)
    assert_split_sizes(data, 10000)
    assert data.input_shape == (1, 28, 28) and data.labels == [str(i) for i in range(10)]
    assert 0.12 < data.mean[0] < 0.14


def test_idx_uses_train_and_t10k_as_official_split(data_root):
    data = _load("idx", data_root / "FashionMNIST" / "raw")
    assert_split_sizes(data, 60, official_test=20)


def test_image_folder_in_memory_and_deterministic(image_root):
    data = _load("image_folder", image_root, image_size=12)
    assert data.labels == ["cat", "dog", "fox"] and data.input_shape == (3, 12, 12)
    assert_split_sizes(data, 36)
    assert isinstance(data.train, TensorSplit)
    assert _load("image_folder", image_root, image_size=12).fingerprint == data.fingerprint
    other = load("image_folder", str(image_root), split_seed=5, image_size=12)
    assert other.fingerprint != data.fingerprint
    grey = _load("image_folder", image_root, image_size=12, channels=1)
    assert grey.input_shape == (1, 12, 12)


def test_image_folder_streams_above_the_memory_limit(image_root):
    data = _load("image_folder", image_root, image_size=12, memory_limit_mb=0, workers=0)
    assert isinstance(data.train, FileSplit)
    assert_split_sizes(data, 36)
    x, y = next(data.train.batches(8, generator=torch.Generator().manual_seed(0)))
    assert x.shape == (8, 3, 12, 12) and x.dtype == torch.uint8 and y.shape == (8,)
    memory = _load("image_folder", image_root, image_size=12)
    assert data.labels == memory.labels and torch.equal(data.train.y, memory.train.y)  # same split


def test_a_class_missing_from_the_validation_or_test_split_is_a_warning(image_root, caplog):
    """Splits are drawn image by image: on a small folder a class can miss the validation or test split, whose
    accuracy then leaves it out without a word (it was silent)."""
    seen = set()
    for seed in range(6):
        caplog.clear()
        data = load("image_folder", str(image_root), val_fraction=0.1, test_fraction=0.1, split_seed=seed,
                    image_size=8)
        for what, split in (("validation", data.val), ("test", data.test)):
            absent = {0, 1, 2} - set(split.y.tolist())
            warned = f"the {what} split holds no sample of class" in caplog.text
            assert warned == bool(absent), (seed, what, caplog.text)
            seen.add(warned)
            for i in absent:
                assert repr(data.labels[i]) in caplog.text
    assert seen == {True, False}


def test_a_streamed_folder_s_fingerprint_follows_its_files_bytes_not_their_paths(image_root, tmp_path, monkeypatch):
    """It hashed the paths alone: images overwritten under the same names, or another image_size, were the same
    data to `--if-data-changed`; the root written another way was new data."""
    import shutil

    root = tmp_path / "photos"
    shutil.copytree(image_root, root)
    streamed = {"memory_limit_mb": 0, "workers": 0, "cache": False}
    first = _load("image_folder", root, image_size=12, **streamed).fingerprint
    monkeypatch.chdir(tmp_path)
    assert _load("image_folder", "photos", image_size=12, **streamed).fingerprint == first
    assert _load("image_folder", root, image_size=16, **streamed).fingerprint != first
    shutil.copy(root / "dog" / "03.png", root / "cat" / "05.png")  # same name, other pixels
    assert _load("image_folder", root, image_size=12, **streamed).fingerprint != first


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST/raw"), ("fashion_mnist", "FashionMNIST/raw"),
                                          ("cifar10", "cifar-10-batches-py")])
def test_missing_files_say_where_to_put_them(name, folder, tmp_path):
    with pytest.raises(UserError, match=folder.replace("/", ".")):
        _load(name, tmp_path)


def test_failed_download_is_one_line_saying_where(tmp_path):
    def offline():  # as torchvision's MNIST says it, a mirror a line
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://a.example/mnist/, got:\n"
                           "<urlopen error [Errno -2] Name or service not known>\nTried http://b.example/, got:\n"
                           "<urlopen error [Errno -2] Name or service not known>\n")

    with pytest.raises(UserError) as info:
        _download("MNIST", tmp_path, ("train-images-idx3-ubyte",), offline)
    text = str(info.value)
    assert "\n" not in text and str(tmp_path) in text and "train-images-idx3-ubyte" in text
    assert "(RuntimeError: Error downloading train-images-idx3-ubyte.gz: Tried https://a.example/mnist/, got: " in text


@pytest.mark.parametrize("name, kwargs, message", [
    ("fake", {"colour": True}, "takes no argument 'colour'"),
    ("nonexistent", {}, "unknown dataset"),
    ("image_folder", {}, "not a directory"),
    ("idx", {}, "no IDX image/label files"),
])
def test_bad_dataset_arguments(name, kwargs, message, tmp_path):
    root = tmp_path / "missing" if name == "image_folder" else tmp_path
    with pytest.raises((UserError, UnknownNameError), match=message):
        _load(name, root, **kwargs)


def test_prepare_normalises_and_augments_on_the_batch():
    data = load("fake", "unused", samples=64, image_size=16)
    x = data.train.x[:32]
    plain = prepare(x, data)
    assert plain.dtype == torch.float32 and abs(float(plain.mean())) < 0.2
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a = prepare(x, data, augment="light", generator=g1)
    b = prepare(x, data, augment="light", generator=g2)
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, plain)
