"""Bootstrap replicates of every coordinate estimator over the independent draws behind the
stored coordinates, in vectorized batches."""

from __future__ import annotations

import math

import numpy as np

from gradnoise.estimators import mcculloch_from_quantile_rows
from gradnoise.tails.block_estimators import (
    _block_estimates,
    _estimates_of_inverse,
    _log_abs,
    standardize,
)
from gradnoise.tails.coordinate_estimators import MCCULLOCH_QUANTILES, hill_k
from gradnoise.views import RowDependence, circular_ema, innovations


class _Order:
    """One order of the N pooled values, as the rows (of P) that hold them, for running counts of
    resampled rows along it: in replicate b, position i counts counts[b, rows[i]] times. The order is
    cut into chunks of ⌈√N⌉ positions; one product counts @ (P × chunks: how often each row occurs
    in each chunk) gives every replicate's count per chunk, and only the chunk where a search ends is
    expanded, instead of a running sum over all B × N positions. Counts are whole numbers in float64,
    so every count is exact; `values` (one per position) are what ``prefix`` weights them by."""

    def __init__(self, rows: np.ndarray, p: int, values: np.ndarray) -> None:
        n = rows.size
        self.size = n
        self.width = width = math.isqrt(n - 1) + 1
        n_chunks = -(-n // width)
        cell = rows * n_chunks + np.arange(n) // width
        self.per_chunk = np.bincount(cell, minlength=p * n_chunks).reshape(p, n_chunks) * 1.0
        sums = np.bincount(cell, weights=values, minlength=p * n_chunks)
        self.value_per_chunk = sums.reshape(p, n_chunks)
        # padded by a chunk of row p (no replicate draws it), where a search past the end ends
        self.rows = np.full((n_chunks + 1) * width, p)
        self.rows[:n] = rows
        self.values = np.zeros(self.rows.size)
        self.values[:n] = values

    def _expand(self, counts: np.ndarray, chunk: np.ndarray) -> np.ndarray:
        """counts of the positions of `chunk` (B × T chunk indices): B × T × width."""
        pos = chunk[..., None] * self.width + np.arange(self.width)
        padded = np.concatenate([counts, np.zeros((len(counts), 1))], axis=1)
        return padded[np.arange(len(counts))[:, None, None], self.rows[pos]]

    def search(self, counts: np.ndarray, targets: np.ndarray, side: str) -> np.ndarray:
        """np.searchsorted(np.cumsum(counts[b, rows]), targets[b], side) for each replicate b
        (counts B × P, targets B × T whole numbers): the first position whose running count is
        > the target (side "right") or ≥ it ("left")."""
        cum = np.cumsum(counts @ self.per_chunk, axis=1)
        stop = np.less_equal if side == "right" else np.less
        chunk = stop(cum[:, None, :], targets[:, :, None]).sum(axis=2)
        before = np.take_along_axis(np.pad(cum, ((0, 0), (1, 0))), chunk, axis=1)
        run = before[..., None] + np.cumsum(self._expand(counts, chunk), axis=2)
        inside = stop(run, targets[..., None]).sum(axis=2)
        return np.minimum(chunk * self.width + inside, self.size)

    def prefix(self, counts: np.ndarray, ends: np.ndarray, weighted: bool) -> np.ndarray:
        """Σ over positions i < ends[b] of counts[b, rows[i]] (times values[i] if `weighted`),
        for each replicate b (ends: B whole numbers ≤ N)."""
        per_chunk = self.value_per_chunk if weighted else self.per_chunk
        chunk = ends // self.width
        full = np.cumsum(np.pad(counts @ per_chunk, ((0, 0), (1, 0))), axis=1)
        w = self._expand(counts, chunk[:, None])[:, 0]
        if weighted:
            w = w * self.values[chunk[:, None] * self.width + np.arange(self.width)]
        left = np.arange(self.width)[None, :] < (ends - chunk * self.width)[:, None]
        return full[np.arange(len(counts)), chunk] + np.where(left, w, 0.0).sum(axis=1)


class _Resampled:
    """Order statistics of bootstrap replicates without sorting each one. A replicate of the pooled
    standardized sample is the original sample with each row's values repeated as often as the row was
    drawn, so its order statistics follow from one sort of the original and the rows' counts. The
    per-coordinate scales are estimated once from all rows and held fixed across replicates (measured:
    the intervals move by less than their Monte Carlo error, ≈ 0.01)."""

    def __init__(self, z: np.ndarray) -> None:
        p, n = z.shape
        flat = z.reshape(-1)
        up = np.argsort(flat, kind="stable")
        self.values = flat[up]
        self.up = _Order(up // n, p, self.values)
        a = np.abs(flat)
        down = np.argsort(-a, kind="stable")
        with np.errstate(divide="ignore"):
            self.log_abs_down = np.log(a[down])
        self.down = _Order(down // n, p, self.log_abs_down)

    def quantiles(self, counts: np.ndarray, qs: tuple[float, ...]) -> np.ndarray:
        """np.quantile's linear rule on each replicate (B × len(qs)); counts: B × P."""
        counts = np.asarray(counts, dtype=np.float64)
        total = counts.sum(axis=1, keepdims=True) * (self.up.size // counts.shape[1])
        h = np.asarray(qs)[None, :] * (total - 1)
        lo = np.floor(h)
        ij = self.up.search(counts, np.concatenate([lo, lo + 1], axis=1), "right")
        i, j = ij[:, : len(qs)], np.minimum(ij[:, len(qs) :], self.up.size - 1)
        return self.values[i] + (h - lo) * (self.values[j] - self.values[i])

    def hill(self, counts: np.ndarray, k: int) -> np.ndarray:
        """Hill's estimate with the k largest |values| of each replicate (as _hill_rows): the
        positions, in decreasing |value|, that hold the k-th and (k+1)-th largest, and the counted
        log |values| before the k-th."""
        counts = np.asarray(counts, dtype=np.float64)
        targets = np.repeat([[k, k + 1]], len(counts), axis=0)
        i_k, i_t = self.down.search(counts, targets, "left").T  # the k-th; the (k+1)-th: threshold
        before = self.down.prefix(counts, i_k, weighted=False)
        # zero values have log −inf: where the k largest reach one, top is −inf or NaN, and the
        # estimate is inf, as _hill_rows reads it; a zero threshold alone gives 0
        with np.errstate(invalid="ignore", divide="ignore"):
            logs = self.down.prefix(counts, i_k, weighted=True)
            inv = (logs + (k - before) * self.log_abs_down[i_k]) / k - self.log_abs_down[i_t]
            return np.where(inv > 0, 1.0 / inv, np.inf)


def _sorted_estimates(x: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """McCulloch and Hill on each row of x (B × N) from one sort of the values (numpy's vectorized
    sort beats a partition at these sizes): the k + 1 largest |values| are among the k + 1 smallest
    and the k + 1 largest values."""
    n = x.shape[1]
    v = np.sort(x, axis=1)
    h = np.asarray(MCCULLOCH_QUANTILES) * (n - 1)  # np.quantile's linear rule
    lo = np.floor(h).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    q = v[:, lo] + (h - lo) * (v[:, hi] - v[:, lo])
    ends = v if 2 * (k + 1) >= n else np.concatenate([v[:, : k + 1], v[:, n - k - 1 :]], axis=1)
    top = np.sort(np.abs(ends), axis=1)[:, ends.shape[1] - k - 1 :]
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.log(top[:, 1:] / top[:, :1]).mean(axis=1)
        hill = np.where(inv > 0, 1.0 / inv, np.inf)
    return {"mcculloch": mcculloch_from_quantile_rows(q), "hill": hill}


class _ResampledBlocks:
    """The block estimators on resampled rows of z (P × n), blocks as `blocks` (n_blocks × K1 row
    positions covering 0 … n_blocks·K1 − 1, as in ``_inverse_alphas``), without forming each
    replicate: a block's sum adds the drawn rows of z, and a replicate's mean log |value| is its
    counts of the rows drawn at the covered positions times the rows' log |values|."""

    def __init__(self, z: np.ndarray, blocks: np.ndarray) -> None:
        self.z, self.log_z, self.blocks = z, _log_abs(z), blocks

    def estimates(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        """Every block estimator on the replicates z[idx] (idx: B × P row indices)."""
        nb, p = idx.shape
        m = self.blocks.size
        rows = idx[:, self.blocks]
        y = self.z[rows[..., 0]]
        for j in range(1, self.blocks.shape[1]):  # the order of _inverse_alphas' sum
            y += self.z[rows[..., j]]
        counts = np.bincount((idx[:, :m] + p * np.arange(nb)[:, None]).ravel(), minlength=nb * p)
        mean_log_z = counts.reshape(nb, p).astype(np.float64) @ self.log_z / m
        inv = (_log_abs(y).mean(1) - mean_log_z) / math.log(self.blocks.shape[1])
        return _estimates_of_inverse(inv)


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
    vectorized batches of replicates. Independent rows (`beta` None): resampled rows, the block sums
    and order statistics from the rows' counts (``_ResampledBlocks``, ``_Resampled``). The averaged
    view (`beta`): the draws are recovered from the EMA, resampled, and averaged again
    (``gradnoise.views``), so a replicate has the view's dependence; the estimators then take `dep`'s
    blocks as on the data."""
    z = standardize(c)
    p, n = z.shape
    blocks = dep.blocks()
    k = hill_k(p * n, hill_fraction)
    per_batch = max(1, max_elements // max(1, p * n))
    if beta:
        draws = innovations(z, beta, axis=0)
    else:
        sample = _Resampled(z)
        resampled_blocks = _ResampledBlocks(z, blocks)
    reps: dict[str, list[np.ndarray]] = {}
    for start in range(0, n_boot, per_batch):
        nb = min(per_batch, n_boot - start)
        idx = rng.integers(0, p, (nb, p))
        if beta:
            a = circular_ema(draws[idx], beta, axis=1)
            est = _block_estimates(a, blocks)
            est.update(_sorted_estimates(a.reshape(nb, -1), k))
        else:
            est = resampled_blocks.estimates(idx)
            # counts of each row of z in each replicate
            counts = np.bincount((idx + p * np.arange(nb)[:, None]).ravel(), minlength=nb * p)
            counts = counts.reshape(nb, p).astype(np.float64)
            est["mcculloch"] = mcculloch_from_quantile_rows(
                sample.quantiles(counts, MCCULLOCH_QUANTILES)
            )
            est["hill"] = sample.hill(counts, k)
        for name, values in est.items():
            reps.setdefault(name, []).append(values)
    return {k: np.concatenate(v) for k, v in reps.items()}
