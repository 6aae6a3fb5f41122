"""Built-in datasets, registered by name: `data: {dataset: mnist, root: ~/.cache/autotune/data}`.

Each returns `autotune.vision.data.Images` (all samples as uint8 NCHW, labels, label names, an official test set
when the dataset has one). Cheap to import: torch, torchvision, PIL and scikit-learn load inside the functions,
because validating a search space looks names up here. Downloads happen only for mnist/fashion_mnist/cifar10
when their files are not in `root` already; the files are then read here (not through torchvision's classes).
"""
from __future__ import annotations

import gzip
import logging
import math
import os
import pickle
import struct
from pathlib import Path
from typing import TYPE_CHECKING

from autotune.errors import UserError
from autotune.registry import register

if TYPE_CHECKING:
    import numpy as np

    from autotune.vision.data import Images

__all__ = ["read_idx", "mnist", "fashion_mnist", "cifar10", "idx", "image_folder", "digits", "fake"]

log = logging.getLogger("autotune")

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_IDX_DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (plain or .gz), as MNIST ships them, as a numpy array of its declared shape."""
    import numpy as np

    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:  # unreadable, or a damaged .gz
        raise UserError(f"cannot read {path}: {err}") from None
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in _IDX_DTYPES or len(raw) < 4 + 4 * raw[3]:
        raise UserError(f"{path} is not an IDX file (bad magic number {raw[:4].hex() or 'none: empty file'})")
    ndim = raw[3]
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) - 4 - 4 * ndim != expected:
        raise UserError(f"{path} is damaged: its header declares {shape} ({expected} bytes of data), "
                        f"the file holds {len(raw) - 4 - 4 * ndim}; download or copy it again")
    return np.frombuffer(raw, dtype=dtype, offset=4 + 4 * ndim).reshape(shape)


def _folder(root: str, dataset: str, expected: str) -> Path:
    """`root` as a folder the process can list, else a UserError saying what it should hold."""
    folder = Path(root)
    if not folder.is_dir():
        what = "it does not exist" if not folder.exists() else "it is a file"
        raise UserError(f"{dataset} data.root {str(folder)!r} is not a directory ({what}); expected a folder "
                        f"holding {expected}")
    if not os.access(folder, os.R_OK | os.X_OK):
        raise UserError(f"{dataset} data.root {str(folder)!r} is not readable by this user: fix its permissions")
    return folder


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _idx_pair(images: Path, labels: Path) -> tuple:
    import torch

    x = read_idx(images)
    y = read_idx(labels)
    if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
        raise UserError(f"{images} {x.shape} and {labels} {y.shape} are not N images of HxW with N labels")
    return torch.from_numpy(x.astype("uint8")).unsqueeze(1), torch.from_numpy(y.astype("int64"))


def _download(what: str, folder: Path, files: tuple[str, ...], fetch) -> None:
    """Run `fetch()` (a torchvision download); any failure becomes one line that says where to put the files (the
    error's own lines joined: torchvision's names each mirror it tried on a line of its own)."""
    try:
        fetch()
    except Exception as err:  # no network, a proxy, a moved mirror: all end the same way for the user
        raise UserError(
            f"could not download {what} into {folder} ({type(err).__name__}: {' '.join(str(err).split())}); "
            f"put {', '.join(files)} (optionally .gz) there yourself, or use `dataset: idx` / `dataset: digits`"
        ) from None


def _mnist_like(torchvision_name: str, root: str, download: bool, labels: list[str], flip: bool) -> Images:
    from autotune.vision.data import Images

    raw = Path(root) / torchvision_name / "raw"
    if any(_find(raw, f) is None for f in _MNIST_FILES):
        if not download:
            raise UserError(f"{torchvision_name} files missing in {raw}: put {', '.join(_MNIST_FILES)} (optionally .gz) "
                            "there, or set data.download: true")

        def fetch() -> None:
            import torchvision

            cls = getattr(torchvision.datasets, torchvision_name)
            cls(root, train=True, download=True)

        _download(torchvision_name, raw, _MNIST_FILES, fetch)
    train_x, train_y = _idx_pair(_find(raw, _MNIST_FILES[0]), _find(raw, _MNIST_FILES[1]))
    test = _idx_pair(_find(raw, _MNIST_FILES[2]), _find(raw, _MNIST_FILES[3]))
    return Images(train_x, train_y, labels, flip=flip, test=test)


@register("dataset")
def mnist(root: str, download: bool = True) -> Images:
    """MNIST handwritten digits, 28x28 grey; official 60k train / 10k test; files in ROOT/MNIST/raw."""
    return _mnist_like("MNIST", root, download, [str(i) for i in range(10)], flip=False)


@register("dataset")
def fashion_mnist(root: str, download: bool = True) -> Images:
    """Fashion-MNIST, 28x28 grey clothing; official 60k train / 10k test; files in ROOT/FashionMNIST/raw."""
    labels = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    return _mnist_like("FashionMNIST", root, download, labels, flip=True)


def _unpickle(path: Path, keys: tuple[str, ...]) -> dict:
    """A CIFAR python batch (a pickled dict holding `keys`, bytes or str)."""
    try:
        with open(path, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
        entry = {k.decode() if isinstance(k, bytes) else k: v for k, v in entry.items()}
    except Exception as err:  # pickle raises many kinds on a damaged file
        raise UserError(f"cannot read {path} as a CIFAR python batch ({type(err).__name__}: {err}); "
                        "unpack cifar-10-python.tar.gz again") from None
    missing = [k for k in keys if k not in entry]
    if missing:
        raise UserError(f"{path} is not a CIFAR python batch: it lacks {', '.join(missing)}")
    return entry


def _cifar_batches(paths: list[Path]) -> tuple:
    import numpy as np
    import torch

    entries = [_unpickle(p, ("data",)) for p in paths]
    x = np.concatenate([np.asarray(e["data"], dtype=np.uint8).reshape(-1, 3, 32, 32) for e in entries])
    y = np.concatenate([np.asarray(e.get("labels", e.get("fine_labels")), dtype=np.int64) for e in entries])
    return torch.from_numpy(x), torch.from_numpy(y)


@register("dataset")
def cifar10(root: str, download: bool = True) -> Images:
    """CIFAR-10, 32x32 colour; official 50k train / 10k test; the python pickles in ROOT/cifar-10-batches-py."""
    from autotune.vision.data import Images

    folder = Path(root) / "cifar-10-batches-py"
    needed = ("data_batch_1", "test_batch", "batches.meta")
    if not all((folder / f).is_file() for f in needed):
        if not download:
            raise UserError(f"CIFAR-10 files missing in {folder}: unpack cifar-10-python.tar.gz into {root}, "
                            "or set data.download: true")

        def fetch() -> None:
            import torchvision

            torchvision.datasets.CIFAR10(root, train=True, download=True)

        _download("CIFAR-10", folder, ("data_batch_1..5", "test_batch", "batches.meta"), fetch)
    train_x, train_y = _cifar_batches(sorted(folder.glob("data_batch_*")))
    labels = [str(n) for n in _unpickle(folder / "batches.meta", ("label_names",))["label_names"]]
    return Images(train_x, train_y, labels, flip=True, test=_cifar_batches([folder / "test_batch"]))


@register("dataset")
def idx(root: str) -> Images:
    """A folder of IDX files (`*-images-idx3-ubyte[.gz]` with matching `*-labels-idx1-ubyte[.gz]`).

    With a `train-*` and a `t10k-*` pair, those are the train and official test sets; otherwise every pair is
    pooled and split with val_fraction/test_fraction. Label names are the class numbers.
    """
    import torch

    from autotune.vision.data import Images

    folder = _folder(root, "idx", "NAME-images-idx3-ubyte[.gz] next to NAME-labels-idx1-ubyte[.gz]")
    pairs = {}
    for images in sorted(folder.glob("*images-idx3-ubyte*")):
        labels = Path(str(images).replace("images-idx3", "labels-idx1"))
        if labels.is_file():
            pairs[images.name.split("-images")[0]] = _idx_pair(images, labels)
    if not pairs:
        raise UserError(f"no IDX image/label files in {folder}: expected NAME-images-idx3-ubyte[.gz] next to "
                        "NAME-labels-idx1-ubyte[.gz]")
    if set(pairs) == {"train", "t10k"}:
        (x, y), test = pairs["train"], pairs["t10k"]
    else:
        x = torch.cat([p[0] for p in pairs.values()])
        y = torch.cat([p[1] for p in pairs.values()])
        test = None
    count = int(y.max()) + 1
    return Images(x, y, [str(i) for i in range(count)], flip=False, test=test)


@register("dataset")
def image_folder(
    root: str, image_size: int = 32, channels: int = 3, flip: bool = True, memory_limit_mb: float = 1024,
    workers: int = 2, cache: bool = True, interpolation: str = "bilinear", crop_pct: float | None = None,
) -> Images:
    """One sub-folder of ROOT per class (hidden ones, like .ipynb_checkpoints, are ignored). Images are converted
    to `channels` (1 or 3) and resized to `image_size` squared with `interpolation`: whole (`crop_pct` null), or
    the shorter side to image_size / crop_pct and the centre cut out (timm's evaluation transform; a pretrained
    model's data config sets both, `autotune.vision.pretrained.data_config`); up to `memory_limit_mb` of pixels they are decoded
    once into memory, above that they stream through a DataLoader with `workers` processes: with `cache`, each
    image is decoded once per node into a memory-mapped file that every trial reads (autotune's cache folder,
    `images/`; the pixels' size on disk), else at every read. Files that cannot be read as images are left out
    with a warning that counts them (`Data.skipped`)."""
    import numpy as np
    import torch

    from autotune.vision.inference import Resize
    from autotune.vision.data import FileImages, Images, decode_image
    from autotune.vision.folder_cache import FolderCache

    folder = _folder(root, "image_folder", "one sub-folder of images per class, e.g. ROOT/cat/001.png")
    if channels not in (1, 3):
        raise UserError(f"image_folder channels must be 1 or 3, got {channels}")
    if image_size < 1:
        raise UserError(f"image_folder image_size must be >= 1, got {image_size}")
    try:
        resize = Resize(interpolation, crop_pct)
    except UserError as err:
        raise UserError(f"image_folder {err}") from None
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    _check_not_split_folders(folder, classes)
    if len(classes) < 2:
        raise UserError(f"image_folder data.root {str(folder)!r} holds {len(classes)} class sub-folder"
                        f"{'' if len(classes) == 1 else 's'}{': ' + classes[0] if classes else ''}; a classifier "
                        "needs at least 2, one per class, e.g. ROOT/cat/001.png and ROOT/dog/001.png")
    found = [sorted(p for p in (folder / name).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                    and not any(part.startswith(".") for part in p.relative_to(folder).parts)) for name in classes]
    total = sum(len(paths) for paths in found)
    stream = total * channels * image_size**2 > memory_limit_mb * 2**20
    files, targets, pixels, bad = [], [], [], []
    for index, paths in enumerate(found):
        for path in paths:
            try:  # streamed: only check that PIL knows the file as an image; in memory: decode it now
                decoded = _identify(path) if stream else decode_image(path, channels, image_size, resize)
            except Exception as err:  # PIL raises OSError, SyntaxError, ValueError... on a damaged file
                bad.append((path, err))
                continue
            if not stream:
                pixels.append(decoded)
            files.append(str(path))
            targets.append(index)
    if bad:
        shown = ", ".join(f"{p.relative_to(folder)} ({_reason(e)})" for p, e in bad[:3])
        log.warning("image_folder: skipped %d of %d image files in %s that cannot be read: %s%s; remove or repair "
                    "them to silence this warning", len(bad), total, folder, shown, " ..." * (len(bad) > 3))
    present = set(targets)
    empty = [name for index, name in enumerate(classes) if index not in present]
    if empty:
        raise UserError(f"image_folder class folder{'s' if len(empty) > 1 else ''} {', '.join(map(repr, empty))} in "
                        f"{str(folder)!r} hold{'' if len(empty) > 1 else 's'} no readable image "
                        f"({', '.join(sorted(IMAGE_SUFFIXES))}): add images or remove the folder")
    y = torch.tensor(targets, dtype=torch.int64)
    if stream:
        key = FolderCache.key_of(files, channels, image_size, resize) if cache else None
        x = FileImages(tuple(files), channels, image_size, resize, workers, key, tuple(range(len(files))), len(files))
    else:
        x = torch.from_numpy(np.stack(pixels))
    keys = tuple(Path(f).relative_to(folder).as_posix() for f in files)
    return Images(x, y, classes, flip=flip, skipped=len(bad), resize=resize, keys=keys)


SPLIT_FOLDERS = {"train", "training", "val", "valid", "validation", "test", "testing"}


def _check_not_split_folders(folder: Path, classes: list[str]) -> None:
    """A UserError for ROOT/train/cat/..., ROOT/val/cat/...: split folders holding class folders would be taken for
    the classes (train, val) of a model that learns which split an image is in."""
    if not classes or not {c.lower() for c in classes} <= SPLIT_FOLDERS:
        return
    if any(p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES for c in classes for p in (folder / c).iterdir()):
        return  # images right in them: classes that happen to have those names
    train = next((c for c in classes if c.lower() in ("train", "training")), classes[0])
    raise UserError(f"image_folder data.root {str(folder)!r} holds {', '.join(classes)}: split folders, not one "
                    f"folder per class; point data.root at {str(folder / train)!r} (its sub-folders are the classes: "
                    "the validation and test images are drawn from it, data.val_fraction and data.test_fraction), or "
                    "merge the splits' class folders into one folder per class")


def _reason(err: Exception) -> str:
    """Why a file was skipped, in a word: Pillow's error type, or the conversion's own reason (an empty file)."""
    if err.__cause__ is not None:
        return type(err.__cause__).__name__
    return str(err) if isinstance(err, UserError) else type(err).__name__


def _identify(path: Path) -> None:
    """Raises unless PIL recognises `path` as an image (it reads the header only)."""
    from PIL import Image

    with Image.open(path):
        pass


@register("dataset")
def digits(root: str) -> Images:
    """scikit-learn's bundled 8x8 handwritten digits (1797 images, no download): the offline default."""
    import numpy as np
    import torch
    from sklearn.datasets import load_digits

    from autotune.vision.data import Images

    bunch = load_digits()
    pixels = np.rint(bunch.images * (255 / 16)).astype(np.uint8)[:, None]  # values 0..16 -> 0..255
    return Images(torch.from_numpy(pixels), torch.from_numpy(bunch.target.astype(np.int64)),
                  [str(n) for n in bunch.target_names], flip=False)


@register("dataset")
def fake(root: str, samples: int = 256, image_size: int = 32, channels: int = 3, classes: int = 10,
         seed: int = 0) -> Images:
    """Random images with random labels (seeded), for tests: nothing to learn, nothing to read."""
    import torch

    from autotune.vision.data import Images

    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (samples, channels, image_size, image_size), generator=g, dtype=torch.uint8)
    y = torch.randint(0, classes, (samples,), generator=g)
    return Images(x, y, [f"class_{i}" for i in range(classes)], flip=True)
