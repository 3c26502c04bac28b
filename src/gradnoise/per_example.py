"""Per-example gradients at a checkpoint, reduced as they are computed (DESIGN.md §11).

The generalized-CLT study needs, for each of N examples, the gradient of its own loss at the stored
coordinates of the noise stage (``noise.stored_coordinates``, so that the per-example pool and the
minibatch noise are read at the same parameters) and the norm of its gradient in every layer
(``noise.layers_of``). The N × D matrix is never formed: ``torch.func`` computes the gradients of a
chunk of examples at once (``vmap`` over ``grad`` of a ``functional_call``), and each chunk is
reduced to those N_chunk × (C + L) numbers before the next one starts. Memory: one chunk's
per-example gradients, chunk × D × 4 bytes (``chunk_for``), plus its activations.

As in the noise stage the network is in eval mode: BatchNorm uses its running statistics, so no
example's output depends on another's, the per-example gradients are well defined, and their mean over
a minibatch is exactly the minibatch gradient that the noise stage measures. The loss is the
cross-entropy of the single example (the minibatch loss is their mean).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from gradnoise.noise import Layer, layers_of

CHUNK_MB = 64.0  # per-example gradients held at once, by default


@dataclass(frozen=True)
class PerExample:
    """What the study keeps of the N × D per-example gradients.

    coords: N × L × per_layer, float32, the gradients at ``coord_index`` (NaN where it pads, −1);
    norms: N × L, float64, the Euclidean norm of each example's gradient in each layer."""

    coords: np.ndarray
    norms: np.ndarray
    coord_index: np.ndarray
    layers: list[Layer]


def chunk_for(d: int, chunk_mb: float = CHUNK_MB) -> int:
    """Examples per chunk so that their float32 gradients (chunk × D) take about `chunk_mb` MiB."""
    return max(1, int(chunk_mb * 2**20) // (4 * d))


def _example_loss(model: nn.Module):
    """loss(params, buffers, x, y) of one example (x without its batch axis), for ``torch.func``."""

    def loss(params: dict, buffers: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, (params, buffers), (x.unsqueeze(0),))
        return nn.functional.cross_entropy(out, y.unsqueeze(0))

    return loss


def _reducer(layers: list[Layer], coord_index: np.ndarray, device: torch.device):
    """reduce(grads) → (chunk × L × per_layer coordinates, chunk × L norms) for a dict of
    per-example gradients keyed by parameter name in ``layers``' order."""
    picks = []
    for i, layer in enumerate(layers):
        live = np.flatnonzero(coord_index[i] >= 0)
        local = torch.as_tensor(coord_index[i, live] - layer.start, device=device)
        picks.append((layer.name, torch.as_tensor(live, device=device), local))
    per_layer = coord_index.shape[1]

    def reduce(grads: dict[str, torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
        n = next(iter(grads.values())).shape[0]
        coords = torch.full((n, len(layers), per_layer), float("nan"), device=device)
        norms = torch.empty((n, len(layers)), dtype=torch.float64, device=device)
        for i, (name, live, local) in enumerate(picks):
            g = grads[name].reshape(n, -1)
            coords[:, i, live] = g[:, local].float()
            # summed in float64 as read: the bits of a float64 copy's norm, without the copy (twice
            # the layer's per-example gradients, which chunk_for does not count)
            norms[:, i] = torch.linalg.vector_norm(g, dim=1, dtype=torch.float64)
        return coords.cpu().numpy(), norms.cpu().numpy()

    return reduce


def per_example_gradients(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    coord_index: np.ndarray,
    chunk_size: int | None = None,
) -> PerExample:
    """The per-example gradients of `model` (eval mode) on (x, y), reduced to the stored coordinates
    `coord_index` (L × per_layer flat indices, −1 pads; ``noise.stored_coordinates``) and the
    per-layer norms, `chunk_size` examples at a time (default: ``chunk_for`` D)."""
    layers = layers_of(model)
    coord_index = np.asarray(coord_index)
    if coord_index.shape[0] != len(layers):
        raise ValueError(f"coord_index has {coord_index.shape[0]} rows for {len(layers)} layers")
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        params = {k: v.detach() for k, v in model.named_parameters()}
        buffers = {k: v.detach() for k, v in model.named_buffers()}
        per_example = vmap(grad(_example_loss(model)), in_dims=(None, None, 0, 0))
        reduce = _reducer(layers, coord_index, device)
        chunk = chunk_size or chunk_for(layers[-1].stop)
        coords, norms = [], []
        for start in range(0, len(y), chunk):
            xs, ys = x[start : start + chunk].to(device), y[start : start + chunk].to(device)
            c, n = reduce(per_example(params, buffers, xs, ys))
            coords.append(c)
            norms.append(n)
    finally:
        model.train(was_training)
    return PerExample(
        np.concatenate(coords) if coords else np.empty((0, *coord_index.shape), np.float32),
        np.concatenate(norms) if norms else np.empty((0, len(layers))),
        coord_index,
        layers,
    )


def per_example_loop(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, coord_index: np.ndarray
) -> PerExample:
    """The same reduction from one loss.backward() per example: the reference that
    ``per_example_gradients`` is tested and benchmarked against."""
    layers = layers_of(model)
    reduce = _reducer(layers, np.asarray(coord_index), next(model.parameters()).device)
    was_training = model.training
    model.eval()
    coords, norms = [], []
    try:
        for i in range(len(y)):
            model.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(x[i : i + 1]), y[i : i + 1]).backward()
            grads = {k: p.grad.detach().unsqueeze(0) for k, p in model.named_parameters()}
            c, n = reduce(grads)
            coords.append(c)
            norms.append(n)
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return PerExample(
        np.concatenate(coords), np.concatenate(norms), np.asarray(coord_index), layers
    )
