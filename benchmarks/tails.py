"""Time of each closed-form estimator on 10⁷ values, and of the tails stage on the test config's noise.

python benchmarks/tails.py [--n 10000000] [--noise results/test/noise/adam/seed0/step30]

Run it with OPENBLAS_NUM_THREADS=1, as Snakemake runs the tails job (threads: 1): on a busy 2-core
machine a multi-threaded OpenBLAS took 0.5–5 s for one 400 × 400 eigh that takes 0.05 s on one thread.

Measured (2-core machine shared with other jobs, one BLAS thread, 200 replicates) on a default-sized
file (LeNet at initialization, P = 400, B = 64, 32 coordinates per layer, views raw, preconditioned and
averaged β = 0.9): the code before the estimator fixes 28.0 s, after 21.0 s (0.75×), run back to back.
Per-coordinate, McCulloch, Hill and pooled outputs of the raw and preconditioned views are bit-identical
(same resampling; the order statistics' searchsorted now runs per replicate on integer counts instead of
on one B × N float copy). The averaged view now re-averages resampled draws and sorts each replicate
(its resampling changed); the anisotropy bootstrap (≈ 6 s, 200 Lanczos solves per view) is unchanged.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from gradnoise.estimators import (
    alpha_hill,
    alpha_mcculloch,
    alpha_mohammadi,
    alpha_pooled_reference,
)
from gradnoise.levy import sample_sas


def timed(fn, *args) -> tuple[float, float]:
    start = time.perf_counter()
    value = fn(*args)
    return time.perf_counter() - start, value


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--noise", default="results/test/noise/adam/seed0/step30")
    args = ap.parse_args()
    x = sample_sas(1.5, args.n, np.random.default_rng(0))
    base, _ = timed(np.sort, x)  # a baseline from the same process: one full sort of the sample
    print(f"{args.n:.0e} SαS(1.5) values; baseline np.sort: {base:.3f} s")
    for name, fn, fargs in [
        ("mohammadi (k1 = 10)", alpha_mohammadi, (x, 10)),
        ("mohammadi (reference k1)", alpha_pooled_reference, (x.reshape(1000, -1),)),
        ("mcculloch", alpha_mcculloch, (x,)),
        ("hill (k = n/100)", alpha_hill, (x, args.n // 100)),
    ]:
        t, v = timed(fn, *fargs)
        print(f"  {name:26s} {t:6.3f} s  ({t / base:4.2f} × sort)  α̂ = {v:.3f}")
    stem = Path(args.noise)
    if Path(f"{stem}.parquet").exists():
        import pyarrow.parquet as pq

        from gradnoise.io import read_settings
        from gradnoise.tails import TailSettings, analyze

        samples, stats = pq.read_table(f"{stem}.parquet"), pq.read_table(f"{stem}.stats.parquet")
        t, table = timed(
            analyze,
            samples,
            stats,
            read_settings(f"{stem}.stats.parquet"),
            TailSettings(bootstrap=200),
        )
        print(
            f"tails stage on {stem}: {t:.2f} s for {table.num_rows} rows (200 bootstrap replicates)"
        )
    else:
        print(f"(no {stem}.parquet: run `snakemake --cores 2 --configfile config/test.yaml` first)")


if __name__ == "__main__":
    main()
