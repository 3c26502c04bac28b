"""The noise views that drive each optimizer's update (DESIGN.md §3), and the dependence between the
rows of each view that every block estimator and every bootstrap must respect.

- ``raw`` u_k and ``preconditioned`` u_k / (√v̂ + eps): independent draws (one row per minibatch).
- ``averaged``: the circular β-EMA a_k = c Σ_{j<P} β^j u_{(k−j) mod P}, c = (1 − β)/(1 − β^P), rescaled so
  that iid rows keep their variance. Rows k and k + s are correlated ≈ β^s. An EMA of iid SαS(α) draws
  is exactly SαS(α) (stability), so the view has the tail index of its inputs when they are stable; but
  summing K1 consecutive rows, as the block estimators do, does not give K1^(1/α) times one row.

What the estimators do about it (``RowDependence``):
- Blocks: each block holds K1 rows pairwise ≥ 2·``lag`` apart (circularly; β^lag ≤ the correlation
  bound, so members correlate ≤ its square), the rows r, r + s, …, r + (K1 − 1)s for r < s = ⌊P/K1⌋ with
  K1 = min(⌊√P⌋, ⌊P/(2·lag)⌋). Blocks may depend on each other (that costs variance, not bias); the
  members of one block may not. The earlier scheme (consecutive blocks of a stride order with rows
  ``lag`` apart) let blocks wrap into the next stride round, so a block held rows one EMA step apart
  (correlation β): Gaussian draws read 1.72 at P = 400, β = 0.9. Residual bias of the spacing: a
  correlation ρ between block neighbours moves a Gaussian α̂ by ≈ −4ρ(K1 − 1)/(K1 ln K1), below 0.01
  at ρ = 0.05².
- Bootstrap: the draws behind the view are independent, and the EMA is invertible
  (u_k ∝ a_k − β a_{k−1}, exactly, for the circular EMA), so a replicate resamples the recovered draws
  and averages them again (``innovations``, ``circular_ema``): the replicate has the view's dependence
  by construction. Resampling rows, or circular runs of rows, of the averaged view would not (runs
  that overlap put copies of one draw into one block).
Effective number of independent draws of an EMA of P draws: ≈ P(1 − β)/(1 + β) (the variance inflation
of the mean of an AR(1) with coefficient β).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

VIEWS = ("raw", "preconditioned", "averaged")


def momentum_of(optimizer: str, hparams: dict[str, Any]) -> float | None:
    """The EMA coefficient that averages the noise in this optimizer's update (None: no averaging)."""
    if optimizer == "sgdm":
        return float(hparams.get("momentum", 0.9))
    if optimizer in ("adam", "adamw"):
        return float(hparams.get("betas", (0.9, 0.999))[0])
    if optimizer in ("adai", "adaiw"):
        # Adai's β1 is adaptive; its mean is ≈ 1 − β0 (since mean v̂/v̄ = 1).
        return 1.0 - float(hparams.get("betas", (0.1, 0.99))[0])
    return None


def averaging_weights(p: int, beta: float) -> np.ndarray:
    """c β^j for j < P, normalized to unit sum of squares (iid rows keep their variance)."""
    w = (1 - beta) / (1 - beta**p) * beta ** np.arange(p)
    return w / np.sqrt(np.sum(w**2))


def averaging_matrix(p: int, beta: float) -> np.ndarray:
    """A with (A u)_k = the normalized circular β-EMA of rows u (see the module docstring)."""
    k = np.arange(p)
    return averaging_weights(p, beta)[(k[:, None] - k[None, :]) % p]


def effective_draws(p: int, beta: float | None) -> float:
    """≈ number of independent draws among P rows of the view."""
    return float(p) if not beta else p * (1 - beta) / (1 + beta)


def innovations(a: np.ndarray, beta: float, axis: int = -2) -> np.ndarray:
    """The draws u with a = circular_ema(u, β) along `axis`: for the circular EMA with normalized
    weights w, a_k − β a_{k−1} = w_0 (1 − β^P) u_k exactly (the sum telescopes)."""
    a = np.asarray(a, dtype=np.float64)
    p = a.shape[axis]
    w0 = averaging_weights(p, beta)[0]
    return (a - beta * np.roll(a, 1, axis=axis)) / (w0 * (1 - beta**p))


def circular_ema(u: np.ndarray, beta: float, axis: int = -2) -> np.ndarray:
    """averaging_matrix(P, β) @ u along `axis` for stacked arrays, as the recursion
    a_k = β a_{k−1} + w_0 (1 − β^P) u_k started at a_{−1} = a_{P−1} = Σ_j w_j u_{P−1−j}: O(P) per
    column instead of the P² of the product. One numpy step per row over every column at once, each
    rounded as scipy.signal.lfilter's first-order filter rounds it (the same bits), without
    importing scipy.signal."""
    u = np.moveaxis(np.asarray(u, dtype=np.float64), axis, -1)
    w = averaging_weights(u.shape[-1], beta)
    a = u * (w[0] * (1 - beta**w.size))  # in u's memory order: contiguous where u was
    a[..., 0] += beta * (u[..., ::-1] @ w)
    for k in range(1, w.size):
        a[..., k] += beta * a[..., k - 1]
    return np.moveaxis(a, -1, axis)


@dataclass(frozen=True)
class RowDependence:
    """How far apart (in rows) two draws of a view must be to count as independent; the estimators'
    blocks and bootstrap follow from it (see the module docstring)."""

    p: int
    lag: int

    @classmethod
    def of(cls, p: int, beta: float | None, max_correlation: float) -> RowDependence:
        """lag = the smallest m with β^m ≤ max_correlation (1 for independent rows)."""
        if not beta:
            return cls(p, 1)
        return cls(p, max(1, math.ceil(math.log(max_correlation) / math.log(beta))))

    @property
    def k1(self) -> int:
        """Rows per block: ⌊√P⌋, and for dependent rows at most P/(2·lag), so members stay 2·lag apart."""
        k1 = math.isqrt(self.p)
        return k1 if self.lag == 1 else min(k1, self.p // (2 * self.lag))

    @property
    def usable(self) -> bool:
        """Blocks of at least 2 rows exist (P ≥ 4; dependent rows: P ≥ 4·lag)."""
        return self.k1 >= 2

    def blocks(self) -> np.ndarray:
        """Row indices of the block estimators' blocks, n_blocks × K1. Independent rows: consecutive
        rows (the last P mod K1 left out); dependent rows: r + j·s, j < K1, for r < s = ⌊P/K1⌋, whose
        circular distances are all ≥ s ≥ 2·lag."""
        k1 = self.k1
        if self.lag == 1:
            m = self.p // k1 * k1
            return np.arange(m).reshape(m // k1, k1)
        s = self.p // k1
        return np.arange(s)[:, None] + s * np.arange(k1)[None, :]

    def resample(self, n_boot: int, rng: np.random.Generator) -> np.ndarray:
        """n_boot × P row indices of a circular block bootstrap with blocks of `lag` rows (the plain
        bootstrap over rows for lag = 1, drawn exactly as rng.integers(0, P, (n_boot, P))). For
        statistics that are means of per-row sums (the streamed pooled estimate); the block
        estimators resample the view's draws instead (module docstring)."""
        if self.lag == 1:
            return rng.integers(0, self.p, (n_boot, self.p))
        n_blocks = -(-self.p // self.lag)
        starts = rng.integers(0, self.p, (n_boot, n_blocks))
        idx = (starts[:, :, None] + np.arange(self.lag)) % self.p
        return idx.reshape(n_boot, -1)[:, : self.p]
