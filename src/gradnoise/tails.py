"""The tails stage: from one noise file, α̂ in every variant with bootstrap CIs and a Gaussian null,
and the anisotropy of the covariance — as one tidy long-format table.

Variants (DESIGN.md §3): ``pooled`` (the reference estimator; from the streamed statistics, so it covers
every coordinate), ``pooled_standardized`` (Mohammadi with every block within one stored coordinate and
the log-means pooled over coordinates: 1/(mean over coordinates of 1/α̂); blocks across coordinates of
one minibatch read cross-coordinate dependence as heavy tails), ``per_coordinate`` (along the sample
axis of each stored coordinate, each capped at 2: median and IQR), ``mcculloch`` and ``hill`` (on the
stored coordinates each divided by its robust scale, pooled: quantiles and order statistics of the
marginals, which cross-coordinate dependence does not bias). Each is computed on a Gaussian surrogate
with the same shapes and per-coordinate scale (``null_*`` columns): for ``pooled`` the surrogate was
streamed through the exact reference layout by the noise stage. The scale is the robust one (IQR/1.349,
equal to the std for Gaussian noise): a std-matched surrogate of heavy-tailed noise inherits the
extremes through each coordinate's sample std and is itself scale-mixed.

Which estimators may decide a claim ("controlled": calibrated on SαS and Gaussian inputs through every
view at the configs' P, and reading Gaussian noise of any covariance, rank 1 to full, as its null; see
tests/test_tails.py): ``per_coordinate`` and ``pooled_standardized`` (the block estimators), and
``mcculloch`` as the independent cross-check (quantiles, no blocks). ``hill`` is a diagnostic: valid
against its null, but no α near 2 (DESIGN.md §5b). ``pooled`` is the reference number and never decides
(it reads scale mixing as heavy tails, and so does its null). Calibrated on SαS only: a finite-variance
law can read below 2 (Student-t(3)), and an EMA of sparse spikes can read above 2.

Dependent rows (DESIGN.md §3): the ``averaged`` view is an EMA of the draws, so its blocks hold rows
2·lag apart and its bootstrap resamples the draws recovered from the EMA
(``gradnoise.views.RowDependence``, ``innovations``); its Gaussian null is the same EMA of Gaussian
draws. Where it has too few effective independent draws (``min_effective_draws``) or too few rows for
a block of two (P < 4·lag), or lost rows to non-finite values, the estimates are NaN, the verdict
``inconclusive`` and the ``note`` says why. Rows with non-finite values (a NaN gradient) are skipped
and counted in ``rows_skipped``; a file where fewer than half remain is an error.

Verdict of each α estimate against its null (rule fixed here, not tuned on results):
``heavy-tailed`` if ci_high < null_ci_low and null − estimate > null_margin; ``not heavy-tailed`` if
ci_low > null − null_margin; otherwise ``inconclusive``. The pooled estimate alone never decides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from gradnoise import anisotropy
from gradnoise.estimators import (
    EPS,
    IQR_PER_STD,
    alpha_from_log_means,
    mcculloch_from_quantiles,
)
from gradnoise.io import ALL, CHECKPOINT_KEY, InputError
from gradnoise.views import (
    RowDependence,
    averaging_matrix,
    circular_ema,
    effective_draws,
    innovations,
    momentum_of,
)

TAILS_SCHEMA = pa.schema(
    [
        *CHECKPOINT_KEY,
        ("split", pa.string()),
        ("view", pa.string()),
        ("layer", pa.string()),
        ("quantity", pa.string()),
        ("estimator", pa.string()),
        ("value", pa.float64()),
        ("ci_low", pa.float64()),
        ("ci_high", pa.float64()),
        ("q25", pa.float64()),
        ("q75", pa.float64()),
        ("null_value", pa.float64()),
        ("null_ci_low", pa.float64()),
        ("null_ci_high", pa.float64()),
        ("verdict", pa.string()),
        ("n", pa.int64()),
        ("n_effective", pa.float64()),
        ("rows_skipped", pa.int64()),
        ("note", pa.string()),
        ("spectrum", pa.list_(pa.float64())),
    ]
)

COORDINATE_ESTIMATORS = ("pooled_standardized", "per_coordinate", "mcculloch", "hill")


@dataclass(frozen=True)
class TailSettings:
    bootstrap: int = 200
    seed: int = 0
    hill_fraction: float = 0.05
    ci_level: float = 0.95
    null_margin: float = 0.05
    max_row_correlation: float = 0.05
    min_effective_draws: float = 20.0


def robust_scale(c: np.ndarray, axis: int = 0) -> np.ndarray:
    """IQR/1.349 along `axis` (the std of a Gaussian with that IQR), or the std where the IQR is 0
    (see noise.iqr_scale)."""
    q25, q75 = np.quantile(c, [0.25, 0.75], axis=axis)
    iqr = (q75 - q25) / IQR_PER_STD
    return np.where(iqr > 0, iqr, c.std(axis=axis, ddof=1))


def _log_abs(x: np.ndarray) -> np.ndarray:
    return np.log(np.abs(x) + EPS)


def _consecutive(blocks: np.ndarray) -> bool:
    return bool(blocks.size) and np.array_equal(blocks.ravel(), np.arange(blocks.size))


def _inverse_alphas(
    z: np.ndarray, blocks: np.ndarray | None = None, log_z: np.ndarray | None = None
) -> tuple[np.ndarray, int]:
    """Mohammadi's 1/α̂ along the sample axis of each column of z (B × P × n), blocks within a
    column as `blocks` says (n_blocks × K1 row indices covering rows 0 … n_blocks·K1 − 1; None:
    ⌊√P⌋ consecutive rows, the independent-row layout of ``RowDependence``); and K1."""
    b, p, n = z.shape
    if blocks is None:
        blocks = RowDependence(p, 1).blocks()
    s, k1 = blocks.shape
    m = s * k1
    if _consecutive(blocks):
        y = z[:, :m].reshape(b, s, k1, n).sum(axis=2)
    else:
        y = z[:, blocks].sum(axis=2)
    log_z = _log_abs(z[:, :m]) if log_z is None else log_z[:, :m]
    return (_log_abs(y).mean(1) - log_z.mean(1)) / math.log(k1), k1


def per_coordinate_alphas(
    z: np.ndarray, blocks: np.ndarray | None = None, log_z: np.ndarray | None = None
) -> np.ndarray:
    """Mohammadi along the sample axis of each column of z (B × P × n), blocks as in
    ``_inverse_alphas`` (default: K1 = ⌊√P⌋ consecutive rows, so any P ≥ 4 works).
    An estimate ≥ 2, or 1/α̂ ≤ 0, counts as 2 — dropping those would bias the median low."""
    inv, _ = _inverse_alphas(z, blocks, log_z)
    with np.errstate(divide="ignore"):
        return np.where(inv > 0.5, 1.0 / np.maximum(inv, 0.5), 2.0)


def standardize(c: np.ndarray) -> np.ndarray:
    """The columns of c (P × n) that have spread, each divided by its robust scale, IQR/1.349.

    For Gaussian noise that is the std; but the sample std of a heavy-tailed coordinate is set by its
    few largest draws, and dividing by it mixes scales across columns, which biases the pooled
    estimators toward heavier tails (SαS(1.2), P = 2000: 1.15 with the std, 1.20 with the IQR;
    McCulloch 1.02 vs 1.20)."""
    scale = robust_scale(c)
    keep = scale > 0
    return c[:, keep] / scale[keep]


def _block_estimates(
    z: np.ndarray, blocks: np.ndarray | None = None, log_z: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """The block estimators on matrices z (B × P × n), every block within one column (one stored
    coordinate), as `blocks` says: ``pooled_standardized``, 1/(mean over columns of 1/α̂) — Mohammadi
    with the log-means pooled over all coordinates, which the column's scale cancels from — and
    ``per_coordinate``, the median over columns of α̂ capped at 2, with its quartiles.
    Blocks that added different coordinates of one minibatch (the earlier pooled layout) read the
    noise's cross-coordinate dependence as heavy tails: Gaussian noise of rank 1 read 1.60."""
    b, p, n = z.shape
    if n == 0:
        nan = np.full(b, np.nan)
        return dict.fromkeys(("pooled_standardized", *_PER_COORDINATE), nan)
    if log_z is None:
        log_z = _log_abs(z)
    inv, _ = _inverse_alphas(z, blocks, log_z)
    with np.errstate(divide="ignore"):
        per_col = np.where(inv > 0.5, 1.0 / np.maximum(inv, 0.5), 2.0)
        pooled_inv = inv.mean(axis=1)
        pooled = np.where(pooled_inv > 0, 1.0 / pooled_inv, np.inf)
    q25, med, q75 = np.quantile(per_col, (0.25, 0.5, 0.75), axis=1)
    return {
        "pooled_standardized": pooled,
        "per_coordinate": med,
        "per_coordinate_q25": q25,
        "per_coordinate_q75": q75,
    }


