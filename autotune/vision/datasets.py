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
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from autotune.errors import BadInput, UserError
from autotune.paths import shown
from autotune.registry import register

if TYPE_CHECKING:
    import numpy as np

    from autotune.vision.data import Digest, FileImages, Images

__all__ = ["read_idx", "mnist", "fashion_mnist", "cifar10", "idx", "image_folder", "digits", "fake"]

log = logging.getLogger("autotune")

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
PHOTO_SUFFIXES = {".heic", ".heif", ".avif", ".raw", ".cr2", ".nef", ".dng"}  # photos Pillow does not decode here
SKIPPED_FOLDERS = {"@eaDir", "__MACOSX"}  # a Synology's thumbnails, a Mac zip's resource forks (and .hidden ones)
SHOWN = 3  # files a warning names before "and N more"
# image_folder's `interpolation`: Pillow's resampling filters, by name (here, where a space's check reads them cheaply)
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos", "box", "hamming")
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
    root: str, image_size: int = 32, channels: int = 3, flip: bool = True, memory_limit_mb: float = 1024.0,
    workers: int = 2, cache: bool = True, interpolation: str = "bilinear", crop_pct: float | None = None,
) -> Images:
    """One sub-folder of ROOT per class (hidden ones, like .ipynb_checkpoints, are ignored). Images are converted
    to `channels` (1 or 3) and resized to `image_size` squared with `interpolation`: whole (`crop_pct` null), or
    the shorter side to image_size / crop_pct and the centre cut out (timm's evaluation transform; a pretrained
    model's data config sets both, `autotune.vision.pretrained.data_config`); up to `memory_limit_mb` of pixels they are decoded
    once into memory, above that they stream through a DataLoader with `workers` processes: with `cache`, each
    image is decoded once per node into a memory-mapped file that every trial reads (autotune's cache folder,
    `images/`; the pixels' size on disk), else at every read. Every image is decoded once here, before any trial
    (a streamed one into that cache): files that cannot be are left out with a warning that counts them
    (`Data.skipped`). Images in a class folder's sub-folders count as that class (with a warning); the listing
    is `image_files`'s."""
    import numpy as np
    import torch

    from autotune.vision.inference import Resize
    from autotune.vision.data import FileImages, Images
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
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir() and not _skipped_folder(d.name))
    _check_not_split_folders(folder, classes)
    _warn_alike_folders(folder, classes)
    if len(classes) < 2:
        raise UserError(f"image_folder data.root {str(folder)!r} holds {len(classes)} class sub-folder"
                        f"{'' if len(classes) == 1 else 's'}{': ' + classes[0] if classes else ''}; a classifier "
                        "needs at least 2, one per class, e.g. ROOT/cat/001.png and ROOT/dog/001.png")
    _warn_loose(folder)
    listings = [image_files(folder / name) for name in classes]
    _warn_other_photos(sum((listing.others for listing in listings), Counter()), folder)
    found = [listing.files for listing in listings]
    _warn_nested(folder, classes, found)
    bad = [(path, "broken link", f"broken link to {os.readlink(path)}") for listing in listings
           for path in listing.broken]
    total = sum(len(paths) for paths in found) + len(bad)
    stream = total * channels * image_size**2 > memory_limit_mb * 2**20
    files = [str(path) for paths in found for path in paths]
    labels = [index for index, paths in enumerate(found) for _ in paths]
    key = FolderCache.key_of(files, channels, image_size, resize) if stream and cache else None
    every = FileImages(tuple(files), channels, image_size, resize, workers, key, tuple(range(len(files))), len(files))
    pixels, failures, digests = _decode_all(every, in_memory=not stream)
    kept = [i for i, failure in enumerate(failures) if failure is None]
    bad = sorted(bad + [(Path(files[i]), *failure) for i, failure in enumerate(failures) if failure is not None])
    _warn_skipped(bad, total, folder)
    _warn_copies([Path(files[i]) for i in kept], [digests[i] for i in kept], folder)
    targets = [labels[i] for i in kept]
    present = set(targets)
    empty = [name for index, name in enumerate(classes) if index not in present]
    if empty:
        raise UserError(f"image_folder class folder{'s' if len(empty) > 1 else ''} {', '.join(map(repr, empty))} in "
                        f"{str(folder)!r} hold{'' if len(empty) > 1 else 's'} no readable image "
                        f"({', '.join(sorted(IMAGE_SUFFIXES))}): add images or remove the folder")
    y = torch.tensor(targets, dtype=torch.int64)
    x = every.take(np.asarray(kept, dtype=np.int64)) if stream else torch.from_numpy(np.stack(pixels))
    keys = tuple(Path(files[i]).relative_to(folder).as_posix() for i in kept)
    return Images(x, y, classes, flip=flip, skipped=len(bad), resize=resize, keys=keys)


