"""What each model predicts for α̂(B), simulated at the measurement's own N, B, P and coordinates,
and which prediction the measured curve follows (DESIGN.md §11).

A finite pool bends both models' curves, so neither predicts a flat line; each is simulated instead:
pools of the same N × C, each coordinate with the measured pool's robust scale (IQR/1.349; the
per-coordinate estimator is scale-free, so this only keeps the pools comparable), drawn from
- ``sas``: SαS with the measured α̂ at the smallest batch size (the generalized CLT: the same α at
  every B, bent only by the finite pool);
- ``finite_variance``: Student-t with ν the per-example tail exponent (``hill.tail_exponents``,
  median over coordinates), clipped to ≥ ``NU_MIN`` so that the variance is finite. (The empirical
  pool's own bootstrap is no rival: its minibatch means are those of the measured pool itself, so it
  reproduces the measured curve whatever the law.)
each through the same resampling and estimator (``batches.alphas_by_batch_size``), `n_pools` times:
the band is the spread over simulated pools, the centre their median.

Distance of the measured curve m(B) to a prediction μ(B): the mean over B of (m − μ)². Its interval
comes from the measured curve's coordinate bootstrap (``batches``), with the same replicates for both
models, so that the difference of the two distances has an interval too: below zero throughout, the
curve follows SαS; above, the finite-variance law; otherwise undecided.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gradnoise.clt.batches import _interval, alphas_by_batch_size, as_pool, coordinate_bootstrap
from gradnoise.clt.hill import tail_exponents
from gradnoise.levy import sample_sas
from gradnoise.tails import robust_scale

NU_MIN = 2.05  # the finite-variance rival's smallest degrees of freedom
MODELS = ("sas", "finite_variance")


@dataclass(frozen=True)
class Comparison:
    """The measured curve, both predictions and the distances (tables for the figure and the claim)."""

    measured: pd.DataFrame  # batch_size, alpha, low, high
    predictions: pd.DataFrame  # model, parameter, batch_size, alpha, low, high
    distances: pd.DataFrame  # model (sas, finite_variance, difference), distance, low, high
    verdict: str  # "sas", "finite_variance" or "inconclusive"


def simulate_curves(
    law: str,
    parameter: float,
    scales: np.ndarray,
    n: int,
    batch_sizes: list[int],
    n_draws: int,
    n_pools: int,
    seed: int,
) -> np.ndarray:
    """n_pools × len(batch_sizes): the median over coordinates of α̂(B) on simulated pools of n
    examples with the given per-coordinate scales; `law` is "sas" (parameter α) or
    "finite_variance" (Student-t, parameter ν)."""
    out = np.empty((n_pools, len(batch_sizes)))
    for i in range(n_pools):
        pool = simulated_pool(law, parameter, scales, n, np.random.default_rng([seed, i]))
        out[i] = np.median(alphas_by_batch_size(pool, batch_sizes, n_draws, seed + i), axis=1)
    return out


def simulated_pool(
    law: str, parameter: float, scales: np.ndarray, n: int, rng: np.random.Generator
) -> np.ndarray:
    """n × len(scales) per-example values of one model: "sas" (SαS, parameter α) or
    "finite_variance" (Student-t, parameter ν), each column at the given robust scale."""
    shape = (n, len(scales))
    if law == "sas":
        pool = sample_sas(parameter, shape, rng)
    elif law == "finite_variance":
        pool = rng.standard_t(parameter, shape)
    else:
        raise ValueError(f"law must be one of {MODELS}, got {law!r}")
    return pool * (scales / robust_scale(pool))


def model_parameters(pool: np.ndarray, small_b_alpha: float) -> dict[str, float]:
    """The two models' parameters from the measurement: SαS's α (the smallest batch size's α̂, at
    most 2) and the Student-t's ν (the per-example tail exponent, at least NU_MIN)."""
    nu = float(np.nanmedian(tail_exponents(pool)[0]))
    return {"sas": float(min(small_b_alpha, 2.0)), "finite_variance": max(nu, NU_MIN)}


def compare_with_predictions(
    per_example: np.ndarray,
    batch_sizes: list[int],
    n_draws: int,
    seed: int,
    n_pools: int = 20,
    n_boot: int = 200,
    level: float = 0.95,
) -> Comparison:
    """The measured α̂(B) of the pool against both models' simulated curves (see the module)."""
    pool = as_pool(per_example)
    sizes = sorted(batch_sizes)
    alphas = alphas_by_batch_size(pool, sizes, n_draws, seed)
    curve = np.median(alphas, axis=1)
    reps = np.median(alphas[:, coordinate_bootstrap(pool.shape[1], n_boot, seed)], axis=2).T
    low, high = _interval(reps, level)
    measured = pd.DataFrame({"batch_size": sizes, "alpha": curve, "low": low, "high": high})
    params = model_parameters(pool, curve[0])
    scales = robust_scale(pool)
    rows, dist, dist_reps = [], {}, {}
    for j, model in enumerate(MODELS):
        sims = simulate_curves(
            model, params[model], scales, len(pool), sizes, n_draws, n_pools, seed + 1000 * (j + 1)
        )
        centre = np.median(sims, axis=0)
        band = _interval(sims, level)
        rows.append(
            pd.DataFrame(
                {
                    "model": model,
                    "parameter": params[model],
                    "batch_size": sizes,
                    "alpha": centre,
                    "low": band[0],
                    "high": band[1],
                }
            )
        )
        dist[model] = float(np.mean((curve - centre) ** 2))
        dist_reps[model] = np.mean((reps - centre) ** 2, axis=1)
    dist["difference"] = dist["sas"] - dist["finite_variance"]
    dist_reps["difference"] = dist_reps["sas"] - dist_reps["finite_variance"]
    distances = pd.DataFrame(
        [
            {
                "model": m,
                "distance": dist[m],
                **dict(zip(("low", "high"), _interval(r, level), strict=True)),
            }
            for m, r in dist_reps.items()
        ]
    )
    return Comparison(measured, pd.concat(rows, ignore_index=True), distances, _verdict(distances))


def _verdict(distances: pd.DataFrame) -> str:
    diff = distances.set_index("model").loc["difference"]
    if diff["high"] < 0:
        return "sas"
    if diff["low"] > 0:
        return "finite_variance"
    return "inconclusive"
