"""Path-steps per second of the SDE simulator against a plain numpy loop written here (one path-step
update per iteration over a vector of paths, dropping finished paths), in the same process.

    python benchmarks/sde.py [--paths 1000000] [--steps 200] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from gradnoise.sde import Noise, make_basin, simulate_exits


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


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--paths", type=int, default=1_000_000)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    alpha, eps, dt = 1.5, 0.01, 0.01  # small ε: few paths exit, so every step does full work
    start = time.perf_counter()
    base_steps = plain_numpy(args.paths, args.steps, alpha, eps, dt, 0)
    base = base_steps / (time.perf_counter() - start)
    basin, noise = make_basin("box", 1, 1.0, 4.0), Noise(alpha, "independent", np.eye(1))
    simulate_exits(
        basin, noise, eps, n_paths=1000, dt=dt, t_max=10 * dt, seed=0, device=args.device
    )  # warm-up
    start = time.perf_counter()
    ex = simulate_exits(
        basin,
        noise,
        eps,
        n_paths=args.paths,
        dt=dt,
        t_max=args.steps * dt,
        seed=1,
        device=args.device,
    )
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    fast = ex.path_steps / (time.perf_counter() - start)
    print(
        f"torch threads {torch.get_num_threads()}, {args.paths:,} paths × {args.steps} steps, 1-D, α = {alpha}"
    )
    print(f"  plain numpy loop : {base:12.3e} path-steps/s")
    print(
        f"  gradnoise ({args.device:4s}) : {fast:12.3e} path-steps/s  ({fast / base:.1f} × the plain loop)"
    )
    d8 = make_basin("box", 8, 1.0, 4.0)
    start = time.perf_counter()
    ex = simulate_exits(
        d8,
        Noise(alpha, "independent", np.eye(8)),
        eps,
        n_paths=args.paths // 8,
        dt=dt,
        t_max=args.steps * dt,
        seed=2,
        device=args.device,
    )
    rate = ex.path_steps * 8 / (time.perf_counter() - start)
    print(f"  8-D box, independent noise: {rate:.3e} coordinate-steps/s")


if __name__ == "__main__":
    main()
