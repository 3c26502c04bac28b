"""Escape times on a landscape: many paths of one optimizer under injected noise, the first
iteration each leaves the basin, and the exponential MLE of the mean under censoring."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from gradnoise.escape.injected_noise import InjectedNoise
from gradnoise.escape.update_rules import default_warmup, select_state, update_rule
from gradnoise.landscapes import BarrierWell, WellRows
from gradnoise.sde import exponential_mle


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
    landscape: BarrierWell,
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
    return escape_times_batch(
        [landscape],
        optimizer,
        hparams,
        noise,
        n_paths=n_paths,
        max_iters=max_iters,
        seeds=[seed],
        device=device,
        warmup=warmup,
        dtype=dtype,
        compact_every=compact_every,
    )[0]


def escape_times_batch(
    landscapes: Sequence[BarrierWell],
    optimizer: str,
    hparams: dict[str, Any],
    noise: InjectedNoise,
    *,
    n_paths: int,
    max_iters: int,
    seeds: Sequence[int],
    device: str | torch.device = "cpu",
    warmup: int | None = None,
    dtype: torch.dtype = torch.float32,
    compact_every: int = 16,
) -> list[EscapeTimes]:
    """escape_times on several landscapes of one dimension (each with its own seed) in one loop:
    every landscape's paths draw from its own generator as its own run would, and are stepped,
    frozen and dropped on the same iterations, so each result is bit for bit its own run's; torch's
    per-step overhead, which dominates at a few hundred paths (and Adam's warm-up is thousands of
    steps), is paid once for the batch."""
    dev = torch.device(device)
    k = len(landscapes)
    rule = update_rule(optimizer, hparams)
    samplers = [
        noise.sampler(
            land.hessian_at_minimum(), torch.Generator(device=dev).manual_seed(s), dev, dtype
        )
        for land, s in zip(landscapes, seeds, strict=True)
    ]
    sizes = [n_paths] * k

    def draw() -> torch.Tensor:
        parts = [sample(n) for sample, n in zip(samplers, sizes, strict=True)]
        return parts[0] if k == 1 else torch.cat(parts)

    idx = torch.arange(k * n_paths, device=dev)  # landscape idx // n_paths, path idx % n_paths
    wells = WellRows.of(landscapes, idx // n_paths, dtype)
    theta_star = torch.zeros((k * n_paths, landscapes[0].dim), dtype=dtype, device=dev)
    state = rule.init(theta_star)
    warm = default_warmup(rule) if warmup is None else warmup
    for _ in range(warm):
        rule.step(theta_star, wells.grad(theta_star) + draw(), state)

    theta = theta_star
    alive = torch.ones(k * n_paths, dtype=torch.bool, device=dev)
    step_of = torch.zeros(k * n_paths, dtype=torch.int64, device=dev)
    times = np.full(k * n_paths, max_iters, dtype=np.int64)
    exited = np.zeros(k * n_paths, dtype=bool)
    path_steps = [0] * k
    for it in range(1, max_iters + 1):
        new = rule.step(theta, wells.grad(theta) + draw(), state)
        newly = alive & wells.exited(new)
        theta = torch.where(alive[:, None], new, theta)  # exited paths stay where they left
        step_of = torch.where(newly, it, step_of)
        alive = alive & ~newly
        path_steps = [s + n for s, n in zip(path_steps, sizes, strict=True)]
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
                wells = wells.select(alive)
                alive = alive[alive]
                sizes = torch.bincount(idx // n_paths, minlength=k).tolist()
            if theta.shape[0] == 0:
                break
    results = []
    for j in range(k):
        rows = slice(j * n_paths, (j + 1) * n_paths)
        mean, lo, hi = exponential_mle(times[rows].astype(np.float64), exited[rows])
        results.append(
            EscapeTimes(times[rows], exited[rows], max_iters, warm, mean, lo, hi, path_steps[j])
        )
    return results
