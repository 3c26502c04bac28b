"""Bootstrap replicates of every coordinate estimator over the independent draws behind the
stored coordinates, in vectorized batches."""

from __future__ import annotations

import numpy as np

from gradnoise.estimators import mcculloch_from_quantiles
from gradnoise.tails.block_estimators import _block_estimates, _log_abs, standardize
from gradnoise.tails.coordinate_estimators import MCCULLOCH_QUANTILES, hill_k
from gradnoise.views import RowDependence, circular_ema, innovations


class _Resampled:
    """Order statistics of bootstrap replicates without sorting each one. A replicate of the pooled
    standardized sample is the original sample with each row's values repeated as often as the row was
    drawn, so its order statistics follow from one sort of the original and the rows' counts. The
    per-coordinate scales are estimated once from all rows and held fixed across replicates (measured:
    the intervals move by less than their Monte Carlo error, ≈ 0.01)."""

    def __init__(self, z: np.ndarray) -> None:
        n = z.shape[1]
        flat = z.reshape(-1)
        up = np.argsort(flat, kind="stable")
        self.values, self.rows_up = flat[up], up // n
        a = np.abs(flat)
        down = np.argsort(-a, kind="stable")
        self.abs_down, self.rows_down = a[down], down // n
        with np.errstate(divide="ignore"):
            self.log_abs_down = np.log(self.abs_down)

    @staticmethod
    def _find(cum: np.ndarray, targets: np.ndarray, side: str) -> np.ndarray:
        """np.searchsorted of each row of targets (B × m, whole numbers) in the same row of cum
        (B × N, rows increasing), one row at a time: the targets are few, and one call on the
        flattened rows would convert all B × N counts to floats."""
        t = targets.astype(cum.dtype)
        return np.stack([np.searchsorted(c, r, side) for c, r in zip(cum, t, strict=True)])

    def quantiles(self, counts: np.ndarray, qs: tuple[float, ...]) -> np.ndarray:
        """np.quantile's linear rule on each replicate (B × len(qs))."""
        cum = np.cumsum(counts[:, self.rows_up], axis=1, dtype=counts.dtype)
        h = np.asarray(qs)[None, :] * (cum[:, -1:] - 1)
        lo = np.floor(h)
        i = self._find(cum, lo, "right")
        j = np.minimum(self._find(cum, lo + 1, "right"), cum.shape[1] - 1)
        return self.values[i] + (h - lo) * (self.values[j] - self.values[i])

    def hill(self, counts: np.ndarray, k: int) -> np.ndarray:
        """Hill's estimate with the k largest |values| of each replicate (as _hill_rows). Only a
        prefix of the sorted values can hold them: the first positions whose counts reach k + 1."""
        length = min(len(self.rows_down), 4 * (k + 1))
        while True:
            w = counts[:, self.rows_down[:length]]
            cum = np.cumsum(w, axis=1)
            if cum[:, -1].min() >= k + 1 or length == len(self.rows_down):
                break
            length = min(len(self.rows_down), 2 * length)
        logs = self.log_abs_down[:length]
        i_k = self._find(cum, np.full((len(w), 1), k), "left")[:, 0]  # holds the k-th largest
        i_t = self._find(cum, np.full((len(w), 1), k + 1), "left")[:, 0]  # the (k+1)-th: threshold
        before = np.where(i_k > 0, cum[np.arange(len(w)), np.maximum(i_k - 1, 0)], 0)
        upto = np.arange(length)[None, :] < i_k[:, None]
        top = (w * logs * upto).sum(axis=1) + (k - before) * logs[i_k]
        inv = top / k - logs[i_t]
        with np.errstate(divide="ignore"):
            return np.where(inv > 0, 1.0 / inv, np.inf)


def _sorted_estimates(x: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """McCulloch and Hill on each row of x (B × N) from one sort of the values and one of |values|
    (numpy's vectorized sort beats a partition at these sizes)."""
    v = np.sort(x, axis=1)
    h = np.asarray(MCCULLOCH_QUANTILES) * (x.shape[1] - 1)  # np.quantile's linear rule
    lo = np.floor(h).astype(int)
    hi = np.minimum(lo + 1, x.shape[1] - 1)
    q = v[:, lo] + (h - lo) * (v[:, hi] - v[:, lo])
    top = np.sort(np.abs(x), axis=1)[:, x.shape[1] - k - 1 :]
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.log(top[:, 1:] / top[:, :1]).mean(axis=1)
        hill = np.where(inv > 0, 1.0 / inv, np.inf)
    return {"mcculloch": np.array([mcculloch_from_quantiles(*row) for row in q]), "hill": hill}


def bootstrap_estimates(
    c: np.ndarray,
    dep: RowDependence,
    n_boot: int,
    hill_fraction: float,
    rng: np.random.Generator,
    max_elements: int = 2**22,
    beta: float | None = None,
) -> dict[str, np.ndarray]:
    """Bootstrap of every estimator over the independent draws behind c (P × n, stored order), in
    vectorized batches of replicates. Independent rows (`beta` None): resampled rows, the order
    statistics from the rows' counts (``_Resampled``). The averaged view (`beta`): the draws are
    recovered from the EMA, resampled, and averaged again (``gradnoise.views``), so a replicate has
    the view's dependence; the estimators then take `dep`'s blocks as on the data."""
    z = standardize(c)
    p, n = z.shape
    blocks = dep.blocks()
    k = hill_k(p * n, hill_fraction)
    per_batch = max(1, max_elements // max(1, p * n))
    if beta:
        draws = innovations(z, beta, axis=0)
    else:
        sample = _Resampled(z)
        log_z = _log_abs(z)
        count_type = np.int32 if p * n < 2**31 else np.int64
    reps: dict[str, list[np.ndarray]] = {}
    for start in range(0, n_boot, per_batch):
        nb = min(per_batch, n_boot - start)
        idx = rng.integers(0, p, (nb, p))
        if beta:
            a = circular_ema(draws[idx], beta, axis=1)
            est = _block_estimates(a, blocks)
            est.update(_sorted_estimates(a.reshape(nb, -1), k))
        else:
            est = _block_estimates(z[idx], blocks, log_z[idx])
            # counts of each row of z in each replicate
            counts = np.bincount((idx + p * np.arange(nb)[:, None]).ravel(), minlength=nb * p)
            counts = counts.reshape(nb, p).astype(count_type)
            q = sample.quantiles(counts, MCCULLOCH_QUANTILES)
            est["mcculloch"] = np.array([mcculloch_from_quantiles(*row) for row in q])
            est["hill"] = sample.hill(counts, k)
        for name, values in est.items():
            reps.setdefault(name, []).append(values)
    return {k: np.concatenate(v) for k, v in reps.items()}
