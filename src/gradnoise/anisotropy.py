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
    M = P·√W A √W with A = C G Cᵀ = G − 1gᵀ − g1ᵀ + s 11ᵀ (C = I − 1wᵀ, g = Gw, s = wᵀGw, Σw = 1).
    No replicate's M is formed: tr M = P (wᵀdiag G − s), ‖M‖²_F = P² (wᵀ(G∘G)w − 2 Σ w g² + s²)
    (expand Σ w_i w_j A_ij²), and λ_max comes from Lanczos on x ↦ P √w ⊙ A(√w ⊙ x), run on all
    replicates at once so that each step is one product G·[y_1 … y_B] (_top_eigenvalues).
    Continuous weights keep every row, so M is not rank-deficient the way a resample with repeated
    rows is (which would bias the effective rank down). Dependent rows (lag > 1, see gradnoise.views)
    share one Dirichlet weight per block of `lag` consecutive rows (circular, at a random offset),
    the Bayesian analogue of the block bootstrap."""
    p = gram.shape[0]
    w = np.stack(
        [
            rng.dirichlet(np.ones(p)) if lag == 1 else _block_weights(p, lag, rng)
            for _ in range(n_boot)
        ],
        axis=1,
    )  # P × B, drawn in the order of the replicates
    g = gram @ w
    s = np.einsum("pb,pb->b", w, g)
    trace = p * (np.diag(gram) @ w - s)
    frob2 = p**2 * (
        np.einsum("pb,pb->b", w, (gram * gram) @ w) - 2 * np.einsum("pb,pb->b", w, g * g) + s**2
    )
    _, top_vec = np.linalg.eigh(gram)
    top = _top_eigenvalues(gram, w, g, s, top_vec[:, -1])
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(trace > 0, top / trace, np.nan)
        ranks = np.where(frob2 > 0, trace**2 / frob2, np.nan)
    return shares, ranks


def _top_eigenvalues(
    gram: np.ndarray,
    w: np.ndarray,
    g: np.ndarray,
    s: np.ndarray,
    start: np.ndarray,
    tol: float = 1e-10,
) -> np.ndarray:
    """λ_max of every replicate's M = P √W A √W by block-diagonal Lanczos: the B Krylov spaces are
    built side by side (full reorthogonalization, twice), each from √w ⊙ (G's top eigenvector), and
    the loop stops once every replicate's top Ritz residual is ≤ tol·θ (or the spaces fill R^P)."""
    p, n_boot = w.shape
    sw = np.sqrt(w)

    def matvec(x: np.ndarray) -> np.ndarray:  # P × B → P × B, one GEMM for all replicates
        y = sw * x
        col = y.sum(axis=0)
        ay = gram @ y - np.einsum("pb,pb->b", g, y)[None, :] - g * col + (s * col)[None, :]
        return p * sw * ay

    q = sw * start[:, None] + 1e-12
    q /= np.linalg.norm(q, axis=0)
    basis, diag, off = [q], [], []
    top = np.full(n_boot, np.nan)
    for k in range(1, p + 1):
        v = matvec(q)
        diag.append(np.einsum("pb,pb->b", v, q))
        stacked = np.stack(basis)  # k × P × B
        for _ in range(2):
            v = v - np.einsum("kpb,kb->pb", stacked, np.einsum("kpb,pb->kb", stacked, v))
        beta = np.linalg.norm(v, axis=0)
        t = np.zeros((n_boot, k, k))
        t[:, range(k), range(k)] = np.stack(diag, axis=1)
        if k > 1:
            o = np.stack(off, axis=1)
            t[:, range(k - 1), range(1, k)] = o
            t[:, range(1, k), range(k - 1)] = o
        thetas, vectors = np.linalg.eigh(t)
        top = thetas[:, -1]
        residual = beta * np.abs(vectors[:, -1, -1])
        if np.all(residual <= tol * np.abs(top)):
            break
        off.append(beta)
        q = v / np.where(beta > 0, beta, 1.0)
        basis.append(q)
    return top


def _block_weights(p: int, lag: int, rng: np.random.Generator) -> np.ndarray:
    block = ((np.arange(p) - rng.integers(lag)) % p) // lag
    size = np.bincount(block)
    return (rng.dirichlet(np.ones(size.size)) / size)[block]
