"""Sharpness of a minimum: the top Hessian eigenvalue of the training loss by power iteration on
Hessian-vector products (PyHessian's method: random start, ≤ 100 iterations, relative tolerance 1e-3),
and Hutchinson's estimate of the Hessian trace, E[vᵀHv] with Rademacher v. Hessian-vector products
use double backpropagation, averaged over a fixed set of training batches."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

HVP = Callable[[list[torch.Tensor]], list[torch.Tensor]]


def loss_hvp(
    model: nn.Module,
    batches: list[tuple[torch.Tensor, torch.Tensor]],
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = nn.functional.cross_entropy,
) -> HVP:
    """v ↦ H v for the mean loss over `batches` (eval mode, so BN/dropout are fixed)."""
    model.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    grads_per_batch = []
    for x, y in batches:
        value = loss(model(x), y)
        grads_per_batch.append(torch.autograd.grad(value, params, create_graph=True))

    def hvp(v: list[torch.Tensor]) -> list[torch.Tensor]:
        out = [torch.zeros_like(p) for p in params]
        for grads in grads_per_batch:
            dot = sum((g * vi).sum() for g, vi in zip(grads, v, strict=True))
            hv = torch.autograd.grad(dot, params, retain_graph=True)
            out = [o + h / len(grads_per_batch) for o, h in zip(out, hv, strict=True)]
        return out

    return hvp


def _dot(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return float(sum((x * y).sum() for x, y in zip(a, b, strict=True)))


def _normalize(v: list[torch.Tensor]) -> list[torch.Tensor]:
    norm = math.sqrt(_dot(v, v))
    return [x / norm for x in v]


@dataclass(frozen=True)
class TopEigen:
    value: float
    iterations: int
    converged: bool


def top_eigenvalue(
    hvp: HVP, shapes: list[torch.Tensor], max_iter: int = 100, tol: float = 1e-3, seed: int = 0
) -> TopEigen:
    """Power iteration: the eigenvalue of largest magnitude, stopped when it changes by < tol relative."""
    gen = torch.Generator().manual_seed(seed)
    v = _normalize([torch.randn(p.shape, generator=gen).to(p) for p in shapes])
    value = math.nan
    for it in range(1, max_iter + 1):
        hv = hvp(v)
        new = _dot(hv, v)
        v = _normalize([h.detach() for h in hv])
        if math.isfinite(value) and abs(new - value) <= tol * (abs(value) + 1e-12):
            return TopEigen(new, it, True)
        value = new
    return TopEigen(value, max_iter, False)


def hutchinson_trace(
    hvp: HVP, shapes: list[torch.Tensor], n_samples: int, seed: int = 0
) -> tuple[float, float]:
    """tr(H) ≈ mean of vᵀHv over Rademacher v; returns (estimate, standard error)."""
    gen = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(n_samples):
        v = [(torch.randint(0, 2, p.shape, generator=gen) * 2 - 1).to(p) for p in shapes]
        values.append(_dot(hvp(v), v))
    t = torch.tensor(values, dtype=torch.float64)
    se = float(t.std() / math.sqrt(len(values))) if len(values) > 1 else math.nan
    return float(t.mean()), se
