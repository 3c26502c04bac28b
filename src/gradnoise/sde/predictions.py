"""The small-ε exit-time law (Imkeller & Pavlyukevich 2006 and its d-D form): E σ ≈ 1 / (ε^α m(G)),
m(G) = ν({y : θ* + M y ∉ G})."""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gamma

from gradnoise.levy import isotropic_levy_constant, levy_constant
from gradnoise.sde.basins import Basin
from gradnoise.sde.driving_noise import Noise


def radon_measure(basin: Basin, noise: Noise, n_mc: int = 200_000, seed: int = 0) -> float:
    """m(G) = ν({y : M y ∉ G}): analytic for independent coordinates (jumps along the columns m_i of M),
    Monte Carlo over the unit sphere for isotropic noise."""
    a = noise.alpha
    if noise.model == "independent":
        cols = noise.m.T
        r_plus, r_minus = basin.exit_distance(cols), basin.exit_distance(-cols)
        return float(np.sum(levy_constant(a) / a * (r_plus ** (-a) + r_minus ** (-a))))
    d = basin.dim
    u = np.random.default_rng(seed).standard_normal((n_mc, d))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    rho = basin.exit_distance(u @ noise.m.T)
    sphere = 2 * math.pi ** (d / 2) / gamma(d / 2)
    return float(isotropic_levy_constant(a, d) / a * sphere * np.mean(rho ** (-a)))


def predicted_exit_time(basin: Basin, noise: Noise, eps: float) -> float:
    return 1.0 / (eps**noise.alpha * radon_measure(basin, noise))


def predicted_exit_time_1d(alpha: float, eps: float, a: float, b: float) -> float:
    """E σ ≈ α / (c_α ε^α (a^(−α) + b^(−α))) for U = x²/2 on (−b, a) (Imkeller & Pavlyukevich 2006)."""
    return alpha / (levy_constant(alpha) * eps**alpha * (a ** (-alpha) + b ** (-alpha)))
