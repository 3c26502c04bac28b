"""Euler–Maruyama for the exit times: an increment of L over dt is dt^(1/α) ξ with ξ unit SαS."""

from __future__ import annotations

import math

import numpy as np
import torch

from gradnoise.levy import sample_isotropic_torch, sample_sas_torch
from gradnoise.sde.basins import Basin
from gradnoise.sde.driving_noise import Noise
from gradnoise.sde.exits import Exits, _check_finite, _describe, _faces


def _simulate_exits_euler(
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
    """Euler–Maruyama, float32: finished paths are frozen at once and dropped every few steps."""
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
        _check_finite(
            xs,
            f"{_describe(basin, noise, eps, seed, 'euler')}, dt = {dt}, "
            f"by step {int(step_of[mask].max())}",
        )
        times[gone] = step_of[mask].cpu().numpy() * dt
        exited[gone] = True
        face[gone] = _faces(xs, lo, up)

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
