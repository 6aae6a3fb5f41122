"""Image data held as uint8 tensors and batched by slicing, with normalisation and augmentation on the device.

A dataset function (registered with `autotune.register("dataset")`) returns `Images`: all samples as a uint8
NCHW tensor (or, for large image folders, a `FileImages` list decoded once per node into a memory-mapped cache),
int64 labels, the label names, optionally an official test set, and optionally each sample's key. `load()` splits
them by key and seed (`autotune.splits`: an image file's path under the root, else the sample's position) into a
picklable `Data`.

    data = load("digits", root="~/.cache/autotune/data", val_fraction=0.1, test_fraction=0.1, split_seed=0)
    for x, y in data.train.batches(128, generator=g):          # uint8 batches, on data.train's device
        x = prepare(x, data, augment="light", generator=g)     # float, normalised, augmented, in batch
"""
from __future__ import annotations

import hashlib
import inspect
import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np
import torch

from autotune.errors import AutotuneError, UserError
from autotune.paths import expanded
from autotune.vision.inference import Resize
from autotune.registry import get
from autotune.training import batch_indices
from autotune.calls import failure, unknown_arguments
from autotune.splits import (
    absent_classes, dominant_class, empty_split_hint, few_to_rank, position_keys, positions, text_keys,
)

log = logging.getLogger("autotune")

if TYPE_CHECKING:
    from autotune.vision.folder_cache import FolderCache

__all__ = ["Images", "FileImages", "TensorSplit", "FileSplit", "Data", "load", "prepare", "decode_image"]


def decode_image(source: str | Path | bytes, channels: int, size: int, resize: Resize = Resize()) -> np.ndarray:
    """One image file (its path, or its bytes read already) as a uint8 (C, size, size) array, converted as every
    exported model's input is (`autotune.vision.inference.image_pixels`: upright by its EXIF orientation, L or RGB,
    resized as `resize` says)."""
    from autotune.vision.inference import image_pixels

    return image_pixels(source, (channels, size, size), resize, max_pixels=None)


@dataclass(frozen=True)
class FileImages:
    """Image files too many to hold in memory, read batch by batch by DataLoader workers: decoded (and resized)
    once per node into a memory-mapped cache when `cache_key` is set (`autotune.vision.folder_cache`), where
    image i is slot `slots[i]` of the `total` the cache holds; else decoded at each read."""

    files: tuple[str, ...]
    channels: int
    size: int
    resize: Resize = Resize()
    workers: int = 2
    cache_key: str | None = None
    slots: tuple[int, ...] = ()
    total: int = 0

    def __len__(self) -> int:
        return len(self.files)

    def take(self, index: np.ndarray) -> FileImages:
        slots = tuple(self.slots[i] for i in index) if self.cache_key else ()
        return replace(self, files=tuple(self.files[i] for i in index), slots=slots)

    def cache(self) -> FolderCache | None:
        """This process's handle on the node's cache of these images; None without one."""
        if self.cache_key is None:
            return None
        from autotune.vision.folder_cache import FolderCache

        return FolderCache.open(self.cache_key, self.total, (self.channels, self.size, self.size))


Pixels = Union[torch.Tensor, FileImages]


@dataclass
class Images:
    """What a dataset function returns. `test` is an official test set (x, y), else the test split is drawn
    from the samples with `test_fraction`. `flip`: whether a horizontal flip keeps the label (not for digits).
    `keys`: what identifies each sample for the split (image_folder: the file's path under the root), so that a
    sample keeps its split when others are added; without them, its position does."""

    x: Pixels
    y: torch.Tensor
    labels: list[str]
    flip: bool = False
    test: tuple[Pixels, torch.Tensor] | None = None
    skipped: int = 0  # files that could not be read and were left out (with a warning)
    resize: Resize = Resize()  # how image files were brought to the input size (the card records it)
    keys: tuple[str, ...] | None = None


