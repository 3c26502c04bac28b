"""The jump-adapted scheme: big jumps as events, the exact Ornstein–Uhlenbeck law between them,
steps cut to dt only where the Gaussian part could reach a face; its cost per exit does not
grow as ε → 0."""

from __future__ import annotations

import math

import numpy as np
import torch

from gradnoise.levy import open_uniform
from gradnoise.sde.basins import Basin
from gradnoise.sde.driving_noise import Noise
from gradnoise.sde.exits import Exits, _check_finite, _describe, _faces
from gradnoise.sde.noise_split import _big_jumps, _split_noise
from gradnoise.sde.ou_steps import _crossing_probability, _diffusion_step

JUMP_THRESHOLD = 0.2  # δ as a fraction of the shortest jump that can leave G
MISSED_CROSSING = 1e-4  # tolerated chance per path that the Gaussian part leaves G unwatched


def _safe_level(dim: int, a_max: float, t_max: float) -> float:
    """The safety S = a d²/q above which the Gaussian part is not watched: an OU leaves through a
    face at S at Kramers' rate a √(S/π) e^(−S); over 2·dim faces and t_max that stays below
    MISSED_CROSSING where S = log(2 dim a t_max / MISSED_CROSSING) + ½ log(S/π) (≈ 14–24)."""
    budget = max(math.log(2 * dim * a_max * t_max / MISSED_CROSSING), 1.0)
    level = budget
    for _ in range(3):
        level = budget + 0.5 * math.log(level / math.pi)
    return level


def _safety(
    basin: Basin,
    x: torch.Tensor,
    lo: torch.Tensor,
    up: torch.Tensor,
    a_pos: torch.Tensor,
    a_neg: torch.Tensor,
    q: torch.Tensor,
) -> torch.Tensor:
    """min over faces of a d²/q with d the distance to the face along the relaxation from x to 0:
    the Gaussian part crosses a face within a time T with probability ≲ aT √(S/π) e^(−S)."""
    if basin.kind == "ellipsoid":
        gap = (1 - (x / up).norm(dim=1)).clamp(min=0)
        return torch.minimum(a_pos, a_neg).min() * gap.square() / (q / up.square()).max()
    d_up, d_lo = up - x.clamp(min=0), lo + x.clamp(max=0)
    return torch.minimum(a_pos * d_up.square() / q, a_neg * d_lo.square() / q).min(dim=1).values


def simulate_exits_jump(
    basin: Basin,
    noise: Noise,
    eps: float,
    *,
    n_paths: int,
    dt: float,
    t_max: float,
    seed: int,
    device: str | torch.device = "cpu",
    threshold: float = JUMP_THRESHOLD,
) -> Exits:
    """First exit times by a jump-adapted scheme (vectorized over paths; float32 state, float64
    clock).

    The driving noise is split at jump length δ (_split_noise, δ = `threshold` × the shortest jump
    that leaves G): the big jumps are a compound Poisson process, simulated event by event (exact
    rate, Pareto lengths δ U^(−1/α), along ±m_j or uniform directions); the small ones are replaced
    by a Brownian motion of the same covariance (Asmussen & Rosiński 2001). Between events the state
    moves by the exact Ornstein–Uhlenbeck transition of each coordinate (the valley's two-sided
    curvature by _skew_ou_step). Exits are checked after every step and every jump; where the
    Gaussian part could reach a face (safety a d²/q < _safe_level) steps are cut to dt and the bridge
    probability of having crossed in between is drawn (_crossing_probability), with the exit time
    at the end of the step, as Euler records it.

    Error: the jumps below δ act through their variance only, and near a face the Gaussian part
    creeps where the small jumps would jump. In the exit rate that is a relative error of order
    (ε/r)^α threshold^(2−α) (r the distance to the boundary): a share of the finite-ε correction,
    gone as ε → 0. Measured against Euler at dt → 0 (1-D, r = 5ε, α = 1.5, 10⁵ paths): −0.7 % at
    threshold 0.1 and −1.6 % at 0.3; in d = 8 at ε = 0.1, within the CIs for every basin. The
    Gaussian part's correlation between coordinates (non-diagonal M Mᵀ) is exact only where the
    coordinates share one curvature.

    Cost: ≈ threshold^(−α) events per exit for independent noise (≈ ρ_min^(−α)/E ρ(u)^(−α) times
    more, 2–12 in the matched setups, for isotropic noise, whose δ is set by its worst direction),
    plus steps of dt while the Gaussian part is near a face (large ε/r only); none grows as ε → 0.
    Work (path_steps) counts the steps of the paths still running.
    """
    dev, f32, f64 = torch.device(device), torch.float32, torch.float64
    gen = torch.Generator(device=dev).manual_seed(seed)
    d = basin.dim
    up = torch.as_tensor(basin.upper, dtype=f32, device=dev)
    lo = torch.as_tensor(basin.lower, dtype=f32, device=dev)
    pre = noise.drift_scale(d)
    a_pos = torch.as_tensor(basin.h_upper * pre, dtype=f32, device=dev)
    a_neg = torch.as_tensor(basin.h_lower * pre, dtype=f32, device=dev)
    split = _split_noise(basin, noise, eps, threshold, dev)
    kinked = (basin.h_upper != basin.h_lower) & (split.q.cpu().numpy() > 0)
    skew = torch.as_tensor(np.flatnonzero(kinked), device=dev)  # else the step never crosses 0
    safe = _safe_level(d, float(max(a_pos.max(), a_neg.max())), t_max)

    x = torch.zeros((n_paths, d), dtype=f32, device=dev)
    t = torch.zeros(n_paths, dtype=f64, device=dev)  # float64: t reaches 10⁶ in steps of 10⁻²
    idx = torch.arange(n_paths, device=dev)
    times = np.full(n_paths, t_max)
    exited = np.zeros(n_paths, dtype=bool)
    face = np.zeros(n_paths, dtype=np.int64)
    path_steps = 0
    while x.shape[0]:
        n = x.shape[0]
        path_steps += n
        near = _safety(basin, x, lo, up, a_pos, a_neg, split.q) < safe
        cap = torch.where(near, dt, math.inf)
        room = t_max - t
        gap = -torch.log(open_uniform((n,), gen, dev, f64)) / split.rate
        limit = torch.minimum(cap, room)
        jumps = gap < limit
        tau = torch.where(jumps, gap, limit)

        x1, a, decay, var = _diffusion_step(x, tau.to(f32), a_pos, a_neg, skew, split, gen)
        crossed = ~basin.inside(x1, lo, up)
        nr = near.nonzero()[:, 0]
        if nr.numel():
            p = _crossing_probability(
                basin, x[nr], x1[nr], tau[nr].to(f32), a[nr], decay[nr], var[nr], lo, up, split.q
            )
            crossed[nr] |= open_uniform((nr.numel(),), gen, dev, f32) < p
        kick = (jumps & ~crossed).nonzero()[:, 0]
        x1[kick] += _big_jumps(split, noise, kick.numel(), gen)
        done = crossed
        done[kick] |= ~basin.inside(x1[kick], lo, up)
        t = t + tau
        if bool(done.any()):
            gone, xs = idx[done].cpu().numpy(), x1[done]
            _check_finite(xs, f"{_describe(basin, noise, eps, seed, 'jump')}, t ≤ {t_max:.4g}")
            times[gone] = t[done].cpu().numpy()
            exited[gone] = True
            face[gone] = _faces(xs, lo, up)
        keep = ~done & (jumps | (room > cap))  # not exited, not censored at t_max
        x, t, idx = x1[keep], t[keep], idx[keep]
    return Exits(times, exited, face, t_max, path_steps)
