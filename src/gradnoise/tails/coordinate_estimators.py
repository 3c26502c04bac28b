"""Every α estimator on one matrix of stored coordinates: the block estimators, McCulloch's
quantiles and Hill's order statistics."""

from __future__ import annotations

import math

import numpy as np

from gradnoise.estimators import mcculloch_from_quantiles
from gradnoise.tails.block_estimators import _block_estimates, standardize
from gradnoise.tails.settings import TailSettings
from gradnoise.views import RowDependence, effective_draws

COORDINATE_ESTIMATORS = ("pooled_standardized", "per_coordinate", "mcculloch", "hill")


MCCULLOCH_QUANTILES = (0.05, 0.25, 0.75, 0.95)


def hill_k(n: int, hill_fraction: float) -> int:
    return max(1, int(hill_fraction * n))


def _hill_rows(a: np.ndarray, k: int) -> np.ndarray:
    top = np.sort(np.partition(a, a.shape[1] - k - 1, axis=1)[:, a.shape[1] - k - 1 :], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.log(top[:, 1:] / top[:, :1]).mean(axis=1)
        return np.where(inv > 0, 1.0 / inv, np.inf)


def coordinate_estimates(
    c: np.ndarray, hill_fraction: float, dep: RowDependence | None = None
) -> dict[str, tuple[float, float, float]]:
    """The estimators on one stored-coordinate matrix (P × n; rows as `dep` says, None: independent):
    value, q25, q75 (the quartiles over coordinates for per_coordinate)."""
    z = standardize(c)
    dep = RowDependence(c.shape[0], 1) if dep is None else dep
    est = _block_estimates(z[None], dep.blocks())
    flat = z.reshape(-1)
    nan = math.nan
    if flat.size > hill_k(flat.size, hill_fraction) + 1:
        est["mcculloch"] = [mcculloch_from_quantiles(*np.quantile(flat, MCCULLOCH_QUANTILES))]
        est["hill"] = _hill_rows(np.abs(flat)[None], hill_k(flat.size, hill_fraction))
    else:
        est["mcculloch"] = est["hill"] = [nan]
    return {
        name: (
            float(est[name][0]),
            float(est[f"{name}_q25"][0]) if name == "per_coordinate" else nan,
            float(est[f"{name}_q75"][0]) if name == "per_coordinate" else nan,
        )
        for name in COORDINATE_ESTIMATORS
    }


def alpha_of_view(
    samples: np.ndarray,
    view: str,
    beta: float | None,
    estimator: str,
    max_correlation: float = TailSettings.max_row_correlation,
    min_effective_draws: float = TailSettings.min_effective_draws,
) -> float:
    """α̂ of one view's noise. `samples`: P × n, the rows of that view exactly as the noise stage
    stores them (for ``averaged``: the circular β-EMA of the draws, `beta` its coefficient);
    `estimator`: pooled_standardized, per_coordinate or mcculloch. NaN only where no estimate is
    possible: too few effective independent draws, or no column with spread."""
    c = np.asarray(samples, dtype=np.float64)
    b = beta if view == "averaged" else None
    dep = RowDependence.of(c.shape[0], b, max_correlation)
    if not dep.usable or effective_draws(c.shape[0], b) < min_effective_draws:
        return math.nan
    return coordinate_estimates(c, 0.05, dep)[estimator][0]