@dataclass
class TensorSplit:
    """Samples held as one uint8 (N, C, H, W) tensor; batches are slices of a (seeded) permutation."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device: torch.device) -> TensorSplit:
        return TensorSplit(self.x.to(device), self.y.to(device))

    def batches(
        self, batch_size: int, *, generator: torch.Generator | None = None, drop_last: bool = False
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches in a random order drawn from `generator` (in order without one). `drop_last` drops a
        last partial batch when there is at least one full batch."""
        for index in batch_indices(len(self), batch_size, generator=generator, drop_last=drop_last,
                                   device=self.x.device):
            yield self.x[index], self.y[index]

    def head(self, n: int) -> torch.Tensor:
        """The first `n` images, uint8 on the CPU (a dry run of a model)."""
        return self.x[:n].cpu()

    def digest(self, sha: hashlib._Hash) -> None:
        sha.update(self.x.cpu().contiguous().numpy().tobytes())
        sha.update(self.y.cpu().numpy().astype(np.int64).tobytes())


def _decode_file(images: FileImages, i: int) -> np.ndarray:
    """Image `i` of a streamed folder; a file that cannot be decoded now (every file was decoded once when the
    folder was loaded: changed since?) fails naming itself."""
    path = images.files[i]
    try:
        cache = images.cache()
        if cache is None:
            return decode_image(path, images.channels, images.size, images.resize)
        return cache.pixels(images.slots[i], lambda: decode_image(path, images.channels, images.size, images.resize))
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError... on a damaged file
        cause = err.__cause__ or err  # Pillow's own error, under the conversion's BadInput
        raise UserError(f"cannot decode image {path} ({type(cause).__name__}: {cause}); remove or repair it") from None


class _Decoded(torch.utils.data.Dataset):
    def __init__(self, images: FileImages, y: torch.Tensor) -> None:
        self.images, self.y = images, y

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(_decode_file(self.images, i)), self.y[i]


@dataclass
class FileSplit:
    """Samples as image files, streamed through a DataLoader with workers (uint8 batches on the CPU)."""

    images: FileImages
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device: torch.device) -> FileSplit:
        return self  # batches are moved to the device by the training loop

    def batches(
        self, batch_size: int, *, generator: torch.Generator | None = None, drop_last: bool = False
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(self), generator=generator).tolist() if generator is not None else None
        cache = self.images.cache()
        if cache is not None and cache.complete(self.images.slots):  # every image decoded: read the file directly
            yield from self._cached_batches(cache, order, batch_size, drop_last)
            return
        loader = torch.utils.data.DataLoader(
            _Decoded(self.images, self.y),
            batch_size=batch_size,
            sampler=order,
            drop_last=drop_last and len(self) >= batch_size,
            num_workers=self.images.workers,
            persistent_workers=False,
        )
        yield from loader

    def _cached_batches(self, cache: FolderCache, order: list[int] | None, batch_size: int,
                        drop_last: bool) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches the DataLoader would give (same order, same last batch), sliced out of the cache."""
        index = np.asarray(order if order is not None else range(len(self)), dtype=np.int64)
        slots = np.asarray(self.images.slots, dtype=np.int64)
        end = len(index) - len(index) % batch_size if drop_last and len(self) >= batch_size else len(index)
        for start in range(0, end, batch_size):
            chosen = index[start:start + batch_size]
            yield torch.from_numpy(cache.read(slots[chosen])), self.y[torch.from_numpy(chosen)]

    def head(self, n: int) -> torch.Tensor:
        """The first `n` images, decoded in this process (a dry run of a model)."""
        count = min(n, len(self.images))
        return torch.from_numpy(np.stack([_decode_file(self.images, i) for i in range(count)]))

    def digest(self, sha: hashlib._Hash) -> None:
        """The files' bytes (not their paths: the same folder named another way is the same data), the size they
        are brought to, and the labels."""
        images = self.images
        sha.update(f"{images.channels}x{images.size}\n{images.resize!r}\n".encode())
        for path in images.files:
            sha.update(_file_digest(path))
        sha.update(self.y.cpu().numpy().astype(np.int64).tobytes())


_FILE_DIGESTS: dict[tuple[str, int, int], bytes] = {}


def _file_digest(path: str) -> bytes:
    """The SHA-256 of a file's bytes, remembered in this process while its size and modification time stay."""
    stat = os.stat(path)
    key = (path, stat.st_size, stat.st_mtime_ns)
    digest = _FILE_DIGESTS.get(key)
    if digest is None:
        with open(path, "rb") as f:
            digest = _FILE_DIGESTS[key] = hashlib.file_digest(f, "sha256").digest()
    return digest


Digest = tuple[tuple[str, int, int], bytes]  # a file's (path, size, modification time) and the SHA-256 of its bytes


