"""Which law fits the noise at one batch size: SαS, Student-t or Gaussian, per coordinate, by AIC.

Each coordinate's noise (P draws, centred by construction, so every law is fitted with location 0):
- SαS: α and the scale from McCulloch's quantiles (``estimators.alpha_mcculloch``; scale = IQR over
  the unit law's IQR), then the best likelihood on a grid around them (α ± 0.1 in steps of 0.02,
  log scale ± 0.12 in steps of 0.04): McCulloch's start alone lost to the t's maximum likelihood on
  40 % of SαS(1.3) coordinates at P = 400. Density by FFT (scipy's levy_stable.logpdf takes ≈ 1.5 s
  per 400 points, its fit 20–140 s: DESIGN.md §5b).
- Student-t: maximum likelihood (scipy.stats.t.fit with the location fixed at 0);
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
from scipy import stats
from scipy.special import gammaln

from gradnoise.estimators import alpha_mcculloch

H = 0.02
M = 2**17
Z_MAX = 40.0
ALPHA_MIN = 0.7
LAWS = ("sas", "student_t", "gaussian")
N_PARAMS = {"sas": 2, "student_t": 2, "gaussian": 1}


@lru_cache(maxsize=512)
def _unit_table(alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """z ∈ [0, Z_MAX] and log f_α(z) of unit SαS, by FFT of exp(−|t|^α)."""
    t = 2 * np.pi * np.fft.fftfreq(M, d=H)
    dens = np.fft.fft(np.exp(-(np.abs(t) ** alpha))).real * (2 * np.pi / (M * H)) / (2 * np.pi)
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


def sas_logpdf(x: np.ndarray, alpha: float, scale: float = 1.0) -> np.ndarray:
    """log density of SαS(α) with the given scale (scipy.stats.levy_stable(α, 0, 0, scale))."""
    z = np.abs(np.asarray(x, dtype=np.float64)) / scale
    alpha = float(np.clip(alpha, ALPHA_MIN, 2.0))
    if alpha >= 1.999:
        return stats.norm.logpdf(z, scale=math.sqrt(2)) - math.log(scale)
    grid, logf = _unit_table(round(alpha, 4))
    out = np.interp(z, grid, logf)
    far = z > Z_MAX
    if far.any():
        out[far] = _log_tail(alpha, z[far])
    return out - math.log(scale)


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
    best = (math.nan, math.nan, -math.inf)
    for alpha in np.unique(np.clip(start + 0.02 * np.arange(-5, 6), ALPHA_MIN, 2.0).round(2)):
        base = (q75 - q25) / _unit_iqr(float(alpha))
        for scale in base * np.exp(0.04 * np.arange(-3, 4)):
            ll = float(sas_logpdf(x, float(alpha), float(scale)).sum())
            if ll > best[2]:
                best = (float(alpha), float(scale), ll)
    return best


def law_fits(x: np.ndarray) -> dict[str, float]:
    """Log-likelihoods, AICs and parameters of the three laws on one coordinate's noise."""
    x = np.asarray(x, dtype=np.float64)
    alpha, _, loglik_sas = fit_sas(x)
    nu, _, t_scale = stats.t.fit(x, floc=0)
    sigma = math.sqrt(float(np.mean(x**2)))
    loglik = {
        "sas": loglik_sas,
        "student_t": float(stats.t.logpdf(x, nu, 0, t_scale).sum()),
        "gaussian": float(stats.norm.logpdf(x, 0, sigma).sum()),
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
    rows = []
    for j, layer in enumerate(layers):
        x = noise[:, j]
        if np.isnan(x).all() or np.nanstd(x) == 0:
            continue
        rows.append({"layer": layer, "coordinate": j, **law_fits(x[np.isfinite(x)])})
    return pd.DataFrame(rows)


def shares_by_layer(fits: pd.DataFrame) -> pd.DataFrame:
    """Per layer, the share of coordinates each law fits best (columns: layer, sas, student_t,
    gaussian, n)."""
    shares = pd.crosstab(fits["layer"], fits["best"], normalize="index")
    shares = shares.reindex(columns=list(LAWS), fill_value=0.0)
    shares["n"] = fits.groupby("layer").size()
    return shares.reset_index().rename_axis(columns=None)
