"""Regenerate images/: 24x24 grey PNGs of three hand-drawn-looking shapes (circle, square, triangle).

    python examples/custom_dataset/make_images.py        # 30 training and 10 test images per class, seeded
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SIZE = 24
CLASSES = ("circle", "square", "triangle")


def draw(shape: str, rng: np.random.Generator) -> Image.Image:
    """One shape of random size, position, line width and brightness on a noisy dark background."""
    image = Image.new("L", (SIZE, SIZE), int(rng.integers(0, 40)))
    pen = ImageDraw.Draw(image)
    half = rng.uniform(5, 9)
    cx, cy = rng.uniform(half + 1, SIZE - half - 1, size=2)
    ink, width = int(rng.integers(170, 256)), int(rng.integers(1, 3))
    box = [cx - half, cy - half, cx + half, cy + half]
    if shape == "circle":
        pen.ellipse(box, outline=ink, width=width)
    elif shape == "square":
        pen.rectangle(box, outline=ink, width=width)
    else:
        turn = rng.uniform(0, 2 * np.pi / 3)
        corners = [(cx + half * np.cos(turn + k * 2 * np.pi / 3), cy + half * np.sin(turn + k * 2 * np.pi / 3))
                   for k in range(3)]
        pen.polygon(corners, outline=ink, width=width)
    noise = rng.normal(0, 12, (SIZE, SIZE))
    return Image.fromarray(np.clip(np.asarray(image, dtype=float) + noise, 0, 255).astype(np.uint8))


def main(root: Path = Path(__file__).parent / "images", train: int = 30, test: int = 10) -> None:
    rng = np.random.default_rng(0)
    for split, count in (("train", train), ("test", test)):
        for shape in CLASSES:
            folder = root / split / shape
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                draw(shape, rng).save(folder / f"{shape}_{i:03d}.png", optimize=True)


if __name__ == "__main__":
    main()
