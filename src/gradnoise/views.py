"""The noise views that drive each optimizer's update (DESIGN.md §3), and the dependence between the
rows of each view that every block estimator and every bootstrap must respect.

- ``raw`` u_k and ``preconditioned`` u_k / (√v̂ + eps): independent draws (one row per minibatch).
- ``averaged``: the circular β-EMA a_k = c Σ_{j<P} β^j u_{(k−j) mod P}, c = (1 − β)/(1 − β^P), rescaled so
  that iid rows keep their variance. Rows k and k + s are correlated ≈ β^s. An EMA of iid SαS(α) draws
  is exactly SαS(α) (stability), so the view has the tail index of its inputs when they are stable; but
  summing K1 consecutive rows, as the block estimators do, does not give K1^(1/α) times one row.

The fix used here: order the rows so that neighbours are ``lag`` rows apart in the EMA (β^lag below a
correlation bound), so any block of consecutive rows in that order holds near-independent draws; and
resample whole circular blocks of ``lag`` rows in the bootstrap (Politis & Romano's circular block
bootstrap) instead of single rows. With ``lag`` = 1 both reduce to the plain versions used for the
independent views. Effective number of independent draws of an EMA of P draws: ≈ P(1 − β)/(1 + β)
(the variance inflation of the mean of an AR(1) with coefficient β).
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


@dataclass(frozen=True)
class RowDependence:
    """How far apart (in rows) two draws of a view must be to count as independent."""

    p: int
    lag: int

    @classmethod
    def of(cls, p: int, beta: float | None, max_correlation: float) -> RowDependence:
        """lag = the smallest m with β^m ≤ max_correlation (1 for independent rows)."""
        if not beta:
            return cls(p, 1)
        return cls(p, max(1, math.ceil(math.log(max_correlation) / math.log(beta))))

    @property
    def usable(self) -> bool:
        """The stride order keeps neighbours ≥ lag apart across the wrap only with ≥ 3 rounds."""
        return self.lag == 1 or self.p // self.lag >= 3

    def order(self) -> np.ndarray:
        """Rows in stride order 0, lag, 2·lag, …, 1, 1 + lag, …: neighbours are ≥ lag apart, also
        across the wrap (the last P mod lag rows are left out so that every round has the same length).
        The identity for lag = 1, so independent views keep the reference layout."""
        if self.lag == 1:
            return np.arange(self.p)
        rounds = self.p // self.lag
        return np.arange(rounds * self.lag).reshape(rounds, self.lag).T.reshape(-1)

    def resample(self, n_boot: int, rng: np.random.Generator) -> np.ndarray:
        """n_boot × P row indices of a circular block bootstrap with blocks of `lag` rows (the plain
        bootstrap over rows for lag = 1, drawn exactly as rng.integers(0, P, (n_boot, P)))."""
        if self.lag == 1:
            return rng.integers(0, self.p, (n_boot, self.p))
        n_blocks = -(-self.p // self.lag)
        starts = rng.integers(0, self.p, (n_boot, n_blocks))
        idx = (starts[:, :, None] + np.arange(self.lag)) % self.p
        return idx.reshape(n_boot, -1)[:, : self.p]