def read_hashed(path: str) -> tuple[bytes, Digest]:
    """A file's bytes and its digest, read once: a folder decoded in DataLoader workers hands the digests back
    (`remember_digests`) so that its fingerprint reads no file again, and its copies can be counted."""
    from autotune.vision.inference import read_file

    stat = os.stat(path)
    data = read_file(path)
    return data, ((path, stat.st_size, stat.st_mtime_ns), hashlib.sha256(data).digest())


def remember_digests(digests: list[Digest]) -> None:
    """Digests of files read elsewhere (`read_hashed`, in a worker), for this process's `_file_digest`."""
    _FILE_DIGESTS.update(digests)


Split = Union[TensorSplit, FileSplit]


@dataclass
class Data:
    """A dataset split into train/val/test, with what a model and an exported model need to know about it."""

    name: str
    train: Split
    val: Split
    test: Split
    labels: list[str]
    input_shape: tuple[int, int, int]  # (C, H, W)
    mean: tuple[float, ...]  # per channel, of the train split, pixels in [0, 1]
    std: tuple[float, ...]
    flip: bool = False
    fingerprint: str = field(default="")
    skipped: int = 0  # unreadable files left out of the dataset
    resize: Resize = Resize()  # how image files were brought to input_shape: predict and serve do the same
    settings: dict[str, Any] = field(default_factory=dict)  # the data section it was loaded with (its recipe's)

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def describe(self) -> str:
        """One line: its name, split sizes, input shape and classes (`autotune train` prints it)."""
        return (f"{self.name}, {len(self.train)} train / {len(self.val)} val / {len(self.test)} test, "
                f"input {tuple(self.input_shape)}, {self.num_classes} classes")

    def to(self, device: torch.device) -> Data:
        """The same data with its in-memory splits on `device` (done once per trial, not per batch)."""
        moved = {name: getattr(self, name).to(device) for name in ("train", "val", "test")}
        return Data(**{**self.__dict__, **moved})


