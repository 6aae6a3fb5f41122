"""The built-in networks (torch modules). Registered by name in `autotune.vision.models`."""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["SimpleCNN", "MLP", "Normalized"]


class SimpleCNN(nn.Module):
    """`depth` blocks of conv3x3-BN-ReLU and 2x2 max-pool, channels `width`, 2*width, ...; then global average
    pooling, dropout and a linear classifier. Pooling stops once the feature map is smaller than 4x4."""

    def __init__(self, in_chans: int, num_classes: int, input_size: int, width: int = 32, depth: int = 3,
                 dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels, size = in_chans, input_size
        for i in range(depth):
            out = width * 2**i
            layers += [nn.Conv2d(channels, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            channels = out
            if size >= 4:
                layers.append(nn.MaxPool2d(2))
                size //= 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(channels, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class MLP(nn.Module):
    """Flattened pixels through `depth` hidden layers of `width` units (ReLU, dropout), then a linear classifier."""

    def __init__(self, in_chans: int, num_classes: int, input_size: int, width: int = 256, depth: int = 2,
                 dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        features = in_chans * input_size * input_size
        for _ in range(depth):
            layers += [nn.Linear(features, width), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            features = width
        layers.append(nn.Linear(features, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class Normalized(nn.Module):
    """A model that takes float images in [0, 1] and normalises them itself (what an exported model ships)."""

    def __init__(self, model: nn.Module, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean) / self.std)
