"""Symmetric α-stable (SαS) sampling and Lévy measures (DESIGN.md §5a).

Normalization: unit SαS is scipy.stats.levy_stable(α, β=0) (S0 = S1 when β = 0), characteristic
function exp(−|t|^α); at α = 2 it is N(0, 2). Its Lévy measure is ν(dy) = c_α |y|^(−1−α) dy with
c_α = Γ(1+α) sin(πα/2)/π. The rotationally invariant d-dimensional version has characteristic function
exp(−‖t‖^α) and Lévy measure c_{d,α} ‖y‖^(−d−α) dy with
c_{d,α} = α 2^(α−1) Γ((α+d)/2) / (π^(d/2) Γ(1−α/2)) (c_{1,α} = c_α).

Chambers–Mallows–Stuck (β = 0): V ~ U(−π/2, π/2), W ~ Exp(1),
X = sin(αV) / cos(V)^(1/α) · (cos((1−α)V) / W)^((1−α)/α). The uniforms are drawn on the open
interval (0, 1) and cos V is evaluated away from its rounding to a negative number, so that no
sample is NaN or infinite.
Isotropic: X = √A · G with G ~ N(0, 2I) and A ~ S_{α/2}(cos(πα/4)^(2/α), 1, 0) (Samorodnitsky & Taqqu
1994, Prop. 2.5.2), A drawn by CMS for β = 1.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.special import gamma


def levy_constant(alpha: float) -> float:
    """c_α of the 1-D Lévy measure of unit SαS."""
    if alpha >= 2:
        return 0.0
    return gamma(1 + alpha) * math.sin(math.pi * alpha / 2) / math.pi


def isotropic_levy_constant(alpha: float, d: int) -> float:
    """c_{d,α} of the isotropic d-dimensional Lévy measure (density in y, not per direction)."""
    return (
        alpha
        * 2 ** (alpha - 1)
        * gamma((alpha + d) / 2)
        / (math.pi ** (d / 2) * gamma(1 - alpha / 2))
    )


def sphere_area(d: int) -> float:
    """|S^(d−1)| = 2π^(d/2)/Γ(d/2) (2 for d = 1: the two signs)."""
    return 2 * math.pi ** (d / 2) / gamma(d / 2)


def tail_rate(alpha: float, delta: float, d: int = 1) -> float:
    """ν({‖y‖ > δ}) = c_{d,α} |S^(d−1)| δ^(−α) / α: the rate of jumps longer than δ of the unit SαS
    process in R^d (d = 1: of either sign). They form a compound Poisson process whose lengths are
    Pareto, ‖y‖ = δ U^(−1/α), with uniform directions."""
    return isotropic_levy_constant(alpha, d) * sphere_area(d) * delta ** (-alpha) / alpha


def small_jump_variance(alpha: float, delta: float, d: int = 1) -> float:
    """∫_{‖y‖ ≤ δ} y_1² ν(dy) = c_{d,α} |S^(d−1)| δ^(2−α) / (d (2 − α)): the variance per unit time
    of one coordinate of the jumps up to δ, and of the Brownian motion that replaces them (Asmussen
    & Rosiński 2001: valid as δ → 0 since σ(δ)/δ ∝ δ^(−α/2) → ∞)."""
    return (
        isotropic_levy_constant(alpha, d)
        * sphere_area(d)
        * delta ** (2 - alpha)
        / (d * (2 - alpha))
    )


def _cms(alpha: float, u, e, xp):
    """Chambers–Mallows–Stuck (β = 0) from U ~ U(0, 1) (V = π(U − ½)) and E ~ Exp(1), for numpy
    or torch (`xp`). cos V is evaluated as sin(π min(U, 1 − U)), which is > 0 for every U in (0, 1):
    in float32, cos of the rounded −π/2 is −4·10⁻⁸, and a negative base gives NaN. In-place updates
    (the Euler kernel spends most of its time here)."""
    v = u - 0.5
    v *= math.pi
    if alpha == 2:
        return 2 * xp.sin(v) * xp.sqrt(e)  # the CMS limit: N(0, 2)
    cos_v = xp.minimum(u, 1 - u)
    cos_v *= math.pi
    xp.sin(cos_v, out=cos_v)
    if alpha == 1:
        return xp.sin(v) / cos_v
    x = v * (1 - alpha)  # (cos((1−α)V) / E)^((1−α)/α) · cos(V)^(−1/α) · sin(αV)
    xp.cos(x, out=x)
    x /= e
    x **= (1 - alpha) / alpha
    cos_v **= -1 / alpha
    x *= cos_v
    v *= alpha
    x *= xp.sin(v, out=v)
    return x


def sample_sas(alpha: float, size: int | tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Unit SαS (scipy's normalization, β = 0) by Chambers–Mallows–Stuck."""
    eps = np.finfo(np.float64).eps
    u, w = (rng.random(size).clip(eps / 4, 1 - eps / 2) for _ in range(2))
    return _cms(alpha, u, -np.log(w), np)


def open_uniform(
    shape: tuple[int, ...],
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """U(0, 1) on the open interval: torch.rand can return 0 (CPU) or 1 (some CUDA paths). The clamp
    moves a mass of at most one grid step (2⁻²⁴ in float32) and keeps −log U in (0, 17.4]."""
    return into_open_interval(torch.rand(shape, generator=generator, device=device, dtype=dtype))


def into_open_interval(u: torch.Tensor) -> torch.Tensor:
    """open_uniform's clamp, in place, for draws of torch.rand."""
    eps = torch.finfo(u.dtype).eps
    return u.clamp_(eps / 4, 1 - eps / 2)


def sample_sas_torch(
    alpha: float,
    shape: tuple[int, ...],
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """The same law as sample_sas, in torch (CPU or GPU); every sample is finite."""
    u = open_uniform(shape, generator, device, dtype)
    e = -torch.log(open_uniform(shape, generator, device, dtype))
    return _cms(alpha, u, e, torch)


def _log_positive_stable_torch(
    a: float, shape: tuple[int, ...], generator, device, dtype
) -> torch.Tensor:
    """log A, A ~ S_a(cos(πa/2)^(1/a), 1, 0) for a < 1 by CMS with β = 1 (B = π/2). With
    V = π(U − ½): sin(a(V + π/2)) = sin(aπU), cos(V − a(V + π/2)) = sin((1 − a)πU) and
    cos V = sin(π min(U, 1 − U)), all > 0 on (0, 1); the log keeps A^(1/2) finite where A itself
    would overflow float32 (a ≲ 0.3)."""
    u = open_uniform(shape, generator, device, dtype)
    e = -torch.log(open_uniform(shape, generator, device, dtype))
    cos_v = torch.sin(math.pi * torch.minimum(u, 1 - u))
    return (
        torch.log(torch.sin(a * math.pi * u))
        - torch.log(cos_v) / a
        + (1 - a) / a * (torch.log(torch.sin((1 - a) * math.pi * u)) - torch.log(e))
    )


def sample_isotropic_torch(
    alpha: float,
    n: int,
    d: int,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """n rotationally invariant SαS vectors in R^d with characteristic function exp(−‖t‖^α)."""
    g = torch.randn((n, d), generator=generator, device=device, dtype=dtype) * math.sqrt(2.0)
    if alpha == 2:
        return g
    log_a = _log_positive_stable_torch(alpha / 2, (n, 1), generator, device, dtype)
    return torch.exp(0.5 * log_a) * g


def sample_isotropic(alpha: float, n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """numpy front end of sample_isotropic_torch (seeded from `rng`)."""
    gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    return sample_isotropic_torch(alpha, n, d, gen, dtype=torch.float64).numpy()