_PER_COORDINATE = ("per_coordinate", "per_coordinate_q25", "per_coordinate_q75")
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


def pooled_from_rows(
    log_x: np.ndarray,
    log_y: np.ndarray,
    n_y: np.ndarray,
    numel: int,
    k1: int,
    weights: np.ndarray | None = None,
) -> np.ndarray | float:
    """The reference estimate from per-row sums; `weights` (n_boot × P) gives bootstrap replicates."""
    if weights is None:
        return alpha_from_log_means(log_y.sum() / n_y.sum(), log_x.sum() / (len(log_x) * numel), k1)
    mean_y = weights @ log_y / (weights @ n_y)
    mean_x = weights @ log_x / (weights.sum(1) * numel)
    inv = (mean_y - mean_x) / math.log(k1)
    with np.errstate(divide="ignore"):
        return np.where(inv > 0, 1.0 / inv, np.inf)


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


def _pooled(
    stat: dict[str, Any], beta: float | None, ts: TailSettings, rng: np.random.Generator
) -> tuple[_Estimate, str]:
    """The streamed reference estimate and its null, bootstrapped over rows as the view's dependence
    allows. Rows whose sums are not finite (a NaN gradient) are left out."""
    log_x, log_y = np.asarray(stat["row_log_x"]), np.asarray(stat["row_log_y"])
    null_x, null_y = np.asarray(stat["null_row_log_x"]), np.asarray(stat["null_row_log_y"])
    n_y = np.asarray(stat["row_n_y"])
    ok = np.isfinite(log_x) & np.isfinite(log_y)
    if beta and stat["k1"] > stat["numel"]:
        return UNAVAILABLE, (
            f"pooled blocks of {stat['k1']} entries span several rows of a {stat['numel']}-entry "
            "layer, and rows of the averaged view are dependent"
        )
    if ok.sum() < 4:
        return UNAVAILABLE, "fewer than 4 finite rows"
    dep = RowDependence.of(int(ok.sum()), beta, ts.max_row_correlation)
    idx = dep.resample(ts.bootstrap, rng)
    weights = np.stack([np.bincount(i, minlength=dep.p) for i in idx]).astype(np.float64)
    args = (n_y[ok], stat["numel"], stat["k1"])
    real, null = (log_x[ok], log_y[ok]), (null_x[ok], null_y[ok])
    return _Estimate(
        float(pooled_from_rows(*real, *args)),
        _ci(pooled_from_rows(*real, *args, weights), ts.ci_level),
        float(pooled_from_rows(*null, *args)),
        _ci(pooled_from_rows(*null, *args, weights), ts.ci_level),
    ), ""


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


