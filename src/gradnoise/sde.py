"""Lévy-driven SDEs and their first exit times from basins (DESIGN.md §5, §5a).

    dθ = −D⁻¹∇f(θ) dt + ε M dL_t,   M = D⁻¹Σ^(1/2),   θ_0 = θ* = 0,

integrated by Euler–Maruyama (an increment of L over dt is dt^(1/α) ξ with ξ unit SαS, independent
coordinates or rotationally invariant). Prediction (Imkeller & Pavlyukevich 2006 and its d-D form):
E σ ≈ 1 / (ε^α m(G)), m(G) = ν({y : θ* + M y ∉ G}).

Simulation is vectorized over paths in torch (CPU or GPU, float32): finished paths are frozen at once and
dropped every few steps, and every configuration draws from its own seeded generator. Mean exit times
use censoring at t_max and the exponential MLE Σ min(σ_i, t_max) / #exits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import stats
from scipy.special import gamma

from gradnoise.levy import (
    isotropic_levy_constant,
    levy_constant,
    sample_isotropic_torch,
    sample_sas_torch,
)

NOISE_MODELS = ("independent", "isotropic")
BASINS = ("box", "ellipsoid", "valley")


@dataclass(frozen=True)
class Basin:
    """G around θ* = 0. box/valley: Π_i (−lower_i, upper_i); ellipsoid: Σ (θ_i/upper_i)² < 1.
    f = Σ h_i θ_i²/2 (valley: curvature h_lower on the negative side)."""

    kind: str
    lower: np.ndarray
    upper: np.ndarray
    h_upper: np.ndarray
    h_lower: np.ndarray

    @property
    def dim(self) -> int:
        return len(self.upper)

    def inside(self, x: torch.Tensor, lo: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        if self.kind == "ellipsoid":
            return (x / up).square().sum(dim=1) < 1
        return ((x < up) & (x > -lo)).all(dim=1)

    def exit_distance(self, directions: np.ndarray) -> np.ndarray:
        """r(v) = sup{r : r v ∈ G} for each row v (how far a jump along v may go and stay inside)."""
        v = np.atleast_2d(directions)
        if self.kind == "ellipsoid":
            return 1.0 / np.sqrt(np.sum((v / self.upper) ** 2, axis=1))
        with np.errstate(divide="ignore"):
            bound = np.where(v > 0, self.upper / v, np.where(v < 0, -self.lower / v, np.inf))
        return bound.min(axis=1)


def make_basin(kind: str, dim: int, width: float, ratio: float) -> Basin:
    """The project's basins: half-width `width` in every direction; the valley is asymmetric in
    θ_1, whose negative side is `ratio` times narrower and steeper."""
    if kind not in BASINS:
        raise ValueError(f"unknown basin {kind!r}; allowed: {', '.join(BASINS)}")
    up = np.full(dim, width)
    lo = up.copy()
    h_lo = np.ones(dim)
    if kind == "valley":
        lo[0] = width / ratio
        h_lo[0] = ratio**2
    return Basin(kind, lo, up, np.ones(dim), h_lo)


@dataclass(frozen=True)
class Noise:
    """The driving noise: α, the noise model, M = D⁻¹Σ^(1/2) and the drift preconditioner D⁻¹."""

    alpha: float
    model: str
    m: np.ndarray
    precond: np.ndarray = field(default_factory=lambda: np.ones(0))

    def drift_scale(self, dim: int) -> np.ndarray:
        return self.precond if self.precond.size else np.ones(dim)


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


@dataclass(frozen=True)
class Exits:
    times: np.ndarray  # first exit time of each path (t_max where censored)
    exited: np.ndarray  # False where censored at t_max
    face: np.ndarray  # signed 1-based index of the coordinate whose bound was crossed (0: censored)
    t_max: float
    path_steps: int


def simulate_exits(
    basin: Basin,
    noise: Noise,
    eps: float,
    *,
    n_paths: int,
    dt: float,
    t_max: float,
    seed: int,
    device: str | torch.device = "cpu",
    compact_every: int = 16,
) -> Exits:
    """First exit times of n_paths Euler–Maruyama paths started at θ* = 0."""
    dev = torch.device(device)
    f32 = torch.float32
    gen = torch.Generator(device=dev).manual_seed(seed)
    d = basin.dim
    up = torch.as_tensor(basin.upper, dtype=f32, device=dev)
    lo = torch.as_tensor(basin.lower, dtype=f32, device=dev)
    pre = torch.as_tensor(noise.drift_scale(d), dtype=f32, device=dev)
    h_up = torch.as_tensor(basin.h_upper, dtype=f32, device=dev) * pre * dt
    h_lo = torch.as_tensor(basin.h_lower, dtype=f32, device=dev) * pre * dt
    m = torch.as_tensor(noise.m, dtype=f32, device=dev)
    diagonal = bool(torch.equal(m, torch.diag(torch.diagonal(m))))
    jump = eps * dt ** (1 / noise.alpha)
    scale = torch.diagonal(m) * jump if diagonal else m.T * jump

    x = torch.zeros((n_paths, d), dtype=f32, device=dev)
    idx = torch.arange(n_paths, device=dev)
    alive = torch.ones(n_paths, dtype=torch.bool, device=dev)
    step_of = torch.zeros(n_paths, dtype=torch.int64, device=dev)
    times = np.full(n_paths, t_max)
    exited = np.zeros(n_paths, dtype=bool)
    face = np.zeros(n_paths, dtype=np.int64)
    max_steps = math.ceil(t_max / dt)
    path_steps = 0

    def retire(mask: torch.Tensor) -> None:
        gone = idx[mask].cpu().numpy()
        xs = x[mask]
        times[gone] = step_of[mask].cpu().numpy() * dt
        exited[gone] = True
        over = torch.maximum(xs / up, -xs / lo)
        k = over.argmax(dim=1)
        sign = torch.where(xs.gather(1, k[:, None])[:, 0] > 0, 1, -1)
        face[gone] = ((k + 1) * sign).cpu().numpy()

    for step in range(1, max_steps + 1):
        n = x.shape[0]
        if noise.model == "independent":
            xi = sample_sas_torch(noise.alpha, (n, d), gen, dev, f32)
        else:
            xi = sample_isotropic_torch(noise.alpha, n, d, gen, dev, f32)
        xi = xi * scale if diagonal else xi @ scale
        x_new = x - torch.where(x > 0, h_up, h_lo) * x + xi
        newly = alive & ~basin.inside(x_new, lo, up)
        x = torch.where(alive[:, None], x_new, x)  # exited paths stay where they left
        step_of = torch.where(newly, step, step_of)
        alive = alive & ~newly
        path_steps += n
        if step % compact_every == 0 or step == max_steps:
            dead = ~alive
            if bool(dead.any()):
                retire(dead)
                x, idx, alive, step_of = x[alive], idx[alive], alive[alive], step_of[alive]
            if x.shape[0] == 0:
                break
    return Exits(times, exited, face, t_max, path_steps)


def exponential_mle(
    times: np.ndarray, exited: np.ndarray, level: float = 0.95
) -> tuple[float, float, float]:
    """Mean exit time under censoring: Σ min(σ_i, T)/#exits, with the χ² interval
    [2S/χ²_{1−a/2}(2r), 2S/χ²_{a/2}(2r)] (exact for Exp(1)-shaped σ/Eσ, as DESIGN.md §5a states)."""
    r = int(np.sum(exited))
    total = float(np.sum(times))
    if r == 0:
        return math.inf, total / stats.chi2.ppf((1 + level) / 2, 2), math.inf
    a = 1 - level
    return (
        total / r,
        2 * total / stats.chi2.ppf(1 - a / 2, 2 * r),
        2 * total / stats.chi2.ppf(a / 2, 2 * r),
    )


def mean_exit_time_1d(
    alpha: float,
    eps: float,
    a: float,
    b: float,
    *,
    n_paths: int,
    dt: float = 0.01,
    seed: int = 0,
    censor_factor: float = 4.0,
    device: str = "cpu",
) -> float:
    """Simulated mean first exit time from (−b, a) for U = x²/2, started at 0."""
    basin = Basin("box", np.array([b]), np.array([a]), np.ones(1), np.ones(1))
    t_max = censor_factor * predicted_exit_time_1d(alpha, eps, a, b)
    ex = simulate_exits(
        basin,
        Noise(alpha, "independent", np.eye(1)),
        eps,
        n_paths=n_paths,
        dt=dt,
        t_max=t_max,
        seed=seed,
        device=device,
    )
    return exponential_mle(ex.times, ex.exited)[0]


def loglog_slope(eps: np.ndarray, times: np.ndarray) -> float:
    """Least-squares slope of log Γ against log ε (≈ −α for jump-driven exits)."""
    return float(np.polyfit(np.log(eps), np.log(times), 1)[0])