@dataclass(frozen=True)
class Listing:
    """The image files under a folder (`image_files`): `files` sorted, each a file or a link to one; `broken`
    the links to nothing (to name as unreadable); `others` the count of photos in formats not read, by suffix."""

    files: list[Path]
    broken: list[Path]
    others: Counter[str]


def image_files(folder: Path, suffixes: set[str] | frozenset[str] = frozenset(IMAGE_SUFFIXES)) -> Listing:
    """The files under `folder` (recursively) whose suffix is in `suffixes`, as training and `autotune predict`
    list them: hidden files and folders (a name starting with '.': a Mac's ._cat.jpg, .DS_Store) and `@eaDir` or
    `__MACOSX` folders are left out, and so is a folder named like an image (x.jpg)."""
    files, broken, others = [], [], Counter()
    for parent, folders, names in os.walk(folder):
        folders[:] = [name for name in folders if not _skipped_folder(name)]
        for name in names:
            if name.startswith("."):
                continue
            suffix, path = os.path.splitext(name)[1].lower(), Path(parent) / name
            if suffix in suffixes:
                (files if path.exists() else broken).append(path)
            elif suffix in PHOTO_SUFFIXES:
                others[suffix] += 1
    return Listing(sorted(files), sorted(broken), others)


def _skipped_folder(name: str) -> bool:
    """A folder that holds no images of the user's: hidden (.ipynb_checkpoints), @eaDir, __MACOSX."""
    return name.startswith(".") or name in SKIPPED_FOLDERS


def _warn_other_photos(others: Counter[str], folder: Path) -> None:
    """One warning counting the photos left out for their format, by suffix."""
    if others:
        counts = ", ".join(f"{count} {suffix}" for suffix, count in sorted(others.items()))
        log.warning("image_folder: left out photos in %s in formats it does not read (%s; it reads %s): convert "
                    "them to JPEG or PNG to use them, or remove them to silence this warning", folder, counts,
                    ", ".join(sorted(IMAGE_SUFFIXES)))


def _warn_loose(folder: Path) -> None:
    """One warning counting the images right in data.root, next to the class folders: they are of no class."""
    loose = sorted(entry.name for entry in os.scandir(folder) if not entry.name.startswith(".")
                   and os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES and entry.is_file())
    if loose:
        log.warning("image_folder: left out %d image file%s right in data.root %s (e.g. %s), next to the class "
                    "folders: only images in a class folder are of a class; move them into one, or remove them, to "
                    "silence this warning", len(loose), "s" * (len(loose) > 1), shown(folder), shown(loose[0]))


def _warn_alike_folders(folder: Path, classes: list[str]) -> None:
    """One warning naming the class folders whose names differ only by case or Unicode form (`alike_classes`: a
    'café' folder written on macOS, decomposed, beside one written elsewhere): each is a class of its own."""
    from autotune.splits import alike_classes, spelled

    alike = alike_classes(classes)
    if alike:
        log.warning("image_folder: class folders in %s whose names differ only by spaces, case or Unicode form (%s): "
                    "each is a class of its own; move the images of each group into one folder to make it one class",
                    shown(folder), "; ".join(", ".join(map(spelled, names)) for names in alike))


def _warn_nested(folder: Path, classes: list[str], found: list[list[Path]]) -> None:
    """One warning naming the class folders whose sub-folders hold images: those count as the class."""
    nested = [[p for p in paths if len(p.relative_to(folder).parts) > 2] for paths in found]
    named = [name for name, deeper in zip(classes, nested) if deeper]
    if named:
        shown = ", ".join(named[:SHOWN]) + (f" and {len(named) - SHOWN} more" if len(named) > SHOWN else "")
        example = next(deeper[0] for deeper in nested if deeper).relative_to(folder)
        log.warning("image_folder: class folder%s %s in %s hold%s sub-folders of images, which count as the class "
                    "they are in (%s is of class %s); if the sub-folders are the classes, point data.root at the "
                    "folder that holds them, e.g. %s; else move their images up into the class folder to silence "
                    "this warning", "s" * (len(named) > 1), shown, folder, "" if len(named) > 1 else "s",
                    example.as_posix(), example.parts[0], folder / example.parts[0])


