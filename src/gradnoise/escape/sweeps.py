"""Sweeps of one landscape axis, and their fits: least squares of log τ̂ on a regressor (1/H, 1/√H,
log H, ΔL, log w), weighted by the exponential MLE's own variance, Var(log τ̂) ≈ 1/r with r exits
(delta method); the slope's interval uses that variance, inflated by the reduced χ² (and Student's t
with n − 2 degrees of freedom) when the points scatter more than it allows. Each theory's slope is
the same regression run on its predicted log τ at the same design points (unweighted: its interval
then only shows the curvature on that axis).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.special import ndtri, stdtrit

from gradnoise.escape.exit_times import escape_times_batch
from gradnoise.escape.injected_noise import InjectedNoise
from gradnoise.escape.theory import predictions
from gradnoise.landscapes import BarrierWell
from gradnoise.seeds import hash_seed

AXES = ("sharpness", "height", "width")
REGRESSORS: dict[str, dict[str, Callable[[np.ndarray], np.ndarray]]] = {
    "sharpness": {
        "inv_h": lambda h: 1 / h,
        "inv_sqrt_h": lambda h: 1 / np.sqrt(h),
        "log_h": np.log,
    },
    "height": {"height": lambda x: x},
    "width": {"log_width": np.log},
}


def sweep(axis: str, values: Sequence[float], base: BarrierWell) -> list[BarrierWell]:
    """``base`` with one of sharpness, height or width set to each value, the others fixed."""
    if axis not in AXES:
        raise ValueError(f"unknown axis {axis!r}; allowed: {', '.join(AXES)}")
    return [dataclasses.replace(base, **{axis: float(v)}) for v in values]


def escape_sweep(
    axis: str,
    values: Sequence[float],
    base: BarrierWell,
    optimizer: str,
    hparams: dict[str, Any],
    noise: InjectedNoise,
    *,
    n_paths: int,
    max_iters: int,
    seed: int,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> list[dict[str, Any]]:
    """One row per landscape of the sweep: measured escape time and both theories' predictions. Each
    configuration draws from its own stream (seed hashed with the configuration); the landscapes run
    together (``escape_times_batch``), each with the numbers of its own run."""
    lands = sweep(axis, values, base)
    keys = [
        (axis, land.sharpness, land.height, land.width, optimizer, noise.kind, noise.alpha)
        for land in lands
    ]
    exits = escape_times_batch(
        lands,
        optimizer,
        hparams,
        noise,
        n_paths=n_paths,
        max_iters=max_iters,
        seeds=[hash_seed(seed, *key) for key in keys],
        device=device,
        dtype=dtype,
    )
    rows = []
    for land, ex in zip(lands, exits, strict=True):
        rows.append(
            {
                "axis": axis,
                "optimizer": optimizer,
                "lr": float(hparams["lr"]),
                "noise": noise.kind,
                "alpha": noise.alpha if noise.kind == "sas" else 2.0,
                "noise_model": noise.model if noise.kind == "sas" else "gaussian",
                "scale": noise.scale,
                "batch_size": noise.batch_size,
                "sharpness": land.sharpness,
                "height": land.height,
                "width": land.width,
                "dim": land.dim,
                "n_paths": n_paths,
                "n_exits": ex.n_exits,
                "max_iters": max_iters,
                "warmup": ex.warmup,
                "mean_exit": ex.mean,
                "ci_low": ex.ci_low,
                "ci_high": ex.ci_high,
                "path_steps": ex.path_steps,
                **predictions(land, optimizer, hparams, noise),
            }
        )
    return rows


@dataclass(frozen=True)
class LineFit:
    slope: float
    low: float
    high: float
    intercept: float
    n: int
    chi2_red: float  # reduced χ² of the weighted fit (NaN unweighted or n ≤ 2)


def fit_line(
    x: np.ndarray, y: np.ndarray, sd: np.ndarray | None = None, level: float = 0.95
) -> LineFit:
    """Least-squares line y = a + b x. With ``sd``: weights 1/sd², the slope's standard error from
    those variances times max(1, √χ²_red), and a t_{n−2} quantile once inflated (normal otherwise).
    Without: ordinary least squares with the t_{n−2} interval (none for n = 2). The quantiles come
    from scipy.special, the functions scipy.stats' t.ppf and norm.ppf evaluate: the escape jobs that
    import this module need nothing else from scipy.stats."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = len(x)
    if n < 2:
        return LineFit(math.nan, math.nan, math.nan, math.nan, n, math.nan)
    w = np.ones(n) if sd is None else 1 / np.asarray(sd, float) ** 2
    design = np.stack([np.ones(n), x], axis=1)
    cov = np.linalg.inv(design.T @ (design * w[:, None]))
    a, b = cov @ design.T @ (w * y)
    chi2 = float(np.sum(w * (y - a - b * x) ** 2))
    dof = n - 2
    if sd is None:
        if dof == 0:
            return LineFit(float(b), math.nan, math.nan, float(a), n, math.nan)
        se, q = math.sqrt(cov[1, 1] * chi2 / dof), stdtrit(dof, (1 + level) / 2)
        return LineFit(float(b), b - q * se, b + q * se, float(a), n, math.nan)
    chi2_red = chi2 / dof if dof else math.nan
    inflate = dof > 0 and chi2_red > 1
    se = math.sqrt(cov[1, 1] * (chi2_red if inflate else 1.0))
    q = stdtrit(dof, (1 + level) / 2) if inflate else ndtri((1 + level) / 2)
    return LineFit(float(b), b - q * se, b + q * se, float(a), n, chi2_red)


def fit_sweep(rows: Sequence[dict[str, Any]], level: float = 0.95) -> list[dict[str, Any]]:
    """Per regressor of the rows' axis: the measured slope of log τ (rows with exits only) and the
    slopes of the diffusion (exact SDE and leading Kramers order) and Lévy predictions at the same
    design points."""
    if not rows:
        return []
    axis = rows[0]["axis"]
    if any(r["axis"] != axis for r in rows):
        raise ValueError("fit_sweep takes the rows of one sweep")
    ok = [r for r in rows if r["n_exits"] > 0]
    out = []
    for name, regressor in REGRESSORS[axis].items():
        x = regressor(np.array([r[axis] for r in ok], dtype=float))
        measured = fit_line(
            x,
            np.log([r["mean_exit"] for r in ok]),
            1 / np.sqrt([r["n_exits"] for r in ok]),
            level,
        )
        theory = {
            col: fit_line(x, np.array([r[col] for r in ok], dtype=float), None, level).slope
            for col in ("log_tau_diffusion", "kramers_exponent", "log_tau_levy")
        }
        out.append(
            {
                "axis": axis,
                "regressor": name,
                "n_points": measured.n,
                "n_without_exits": len(rows) - len(ok),
                "slope": measured.slope,
                "slope_low": measured.low,
                "slope_high": measured.high,
                "chi2_red": measured.chi2_red,
                "slope_diffusion": theory["log_tau_diffusion"],
                "slope_kramers": theory["kramers_exponent"],
                "slope_levy": theory["log_tau_levy"],
            }
        )
    return out