def finite_rows(coords: np.ndarray) -> tuple[np.ndarray, int]:
    """The stored coordinates without padding columns (NaN in every row: layers smaller than the
    per-layer count) and without rows holding a non-finite value; and how many rows were dropped."""
    c = coords[:, ~np.isnan(coords).all(axis=0)]
    good = np.isfinite(c).all(axis=1)
    return c[good].astype(np.float64), int((~good).sum())


def unavailable_reason(p: int, beta: float | None, ts: TailSettings, skipped: int = 0) -> str:
    """Why no α can be estimated from P rows of a view (β: the averaged view's), or ""."""
    n_eff = effective_draws(p, beta)
    dep = RowDependence.of(p, beta, ts.max_row_correlation)
    if n_eff < ts.min_effective_draws:
        return (
            f"≈{n_eff:.0f} effective independent draws (P = {p}, β = {beta}) < min_effective_draws "
            f"({ts.min_effective_draws:g})"
        )
    if not dep.usable:
        return (
            f"P = {p} rows hold no block of 2 rows {2 * dep.lag} apart (β = {beta}: rows closer "
            f"than that correlate more than max_row_correlation² = {ts.max_row_correlation**2:g})"
        )
    if beta and skipped:
        return f"{skipped} rows skipped: the rest is no longer an EMA whose draws can be recovered"
    return ""


def _alpha_rows(
    stat: dict[str, Any],
    coords: np.ndarray,
    beta: float | None,
    ts: TailSettings,
    rng,
    skipped: int = 0,
) -> list[dict]:
    """α rows of one (split, view, layer); `coords` finite, P' × n (rows already filtered)."""
    p = coords.shape[0]
    n_eff = effective_draws(p, beta)
    note = unavailable_reason(p, beta, ts, skipped)
    too_few = bool(note)
    pooled, pooled_note = (UNAVAILABLE, note) if too_few else _pooled(stat, beta, ts, rng)
    results = {"pooled": (pooled, p * stat["numel"], pooled_note)}
    # a layer none of whose stored coordinates has noise (dead units, a blown-up run) has no tail
    silent = p > 0 and coords.shape[1] > 0 and not np.ptp(coords, axis=0).any()
    usable = coords.shape[1] > 0 and not too_few and not silent
    coord = _coordinate(coords, beta, ts, rng) if usable else {}
    why = note if too_few else "no stored coordinate has noise" if silent else ""
    for name in COORDINATE_ESTIMATORS:
        results[name] = (coord.get(name, UNAVAILABLE), coords.size, why)
    return [
        {
            "quantity": "alpha",
            "estimator": name,
            "value": float(e.value),
            "ci_low": e.ci[0],
            "ci_high": e.ci[1],
            "q25": e.q25,
            "q75": e.q75,
            "null_value": float(e.null),
            "null_ci_low": e.null_ci[0],
            "null_ci_high": e.null_ci[1],
            "verdict": verdict(e.value, e.ci, e.null, e.null_ci, ts.null_margin),
            "n": n,
            "n_effective": n_eff,
            "note": text or None,
        }
        for name, (e, n, text) in results.items()
    ]


