"""Estimates from simulated exit times: the censored mean with its χ² interval, and the log-log
slope of the mean exit time against ε."""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gammaincinv


def _chi2_quantile(p: float, df: float) -> float:
    """The χ²_df quantile at p, by scipy.stats.chi2.ppf's own formula 2 P⁻¹(df/2, p) (P the
    regularized lower incomplete gamma function): scipy.special is already loaded where this runs,
    scipy.stats would be imported for these two numbers alone."""
    return float(2 * gammaincinv(df / 2, p))


def exponential_mle(
    times: np.ndarray, exited: np.ndarray, level: float = 0.95
) -> tuple[float, float, float]:
    """Mean exit time under censoring: Σ min(σ_i, T)/#exits, with the χ² interval
    [2S/χ²_{1−a/2}(2r), 2S/χ²_{a/2}(2r)] (exact for Exp(1)-shaped σ/Eσ, as DESIGN.md §5a states)."""
    r = int(np.sum(exited))
    total = float(np.sum(times))
    if r == 0:
        return math.inf, total / _chi2_quantile((1 + level) / 2, 2), math.inf
    a = 1 - level
    return (
        total / r,
        2 * total / _chi2_quantile(1 - a / 2, 2 * r),
        2 * total / _chi2_quantile(a / 2, 2 * r),
    )


def loglog_slope(eps: np.ndarray, times: np.ndarray) -> float:
    """Least-squares slope of log Γ against log ε (≈ −α for jump-driven exits)."""
    return float(np.polyfit(np.log(eps), np.log(times), 1)[0])
