"""Sharpness of a minimum: the top Hessian eigenvalue of the training loss (the eigenvalue of largest
magnitude, as PyHessian's power iteration finds it: random start, ≤ 100 Hessian-vector products,
relative tolerance 1e-3) and Hutchinson's estimate of the Hessian trace, E[vᵀHv] with Rademacher v.
Hessian-vector products use double backpropagation, averaged over a fixed set of training batches.

`top_eigenvalue` runs Lanczos (full reorthogonalization) from the same random start as power iteration:
after k products the top Ritz value is the best estimate any method restricted to the Krylov space of
the start can give, and it stops on the Ritz residual ‖Hy − θy‖ ≤ tol·|θ|, a bound on the eigenvalue's
error (|θ − λ| ≤ residual) that power iteration's stopping rule (the estimate changed by < tol) is not.
Power iteration (`power_iteration`) stays as the cross-check; its error decays like (λ2/λ1)^(2k),
Lanczos's like a Chebyshev polynomial of the gap, so it needs far fewer products on a Hessian
spectrum with a small relative gap."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

HVP = Callable[[list[torch.Tensor]], list[torch.Tensor]]


def _cross_entropy(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    x, y = batch
    return nn.functional.cross_entropy(model(x), y)


def loss_hvp(
    model: nn.Module,
    batches: list[tuple[torch.Tensor, torch.Tensor]],
    loss: Callable[[nn.Module, tuple[torch.Tensor, torch.Tensor]], torch.Tensor] = _cross_entropy,
) -> HVP:
    """v ↦ H v for the mean loss over `batches` (eval mode, so BN/dropout are fixed);
    ``loss(model, (x, y))`` is a batch's mean loss (``gradnoise.tasks``). Attention runs its math
    kernel: the fused CPU kernels have no second derivative."""
    model.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    grads_per_batch = []
    for batch in batches:
        with sdpa_kernel(SDPBackend.MATH):
            value = loss(model, batch)
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


def _start(shapes: list[torch.Tensor], seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return _normalize([torch.randn(p.shape, generator=gen).to(p) for p in shapes])


def top_eigenvalue(
    hvp: HVP, shapes: list[torch.Tensor], max_iter: int = 100, tol: float = 1e-3, seed: int = 0
) -> TopEigen:
    """Lanczos: the eigenvalue of largest magnitude after at most `max_iter` products, converged when
    the Ritz residual is ≤ tol·|θ|. `iterations` counts Hessian-vector products. The Krylov basis is
    kept in float64 (D × k: 0.5 MB per 61,706-parameter vector) and reorthogonalized twice per step."""
    v = _start(shapes, seed)
    sizes = [p.numel() for p in shapes]

    def flat(parts: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat([x.detach().reshape(-1).double() for x in parts])

    def unflat(x: torch.Tensor) -> list[torch.Tensor]:
        return [c.reshape(p.shape).to(p) for c, p in zip(x.split(sizes), shapes, strict=True)]

    q = flat(v)
    q = q / q.norm()
    basis, diag, off = [q], [], []
    value = math.nan
    for k in range(1, max_iter + 1):
        w = flat(hvp(unflat(q)))
        diag.append(float(w @ q))
        stacked = torch.stack(basis)
        for _ in range(2):  # full reorthogonalization, twice ("twice is enough")
            w = w - stacked.T @ (stacked @ w)
        beta = float(w.norm())
        thetas, vectors = _tridiagonal_eigh(np.array(diag), np.array(off))
        top = int(np.argmax(np.abs(thetas)))
        value = float(thetas[top])
        residual = beta * abs(vectors[-1, top])
        if residual <= tol * abs(value) or beta <= 1e-12 * max(abs(value), 1e-300):
            return TopEigen(value, k, True)
        off.append(beta)
        q = w / beta
        basis.append(q)
    return TopEigen(value, max_iter, False)


def _tridiagonal_eigh(diag: np.ndarray, off: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = np.diag(diag) + np.diag(off, 1) + np.diag(off, -1)
    return np.linalg.eigh(t)


def power_iteration(
    hvp: HVP, shapes: list[torch.Tensor], max_iter: int = 100, tol: float = 1e-3, seed: int = 0
) -> TopEigen:
    """Power iteration: the eigenvalue of largest magnitude, stopped when it changes by < tol relative."""
    v = _start(shapes, seed)
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
