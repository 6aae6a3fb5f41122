"""What an image model is given and what it answers: the one image conversion of training, `autotune predict`,
`autotune serve` and `autotune.load_model(...).predict`.

    pixels = image_pixels("cat.jpg", (3, 32, 32))    # a file, its bytes or a PIL image -> uint8 (C, H, W)
    image = open_image(data)                         # bytes of a PNG/JPEG/...: checked, decoded, turned upright
    pixels = to_pixels(image, model.input_shape, model.resize)  # converted, resized (and cropped) as in training
    records(model, [pixels], ["cat.png"], top_k=3)   # [{"file", "label", "probability", "top_k": [...]}]
    predict_files(model, ["photos/", "batch.npy"])   # `autotune predict`: records, and a BadInput per bad file

Inputs are checked before they are decoded (format; for `serve`, the pixel count: no decompression bombs); a bad
one raises `BadInput` (`autotune.errors`), whose `status` is the HTTP status `serve` answers with. Local files
(training, `predict`, `load_model().predict`) pass `max_pixels=None`: any size Pillow can decode, as the user's own
photos may be large (a 108 MP camera's JPEG is over Pillow's decompression-bomb limit).
"""
from __future__ import annotations

import io
import math
import os
import sys
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from autotune.errors import BadInput, UserError
from autotune.vision.datasets import INTERPOLATIONS

if TYPE_CHECKING:
    from PIL.Image import Image

    from autotune.vision.predictor import Predictor

__all__ = ["BadInput", "IMAGE_FORMATS", "INTERPOLATIONS", "MAX_PIXELS", "Resize", "image_pixels", "open_image",
           "read_file", "to_pixels", "array_batch", "records", "expand", "predict_files"]

IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")  # what Pillow may decode; nothing else is tried
MAX_PIXELS = 4096 * 4096  # per image, checked on the header before decoding (serve's default)
_PILLOW_LIMIT = threading.Lock()  # held while a local file's decode lifts Pillow's global bomb limit
BATCH = 256  # images `predict_files` predicts at once
STDIN = "-"  # the input `predict_files` reads from standard input: one image's bytes