def prepare(
    x: torch.Tensor, data: Data, *, augment: str = "none", generator: torch.Generator | None = None
) -> torch.Tensor:
    """uint8 images -> normalised float images, augmented in batch on x's device, drawn from `generator`: `light`,
    a random crop with padding; `resized_crop`, a random-resized crop (the usual fine-tuning augmentation); each
    with a horizontal flip where the dataset allows it."""
    x = x.float().div_(255)
    if augment == "resized_crop":
        x = _random_resized_crop(x, generator)
    elif augment == "light":
        x = _random_crop(x, max(1, x.shape[-1] // 8), generator)
    if augment in ("light", "resized_crop"):
        if data.flip:
            flip = torch.rand(len(x), generator=generator).to(x.device) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
    mean = torch.tensor(data.mean, device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(data.std, device=x.device).view(1, -1, 1, 1)
    return (x - mean) / std


def _random_crop(x: torch.Tensor, pad: int, generator: torch.Generator | None) -> torch.Tensor:
    """Each image shifted by up to `pad` pixels (zero padding), in one gather for the whole batch."""
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy, dx = (torch.randint(0, 2 * pad + 1, (2, n), generator=generator)).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None]  # (n, h, 1)
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, :]  # (n, 1, w)
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded[batch, :, rows, cols].permute(0, 3, 1, 2)  # (n, h, w, c) -> (n, c, h, w)


def _random_resized_crop(x: torch.Tensor, generator: torch.Generator | None, scale: tuple[float, float] = (0.25, 1.0),
                         ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> torch.Tensor:
    """Each image cropped to a random area share in `scale` and aspect ratio in `ratio` (log-uniform), at a random
    place, and resized back to its size (bilinear): torchvision's RandomResizedCrop, for the whole batch in one
    `grid_sample`."""
    n = len(x)
    area = torch.empty(n).uniform_(*scale, generator=generator)
    aspect = torch.exp(torch.empty(n).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=generator))
    width, height = (area * aspect).sqrt().clamp(max=1.0), (area / aspect).sqrt().clamp(max=1.0)
    left = (1 - width) * torch.rand(n, generator=generator)  # the crop's corner, as a share of the image
    top = (1 - height) * torch.rand(n, generator=generator)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = width, height
    theta[:, 0, 2], theta[:, 1, 2] = 2 * left + width - 1, 2 * top + height - 1  # the crop's centre in [-1, 1]
    grid = torch.nn.functional.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
    return torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _make_split(x: Pixels, y: torch.Tensor, index: np.ndarray | None = None) -> Split:
    if index is not None:
        x = x.take(index) if isinstance(x, FileImages) else x[torch.from_numpy(index)]
        y = y[torch.from_numpy(index)]
    return FileSplit(x, y) if isinstance(x, FileImages) else TensorSplit(x.contiguous(), y)


def _mean_std(split: Split, sample: int = 2048) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of the train split (of at most `sample` images of a FileSplit)."""
    if isinstance(split, TensorSplit):
        x = split.x
    else:
        x = next(iter(split.batches(min(sample, len(split)), generator=torch.Generator().manual_seed(0))))[0]
    pixels = x.transpose(0, 1).reshape(x.shape[1], -1).double() / 255
    std = pixels.std(dim=1).clamp_min(1e-3)
    return tuple(pixels.mean(dim=1).tolist()), tuple(std.tolist())


def _shape(x: Pixels) -> tuple[int, int, int]:
    if isinstance(x, FileImages):
        return (x.channels, x.size, x.size)
    return tuple(x.shape[1:])  # type: ignore[return-value]


def load(
    dataset: str,
    root: str,
    *,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    split_seed: int = 0,
    download: bool = True,
    **kwargs: object,
) -> Data:
    """Load the registered `dataset` and split it, deterministically for a given `split_seed`.

    The test split is the dataset's official one when it has one, else `test_fraction` of the samples; the
    validation split is `val_fraction` of the samples (of the train set when there is an official test set).
    Extra `kwargs` go to the dataset function. A UserError says in one line what is wrong: an argument the
    dataset does not take, the dataset function's own error (with its file and line), what it returned, or a
    split left without samples (or the train split without a class).
    """
    fn = get("dataset", dataset)
    accepted = inspect.signature(fn).parameters
    if "download" in accepted:
        kwargs["download"] = download
    unknown = unknown_arguments(fn, kwargs, hidden=("root", "download"))
    if unknown:
        raise UserError(f"dataset {dataset!r} takes {unknown}")
    try:
        images = fn(root=str(expanded(root)), **kwargs)
    except AutotuneError:
        raise
    except Exception as err:  # a user's dataset function, or a file that cannot be read: one line, its own error
        raise failure("dataset", dataset, fn, err) from None
    _check_images(dataset, images)
    _check_classes(dataset, images)

    keys = text_keys(images.keys) if images.keys is not None else position_keys(len(images.y))
    official = images.test is not None
    split = positions(keys, val_fraction, 0.0 if official else test_fraction, split_seed)
    train, val = (_make_split(images.x, images.y, p) for p in split[:2])
    test = _make_split(*images.test) if official else _make_split(images.x, images.y, split[2])
    _check_split(dataset, images, train, val, test, val_fraction, test_fraction)

    sha = hashlib.sha256()
    for split in (train, val, test):
        split.digest(sha)
    sha.update("\n".join(images.labels).encode("utf-8", "surrogateescape"))  # a class folder named in another encoding
    if images.resize != Resize():
        sha.update(repr(images.resize).encode())
    mean, std = _mean_std(train)
    return Data(
        name=dataset,
        train=train,
        val=val,
        test=test,
        labels=list(images.labels),
        input_shape=_shape(images.x),
        mean=mean,
        std=std,
        flip=images.flip,
        fingerprint=sha.hexdigest(),
        skipped=images.skipped,
        resize=images.resize,
    )


def _check_images(dataset: str, images: Any) -> None:
    """What a dataset function returned holds N uint8 images (or files), N labels in range, and the label names."""
    def wrong(what: str) -> UserError:
        return UserError(f"dataset {dataset!r} returned {what}; a dataset function returns "
                         "autotune.vision.data.Images(x=uint8 (N, C, H, W), y=int64 (N,), labels=[names])")

    if not isinstance(images, Images):
        raise wrong(f"a {type(images).__name__}")
    pairs = [(images.x, images.y)] + ([tuple(images.test)] if images.test is not None else [])
    for x, y in pairs:
        if isinstance(x, torch.Tensor) and (x.dtype != torch.uint8 or x.ndim != 4):
            raise wrong(f"x of dtype {x.dtype} and shape {tuple(x.shape)}")
        if isinstance(x, torch.Tensor) and x.shape[1] > 4 and x.shape[3] in (1, 3, 4):  # (N, H, W, C) read as NCHW
            raise wrong(f"x of shape {tuple(x.shape)}, channels last (N, H, W, C): give x.permute(0, 3, 1, 2)")
        if isinstance(y, torch.Tensor) and y.ndim == 1 and len(y) == len(x) and y.dtype.is_floating_point:
            raise wrong(f"labels y of dtype {y.dtype}: class indices are integers (y.long())")
        if not isinstance(x, (torch.Tensor, FileImages)):
            raise wrong(f"x as a {type(x).__name__}")
        if not isinstance(y, torch.Tensor) or y.ndim != 1 or y.dtype.is_floating_point or len(y) != len(x):
            shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise wrong(f"{len(x)} images with labels y of shape {shape}")
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= len(images.labels)):
            raise wrong(f"label indices from {int(y.min())} to {int(y.max())} for {len(images.labels)} label names")
    keys = images.keys
    if keys is not None and (len(keys) != len(images.y) or not all(isinstance(k, str) for k in keys)):
        raise wrong(f"keys that are not {len(images.y)} strings, one per sample")
    if len(images.y) == 0:
        raise UserError(f"dataset {dataset!r} holds no samples")


def _check_classes(dataset: str, images: Images) -> None:
    """The samples hold at least two classes (a UserError); a label name that no sample has is a warning."""
    held = set(torch.unique(images.y).tolist())
    if len(held) < 2:
        raise UserError(f"dataset {dataset!r} holds one class only ({images.labels[held.pop()]!r}); a model needs at "
                        "least two: add samples of another class")
    if images.test is not None:
        held |= set(torch.unique(images.test[1]).tolist())
    unseen = absent_classes(images.labels, (images.labels[i] for i in held))
    if unseen:
        log.warning("dataset %r: no sample is of %s, among its %d label names: the model still gets an output for "
                    "each, which it learns never to predict; add samples of them, or leave them out of the labels "
                    "(numbering y anew) to silence this warning", dataset, unseen, len(images.labels))


def _check_split(dataset: str, images: Images, train: Split, val: Split, test: Split, val_fraction: float,
                 test_fraction: float) -> None:
    """Every split has samples, and the train split has every class the data has: else say how to fix it. A class
    missing from another split, or one that holds most training samples, is a warning."""
    n = len(images.y)
    sizes = f"{len(train)} train / {len(val)} val / {len(test)} test of {n} samples"
    if len(train) == 0:
        raise UserError(f"dataset {dataset!r} leaves no training samples (val_fraction={val_fraction}, "
                        f"test_fraction={test_fraction}, {n} samples): lower the fractions or add samples")
    if len(val) == 0:
        raise UserError(f"data.val_fraction={val_fraction} leaves no validation samples ({sizes}): "
                        f"{empty_split_hint(val_fraction, n, 'samples')}")
    if len(test) == 0:
        raise UserError(f"data.test_fraction={test_fraction} leaves no test samples ({sizes}): "
                        f"{empty_split_hint(test_fraction, n, 'samples')}")
    every = [images.labels[i] for i in sorted(set(torch.unique(images.y).tolist()))]

    def absent(split: Split) -> str:
        return absent_classes(every, (images.labels[i] for i in torch.unique(split.y).tolist()))

    missing = absent(train)
    if missing:
        raise UserError(f"dataset {dataset!r}: the train split holds no sample of {missing} ({sizes}): add "
                        "samples of every class, lower data.val_fraction and data.test_fraction, or try another "
                        "data.split_seed")
    drawn = [("validation", val, "data.val_fraction")] + ([("test", test, "data.test_fraction")]
                                                          if images.test is None else [])
    for what, split, key in drawn:  # the splits are drawn sample by sample, not class by class
        missing = absent(split)
        if missing:
            log.warning("dataset %r: the %s split holds no sample of %s (%s): its metrics there leave them out; "
                        "add samples, raise %s, or try another data.split_seed", dataset, what, missing, sizes, key)
    few = few_to_rank(len(val.y), "samples")
    if few:
        log.warning("dataset %r: %s", dataset, few)
    counts = torch.bincount(train.y, minlength=len(images.labels)).tolist()
    dominant = dominant_class({images.labels[i]: n for i, n in enumerate(counts) if n}, "samples")
    if dominant:
        log.warning("dataset %r: %s", dataset, dominant)

