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


def bootstrap_gram_spectra(
    gram: np.ndarray, n_boot: int, rng: np.random.Generator, lag: int = 1
) -> np.ndarray:
    """Spectra under the Bayesian bootstrap (Rubin 1981) of the noise rows, exactly from the centered
    Gram matrix G = U Uᵀ/(P−1). Row weights w ~ Dirichlet(1): the weighted covariance
    Σ_k w_k (u_k − ū_w)(u_k − ū_w)ᵀ · P/(P−1) has the nonzero spectrum of P·√W C G Cᵀ √W with
    C = I − 1wᵀ. Continuous weights keep every row, so the spectrum is not rank-deficient the way a
    resample with repeated rows is (which would bias the effective rank down). Dependent rows (lag > 1,
    see gradnoise.views) share one Dirichlet weight per block of `lag` consecutive rows (circular, at a
    random offset), the Bayesian analogue of the block bootstrap."""
    p = gram.shape[0]
    out = np.empty((n_boot, p))
    for b in range(n_boot):
        w = rng.dirichlet(np.ones(p)) if lag == 1 else _block_weights(p, lag, rng)
        c = np.eye(p) - np.outer(np.ones(p), w)
        sw = np.sqrt(w)
        out[b] = gram_spectrum(p * sw[:, None] * (c @ gram @ c.T) * sw[None, :])
    return out


def _block_weights(p: int, lag: int, rng: np.random.Generator) -> np.ndarray:
    block = ((np.arange(p) - rng.integers(lag)) % p) // lag
    size = np.bincount(block)
    return (rng.dirichlet(np.ones(size.size)) / size)[block]
