"""Escape times on a landscape: many paths of one optimizer under injected noise, the first
iteration each leaves the basin, and the exponential MLE of the mean under censoring."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from gradnoise.escape.injected_noise import InjectedNoise
from gradnoise.escape.update_rules import default_warmup, select_state, update_rule
from gradnoise.sde import exponential_mle


class Landscape(Protocol):
    @property
    def dim(self) -> int: ...

    def grad(self, theta: torch.Tensor) -> torch.Tensor: ...

    def exited(self, theta: torch.Tensor) -> torch.Tensor: ...

    def hessian_at_minimum(self) -> np.ndarray: ...


@dataclass(frozen=True)
class EscapeTimes:
    times: np.ndarray  # first iteration past the barrier, per path (max_iters where censored)
    exited: np.ndarray  # False where censored
    max_iters: int
    warmup: int
    mean: float  # exponential MLE Σ min(τ_i, T) / #exits (inf without exits)
    ci_low: float
    ci_high: float
    path_steps: int

    @property
    def n_exits(self) -> int:
        return int(self.exited.sum())


def escape_times(
    landscape: Landscape,
    optimizer: str,
    hparams: dict[str, Any],
    noise: InjectedNoise,
    *,
    n_paths: int,
    max_iters: int,
    seed: int,
    device: str | torch.device = "cpu",
    warmup: int | None = None,
    dtype: torch.dtype = torch.float32,
    compact_every: int = 16,
) -> EscapeTimes:
    """First exit iteration of n_paths independent runs of ``optimizer`` started at θ* = 0.

    Before the clock starts, the optimizer's state is settled by ``warmup`` steps taken with θ held at
    θ* (θ reset after each step; default ``default_warmup``), so that every path arrives at the minimum
    with the statistics of an optimizer that has been there for a while, not with Adam's first steps of
    size lr. Exited paths are frozen and dropped every ``compact_every`` steps; a non-finite θ raises
    FloatingPointError (a NaN never counts as an exit, an overflow never as a first passage)."""
    dev = torch.device(device)
    gen = torch.Generator(device=dev).manual_seed(seed)
    rule = update_rule(optimizer, hparams)
    draw = noise.sampler(landscape.hessian_at_minimum(), gen, dev, dtype)
    theta_star = torch.zeros((n_paths, landscape.dim), dtype=dtype, device=dev)
    state = rule.init(theta_star)
    warm = default_warmup(rule) if warmup is None else warmup
    for _ in range(warm):
        rule.step(theta_star, landscape.grad(theta_star) + draw(n_paths), state)

    theta = theta_star
    idx = torch.arange(n_paths, device=dev)
    alive = torch.ones(n_paths, dtype=torch.bool, device=dev)
    step_of = torch.zeros(n_paths, dtype=torch.int64, device=dev)
    times = np.full(n_paths, max_iters, dtype=np.int64)
    exited = np.zeros(n_paths, dtype=bool)
    path_steps = 0
    for it in range(1, max_iters + 1):
        n = theta.shape[0]
        new = rule.step(theta, landscape.grad(theta) + draw(n), state)
        newly = alive & landscape.exited(new)
        theta = torch.where(alive[:, None], new, theta)  # exited paths stay where they left
        step_of = torch.where(newly, it, step_of)
        alive = alive & ~newly
        path_steps += n
        if it % compact_every == 0 or it == max_iters:
            if not bool(torch.isfinite(theta).all()):
                raise FloatingPointError(f"{optimizer}: non-finite parameters at iteration {it}")
            dead = ~alive
            if bool(dead.any()):
                gone = idx[dead].cpu().numpy()
                times[gone] = step_of[dead].cpu().numpy()
                exited[gone] = True
                theta, idx, step_of = theta[alive], idx[alive], step_of[alive]
                state = select_state(state, alive)
                alive = alive[alive]
            if theta.shape[0] == 0:
                break
    mean, lo, hi = exponential_mle(times.astype(np.float64), exited)
    return EscapeTimes(times, exited, max_iters, warm, mean, lo, hi, path_steps)
