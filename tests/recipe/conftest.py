"""Fixtures for the recipe tests: tiny datasets written here in their real file formats (never downloaded)."""
from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

SHARED_MNIST = Path(__file__).parents[2] / ".." / "shared" / "data" / "mnist"


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file (gzipped when the name ends in .gz), as MNIST ships them."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)


def _digits_like(rng: np.random.Generator, n: int, size: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """n images whose label is readable from them (a bright band at a row given by the label)."""
    y = rng.integers(0, 10, n)
    x = rng.integers(0, 40, (n, size, size))
    for i, label in enumerate(y):
        x[i, 2 + 2 * label : 4 + 2 * label] = 255
    return x.astype(np.uint8), y.astype(np.uint8)


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    """A root holding MNIST/raw, FashionMNIST/raw (IDX, one gzipped set, one plain) and cifar-10-batches-py."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    for folder, suffix in (("MNIST", ".gz"), ("FashionMNIST", "")):
        raw = root / folder / "raw"
        raw.mkdir(parents=True)
        for prefix, n in (("train", 60), ("t10k", 20)):
            x, y = _digits_like(rng, n)
            write_idx(raw / f"{prefix}-images-idx3-ubyte{suffix}", x)
            write_idx(raw / f"{prefix}-labels-idx1-ubyte{suffix}", y)
    cifar = root / "cifar-10-batches-py"
    cifar.mkdir()
    for name, n, key in (("data_batch_1", 40, lambda k: k.encode()), ("data_batch_2", 20, str),
                         ("test_batch", 20, str)):
        entry = {key("data"): rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 key("labels"): rng.integers(0, 10, n).tolist(), key("batch_label"): name}
        (cifar / name).write_bytes(pickle.dumps(entry))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (cifar / "batches.meta").write_bytes(pickle.dumps({"label_names": names, "num_vis": 3072}))
    return root


@pytest.fixture(scope="session")
def image_root(tmp_path_factory) -> Path:
    """One sub-folder per class of small PNGs of different sizes and modes."""
    from PIL import Image

    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(1)
    for label, colour in (("cat", 0), ("dog", 1), ("fox", 2)):
        (root / label).mkdir()
        for i in range(12):
            pixels = rng.integers(0, 60, (20 + i, 24, 3)).astype(np.uint8)
            pixels[..., colour] = 220
            Image.fromarray(pixels).save(root / label / f"{i:02d}.png")
    (root / "cat" / "notes.txt").write_text("not an image")
    return root


@pytest.fixture(scope="session")
def shared_mnist() -> Path:
    if not (SHARED_MNIST / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"the shared MNIST 10k test set is not at {SHARED_MNIST.resolve()}")
    return SHARED_MNIST

