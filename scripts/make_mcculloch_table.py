"""Generate src/gradnoise/data/mcculloch_table.npz: ν_α = (q95 − q05)/(q75 − q25) of unit SαS(α) from
exact quantiles (scipy.stats.levy_stable.ppf), for α on a grid in [0.5, 2]. Slow (scipy), run once;
tests check that this script reproduces the shipped table."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy import stats

OUT = Path(__file__).resolve().parents[1] / "src" / "gradnoise" / "data" / "mcculloch_table.npz"
ALPHAS = np.round(np.arange(0.5, 2.0001, 0.01), 4)


def nu_of(alpha: float) -> float:
    if alpha == 2.0:
        q = stats.norm.ppf([0.05, 0.25, 0.75, 0.95])
    else:
        q = stats.levy_stable.ppf([0.05, 0.25, 0.75, 0.95], alpha, 0.0)
    return float((q[3] - q[0]) / (q[2] - q[1]))


def table(alphas: np.ndarray = ALPHAS) -> tuple[np.ndarray, np.ndarray]:
    return np.array([nu_of(a) for a in alphas]), alphas


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args()
    nu, alphas = table()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, nu=nu, alpha=alphas)
    for a, n in zip(alphas, nu, strict=True):
        print(f"alpha={a:.2f}  nu={n:.5f}")


if __name__ == "__main__":
    main()
