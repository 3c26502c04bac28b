"""The jump-adapted scheme: big jumps as events, the exact Ornstein–Uhlenbeck law between them,
steps cut to dt only where the Gaussian part could reach a face; its cost per exit does not
grow as ε → 0."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from gradnoise.sde.basins import Basin
from gradnoise.sde.driving_noise import Noise
from gradnoise.sde.exits import Exits, _check_finite, _describe, _faces
from gradnoise.sde.noise_split import _big_jumps, _split_noise
from gradnoise.sde.ou_steps import _crossing_probability, _diffusion_step
from gradnoise.sde.streams import Streams

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
    """min over faces of a d²/q with d the distance to the face along the relaxation from x to 0 (q:
    the variance rates, per coordinate or per path and coordinate): the Gaussian part crosses a face
    within a time T with probability ≲ aT √(S/π) e^(−S)."""
    if basin.kind == "ellipsoid":
        gap = (1 - (x / up).norm(dim=1)).clamp(min=0)
        return torch.minimum(a_pos, a_neg).min() * gap.square() / (q / up.square()).amax(dim=-1)
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
    return simulate_exits_jump_batch(
        [basin],
        noise,
        [eps],
        n_paths=n_paths,
        dt=dt,
        t_max=[t_max],
        seeds=[seed],
        device=device,
        threshold=threshold,
    )[0]


def simulate_exits_jump_batch(
    basins: Sequence[Basin],
    noise: Noise,
    eps: Sequence[float],
    *,
    n_paths: int,
    dt: float,
    t_max: Sequence[float],
    seeds: Sequence[int],
    device: str | torch.device = "cpu",
    threshold: float = JUMP_THRESHOLD,
) -> list[Exits]:
    """simulate_exits_jump for several configurations (basins[k], eps[k], t_max[k], seeds[k]) of one
    noise, their basins of one kind, dimension and curvatures, in one loop: every configuration
    keeps its own generator, drawn from as its own run would (``Streams``), so each one's Exits are
    bit for bit those of its own run, while torch's per-step overhead, which dominates at a few
    thousand paths, is paid once per step of the batch, not once per configuration."""
    first = basins[0]
    if any(
        (b.kind, b.dim) != (first.kind, first.dim)
        or not np.array_equal(b.h_upper, first.h_upper)
        or not np.array_equal(b.h_lower, first.h_lower)
        for b in basins
    ):
        raise ValueError("a batch's basins must share their kind, dimension and curvatures")
    dev, f32, f64 = torch.device(device), torch.float32, torch.float64
    k, d = len(eps), first.dim
    pre = noise.drift_scale(d)
    a_pos = torch.as_tensor(first.h_upper * pre, dtype=f32, device=dev)
    a_neg = torch.as_tensor(first.h_lower * pre, dtype=f32, device=dev)
    splits = [_split_noise(b, noise, e, threshold, dev) for b, e in zip(basins, eps, strict=True)]
    kinked = (first.h_upper != first.h_lower) & (splits[0].q.cpu().numpy() > 0)  # same for all
    skew = torch.as_tensor(np.flatnonzero(kinked), device=dev)  # else the step never crosses 0
    a_max = float(max(a_pos.max(), a_neg.max()))
    # per configuration, gathered per path (`safe` in float32: torch compared the float32 safety
    # with the Python float it was in float32)
    up_of = torch.as_tensor(np.stack([b.upper for b in basins]), dtype=f32, device=dev)
    lo_of = torch.as_tensor(np.stack([b.lower for b in basins]), dtype=f32, device=dev)
    safe = torch.tensor([_safe_level(d, a_max, tm) for tm in t_max], dtype=f32, device=dev)
    rate = torch.tensor([s.rate for s in splits], dtype=f64, device=dev)
    horizon = torch.tensor(t_max, dtype=f64, device=dev)
    q_of = torch.stack([s.q for s in splits])
    chol = None if splits[0].corr_chol is None else [s.corr_chol for s in splits]
    gens = [torch.Generator(device=dev).manual_seed(s) for s in seeds]

    x = torch.zeros((k * n_paths, d), dtype=f32, device=dev)
    t = torch.zeros(k * n_paths, dtype=f64, device=dev)  # float64: t reaches 10⁶ in steps of 10⁻²
    idx = torch.arange(k * n_paths, device=dev)  # configuration idx // n_paths, path idx % n_paths
    times = np.repeat(np.asarray(t_max, dtype=float), n_paths)
    exited = np.zeros(k * n_paths, dtype=bool)
    face = np.zeros(k * n_paths, dtype=np.int64)
    path_steps = [0] * k
    while x.shape[0]:
        config = idx // n_paths
        streams = Streams.of(gens, config)
        path_steps = [s + n for s, n in zip(path_steps, streams.sizes, strict=True)]
        q, up, lo = q_of[config], up_of[config], lo_of[config]
        near = _safety(first, x, lo, up, a_pos, a_neg, q) < safe[config]
        cap = torch.where(near, dt, math.inf)
        room = horizon[config] - t
        gap = -torch.log(streams.uniform((), f64)) / rate[config]
        limit = torch.minimum(cap, room)
        jumps = gap < limit
        tau = torch.where(jumps, gap, limit)

        tau32 = tau.to(f32)
        x1, a, decay, var = _diffusion_step(x, tau32, a_pos, a_neg, skew, q, chol, streams)
        crossed = ~first.inside(x1, lo, up)
        nr = near.nonzero()[:, 0]
        if nr.numel():
            p = _crossing_probability(
                first, x[nr], x1[nr], tau32[nr], a[nr], decay[nr], var[nr], lo[nr], up[nr], q[nr]
            )
            crossed[nr] |= streams.rows(config[nr]).uniform((), f32) < p
        kick = (jumps & ~crossed).nonzero()[:, 0]
        x1[kick] += streams.rows(config[kick]).each(
            lambda j, gen, m: _big_jumps(splits[j], noise, m, gen)
        )
        done = crossed
        done[kick] |= ~first.inside(x1[kick], lo[kick], up[kick])
        t = t + tau
        if bool(done.any()):
            gone, xs = idx[done], x1[done]
            finite = torch.isfinite(xs).all(dim=1)
            if not bool(finite.all()):
                j = int(gone[~finite][0]) // n_paths
                what = _describe(basins[j], noise, eps[j], seeds[j], "jump")
                _check_finite(xs[~finite], f"{what}, t ≤ {t_max[j]:.4g}")
            gone = gone.cpu().numpy()
            times[gone] = t[done].cpu().numpy()
            exited[gone] = True
            face[gone] = _faces(xs, lo[done], up[done])
        keep = ~done & (jumps | (room > cap))  # not exited, not censored at t_max
        x, t, idx = x1[keep], t[keep], idx[keep]
    return [
        Exits(
            times[j * n_paths : (j + 1) * n_paths],
            exited[j * n_paths : (j + 1) * n_paths],
            face[j * n_paths : (j + 1) * n_paths],
            t_max[j],
            path_steps[j],
        )
        for j in range(k)
    ]
