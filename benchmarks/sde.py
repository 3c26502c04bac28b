"""Exit-time simulators, one run: the Euler kernel's path-steps/s (against a plain numpy loop
written here), the jump-adapted scheme's equivalent throughput and its ratio to Euler, its accuracy
against the closed form (1-D, ε = 0.01), its agreement with Euler in the matched d-D setups
(ε = 0.1), and measured/predicted against ε per basin down to where it is within 5 % of 1.

    python benchmarks/sde.py [--paths 200000] [--steps 200] [--alpha 1.5] [--threads N]
                             [--device cpu|cuda]

Equivalent throughput of the jump scheme: paths × mean exit time / dt (dt = 0.01) per second, i.e.
the path-steps an Euler run with that dt would need for the same paths. The d-D setups are those of
gradnoise.simulate.matched (d = 8, M = diag(√λ) with trace(MMᵀ) = d, D = I, flat width 1 and sharp
width 1/4, the valley 4× narrower and 16× steeper on one side) with λ_k ∝ 1/k and α = --alpha.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from gradnoise.sde import (
    BASINS,
    NOISE_MODELS,
    Basin,
    Noise,
    exponential_mle,
    make_basin,
    predicted_exit_time,
    predicted_exit_time_1d,
    simulate_exits,
)

DT = 0.01  # the Euler step the equivalent throughput is counted in
SCALES = {"flat": 1.0, "sharp": 0.25}
EPS_GRID = (0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001)


def plain_numpy(n_paths: int, steps: int, alpha: float, eps: float, dt: float, seed: int) -> int:
    """The baseline: Euler–Maruyama for U = x²/2 on (−1, 1) with CMS noise, numpy float64."""
    rng = np.random.default_rng(seed)
    x = np.zeros(n_paths)
    done = 0
    jump = eps * dt ** (1 / alpha)
    for _ in range(steps):
        v = rng.uniform(-math.pi / 2, math.pi / 2, x.size)
        w = rng.standard_exponential(x.size)
        xi = (
            np.sin(alpha * v)
            / np.cos(v) ** (1 / alpha)
            * (np.cos((1 - alpha) * v) / w) ** ((1 - alpha) / alpha)
        )
        x = x - x * dt + jump * xi
        done += x.size
        x = x[np.abs(x) < 1]
    return done


def timed_run(
    basin: Basin, noise: Noise, eps: float, n: int, dt: float, scheme: str, seed: int, dev
):
    """(measured/predicted, CI low, CI high, #exits, mean exit time, seconds) of one run."""
    pred = predicted_exit_time(basin, noise, eps)
    start = time.perf_counter()
    ex = simulate_exits(
        basin, noise, eps, n_paths=n, dt=dt, t_max=4 * pred, seed=seed, device=dev, scheme=scheme
    )
    seconds = time.perf_counter() - start
    mean, lo, hi = exponential_mle(ex.times, ex.exited)
    return mean / pred, lo / pred, hi / pred, int(ex.exited.sum()), mean, seconds


def matched_setups(alpha: float, d: int = 8):
    lam = 1.0 / np.arange(1, d + 1)
    m = np.diag(np.sqrt(lam * d / lam.sum()))
    for kind in BASINS:
        for scale, width in SCALES.items():
            for model in NOISE_MODELS:
                yield (
                    f"{kind:9s} {scale:5s} {model:11s}",
                    make_basin(kind, d, width, 4.0),
                    Noise(alpha, model, m),
                )


def euler_kernel(args) -> float:
    alpha, eps = 1.5, 0.01  # small ε: few paths exit, so every step does full work
    start = time.perf_counter()
    base = plain_numpy(args.paths, args.steps, alpha, eps, DT, 0) / (time.perf_counter() - start)
    basin, noise = make_basin("box", 1, 1.0, 4.0), Noise(alpha, "independent", np.eye(1))
    run = dict(dt=DT, device=args.device)
    simulate_exits(basin, noise, eps, n_paths=1000, t_max=10 * DT, seed=0, **run)  # warm-up
    start = time.perf_counter()
    ex = simulate_exits(basin, noise, eps, n_paths=args.paths, t_max=args.steps * DT, seed=1, **run)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    fast = ex.path_steps / (time.perf_counter() - start)
    print(f"torch threads {torch.get_num_threads()}, device {args.device}")
    print(
        f"Euler kernel, 1-D, α = {alpha}, ε = {eps}, dt = {DT}, {args.paths:,} paths × {args.steps}"
    )
    print(f"  plain numpy loop : {base:10.3e} path-steps/s")
    print(f"  gradnoise Euler  : {fast:10.3e} path-steps/s ({fast / base:.1f} × the plain loop)")
    return fast


def jump_1d(euler_rate: float, device: str) -> None:
    """Throughput and accuracy at ε = 0.01, U = x²/2 on (−1, 1), 10⁴ paths."""
    eps, n = 0.01, 10_000
    basin, line = Basin("box", np.ones(1), np.ones(1), np.ones(1), np.ones(1)), "-" * 78
    print(f"\nJump scheme, 1-D, ε = {eps}, {n:,} paths (target: within 3 % of the closed form;")
    print("throughput ≥ 100 × the Euler kernel)")
    print(
        f"  α    predicted  measured/predicted [95 % CI]   equiv. path-steps/s  × Euler\n  {line}"
    )
    for alpha in (1.2, 1.5, 1.8):
        noise = Noise(alpha, "independent", np.eye(1))
        timed_run(basin, noise, eps, 1000, DT, "jump", 0, device)  # warm-up
        r, lo, hi, _, mean, sec = timed_run(basin, noise, eps, n, DT, "jump", 1, device)
        rate = n * mean / DT / sec
        pred = predicted_exit_time_1d(alpha, eps, 1.0, 1.0)
        print(
            f"  {alpha:<4} {pred:9.1f}  {r:6.3f} [{lo:.3f}, {hi:.3f}]"
            f"{rate:23.3e} {rate / euler_rate:8.0f}"
        )


def agreement(alpha: float, device: str) -> None:
    """Jump (dt = 0.02) against Euler at the stage's dt = 0.02 and at a fine dt (≥ 2000 steps per
    predicted exit time, at most 0.002: Euler's discrete monitoring overestimates exit times by
    O(√dt) where small jumps creep to the face), ε = 0.1."""
    eps, n = 0.1, 4000
    print(f"\nJump vs Euler, matched d-D setups, d = 8, α = {alpha}, ε = {eps}, {n:,} paths each;")
    print("measured/predicted [95 % CI]; z = log(jump/Euler fine)/sd, |z| < 2 agrees")
    print(
        f"  {'setup':28s} {'jump dt=.02':>21s} {'Euler dt=.02':>21s} {'Euler fine':>21s}"
        f"  dt fine  z    s jump/fine"
    )
    for name, basin, noise in matched_setups(alpha):
        dt_fine = min(0.002, predicted_exit_time(basin, noise, eps) / 2000)
        jump = timed_run(basin, noise, eps, n, 0.02, "jump", 11, device)
        coarse = timed_run(basin, noise, eps, n, 0.02, "euler", 12, device)
        fine = timed_run(basin, noise, eps, n, dt_fine, "euler", 13, device)
        z = math.log(jump[0] / fine[0]) / math.sqrt(1 / jump[3] + 1 / fine[3])
        cells = "".join(f" {r:5.3f} [{lo:.3f},{hi:.3f}]" for r, lo, hi, *_ in (jump, coarse, fine))
        print(f"  {name}{cells} {dt_fine:8.5f} {z:4.1f} {jump[5]:5.1f}/{fine[5]:5.1f}")


def eps_scan(alpha: float, device: str) -> None:
    """measured/predicted of the jump scheme over EPS_GRID; ε* = the largest ε from which on every
    smaller ε of the grid is within 5 % of 1."""
    n = 10_000
    print(f"\nJump scheme, measured/predicted against ε, d = 8, α = {alpha}, {n:,} paths")
    print(f"  {'setup':28s}" + "".join(f"{e:>7g}" for e in EPS_GRID) + "     ε*   s")
    worst = math.inf
    for name, basin, noise in matched_setups(alpha):
        runs = [timed_run(basin, noise, e, n, 0.02, "jump", 21, device) for e in EPS_GRID]
        ratios = [r[0] for r in runs]
        ok = [abs(r - 1) <= 0.05 for r in ratios]
        star = next((e for i, e in enumerate(EPS_GRID) if all(ok[i:])), math.nan)
        worst = min(worst, star) if math.isfinite(star) else math.nan
        cells = "".join(f"{r:7.3f}" for r in ratios)
        print(f"  {name}{cells}  {star:6g} {sum(r[5] for r in runs):4.0f}")
    print(f"  within 5 % in every setup for ε ≤ {worst:g}")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--paths", type=int, default=200_000)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--alpha", type=float, default=1.5)
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    euler_rate = euler_kernel(args)
    jump_1d(euler_rate, args.device)
    agreement(args.alpha, args.device)
    eps_scan(args.alpha, args.device)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