@dataclass(frozen=True)
class Resize:
    """How an image of any size becomes the model's input size. `crop_pct` None (the default) resizes the whole
    image to it; a share in (0, 1] resizes the shorter side to size / crop_pct and cuts out the centre, as timm's
    evaluation transform does (a pretrained model's data config gives both). The model card records it."""

    interpolation: str = "bilinear"
    crop_pct: float | None = None

    def __post_init__(self) -> None:
        if self.interpolation not in INTERPOLATIONS:
            raise UserError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {self.interpolation!r}")
        if self.crop_pct is not None and not 0 < self.crop_pct <= 1:
            raise UserError(f"crop_pct must be a share in (0, 1] (or null: no crop), got {self.crop_pct!r}")

    @classmethod
    def of(cls, card: Mapping[str, Any]) -> Resize:
        """The resize a model card records (cards without one: the default)."""
        return cls(**card.get("resize", {}))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def image_pixels(source: str | os.PathLike[str] | bytes | Image, input_shape: Sequence[int],
                 resize: Resize = Resize(), *, max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """An image file (its path or its bytes) or a PIL image as the uint8 (C, H, W) array a model of `input_shape`
    takes: decoded (`open_image`), turned upright by its EXIF orientation, converted and resized (`to_pixels`).
    Training, `predict`, `serve` and `load_model().predict` all convert images here, so they agree."""
    if isinstance(source, (str, os.PathLike)):
        source = read_file(source)
    if isinstance(source, bytes):
        image = open_image(source, max_pixels=max_pixels)
    else:
        from PIL import ImageOps

        image = ImageOps.exif_transpose(source)  # a PIL image opened from a file still holds its orientation
    return to_pixels(image, input_shape, resize)


def read_file(path: str | os.PathLike[str]) -> bytes:
    """A local file's bytes; a link to nothing is a BadInput that says so (not "No such file")."""
    try:
        with open(path, "rb") as file:
            return file.read()
    except FileNotFoundError:
        if os.path.islink(path):
            raise BadInput(f"broken link (to {os.readlink(path)}, which does not exist)") from None
        raise


def open_image(data: bytes, *, max_pixels: int | None = MAX_PIXELS) -> Image:
    """Decode image bytes, refusing empty input, other formats and images over `max_pixels` before decoding (None:
    a local file, of any size Pillow can decode: its decompression-bomb limit is lifted for this call only); the
    image is turned upright by its EXIF orientation."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise BadInput("empty file")
    try:
        with warnings.catch_warnings(), _bomb_limit_lifted(max_pixels is None):
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
            width, height = image.size
            if max_pixels is not None and width * height > max_pixels:
                raise BadInput(f"image of {width}x{height} pixels is too large: over the limit of {max_pixels} "
                               "pixels", 413)
            image.load()
            return ImageOps.exif_transpose(image)
    except UnidentifiedImageError as err:  # each BadInput keeps Pillow's error as its cause (what a warning names)
        raise BadInput(f"not an image in a supported format ({', '.join(IMAGE_FORMATS)})", 415) from err
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise BadInput(f"image too large: {err}", 413) from err
    except MemoryError as err:
        raise BadInput("image too large to decode in this process's memory", 413) from err
    except (OSError, SyntaxError, ValueError, EOFError) as err:  # truncated or corrupt data
        raise BadInput(f"cannot decode the image: {err}", 422) from err


@contextmanager
def _bomb_limit_lifted(lifted: bool) -> Iterator[None]:
    """Pillow's decompression-bomb limit (a global, `PIL.Image.MAX_IMAGE_PIXELS`) off while a local file is
    opened and decoded, then restored; the lock keeps two such decodes from restoring each other's value. Others
    (serve) keep the limit, and their own `max_pixels` check holds whatever another thread does meanwhile."""
    if not lifted:
        yield
        return
    from PIL import Image

    with _PILLOW_LIMIT:
        kept, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = kept


def _eight_bit(image: Image) -> Image:
    """16-bit and float images scaled to 8 bits (Pillow's own conversion clips them instead)."""
    from PIL import Image as PILImage

    if image.mode not in ("I", "F") and not image.mode.startswith("I;16"):
        return image
    array = np.asarray(image, dtype=np.float64)
    if image.mode == "F" and array.max(initial=0) <= 1:
        array = array * 255
    elif image.mode != "F" and array.max(initial=0) > 255:
        array = array / 257  # 0..65535 -> 0..255
    return PILImage.fromarray(np.clip(np.rint(array), 0, 255).astype(np.uint8), mode="L")


def to_pixels(image: Image, input_shape: Sequence[int], resize: Resize = Resize()) -> np.ndarray:
    """An image of any size and mode as the uint8 (C, H, W) array the model takes: grey or RGB (alpha dropped),
    resized to the model's input size as `resize` says."""
    from PIL import Image as PILImage

    channels, height, width = input_shape
    image = _converted(_eight_bit(image), "L" if channels == 1 else "RGB")
    method = PILImage.Resampling[resize.interpolation.upper()]
    if resize.crop_pct is None:
        if image.size != (width, height):
            image = image.resize((width, height), method)
    else:
        image = _center_crop(image.resize(_scaled(image.size, (height, width), resize.crop_pct), method),
                             (height, width))
    array = np.asarray(image, dtype=np.uint8)
    return array[None].copy() if channels == 1 else array.transpose(2, 0, 1).copy()


def _converted(image: Image, mode: str) -> Image:
    """The image in `mode` (L or RGB); a mode Pillow cannot convert to it (LAB to L) is a BadInput (415)."""
    try:
        return image.convert(mode)
    except ValueError as err:  # Pillow, for LAB to L: "conversion from LAB to RGB not supported"
        raise BadInput(f"an image of mode {image.mode} cannot be converted to {mode}, the mode the model takes; "
                       "save it as RGB or greyscale", 415) from err


def _scaled(size: tuple[int, int], target: tuple[int, int], crop_pct: float) -> tuple[int, int]:
    """The (width, height) an image of `size` is resized to before its centre is cut to `target` (H, W): torchvision's
    Resize as timm builds it (the shorter side to floor(side / crop_pct) for a square target; else both sides)."""
    height, width = (math.floor(side / crop_pct) for side in target)
    if height != width:
        return width, height
    w, h = size
    return (height, int(height * h / w)) if w <= h else (int(height * w / h), height)


def _center_crop(image: Image, target: tuple[int, int]) -> Image:
    """The centre `target` (H, W) of an image at least that large (torchvision's CenterCrop rounding)."""
    height, width = target
    top, left = int(round((image.height - height) / 2.0)), int(round((image.width - width) / 2.0))
    return image.crop((left, top, left + width, top + height))


def array_batch(array: Any, input_shape: Sequence[int]) -> np.ndarray:
    """A `.npy` array (one image or a batch) as uint8 or float32 (N, C, H, W) pixels; floats must be in [0, 1]."""
    if not isinstance(array, np.ndarray):
        raise BadInput(f"not a .npy array but {type(array).__name__}")
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.number):
        raise BadInput(f"array of dtype {array.dtype} holds no pixel values")
    given = array.shape
    if np.issubdtype(array.dtype, np.integer):
        if array.size and (array.min() < 0 or array.max() > 255):
            raise BadInput(f"integer pixels must lie in 0..255, got {array.min()}..{array.max()}; "
                           f"{_rescale_hint(int(array.min()), int(array.max()))}")
        array = array.astype(np.uint8, copy=False)
    else:
        if not np.isfinite(array).all() or (array.size and (array.min() < 0 or array.max() > 1)):
            raise BadInput("float pixels must be finite and lie in [0, 1] (or save uint8 0..255)")
        array = array.astype(np.float32, copy=False)
    channels, height, width = input_shape
    shape = tuple(input_shape)
    if array.shape in ((height, width), (height, width, channels), shape):
        array = array[None]  # one image
    if array.ndim == 3 and array.shape[1:] == (height, width) and channels == 1:
        array = array[:, None]
    elif array.ndim == 4 and array.shape[1:] == (height, width, channels):
        array = array.transpose(0, 3, 1, 2)
    if array.ndim != 4 or array.shape[1:] != shape or len(array) == 0:
        raise BadInput(f"array of shape {given} is neither one image nor a batch of the model's input "
                       f"{shape} (C, H, W) or (H, W, C); save images as PNG to have them resized")
    return array


def _rescale_hint(low: int, high: int) -> str:
    """How to bring integer pixels from low..high to what a model takes (16-bit ones as a 16-bit PNG is read)."""
    if low >= 0 and high <= 65535:
        return ("16-bit pixels: pass (array / 257).round().astype('uint8'), floats in [0, 1] (array / 65535), or "
                "the PNG file itself, which is read as 16-bit and scaled so")
    return "scale them to uint8 0..255, or to floats in [0, 1]"


def records(model: Predictor, pixels: Sequence[np.ndarray] | np.ndarray, names: Sequence[str],
            top_k: int = 3) -> list[dict[str, Any]]:
    """One JSON-ready record per image: its name, the most probable label and the `top_k` labels."""
    result = model.predict(np.stack(pixels) if isinstance(pixels, Sequence) else pixels)
    out = []
    for name, row in zip(names, result.probabilities):
        best = np.argsort(-row, kind="stable")[:top_k]
        top = [{"label": model.labels[i], "probability": round(float(row[i]), 6)} for i in best]
        out.append({"file": name, "label": top[0]["label"], "probability": top[0]["probability"], "top_k": top})
    return out


TABLE_SUFFIXES = (".csv", ".parquet")  # what a tabular model's predict reads


def expand(paths: Sequence[str | os.PathLike[str]]) -> Iterator[Path]:
    """Each path, with a folder replaced by the images and .npy files under it (recursively, sorted), listed as
    training lists an image folder (`image_files`: hidden files and thumbnail folders left out; a link to nothing
    kept, to be named as unreadable)."""
    from autotune.vision.datasets import IMAGE_SUFFIXES, image_files

    for name in paths:
        path = Path(name)
        if path.is_dir():
            listing = image_files(path, {*IMAGE_SUFFIXES, ".npy"})
            yield from sorted(listing.files + listing.broken)
        else:
            yield path


def _array_records(model: Predictor, batch: np.ndarray, name: str, top_k: int) -> Iterator[dict[str, Any]]:
    """The records of a .npy file's images (`batch`: `array_batch`), BATCH at a time, so that a large array is
    never held whole as floats; each with its "index" in the array, unless it holds one image."""
    for start in range(0, len(batch), BATCH):
        part = batch[start:start + BATCH]
        rows = records(model, part, [name] * len(part), top_k)
        yield from ({**row, "index": start + i} for i, row in enumerate(rows)) if len(batch) > 1 else rows


def predict_files(model: Predictor, paths: Sequence[str | os.PathLike[str]],
                  top_k: int = 3) -> Iterator[dict[str, Any] | BadInput]:
    """`autotune predict`: one record per image file, and per image of a .npy array (one image or a batch: each
    with its "index"), in input order, images predicted `BATCH` at a time; a folder stands for the images and .npy
    files under it, and `-` (STDIN) for one image piped in. A file it cannot read (missing, not an image, a .npy of
    the wrong shape or range) is yielded as a BadInput whose `source` is the file, and the others are still
    predicted."""
    top_k = min(top_k, len(model.labels))
    pending: list[tuple[str, np.ndarray]] = []

    def flush() -> list[dict[str, Any]]:
        names, pixels = zip(*pending) if pending else ((), ())
        pending.clear()
        return records(model, list(pixels), names, top_k) if names else []

    seen = 0
    for path in expand(paths):
        seen += 1
        try:
            if path.suffix.lower() == ".npy":
                batch = array_batch(np.load(path, allow_pickle=False), model.input_shape)
                yield from flush()
                yield from _array_records(model, batch, str(path), top_k)
            elif path.suffix.lower() in TABLE_SUFFIXES:
                raise BadInput(f"a table ({path.suffix}): this model is an image classifier, which reads images and "
                               ".npy arrays; a table's rows are for a model of the tabular recipe")
            else:
                source = sys.stdin.buffer.read() if str(path) == STDIN else path
                pending.append((str(path), image_pixels(source, model.input_shape, model.resize, max_pixels=None)))
        except (BadInput, OSError, ValueError) as err:  # unreadable file, not an image, bad .npy
            reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
            yield BadInput(reason, source=str(path))
        if len(pending) >= BATCH:
            yield from flush()
    yield from flush()
    if seen == 0:
        raise UserError(f"no images or .npy files in {', '.join(map(str, paths))}")
