"""The driving noise split at a jump length δ for the jump-adapted scheme: the big jumps as a
compound Poisson process, the small ones as a Brownian motion of the same covariance."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gradnoise.levy import open_uniform, small_jump_variance, tail_rate
from gradnoise.sde.basins import Basin
from gradnoise.sde.driving_noise import Noise


@dataclass(frozen=True)
class _NoiseSplit:
    """ε M dL split at jump length δ: big jumps (rate, source probabilities, per-source δ in units
    of L and per-source state jump per unit of L) and the Brownian part (variance rate q per
    coordinate, Cholesky factor of its correlation or None)."""

    rate: float
    source_p: torch.Tensor
    delta: torch.Tensor
    direction: torch.Tensor
    q: torch.Tensor
    corr_chol: torch.Tensor | None


def _split_noise(
    basin: Basin, noise: Noise, eps: float, threshold: float, dev: torch.device
) -> _NoiseSplit:
    """Independent coordinates: one compound Poisson process per column m_j with δ_j = threshold ·
    (the L-length that leaves G along ±m_j) / ε. Isotropic: one with δ = threshold · (the shortest
    L-length that leaves G) / ε and uniform directions. Brownian covariance ε² Σ_j σ²(δ_j) m_j m_jᵀ,
    resp. ε² σ²_d(δ) M Mᵀ (levy.small_jump_variance)."""
    a, m = noise.alpha, noise.m
    if noise.model == "independent":
        cols = m.T[np.linalg.norm(m, axis=0) > 0]
        reach = np.minimum(basin.exit_distance(cols), basin.exit_distance(-cols))
        delta = threshold * reach / eps
        rates = np.array([tail_rate(a, dl) for dl in delta])
        cov = eps**2 * np.einsum(
            "j,ji,jk->ik", [small_jump_variance(a, dl) for dl in delta], cols, cols
        )
        direction = eps * cols
    else:
        delta = np.array([threshold * basin.min_exit_distance(m) / eps])
        rates = np.array([tail_rate(a, delta[0], basin.dim)])
        cov = eps**2 * small_jump_variance(a, delta[0], basin.dim) * m @ m.T
        direction = eps * m
    q = np.diag(cov).copy()
    sd = np.sqrt(np.where(q > 0, q, 1.0))
    corr = cov / np.outer(sd, sd)
    correlated = not np.allclose(corr, np.diag(np.diag(corr)))
    f32 = torch.float32
    return _NoiseSplit(
        rate=float(rates.sum()),
        source_p=torch.as_tensor(rates / rates.sum(), dtype=f32, device=dev),
        delta=torch.as_tensor(delta, dtype=f32, device=dev),
        direction=torch.as_tensor(direction, dtype=f32, device=dev),
        q=torch.as_tensor(q, dtype=f32, device=dev),
        corr_chol=torch.linalg.cholesky(torch.as_tensor(corr, dtype=f32, device=dev))
        if correlated
        else None,
    )


def _big_jumps(split: _NoiseSplit, noise: Noise, n: int, gen: torch.Generator) -> torch.Tensor:
    """n draws of the compound Poisson jump of the state: a source by its rate, a Pareto length
    δ U^(−1/α) in units of L, then ±(ε m_j) (independent) or ε M u with u uniform on the sphere."""
    dev, dtype = split.q.device, split.q.dtype
    src = torch.searchsorted(split.source_p.cumsum(0), open_uniform((n,), gen, dev, dtype))
    src = src.clamp(max=len(split.source_p) - 1)
    length = split.delta[src] * open_uniform((n,), gen, dev, dtype) ** (-1 / noise.alpha)
    if noise.model == "independent":
        sign = torch.where(open_uniform((n,), gen, dev, dtype) < 0.5, -1.0, 1.0)
        return (sign * length)[:, None] * split.direction[src]
    d = split.direction.shape[1]
    u = torch.nn.functional.normalize(
        torch.randn((n, d), generator=gen, device=dev, dtype=dtype), dim=1
    )
    return length[:, None] * (u @ split.direction.T)
