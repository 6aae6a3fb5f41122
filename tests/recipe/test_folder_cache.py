"""A large image folder is decoded once per node: two trials (two processes, each with its DataLoader workers)
reading it at the same time decode each image exactly once into the memory-mapped cache, and read the same pixels
a direct decode gives."""
from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from autotune.vision.data import FileSplit, decode_image
from autotune.vision.datasets import image_folder
from autotune.vision.folder_cache import FolderCache

SIZE = 16


@pytest.fixture
def folder(tmp_path, monkeypatch) -> Path:
    """60 JPEGs of two classes, of mixed sizes; autotune's cache folder in tmp_path (also for the processes the
    test starts)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (tmp_path / "photos" / label).mkdir(parents=True)
        for i in range(30):
            shape = (int(rng.integers(20, 60)), int(rng.integers(20, 60)), 3)
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(tmp_path / "photos" / label / f"{i}.jpg")
    return tmp_path / "photos"


def _streamed(folder: Path):
    images = image_folder(str(folder), image_size=SIZE, memory_limit_mb=0, workers=2)
    assert images.x.cache_key is not None
    return images


def _trial(folder: str, out: str) -> None:
    """One trial's reads: two epochs of batches through its own DataLoader workers."""
    images = _streamed(Path(folder))
    split = FileSplit(images.x, images.y)
    epochs = [torch.cat([x for x, _ in split.batches(8)]) for _ in range(2)]
    assert torch.equal(epochs[0], epochs[1])
    np.save(out, epochs[0].numpy())


def test_two_concurrent_trials_decode_each_image_once(folder, tmp_path):
    context = multiprocessing.get_context("spawn")
    trials = [context.Process(target=_trial, args=(str(folder), str(tmp_path / f"trial{i}.npy"))) for i in range(2)]
    for trial in trials:
        trial.start()
    try:
        for trial in trials:
            trial.join(timeout=300)
            assert trial.exitcode == 0
    finally:  # a child that hung is not left holding the cache's lock
        for trial in trials:
            if trial.is_alive():
                trial.kill()
                trial.join()
    images = _streamed(folder)
    cache = FolderCache.open(images.x.cache_key, len(images.x), (3, SIZE, SIZE))
    assert cache.decodes == 60  # 2 trials x 2 epochs x 60 reads, 60 decodes
    direct = np.stack([decode_image(f, 3, SIZE) for f in images.x.files])
    for i in range(2):
        assert np.array_equal(np.load(tmp_path / f"trial{i}.npy"), direct)
    assert cache.pixels_path.stat().st_size == 60 * 3 * SIZE * SIZE


def test_a_changed_file_or_size_is_a_new_cache(folder):
    files = [str(p) for p in sorted(folder.rglob("*.jpg"))]
    key = FolderCache.key_of(files, 3, SIZE)
    assert FolderCache.key_of(files, 3, SIZE * 2) != key and FolderCache.key_of(files, 1, SIZE) != key
    Image.new("RGB", (30, 30), "red").save(files[0])
    os.utime(files[0], ns=(1, 1))
    assert FolderCache.key_of(files, 3, SIZE) != key


def test_without_the_cache_nothing_is_written(folder, tmp_path):
    images = image_folder(str(folder), image_size=SIZE, memory_limit_mb=0, workers=0, cache=False)
    assert images.x.cache_key is None
    assert len(torch.cat([x for x, _ in FileSplit(images.x, images.y).batches(16)])) == 60
    assert not (tmp_path / "cache" / "autotune" / "images").exists()


def test_once_filled_the_cache_gives_the_batches_the_dataloader_gives(folder):
    """After the first pass, batches are sliced out of the cache in the main process: the same images and labels,
    in the same shuffled order, the same last batch dropped, as decoding through the DataLoader."""
    cached = _streamed(folder)
    plain = image_folder(str(folder), image_size=SIZE, memory_limit_mb=0, workers=0, cache=False)
    split, reference = FileSplit(cached.x, cached.y), FileSplit(plain.x, plain.y)
    for _ in split.batches(16):  # the first pass fills the cache
        pass
    assert cached.x.cache().complete(cached.x.slots)
    for drop_last in (False, True):
        got = list(split.batches(16, generator=torch.Generator().manual_seed(5), drop_last=drop_last))
        want = list(reference.batches(16, generator=torch.Generator().manual_seed(5), drop_last=drop_last))
        assert [len(x) for x, _ in got] == [len(x) for x, _ in want] == ([16] * 3 + ([] if drop_last else [12]))
        for (x, y), (x_ref, y_ref) in zip(got, want):
            assert torch.equal(x, x_ref) and torch.equal(y, y_ref)


def test_the_random_resized_crop_crops_and_resizes_each_image_of_the_batch():
    from autotune.vision.data import _random_resized_crop

    x = torch.arange(64, dtype=torch.float32).view(1, 1, 8, 8).repeat(6, 3, 1, 1)  # a ramp, row by row
    out = _random_resized_crop(x, torch.Generator().manual_seed(0))
    again = _random_resized_crop(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and torch.equal(out, again)  # seeded
    assert all(not torch.equal(out[i], x[i]) for i in range(6))  # each image is a crop, blown up
    assert len({round(float(out[i].std()), 3) for i in range(6)}) > 1  # of its own size
    assert out.min() >= 0 and out.max() <= 63  # inside the image: no zero padding
    whole = _random_resized_crop(x, None, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    torch.testing.assert_close(whole, x)  # the whole image, unchanged
