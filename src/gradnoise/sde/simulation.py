"""First exit times by either integrator, and the simulated mean exit time of the 1-D case."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from gradnoise.sde.basins import Basin
from gradnoise.sde.driving_noise import Noise
from gradnoise.sde.estimates import exponential_mle
from gradnoise.sde.euler import _simulate_exits_euler
from gradnoise.sde.exits import Exits
from gradnoise.sde.jump_scheme import simulate_exits_jump, simulate_exits_jump_batch
from gradnoise.sde.predictions import predicted_exit_time_1d

SCHEMES = ("euler", "jump")


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
    scheme: str = "euler",
) -> Exits:
    """First exit times of n_paths paths started at θ* = 0, by Euler–Maruyama with step dt
    (``euler``) or by the jump-adapted scheme of simulate_exits_jump (``jump``, dt is then the step
    of its diffusive part near the boundary)."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; allowed: {', '.join(SCHEMES)}")
    run = simulate_exits_jump if scheme == "jump" else _simulate_exits_euler
    return run(basin, noise, eps, n_paths=n_paths, dt=dt, t_max=t_max, seed=seed, device=device)


def simulate_exits_batch(
    basins: Sequence[Basin],
    noise: Noise,
    eps: Sequence[float],
    *,
    n_paths: int,
    dt: float,
    t_max: Sequence[float],
    seeds: Sequence[int],
    device: str | torch.device = "cpu",
    scheme: str = "euler",
) -> list[Exits]:
    """simulate_exits for each configuration (basins[k], eps[k], t_max[k], seeds[k]) of one noise,
    the basins of one kind, dimension and curvatures, each result the same as its own call: the
    jump scheme runs them in one loop (simulate_exits_jump_batch), Euler one after another."""
    if scheme == "jump":
        return simulate_exits_jump_batch(
            basins, noise, eps, n_paths=n_paths, dt=dt, t_max=t_max, seeds=seeds, device=device
        )
    return [
        simulate_exits(
            b, noise, e, n_paths=n_paths, dt=dt, t_max=tm, seed=s, device=device, scheme=scheme
        )
        for b, e, tm, s in zip(basins, eps, t_max, seeds, strict=True)
    ]


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
    scheme: str = "euler",
) -> float:
    """Simulated mean first exit time from (−b, a) for U = x²/2, started at 0 (`scheme` as in
    simulate_exits)."""
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
        scheme=scheme,
    )
    return exponential_mle(ex.times, ex.exited)[0]
