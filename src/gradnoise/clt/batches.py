"""α̂ of minibatch noise against the batch size, from one pool of per-example values (DESIGN.md §11).

Under the generalized CLT (per-example values in the domain of attraction of SαS(α), α < 2) minibatch
means stay α-stable, so α̂ is flat in B; with finite variance they tend to Gaussian and α̂ rises to 2.
All batch sizes are formed from the same pool of N examples: draw k holds B distinct examples (drawn
without replacement; draws are independent of each other), its noise is its mean minus the pool
mean, and each of the C stored coordinates gets the tails stage's per-coordinate estimator
(``gradnoise.tails.per_coordinate_alphas``: Mohammadi along the P draws, capped at 2). A finite pool
bends every curve as B/N grows (an exactly SαS(1.3) pool of N = 4,000 reads 1.27, 1.30, 1.69 at
B = 4, 32, 256, P = 400), which is why ``gradnoise.clt.predict`` simulates each model at the same N.

The interval is a bootstrap over coordinates: the number reported is the median over the layer's
coordinates, the stored coordinates are a random subset of them, and each coordinate's α̂ already
carries the noise of its own P draws; resampling coordinates costs no re-estimation. (Resampling the
draws instead would put duplicate draws inside Mohammadi's blocks, whose sums are then no longer
K1^(1/α) times one draw.) Coordinates that share minibatches are dependent, and that dependence is not
in the interval: for real gradients read it as the spread over coordinates, not a seed interval.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from gradnoise.tails import per_coordinate_alphas


def as_pool(per_example: np.ndarray) -> np.ndarray:
    """The per-example values as an N × C float64 matrix: trailing axes flattened (N × L × per_layer
    from ``per_example_gradients``), padding columns (all NaN) and columns without spread dropped."""
    x = np.asarray(per_example, dtype=np.float64)
    x = x.reshape(len(x), -1)
    keep = ~np.isnan(x).all(axis=0)
    x = x[:, keep]
    if not np.isfinite(x).all():
        raise ValueError("per-example values hold NaN or inf outside padding columns")
    return x[:, x.std(axis=0) > 0]


def draw_rng(seed: int, batch_size: int) -> np.random.Generator:
    """The generator of one batch size's draws: adding a batch size leaves the others' draws alone."""
    return np.random.default_rng([seed, batch_size])


@lru_cache(maxsize=256)  # the stage reuses 76 at its default settings (≈ 16 MiB)
def draws(n: int, batch_size: int, n_draws: int, seed: int) -> np.ndarray:
    """n_draws × batch_size row indices: draw k holds `batch_size` distinct rows of `n`, from
    ``draw_rng(seed, batch_size)``. They depend on no pool's values, so every pool of n rows resampled
    at this seed and batch size (both checkpoints' measured pools, and simulated pools that share a
    seed) reuses them: cached, read-only."""
    if not 1 <= batch_size <= n:
        raise ValueError(f"batch size must lie in [1, {n}], got {batch_size}")
    rng = draw_rng(seed, batch_size)
    # a uniform B-subset per draw (Generator.choice without replacement: 2–3× faster here than the B
    # smallest of N random keys per draw)
    idx = np.stack([rng.choice(n, batch_size, replace=False) for _ in range(n_draws)])
    idx.flags.writeable = False
    return idx


def minibatch_noise(pool: np.ndarray, batch_size: int, n_draws: int, seed: int) -> np.ndarray:
    """P × C: minibatch means of `n_draws` draws of `batch_size` distinct rows of `pool` (N × C)
    (``draws``), minus the pool mean. P·B·C additions, not the P·N·C of a product with a selection
    matrix: each draw's sum is accumulated one row of the draw at a time over all P draws, so the
    working set is one P × C block, not the P × B × C gather (numpy's reduction over the middle axis
    of that gather adds in the same order, so the sums are the same to the bit). The rows are read
    from a C-ordered copy (a pool whose columns were selected is Fortran-ordered, and gathering its
    rows is slow); the pool mean is the pool's own, whose order decides how numpy sums it."""
    idx = draws(len(pool), batch_size, n_draws, seed)
    rows = np.ascontiguousarray(pool)
    total = rows[idx[:, 0]]
    for j in range(1, batch_size):
        total += rows[idx[:, j]]
    return total / batch_size - pool.mean(axis=0)


def coordinate_alphas(noise: np.ndarray) -> np.ndarray:
    """The tails stage's per-coordinate estimate of each column of a P × C noise matrix."""
    return per_coordinate_alphas(np.asarray(noise, dtype=np.float64)[None])[0]


def alphas_by_batch_size(
    pool: np.ndarray, batch_sizes: list[int], n_draws: int, seed: int
) -> np.ndarray:
    """len(batch_sizes) × C per-coordinate α̂ of the minibatch noise of the pool (N × C)."""
    return np.stack(
        [coordinate_alphas(minibatch_noise(pool, b, n_draws, seed)) for b in batch_sizes]
    )


def coordinate_bootstrap(n_coords: int, n_boot: int, seed: int) -> np.ndarray:
    """n_boot × C indices of coordinates drawn with replacement (the same for every batch size, so
    that a replicate is a whole curve)."""
    return np.random.default_rng([seed, n_coords]).integers(0, n_coords, (n_boot, n_coords))


def _interval(reps: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    return tuple(np.quantile(reps, [(1 - level) / 2, (1 + level) / 2], axis=0))


def alpha_by_batch_size(
    per_example: np.ndarray,
    batch_sizes: list[int],
    n_draws: int,
    seed: int,
    n_boot: int = 200,
    level: float = 0.95,
    null: bool = True,
) -> pd.DataFrame:
    """Median over coordinates of the per-coordinate α̂ of minibatch noise at each batch size, with a
    bootstrap interval over coordinates. Columns: batch_size, alpha, low, high, n_coordinates and,
    with `null`, null_alpha, null_low, null_high: the same on Gaussian noise of the same P × C shape
    (a Gaussian pool's minibatch means are Gaussian at every B; the estimator is scale-free per
    coordinate, so no scale needs matching)."""
    pool = as_pool(per_example)
    c = pool.shape[1]
    alphas = alphas_by_batch_size(pool, batch_sizes, n_draws, seed)
    boot = coordinate_bootstrap(c, n_boot, seed)
    low, high = _interval(np.median(alphas[:, boot], axis=2).T, level)
    out = pd.DataFrame(
        {
            "batch_size": np.asarray(batch_sizes, dtype=np.int64),
            "alpha": np.median(alphas, axis=1),
            "low": low,
            "high": high,
            "n_coordinates": c,
        }
    )
    if null:
        gauss = np.stack(
            [
                coordinate_alphas(draw_rng(seed + 1, b).standard_normal((n_draws, c)))
                for b in batch_sizes
            ]
        )
        out["null_alpha"] = np.median(gauss, axis=1)
        out["null_low"], out["null_high"] = _interval(np.median(gauss[:, boot], axis=2).T, level)
    return out
