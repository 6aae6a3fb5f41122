"""Your own components, registered by name: a transform and a dataset for examples/custom_dataset/shapes.yaml.

The space names this file in `custom:`. autotune imports it before validating the space (so `dataset: shapes`
is a known name) and again in every Ray worker. torch is imported inside the functions, as recipes.md advises
for a recipe: `autotune check shapes.yaml` imports this file, and stays instant.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import autotune
from autotune.registry import get

if TYPE_CHECKING:
    import torch

    from autotune.vision.data import Images


@autotune.register("transform")
def jitter(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """uint8 images (N, C, H, W), each shifted by up to 2 pixels and given light noise: new training samples
    that look like the scans they come from."""
    import torch

    shifted = torch.empty_like(x)
    for i, (dy, dx) in enumerate(torch.randint(-2, 3, (len(x), 2), generator=generator).tolist()):
        shifted[i] = torch.roll(x[i], shifts=(dy, dx), dims=(1, 2))
    noise = torch.randn(x.shape, generator=generator) * 8
    return (shifted.float() + noise).clamp(0, 255).to(torch.uint8)


@autotune.register("dataset")
def shapes(root: str, image_size: int = 24, transform: str | None = None, copies: int = 0, seed: int = 0) -> Images:
    """Grey images of circles, squares and triangles: ROOT/train/<class>/*.png and ROOT/test/<class>/*.png (the
    official test split). With `transform` (a registered transform) and `copies` > 0, each training image also
    joins the training pool as `copies` transformed copies.

    The validation split is drawn from that pool, so a copy of a training image can land in it: with copies,
    validation accuracy reads a little high. The test split is never transformed; it is what the exported model
    is measured on."""
    import torch

    from autotune.vision.data import Images
    from autotune.vision.datasets import image_folder

    train = image_folder(str(Path(root) / "train"), image_size=image_size, channels=1, flip=False)
    test = image_folder(str(Path(root) / "test"), image_size=image_size, channels=1, flip=False)
    x, y = train.x, train.y
    if transform is not None and copies > 0:
        function = get("transform", transform)  # an unknown name lists the closest registered ones
        generator = torch.Generator().manual_seed(seed)
        x = torch.cat([x, *(function(train.x, generator) for _ in range(copies))])
        y = train.y.repeat(copies + 1)
    return Images(x, y, train.labels, flip=False, test=(test.x, test.y))
