"""Anisotropy of the noise covariance from the P × P Gram matrix (DESIGN.md §4): the nonzero spectrum of
the sample covariance of P noise vectors is that of G = U Uᵀ/(P − 1), so the D × D matrix is never formed."""

from __future__ import annotations

import numpy as np


def top_share(eigenvalues: np.ndarray) -> float:
    """λ1 / Σλ: 1 for noise along one direction, 1/r for r equal directions."""
    ev = np.asarray(eigenvalues, dtype=np.float64)
    total = ev.sum()
    return float(ev.max() / total) if total > 0 else float("nan")


def effective_rank(eigenvalues: np.ndarray) -> float:
    """(Σλ)² / Σλ²: the number of equally strong directions that would give this spectrum."""
    ev = np.asarray(eigenvalues, dtype=np.float64)
    sq = np.sum(ev**2)
    return float(ev.sum() ** 2 / sq) if sq > 0 else float("nan")


def gram_spectrum(gram: np.ndarray) -> np.ndarray:
    """Eigenvalues of a (centered, normalized) Gram matrix, descending and clipped at 0."""
    return np.clip(np.linalg.eigvalsh(gram)[::-1], 0.0, None)


def bootstrap_anisotropy(
    gram: np.ndarray, n_boot: int, rng: np.random.Generator, lag: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Top share and effective rank under the Bayesian bootstrap (Rubin 1981) of the noise rows,
    exactly from the centered Gram matrix G = U Uᵀ/(P−1). Row weights w ~ Dirichlet(1): the weighted
    covariance Σ_k w_k (u_k − ū_w)(u_k − ū_w)ᵀ · P/(P−1) has the nonzero spectrum of
    M = P·√W C G Cᵀ √W with C = I − 1wᵀ, and C G Cᵀ = G − 1gᵀ − g1ᵀ + (wᵀGw) 11ᵀ with g = Gw, so M
    costs O(P²). Effective rank (tr M)²/‖M‖_F² needs no eigenvalues; λ_max comes from a few Lanczos
    steps started at G's top eigenvector, not a full O(P³) decomposition. Continuous weights keep every
    row, so M is not rank-deficient the way a resample with repeated rows is (which would bias the
    effective rank down). Dependent rows (lag > 1, see gradnoise.views) share one Dirichlet weight per
    block of `lag` consecutive rows (circular, at a random offset), the Bayesian analogue of the block
    bootstrap."""
    from scipy.sparse.linalg import eigsh

    p = gram.shape[0]
    _, top_vec = np.linalg.eigh(gram)
    start = top_vec[:, -1]
    shares, ranks = np.empty(n_boot), np.empty(n_boot)
    for b in range(n_boot):
        w = rng.dirichlet(np.ones(p)) if lag == 1 else _block_weights(p, lag, rng)
        g = gram @ w
        centered = gram - g[None, :] - g[:, None] + w @ g
        sw = np.sqrt(w)
        m = p * sw[:, None] * centered * sw[None, :]
        trace, frob2 = np.trace(m), np.sum(m * m)
        top = eigsh(m, k=1, which="LA", v0=start * sw + 1e-12, tol=1e-6)[0][0]
        shares[b] = top / trace if trace > 0 else np.nan
        ranks[b] = trace**2 / frob2 if frob2 > 0 else np.nan
    return shares, ranks


def _block_weights(p: int, lag: int, rng: np.random.Generator) -> np.ndarray:
    block = ((np.arange(p) - rng.integers(lag)) % p) // lag
    size = np.bincount(block)
    return (rng.dirichlet(np.ones(size.size)) / size)[block]
