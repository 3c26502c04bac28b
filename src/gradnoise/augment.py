"""Random augmentation of a training batch, on the batch's device, from a seeded generator — never a
precomputed copy of the data set, so every epoch sees fresh draws (as torchvision's transforms do).

- ``shift`` s: pad by s pixels with the background (a raw 0) and crop back at a uniform random offset,
  i.e. a random translation by up to s pixels in each direction: small shifts for digits, and
  "RandomCrop(32, padding=4)" for CIFAR (s = 4);
- ``flip``: a horizontal flip with probability 1/2 ("RandomHorizontalFlip").
"""

from __future__ import annotations

from typing import Any

import torch


def augment_batch(
    x: torch.Tensor, spec: dict[str, Any], background: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """A randomly shifted and/or flipped copy of x (N, C, H, W); `background` is (1, C, 1, 1)."""
    n, c, h, w = x.shape
    s = int(spec.get("shift", 0))
    if s:
        padded = background.to(x).expand(n, c, h + 2 * s, w + 2 * s).clone()
        padded[:, :, s : s + h, s : s + w] = x
        dy, dx = torch.randint(0, 2 * s + 1, (2, n), generator=generator, device=x.device)
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
        batch = torch.arange(n, device=x.device)[:, None, None, None]
        chan = torch.arange(c, device=x.device)[None, :, None, None]
        x = padded[batch, chan, rows, cols]
    if spec.get("flip"):
        flip = torch.rand(n, generator=generator, device=x.device) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    return x
