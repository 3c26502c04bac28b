"""The flat parameter vector of a network, layer by layer: where each layer's coordinates sit,
and which of them the noise files store."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import nn


@dataclass(frozen=True)
class Layer:
    name: str
    start: int
    stop: int

    @property
    def numel(self) -> int:
        return self.stop - self.start


def layers_of(model: nn.Module) -> list[Layer]:
    out, start = [], 0
    for name, p in model.named_parameters():
        out.append(Layer(name, start, start + p.numel()))
        start += p.numel()
    return out


def stored_coordinates(layers: list[Layer], per_layer: int, seed: int) -> np.ndarray:
    """Flat indices of the stored coordinates, `per_layer` per layer (−1 pads layers that are smaller)."""
    rng = np.random.default_rng(seed)
    out = np.full((len(layers), per_layer), -1, dtype=np.int64)
    for i, layer in enumerate(layers):
        take = min(per_layer, layer.numel)
        out[i, :take] = layer.start + np.sort(rng.choice(layer.numel, take, replace=False))
    return out