def _warn_skipped(bad: list[tuple[Path, str, str]], total: int, folder: Path) -> None:
    """One warning counting the files left out and naming a few (every one, with Pillow's message, at debug)."""
    if not bad:
        return
    listed = ", ".join(f"{shown(p.relative_to(folder))} ({reason})" for p, reason, _ in bad[:SHOWN])
    more = f" and {len(bad) - SHOWN} more" if len(bad) > SHOWN else ""
    log.warning("image_folder: skipped %d of %d image files in %s that cannot be read: %s%s; remove or repair "
                "them to silence this warning%s", len(bad), total, shown(folder), listed, more,
                " (the autotune logger lists them all at DEBUG level)" if more else "")
    for path, _, detail in bad:
        log.debug("image_folder: skipped %s: %s", shown(path), detail)


def _warn_copies(files: list[Path], digests: list[bytes], folder: Path) -> None:
    """One warning counting the files whose bytes repeat an earlier file's: a file's split follows from its path, so
    copies can land in different splits (a test image that is also a training image)."""
    first: dict[bytes, Path] = {}
    copies = []
    for path, digest in zip(files, digests):
        earlier = first.setdefault(digest, path)
        if earlier != path:
            copies.append((earlier, path))
    if copies:
        earlier, copy = (shown(path.relative_to(folder).as_posix()) for path in copies[0])
        log.warning("image_folder: %d of %d image files in %s repeat the bytes of another (%s is %s); each file's "
                    "split follows from its path, so copies can land in different splits and a test image can also "
                    "be a training one: remove the copies to silence this warning", len(copies), len(files),
                    shown(folder), copy, earlier)


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


def _failure(err: Exception) -> tuple[str, str]:
    """Why a file was skipped: in a word (Pillow's error type, or the conversion's own reason: an empty file, too
    large), and in full (the warning's debug lines)."""
    cause = err.__cause__ or err  # Pillow's own error, under the conversion's BadInput
    if isinstance(err, BadInput) and err.status == 413:
        reason = "too large"
    elif err.__cause__ is None and isinstance(err, UserError):
        reason = str(err)
    else:
        reason = type(cause).__name__
    return reason, f"{type(cause).__name__}: {cause}"


class _Decoding:
    """Each file of a folder read and decoded once at load time: item i is (pixels or None, None, file i's digest),
    or (None, why file i cannot be decoded: `_failure`, None). A streamed folder's pixels go to the node's cache
    when it has one (so that no trial decodes them again) and are not returned."""

    def __init__(self, images: FileImages, in_memory: bool) -> None:
        self.images, self.in_memory = images, in_memory

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[np.ndarray | None, tuple[str, str] | None, Digest | None]:
        from autotune.vision.data import decode_image, read_hashed

        images = self.images
        try:
            data, digest = read_hashed(images.files[i])

            def decode() -> np.ndarray:
                return decode_image(data, images.channels, images.size, images.resize)

            cache = None if self.in_memory else images.cache()
            pixels = decode() if cache is None else cache.pixels(images.slots[i], decode)
        except Exception as err:  # PIL raises OSError, SyntaxError, ValueError... on a damaged file
            return None, _failure(err), None
        return (pixels if self.in_memory else None), None, digest


def _decode_all(images: FileImages, in_memory: bool
                ) -> tuple[list[np.ndarray], list[tuple[str, str] | None], list[bytes | None]]:
    """Every file of a folder read and decoded (in this process for a folder held in memory, else by its
    DataLoader workers): the pixels of those held in memory, why each file cannot be decoded (None: it can), and
    the SHA-256 of each decoded file's bytes (remembered for the fingerprint: `remember_digests`). A damaged file is
    found here, before any trial, whether the folder is streamed or not."""
    import torch

    from autotune.vision.data import remember_digests

    workers = 0 if in_memory else images.workers
    loader = torch.utils.data.DataLoader(_Decoding(images, in_memory), batch_size=None, num_workers=workers,
                                         collate_fn=_as_is)
    pixels, failures, digests = [], [], []
    for decoded, failure, digest in loader:
        failures.append(failure)
        digests.append(digest)
        if decoded is not None:
            pixels.append(decoded)
    remember_digests([digest for digest in digests if digest is not None])
    return pixels, failures, [digest[1] if digest is not None else None for digest in digests]


def _as_is(item: tuple) -> tuple:
    """A decoded item as it is (the DataLoader's default would turn arrays into tensors)."""
    return item


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
