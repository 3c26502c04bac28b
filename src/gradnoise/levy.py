"""Symmetric α-stable (SαS) sampling and Lévy measures (DESIGN.md §5a).

Normalization: unit SαS is scipy.stats.levy_stable(α, β=0) (S0 = S1 when β = 0), characteristic
function exp(−|t|^α); at α = 2 it is N(0, 2). Its Lévy measure is ν(dy) = c_α |y|^(−1−α) dy with
c_α = Γ(1+α) sin(πα/2)/π. The rotationally invariant d-dimensional version has characteristic function
exp(−‖t‖^α) and Lévy measure c_{d,α} ‖y‖^(−d−α) dy with
c_{d,α} = α 2^(α−1) Γ((α+d)/2) / (π^(d/2) Γ(1−α/2)) (c_{1,α} = c_α).

Chambers–Mallows–Stuck (β = 0): V ~ U(−π/2, π/2), W ~ Exp(1),
X = sin(αV) / cos(V)^(1/α) · (cos((1−α)V) / W)^((1−α)/α).
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


def sample_sas(alpha: float, size: int | tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Unit SαS (scipy's normalization, β = 0) by Chambers–Mallows–Stuck."""
    v = rng.uniform(-math.pi / 2, math.pi / 2, size)
    w = rng.standard_exponential(size)
    if alpha == 2:
        return 2 * np.sin(v) * np.sqrt(w)  # the CMS limit: N(0, 2)
    if alpha == 1:
        return np.tan(v)
    return (
        np.sin(alpha * v)
        / np.cos(v) ** (1 / alpha)
        * (np.cos((1 - alpha) * v) / w) ** ((1 - alpha) / alpha)
    )


def sample_sas_torch(
    alpha: float,
    shape: tuple[int, ...],
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """The same law as sample_sas, in torch (CPU or GPU)."""
    v = (torch.rand(shape, generator=generator, device=device, dtype=dtype) - 0.5) * math.pi
    w = -torch.log1p(-torch.rand(shape, generator=generator, device=device, dtype=dtype))
    if alpha == 2:
        return 2 * torch.sin(v) * torch.sqrt(w)
    if alpha == 1:
        return torch.tan(v)
    a = torch.sin(alpha * v) * torch.cos(v).pow(-1 / alpha)
    return a * (torch.cos((1 - alpha) * v) / w).pow((1 - alpha) / alpha)


def _positive_stable_torch(
    a: float, shape: tuple[int, ...], generator, device, dtype
) -> torch.Tensor:
    """S_a(cos(πa/2)^(1/a), 1, 0) for a < 1 by CMS with β = 1 (B = π/2): a positive variable."""
    v = (torch.rand(shape, generator=generator, device=device, dtype=dtype) - 0.5) * math.pi
    w = -torch.log1p(-torch.rand(shape, generator=generator, device=device, dtype=dtype))
    s = v + math.pi / 2
    return torch.sin(a * s) * torch.cos(v).pow(-1 / a) * (torch.cos(v - a * s) / w).pow((1 - a) / a)


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
    scale = _positive_stable_torch(alpha / 2, (n, 1), generator, device, dtype)
    return scale.sqrt() * g


def sample_isotropic(alpha: float, n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """numpy front end of sample_isotropic_torch (seeded from `rng`)."""
    gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    return sample_isotropic_torch(alpha, n, d, gen, dtype=torch.float64).numpy()
