"""Helpers shared by the tests in tests/use (fixtures live in conftest.py)."""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).parents[2]


def image_bytes(array: np.ndarray, mode: str | None = None, fmt: str = "PNG", **save: object) -> bytes:
    """The bytes of an image file holding `array` (converted to `mode` first, when given)."""
    image = Image.fromarray(array)
    if mode is not None:
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save)
    return buffer.getvalue()


def digit_png(image: np.ndarray, size: int = 64, mode: str = "L", fmt: str = "PNG") -> bytes:
    """A digits test image (uint8 (1, 8, 8)) scaled up to `size` pixels, as a file of `fmt` in `mode`."""
    big = Image.fromarray(image[0]).resize((size, size), Image.Resampling.NEAREST)
    return image_bytes(np.asarray(big), mode, fmt)


@dataclass
class Searched:
    root: Path  # the folder the search ran in
    run_dir: Path
    model_dir: Path
    result: object


def search_in(folder: Path, space: str | Path, overrides: list[str] | None = None) -> Searched:
    """Run `autotune.fit` with `folder` as the working directory (runs/ and models/ land there)."""
    import autotune

    before = Path.cwd()
    os.chdir(folder)
    try:
        result = autotune.fit(space, overrides=overrides, num_cpus=2)
    finally:
        os.chdir(before)
    return Searched(folder, Path(result.run_dir), Path(result.model_dir), result)
