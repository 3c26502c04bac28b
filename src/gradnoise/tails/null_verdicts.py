"""Each α estimate beside the same estimate on a Gaussian null, with bootstrap intervals, and the
verdict rule that compares them."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gradnoise.tails.block_estimators import robust_scale
from gradnoise.tails.bootstrap import bootstrap_estimates
from gradnoise.tails.coordinate_estimators import coordinate_estimates
from gradnoise.tails.settings import TailSettings
from gradnoise.views import RowDependence, averaging_matrix


def _ci(reps: np.ndarray, level: float) -> tuple[float, float]:
    reps = reps[np.isfinite(reps)]
    if reps.size < 2:
        return math.nan, math.nan
    lo, hi = np.quantile(reps, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def verdict(
    value: float, ci: tuple[float, float], null: float, null_ci: tuple[float, float], margin: float
) -> str:
    if not all(np.isfinite([value, *ci, null, *null_ci])):
        return "inconclusive"
    if ci[1] < null_ci[0] and null - value > margin:
        return "heavy-tailed"
    if ci[0] > null - margin:
        return "not heavy-tailed"
    return "inconclusive"


@dataclass(frozen=True)
class _Estimate:
    value: float
    ci: tuple[float, float]
    null: float
    null_ci: tuple[float, float]
    q25: float = math.nan
    q75: float = math.nan


NAN2 = (math.nan, math.nan)
UNAVAILABLE = _Estimate(math.nan, NAN2, math.nan, NAN2)


def _gaussian_null(c: np.ndarray, beta: float | None, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise with c's per-column robust scale and the view's row dependence."""
    z = rng.standard_normal(c.shape)
    if beta:
        z = averaging_matrix(c.shape[0], beta) @ z
    return z * robust_scale(c)


def _coordinate(
    c: np.ndarray, beta: float | None, ts: TailSettings, rng: np.random.Generator
) -> dict[str, _Estimate]:
    """Every coordinate estimator on the stored coordinates c (P × n, finite) and on its null."""
    dep = RowDependence.of(c.shape[0], beta, ts.max_row_correlation)
    surrogate = _gaussian_null(c, beta, rng)
    est = coordinate_estimates(c, ts.hill_fraction, dep)
    est_null = coordinate_estimates(surrogate, ts.hill_fraction, dep)
    boot = bootstrap_estimates(c, dep, ts.bootstrap, ts.hill_fraction, rng, beta=beta)
    boot_null = bootstrap_estimates(surrogate, dep, ts.bootstrap, ts.hill_fraction, rng, beta=beta)
    return {
        name: _Estimate(
            v,
            _ci(boot[name], ts.ci_level),
            est_null[name][0],
            _ci(boot_null[name], ts.ci_level),
            q25,
            q75,
        )
        for name, (v, q25, q75) in est.items()
    }
