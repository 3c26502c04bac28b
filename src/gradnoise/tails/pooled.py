"""The reference estimator (``pooled``) from the noise stage's streamed per-row sums, and its
null, bootstrapped over rows."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gradnoise.estimators import alpha_from_log_means
from gradnoise.tails.null_verdicts import UNAVAILABLE, _ci, _Estimate
from gradnoise.tails.settings import TailSettings
from gradnoise.views import RowDependence


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
