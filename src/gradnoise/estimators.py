"""Tail-index estimators on 1-D samples (vectorized numpy).

- Mohammadi, Mohammadpour & Ogata (2015), Cor. 2.4, as used by Simsekli et al. (2019) and Zhou et al.
  (2020): with block sums Y_i of K1 consecutive X_j,
  1/α̂ = (mean log|Y_i| − mean log|X_j|) / log K1, since a sum of K1 iid SαS variables is K1^(1/α)
  times one of them in distribution. The reference pools all P·D noise entries row-major and takes
  K1 = the largest divisor of N that is ≤ √N (so no entry is dropped), with eps = 2⁻⁵² inside the logs.
- McCulloch (1986): α from the quantile ratio ν = (q95 − q05)/(q75 − q25), inverted through a table
  computed from exact SαS quantiles by ``scripts/make_mcculloch_table.py``.
- Hill: 1/α̂ = mean log(|X|_(i) / |X|_(k+1)) over the k largest |X|.
"""

from __future__ import annotations

import math
from functools import cache
from importlib import resources

import numpy as np

EPS = float(np.spacing(1))  # the reference code's epsilon inside the logs
IQR_PER_STD = 1.3489795003921634  # interquartile range of N(0, 1)


def ref_k1(n: int) -> int:
    """The reference block size: the largest divisor of n that is ≤ √n."""
    for d in range(math.isqrt(n), 0, -1):
        if n % d == 0:
            return d
    raise ValueError(f"n must be positive, got {n}")


def alpha_from_log_means(mean_log_y: float, mean_log_x: float, k1: int) -> float:
    inv = (mean_log_y - mean_log_x) / math.log(k1)
    return 1.0 / inv if inv > 0 else math.inf


def alpha_mohammadi(x: np.ndarray, k1: int | None = None) -> float:
    """Mohammadi's estimator on `x` in the given order; k1=None is the reference choice."""
    x = np.asarray(x, dtype=np.float64).ravel()
    k1 = ref_k1(x.size) if k1 is None else int(k1)
    if k1 < 2:
        raise ValueError(f"block size k1 must be ≥ 2 (n = {x.size} is prime or too small)")
    n = x.size // k1 * k1
    y = x[:n].reshape(-1, k1).sum(axis=1)
    return alpha_from_log_means(
        float(np.log(np.abs(y) + EPS).mean()), float(np.log(np.abs(x[:n]) + EPS).mean()), k1
    )


def alpha_pooled_reference(noise: np.ndarray) -> float:
    """The reference estimate on an in-memory P × D noise matrix: flatten row-major, K1 = ref_k1(P·D)."""
    return alpha_mohammadi(np.asarray(noise).reshape(-1), None)


def alpha_per_column(noise: np.ndarray, k1: int | None = None) -> np.ndarray:
    """Mohammadi along axis 0 for every column of a P × n matrix (blocks of consecutive samples)."""
    x = np.asarray(noise, dtype=np.float64)
    p = x.shape[0]
    k1 = ref_k1(p) if k1 is None else k1
    m = p // k1 * k1
    y = x[:m].reshape(m // k1, k1, -1).sum(axis=1)
    inv = (np.log(np.abs(y) + EPS).mean(0) - np.log(np.abs(x[:m]) + EPS).mean(0)) / math.log(k1)
    with np.errstate(divide="ignore"):
        return np.where(inv > 0, 1.0 / inv, np.inf)


def alpha_hill(x: np.ndarray, k: int) -> float:
    """Hill's estimator on |x| with the k largest order statistics."""
    a = np.abs(np.asarray(x, dtype=np.float64).ravel())
    if not 1 <= k < a.size:
        raise ValueError(f"k must lie in [1, {a.size - 1}], got {k}")
    top = np.partition(a, a.size - k - 1)[a.size - k - 1 :]
    threshold, largest = top.min(), np.sort(top)[1:]
    if threshold <= 0:
        return math.nan
    inv = float(np.mean(np.log(largest / threshold)))
    return 1.0 / inv if inv > 0 else math.inf


@cache
def _mcculloch_table() -> tuple[np.ndarray, np.ndarray]:
    with resources.files("gradnoise").joinpath("data/mcculloch_table.npz").open("rb") as f:
        table = np.load(f)
        return table["nu"].copy(), table["alpha"].copy()


def alpha_mcculloch(x: np.ndarray) -> float:
    """McCulloch's quantile estimator for symmetric data, clipped to [0.5, 2]."""
    q = np.quantile(np.asarray(x, dtype=np.float64).ravel(), [0.05, 0.25, 0.75, 0.95])
    return mcculloch_from_quantiles(*q)


def mcculloch_from_quantiles(q05: float, q25: float, q75: float, q95: float) -> float:
    """α from ν = (q95 − q05)/(q75 − q25) through the shipped table, clipped to [0.5, 2]."""
    return float(mcculloch_from_quantile_rows(np.array([[q05, q25, q75, q95]]))[0])


def mcculloch_from_quantile_rows(q: np.ndarray) -> np.ndarray:
    """``mcculloch_from_quantiles`` of each row of q (B × 4: q05, q25, q75, q95); NaN where
    q75 ≤ q25."""
    q05, q25, q75, q95 = np.asarray(q, dtype=np.float64).T
    spread = q75 > q25
    with np.errstate(divide="ignore", invalid="ignore"):
        nu = (q95 - q05) / (q75 - q25)
    nus, alphas = _mcculloch_table()  # ν decreases as α grows; np.interp needs increasing ν
    alpha = np.clip(np.interp(nu, nus[::-1], alphas[::-1]), 0.5, 2.0)
    return np.where(spread, alpha, np.nan)