def _anisotropy_rows(
    stat: dict[str, Any], beta: float | None, ts: TailSettings, rng: np.random.Generator
) -> list[dict]:
    ev = np.asarray(stat["eigenvalues"])
    spread = stat["var_q99"] / stat["var_q01"] if stat["var_q01"] > 0 else math.inf
    cis: dict[str, tuple[float, float]] = {}
    if stat.get("gram") is not None:
        p = stat["P"]
        lag = RowDependence.of(p, beta, ts.max_row_correlation).lag
        shares, ranks = anisotropy.bootstrap_anisotropy(
            np.asarray(stat["gram"]).reshape(p, p), ts.bootstrap, rng, lag
        )
        cis["top_share"] = _ci(shares, ts.ci_level)
        cis["effective_rank"] = _ci(ranks, ts.ci_level)
    quantities = {
        "top_share": anisotropy.top_share(ev),
        "effective_rank": anisotropy.effective_rank(ev),
        "var_spread": float(spread),
    }
    return [
        {
            "quantity": q,
            "estimator": "gram" if q != "var_spread" else "q99/q01",
            "value": v,
            "ci_low": cis.get(q, NAN2)[0],
            "ci_high": cis.get(q, NAN2)[1],
            "n": stat["numel"],
            "n_effective": effective_draws(stat["P"], beta),
            "spectrum": ev.tolist() if q == "effective_rank" else None,
        }
        for q, v in quantities.items()
    ]


def analyze(
    samples: pa.Table, stats: pa.Table, run: dict[str, Any], ts: TailSettings, source: str = ""
) -> pa.Table:
    """The tidy tails table of one noise file. `run`: the run that made it (experiment, arm,
    optimizer, hparams, seed, step, status); `source` names the file in error messages."""
    base = {k: run[k] for k in ("experiment", "arm", "optimizer", "seed", "step")}
    if run.get("status", "ok") != "ok" or stats.num_rows == 0:
        row = {
            **base,
            "status": run.get("status", "empty"),
            "quantity": "status",
            "verdict": run.get("status"),
        }
        return pa.Table.from_pylist([row], schema=TAILS_SCHEMA)
    coords = _coords_by_key(samples)
    rng = np.random.default_rng(ts.seed)
    momentum = momentum_of(run["optimizer"], run["hparams"])
    rows = []
    for stat in stats.to_pylist():
        key = (stat["split"], stat["view"])
        if stat["layer"] == ALL:
            c = np.concatenate(list(coords[key].values()), axis=1)  # model order
        else:
            c = coords[key][stat["layer"]]
        c, skipped = finite_rows(c)
        if skipped and c.shape[0] < max(4, stat["P"] / 2):
            raise InputError(
                f"{source}: {skipped} of {stat['P']} noise rows of {key[0]}/{key[1]}/"
                f"{stat['layer']} hold non-finite values; too few remain for an estimate"
            )
        beta = momentum if stat["view"] == "averaged" else None
        ident = {
            **base,
            "status": "ok",
            "split": stat["split"],
            "view": stat["view"],
            "layer": stat["layer"],
            "rows_skipped": skipped,
        }
        for r in _alpha_rows(stat, c, beta, ts, rng, skipped) + _anisotropy_rows(
            stat, beta, ts, rng
        ):
            rows.append({**ident, **r})
    return pa.Table.from_pylist(rows, schema=TAILS_SCHEMA)


def _coords_by_key(samples: pa.Table) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    """Stored coordinates as P × n matrices keyed by (split, view) and layer."""
    out: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    cols = {c: samples.column(c).to_pylist() for c in ("split", "view", "layer", "sample")}
    values = samples.column("coords").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    n = samples.schema.field("coords").type.list_size
    values = values.reshape(-1, n)
    groups: dict[tuple[str, str, str], list[tuple[int, np.ndarray]]] = {}
    for i, key in enumerate(zip(cols["split"], cols["view"], cols["layer"], strict=True)):
        groups.setdefault(key, []).append((cols["sample"][i], values[i]))
    for (split, view, layer), rows in groups.items():
        rows.sort(key=lambda r: r[0])
        out.setdefault((split, view), {})[layer] = np.stack([r[1] for r in rows])
    return out
