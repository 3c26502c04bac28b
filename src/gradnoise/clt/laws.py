"""Which law fits the noise at one batch size: SαS, Student-t or Gaussian, per coordinate, by AIC.

Each coordinate's noise (P draws, centred by construction, so every law is fitted with location 0):
- SαS: α and the scale from McCulloch's quantiles (``estimators.alpha_mcculloch``; scale = IQR over
  the unit law's IQR), then the best likelihood on a grid around them (α ± 0.1 in steps of 0.02,
  log scale ± 0.12 in steps of 0.04): McCulloch's start alone lost to the t's maximum likelihood on
  40 % of SαS(1.3) coordinates at P = 400. Density by FFT (scipy's levy_stable.logpdf takes ≈ 1.5 s
  per 400 points, its fit 20–140 s: DESIGN.md §5b).
- Student-t: maximum likelihood with the location fixed at 0 (``fit_student_t_columns``: the
  scale's likelihood equation solved by Newton for each ν, log ν by golden-section search, every
  coordinate at once; scipy's t.fit reaches the same maximum, one coordinate at a time, at ≈ 7–60
  ms each at P = 400);
- Gaussian: maximum likelihood, σ² = mean x².
AIC = 2 (parameters) − 2 log L with 2, 2 and 1 parameters; the smallest wins. Gaussian data are fitted
as well by t with large ν and SαS with α ≈ 2, so there the Gaussian wins by its one parameter fewer.

The unit SαS density (characteristic function exp(−|t|^α), scipy's normalization) on |z| ≤ ``Z_MAX``
is the FFT of the characteristic function on 2^17 points, z spaced ``H``: the sum is the density
periodized over 2^17·H ≈ 2,600, whose aliasing at |z| ≤ 40 is below 0.3 % of the density for α ≥ 0.7;
beyond, the tail series f(z) ≈ (1/π) Σ_{k≤4} (−1)^{k+1} Γ(kα+1)/k! sin(kπα/2) |z|^(−kα−1) (Nolan 2020,
§1.5; asymptotic), accurate there to < 0.1 % for α ≤ 1.99. At α ≥ 1.999 the law is taken as N(0, 2).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy.special import gammaln, ndtr

from gradnoise.estimators import alpha_mcculloch

H = 0.02
M = 2**17
Z_MAX = 40.0
ALPHA_MIN = 0.7
LAWS = ("sas", "student_t", "gaussian")
N_PARAMS = {"sas": 2, "student_t": 2, "gaussian": 1}
LOG_SQRT_2PI = np.log(np.sqrt(2 * np.pi))  # as scipy.stats computes it


@lru_cache(maxsize=512)
def _unit_table(alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """z ∈ [0, Z_MAX] and log f_α(z) of unit SαS, by FFT of exp(−|t|^α). The frequencies' moduli
    are symmetric to the bit (fftfreq's negative half is the positive half negated), so the
    characteristic function is computed on the first half and mirrored."""
    t = np.abs(2 * np.pi * np.fft.fftfreq(M, d=H)[: M // 2 + 1])
    half = np.exp(-(t**alpha))
    cf = np.concatenate([half, half[-2:0:-1]])
    dens = np.fft.fft(cf).real * (2 * np.pi / (M * H)) / (2 * np.pi)
    n = int(round(Z_MAX / H)) + 1
    return np.arange(n) * H, np.log(np.maximum(dens[:n], 1e-300))


def _log_tail(alpha: float, z: np.ndarray) -> np.ndarray:
    terms = [
        (-1) ** (k + 1)
        * np.exp(gammaln(k * alpha + 1) - gammaln(k + 1))
        * math.sin(k * math.pi * alpha / 2)
        * z ** (-k * alpha - 1)
        for k in range(1, 5)
    ]
    return np.log(np.maximum(np.sum(terms, axis=0) / math.pi, 1e-300))


def norm_logpdf(x: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """log density of N(0, scale²) by scipy.stats.norm.logpdf(x, 0, scale)'s operations, so to the
    bit: this module leaves out scipy.stats, a slow import (benchmarks/README.md)."""
    z = np.asarray(x, dtype=np.float64) / scale
    return -(z**2) / 2.0 - LOG_SQRT_2PI - np.log(np.float64(scale))


def _unit_logpdf(z: np.ndarray, alpha: float) -> np.ndarray:
    """log f_α(z) of unit SαS at z ≥ 0 (any shape)."""
    alpha = float(np.clip(alpha, ALPHA_MIN, 2.0))
    if alpha >= 1.999:
        return norm_logpdf(z, math.sqrt(2))
    grid, logf = _unit_table(round(alpha, 4))
    out = np.interp(z, grid, logf)
    far = z > Z_MAX
    if far.any():
        out[far] = _log_tail(alpha, z[far])
    return out


def sas_logpdf(x: np.ndarray, alpha: float, scale: float = 1.0) -> np.ndarray:
    """log density of SαS(α) with the given scale (scipy.stats.levy_stable(α, 0, 0, scale))."""
    return _unit_logpdf(np.abs(np.asarray(x, dtype=np.float64)) / scale, alpha) - math.log(scale)


def _tail_sf(alpha: float, z: np.ndarray) -> np.ndarray:
    """∫_z^∞ of the tail series, term by term: Σ_k c_k z^(−kα) / (kα)."""
    terms = [
        (-1) ** (k + 1)
        * np.exp(gammaln(k * alpha + 1) - gammaln(k + 1))
        * math.sin(k * math.pi * alpha / 2)
        * z ** (-k * alpha)
        / (k * alpha)
        for k in range(1, 5)
    ]
    return np.maximum(np.sum(terms, axis=0) / math.pi, 0.0)


@lru_cache(maxsize=64)
def _unit_sf_table(alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """z ∈ [0, Z_MAX] and P(Z > z) of unit SαS: the tabulated density integrated down from Z_MAX
    (trapezoids), plus the tail series' mass beyond Z_MAX."""
    grid, logf = _unit_table(alpha)
    f = np.exp(logf)
    above = np.concatenate([np.cumsum(((f[1:] + f[:-1]) * H / 2)[::-1])[::-1], [0.0]])
    return grid, above + float(_tail_sf(alpha, np.array(Z_MAX)))


def sas_abs_sf(x: np.ndarray, alpha: float, scale: float = 1.0) -> np.ndarray:
    """P(|X| > x) of SαS(α) with the given scale (twice scipy's levy_stable(α, 0, 0, scale).sf):
    the tabulated law for |x|/scale ≤ Z_MAX, the integrated tail series beyond."""
    z = np.abs(np.asarray(x, dtype=np.float64)) / scale
    alpha = float(np.clip(alpha, ALPHA_MIN, 2.0))
    if alpha >= 1.999:
        return 2 * ndtr(-(z / math.sqrt(2)))  # scipy.stats.norm.sf(z, scale=√2)
    grid, sf = _unit_sf_table(round(alpha, 4))
    out = 2 * np.interp(z, grid, sf)
    far = z > Z_MAX
    if far.any():
        out[far] = 2 * _tail_sf(alpha, z[far])
    return out


@lru_cache(maxsize=512)
def _unit_iqr(alpha: float) -> float:
    """The interquartile range of unit SαS(α): twice its 75 % quantile, from the tabulated density."""
    grid, logf = _unit_table(alpha)
    cdf = 0.5 + np.concatenate([[0], np.cumsum((np.exp(logf[1:]) + np.exp(logf[:-1])) * H / 2)])
    return 2 * float(np.interp(0.75, cdf, grid))


def fit_sas(x: np.ndarray) -> tuple[float, float, float]:
    """(α, scale, log-likelihood) of SαS: McCulloch's quantile estimate (α from the quantile ratio,
    scale = IQR/IQR_α), refined to the best likelihood on a grid around it."""
    start = round(float(np.clip(alpha_mcculloch(x), ALPHA_MIN, 2.0)), 2)
    q25, q75 = np.quantile(x, [0.25, 0.75])
    a = np.abs(np.asarray(x, dtype=np.float64))
    best = (math.nan, math.nan, -math.inf)
    for alpha in np.unique(np.clip(start + 0.02 * np.arange(-5, 6), ALPHA_MIN, 2.0).round(2)):
        scales = (q75 - q25) / _unit_iqr(float(alpha)) * np.exp(0.04 * np.arange(-3, 4))
        # every scale's sas_logpdf at once: row r is sas_logpdf(x, alpha, scales[r])
        log_scales = np.array([math.log(s) for s in scales])[:, None]
        logliks = (_unit_logpdf(a / scales[:, None], float(alpha)) - log_scales).sum(axis=1)
        for scale, ll in zip(scales, logliks, strict=True):
            if ll > best[2]:
                best = (float(alpha), float(scale), float(ll))
    return best


NU_BOUNDS = (0.1, 1e4)  # ν searched in this range (1/ν = 10⁻⁴ is Gaussian for every purpose here)
GOLDEN_STEPS = (
    25  # golden-section steps on log ν: the bracket shrinks to 6·10⁻⁶ of its width (11.5)
)
NEWTON_STEPS = 60  # at most this many safeguarded Newton steps on log s² (until |step| < 10⁻⁸)


def _t_log_scale2(
    x2: np.ndarray, nu: np.ndarray, lam: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """Per column of x² (P × C), the maximum-likelihood log s² of Student-t(ν) at location 0: the
    root λ of g(λ) = (ν + 1) mean(r) − 1, r = z / (ν + z), z = x² e^(−λ), which decreases in λ
    (g' = −(ν + 1) mean(r (1 − r))). Newton steps from `lam`, bisection where a step leaves the
    bracket [lo, hi] (``_bracket``). A step onto an end of the bracket is kept: that end is the
    current λ, reached when g(λ) or the step rounds to 0, that is at the root (sent to the bracket's
    midpoint instead, such a column was bisected back for ≈ 30 steps, to within 10⁻⁸ of its root,
    and every column of the call stepped with it)."""
    for _ in range(NEWTON_STEPS):
        z = x2 * np.exp(-lam)
        r = z / (nu + z)
        mean_r = r.mean(axis=0)
        g = (nu + 1) * mean_r - 1
        dg = -(nu + 1) * (mean_r - np.square(r).mean(axis=0))
        lo, hi = np.where(g > 0, lam, lo), np.where(g > 0, hi, lam)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = lam - g / dg
        new = np.where((step >= lo) & (step <= hi), step, (lo + hi) / 2)
        done = np.abs(new - lam).max(initial=0.0) < 1e-8
        lam = new
        if done:
            break
    return lam


def _bracket(x2: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, lo, hi) of the root of ``_t_log_scale2`` for every ν: g ≤ 0 at log mean x² (Jensen)
    and > 0 far below log median x² (where most z are huge); the start, log median x², is near the
    root for every ν."""
    hi = np.log(np.mean(x2, axis=0))
    with np.errstate(divide="ignore"):
        median = np.log(np.median(x2, axis=0))
    lo = np.where(np.isfinite(median), np.minimum(median, hi), hi) - 60.0
    return np.clip(median, lo, hi), lo, hi


def _t_loglik(x2: np.ndarray, nu: np.ndarray, log_s2: np.ndarray) -> np.ndarray:
    """Per column, the log-likelihood of Student-t(ν, scale e^(log_s2 / 2)) at location 0."""
    const = gammaln((nu + 1) / 2) - gammaln(nu / 2) - 0.5 * (np.log(nu * math.pi) + log_s2)
    return len(x2) * const - (nu + 1) / 2 * np.log1p(x2 / (nu * np.exp(log_s2))).sum(axis=0)


def fit_student_t_columns(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column of x (P × C): (ν, scale, log-likelihood) of Student-t with location 0 by maximum
    likelihood: the scale profiled out (``_t_log_scale2``), log ν by golden-section search in
    ``NU_BOUNDS`` (the profile likelihood is taken as unimodal in ν, as Brent's search would)."""
    x2 = np.square(np.asarray(x, dtype=np.float64))
    if x2.ndim == 1:
        x2 = x2[:, None]
    last, lo, hi = _bracket(x2)  # last: the previous evaluation's root, near the next one's

    def profile(log_nu: np.ndarray) -> np.ndarray:
        nonlocal last
        nu = np.exp(log_nu)
        last = _t_log_scale2(x2, nu, last, lo, hi)
        return _t_loglik(x2, nu, last)

    shrink = (math.sqrt(5) - 1) / 2
    a = np.full(x2.shape[1], math.log(NU_BOUNDS[0]))
    b = np.full(x2.shape[1], math.log(NU_BOUNDS[1]))
    c, d = b - shrink * (b - a), a + shrink * (b - a)
    fc, fd = profile(c), profile(d)
    for _ in range(GOLDEN_STEPS):
        left = fc >= fd  # the maximum lies in [a, d]
        a, b = np.where(left, a, c), np.where(left, d, b)
        new = np.where(left, b - shrink * (b - a), a + shrink * (b - a))
        f_new = profile(new)
        c, fc, d, fd = (
            np.where(left, new, d),
            np.where(left, f_new, fd),
            np.where(left, c, new),
            np.where(left, fc, f_new),
        )
    nu = np.exp((a + b) / 2)
    log_s2 = _t_log_scale2(x2, nu, last, lo, hi)
    return nu, np.exp(log_s2 / 2), _t_loglik(x2, nu, log_s2)


def fit_student_t(x: np.ndarray) -> tuple[float, float, float]:
    """(ν, scale, log-likelihood) of Student-t with location 0 fitted to the 1-D x
    (``fit_student_t_columns``)."""
    nu, scale, loglik = fit_student_t_columns(np.asarray(x).reshape(-1, 1))
    return float(nu[0]), float(scale[0]), float(loglik[0])


def law_fits(x: np.ndarray, t_fit: tuple[float, float, float] | None = None) -> dict[str, float]:
    """Log-likelihoods, AICs and parameters of the three laws on one coordinate's noise; `t_fit`:
    its Student-t fit where already made (``fit_student_t_columns`` of several coordinates)."""
    x = np.asarray(x, dtype=np.float64)
    alpha, _, loglik_sas = fit_sas(x)
    nu, _, loglik_t = fit_student_t(x) if t_fit is None else t_fit
    sigma = math.sqrt(float(np.mean(x**2)))
    loglik = {
        "sas": loglik_sas,
        "student_t": loglik_t,
        "gaussian": float(norm_logpdf(x, sigma).sum()),
    }
    aic = {law: 2 * N_PARAMS[law] - 2 * ll for law, ll in loglik.items()}
    return {
        **{f"loglik_{law}": v for law, v in loglik.items()},
        **{f"aic_{law}": v for law, v in aic.items()},
        "alpha": alpha,
        "nu": float(nu),
        "best": min(aic, key=aic.get),
    }


def best_laws(noise: np.ndarray, layers: list[str] | np.ndarray) -> pd.DataFrame:
    """One row per coordinate (column of the P × C `noise`; `layers` names each column's layer):
    the three fits and the best law by AIC. All-NaN (padding) and constant columns are left out."""
    noise = np.asarray(noise, dtype=np.float64)
    usable = [
        j for j in range(len(layers)) if not np.isnan(noise[:, j]).all() and np.nanstd(noise[:, j])
    ]
    whole = [j for j in usable if np.isfinite(noise[:, j]).all()]  # their t fits at once
    t_fits = dict(
        zip(whole, zip(*fit_student_t_columns(noise[:, whole]), strict=True), strict=True)
    )
    rows = [
        {
            "layer": layers[j],
            "coordinate": j,
            **law_fits(noise[np.isfinite(noise[:, j]), j], t_fits.get(j)),
        }
        for j in usable
    ]
    return pd.DataFrame(rows)


def shares_by_layer(fits: pd.DataFrame) -> pd.DataFrame:
    """Per layer, the share of coordinates each law fits best (columns: layer, sas, student_t,
    gaussian, n)."""
    shares = pd.crosstab(fits["layer"], fits["best"], normalize="index")
    shares = shares.reindex(columns=list(LAWS), fill_value=0.0)
    shares["n"] = fits.groupby("layer").size()
    return shares.reset_index().rename_axis(columns=None)
