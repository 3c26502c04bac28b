"""One checkpoint's per-example pool reduced to the rows of ``clt.table``: what claims S1–S3 and the
figures read (DESIGN.md §11). The statistics are ``gradnoise.clt``'s; this module picks their inputs.

The pool is the per-example noise u_i = g_i − ḡ of N training examples at the noise stage's stored
coordinates, and the per-layer norms of g_i.
- S1 (infinite variance): Hill's exponent at the KS threshold of every stored coordinate; the median
  over coordinates, against the same estimator on a Gaussian pool of the same shape.
- S2 (generalized CLT): α̂ of minibatch noise against B from the pool, and both models' curves
  simulated at the same N, B, P and coordinates' scales (``clt.compare_with_predictions``), on a
  seeded subset of ``coordinates`` stored coordinates (the simulations cost C × pools).
- S3 (the law at the training batch size): SαS, Student-t and Gaussian fitted to each coordinate's
  minibatch noise at the arm's batch size (``clt.best_laws``), on the same subset. The winner by AIC
  cannot decide between the models at a finite N: an exactly SαS(1.2) pool of N = 4,000 gives the
  Student-t the win on 59–78 % of coordinates at B = 64 (its minibatch means never exceed the pool's
  largest example / B, and each large example recurs in ≈ PB/N draws), as does a finite-variance pool.
  What differs is the tail the fit finds: the Student-t's tail index 1/ν̂ (0 for Gaussian noise),
  median over coordinates, measured 0.56–0.60 on SαS(1.2) pools, 0.37–0.40 on SαS(1.5), 0.04 on
  Student-t(3) at these sizes. So it is compared, like S2's curve, with the same statistic on pools
  simulated from both models (their parameters are S2's). The winners' shares are reported per layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, stdtr

from gradnoise.clt.batches import minibatch_noise
from gradnoise.clt.hill import hill_curve, hill_curves, tail_exponent_interval, tail_exponents
from gradnoise.clt.laws import (
    LAWS,
    best_laws,
    fit_sas,
    fit_student_t,
    fit_student_t_columns,
    sas_abs_sf,
    shares_by_layer,
)
from gradnoise.clt.predict import Comparison, compare_with_predictions, simulated_pool
from gradnoise.clt.table import MODELS
from gradnoise.io import ALL
from gradnoise.tails import robust_scale

LEVEL = 0.95  # of the per-checkpoint intervals (the claims' intervals are over seeds)
HILL_POINTS = 40  # values of k in the Hill plot (geometric, 10 … N/2)
CCDF_POINTS = 80  # ranks at which the CCDF figure's empirical law is kept


@dataclass(frozen=True)
class PoolSettings:
    """The stage's settings (config: ``experiments.<name>.alpha_stable``, less what picks the pool)."""

    batch_sizes: tuple[int, ...] = (2, 4, 8, 16, 32, 64, 128, 256)
    n_draws: int = 400
    coordinates: int = 64
    n_pools: int = 4
    bootstrap: int = 200
    seed: int = 0


@dataclass(frozen=True)
class Pool:
    """Per-example noise (N × C, centred), each column's layer and flat parameter index, and the
    per-example gradient norms (N × L) of the layers named in ``layer_names``."""

    noise: np.ndarray
    layers: np.ndarray
    index: np.ndarray
    norms: np.ndarray
    layer_names: list[str]

    @classmethod
    def of(cls, coords: np.ndarray, coord_index: np.ndarray, norms: np.ndarray, names: list[str]):
        """From ``per_example_gradients``' N × L × per_layer coordinates (−1 in `coord_index`
        pads) and N × L norms: centred, padding and columns without spread dropped."""
        live = coord_index.reshape(-1) >= 0
        g = np.asarray(coords, dtype=np.float64).reshape(len(coords), -1)[:, live]
        layers = np.repeat(np.asarray(names, dtype=object), coord_index.shape[1])[live]
        index = coord_index.reshape(-1)[live]
        if not np.isfinite(g).all() or not np.isfinite(norms).all():
            raise ValueError("per-example gradients hold NaN or inf")
        spread = g.std(axis=0) > 0
        u = g[:, spread] - g[:, spread].mean(axis=0)
        return cls(u, layers[spread], index[spread], np.asarray(norms, np.float64), list(names))


def row(quantity: str, layer: str = ALL, law: str = "", x: float = np.nan, **values) -> dict:
    """One row of the table (without the checkpoint key): value, ci_low, ci_high, null_value, n."""
    out = {"layer": layer, "quantity": quantity, "law": law, "x": float(x), "n": 0}
    out |= {k: np.nan for k in ("value", "ci_low", "ci_high", "null_value")}
    return out | values


def median_interval(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> tuple:
    """The median of the finite values and its percentile bootstrap interval (at LEVEL)."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return np.nan, np.nan, np.nan
    reps = np.median(v[rng.integers(0, v.size, (n_boot, v.size))], axis=1)
    low, high = np.quantile(reps, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return float(np.median(v)), float(low), float(high)


def _groups(layers: np.ndarray, names: list[str]) -> list[tuple[str, np.ndarray]]:
    """(layer, its columns) for the whole network, then each layer that has columns."""
    return [(ALL, np.ones(len(layers), bool))] + [
        (name, layers == name) for name in names if (layers == name).any()
    ]


def tail_rows(pool: Pool, s: PoolSettings) -> tuple[list[dict], np.ndarray]:
    """S1's rows per layer and for the network, and each column's exponent."""
    rng = np.random.default_rng([s.seed, 1])
    exps, ks = tail_exponents(pool.noise)
    null, _ = tail_exponents(rng.standard_normal(pool.noise.shape))
    rows = []
    for layer, cols in _groups(pool.layers, pool.layer_names):
        e = exps[cols]
        n = int(np.isfinite(e).sum())
        value, low, high = median_interval(e, s.bootstrap, rng)
        k = float(np.median(ks[cols][ks[cols] > 0])) if n else np.nan
        rows.append(
            row("tail_exponent", layer, x=k, value=value, ci_low=low, ci_high=high, n=n)
            | {"null_value": float(np.nanmedian(null[cols]))}
        )
        below = (e[np.isfinite(e)] < 2).astype(float)
        share, low, high = (np.nan,) * 3
        if n:
            reps = below[rng.integers(0, n, (s.bootstrap, n))].mean(axis=1)
            share, (low, high) = below.mean(), np.quantile(reps, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
        rows.append(
            row("infinite_variance_share", layer, value=share, ci_low=low, ci_high=high, n=n)
            | {"null_value": float(np.mean(null[cols] < 2))}
        )
    return rows, exps


def hill_ks(n: int) -> np.ndarray:
    return np.unique(np.geomspace(10, max(11, n // 2), HILL_POINTS).round().astype(np.int64))


def norm_and_hill_rows(pool: Pool, s: PoolSettings) -> list[dict]:
    """The Hill plot of each layer (median over its coordinates; its norms) and the tail exponent of
    its per-example gradient norms."""
    ks = hill_ks(len(pool.noise))
    rows = []
    for i, layer in enumerate(pool.layer_names):
        cols = np.flatnonzero(pool.layers == layer)
        curves = hill_curves(pool.noise[:, cols], ks)
        median = [
            np.median(c[np.isfinite(c)]) if np.isfinite(c).any() else np.nan for c in curves.T
        ]
        norm = tail_exponent_interval(pool.norms[:, i], s.bootstrap, s.seed, LEVEL)
        rows.append(
            row(
                "norm_tail_exponent",
                layer,
                x=norm.k,
                value=norm.alpha,
                ci_low=norm.low,
                ci_high=norm.high,
                n=len(pool.norms),
            )
        )
        rows += [
            row("hill", layer, x=k, value=v, n=len(cols)) for k, v in zip(ks, median, strict=True)
        ]
        _, norm_curve = hill_curve(pool.norms[:, i], ks)
        rows += [row("hill_norm", layer, x=k, value=v) for k, v in zip(ks, norm_curve, strict=True)]
    return rows


def study_columns(c: int, s: PoolSettings) -> np.ndarray:
    """The seeded subset of `coordinates` columns that S2 and S3 use (all of them if fewer)."""
    if c <= s.coordinates:
        return np.arange(c)
    return np.sort(np.random.default_rng([s.seed, c]).choice(c, s.coordinates, replace=False))


def curve_rows(cmp: Comparison) -> list[dict]:
    """S2's rows: the measured curve, both predictions, their parameters and distances."""
    rows = [
        row("alpha", law="measured", x=r.batch_size, value=r.alpha, ci_low=r.low, ci_high=r.high)
        for r in cmp.measured.itertuples()
    ]
    for r in cmp.predictions.itertuples():
        rows.append(
            row("alpha", law=r.model, x=r.batch_size, value=r.alpha, ci_low=r.low, ci_high=r.high)
        )
    params = cmp.predictions.drop_duplicates("model").set_index("model").parameter
    rows += [row("model_parameter", law=m, value=float(params[m])) for m in MODELS]
    dist = cmp.distances.set_index("model")
    rows += [  # the square root is monotone: the interval of the mean square maps onto it
        row(
            "rms_distance",
            law=m,
            value=float(np.sqrt(dist.distance[m])),
            ci_low=float(np.sqrt(dist.low[m])),
            ci_high=float(np.sqrt(dist.high[m])),
        )
        for m in MODELS
    ]
    return rows


def t_tail_index(noise: np.ndarray) -> np.ndarray:
    """1/ν̂ of the Student-t maximum-likelihood fit (location 0) to each column."""
    return 1.0 / fit_student_t_columns(noise)[0]


def law_rows(
    pool: Pool, cols: np.ndarray, batch_size: int, params: dict[str, float], s: PoolSettings
) -> list[dict]:
    """S3's rows at the training batch size: the measured Student-t tail index and both models'
    (simulated pools of the same N and scales, S2's parameters), and the best laws' shares."""
    sub = pool.noise[:, cols]
    rng = np.random.default_rng([s.seed, 2])
    noise = minibatch_noise(sub, batch_size, s.n_draws, s.seed)
    fits = best_laws(noise, pool.layers[cols])
    value, low, high = median_interval(1.0 / fits.nu.to_numpy(), s.bootstrap, rng)
    rows = [
        row("t_tail_index", law="measured", x=batch_size, value=value, ci_low=low, ci_high=high)
    ]
    scales = robust_scale(sub)
    for j, model in enumerate(MODELS):
        sims = []
        for i in range(s.n_pools):
            rng_i = np.random.default_rng([s.seed, 3, j, i])
            simulated = simulated_pool(model, params[model], scales, len(sub), rng_i)
            draws = minibatch_noise(simulated, batch_size, s.n_draws, s.seed + i + 1)
            sims.append(np.median(t_tail_index(draws)))
        low, high = np.quantile(sims, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
        value = float(np.median(sims))
        rows.append(
            row("t_tail_index", law=model, x=batch_size, value=value, ci_low=low, ci_high=high)
        )
    for table in (shares_by_layer(fits.assign(layer=ALL)), shares_by_layer(fits)):
        for r in table.itertuples():
            rows += [
                row("law_share", r.layer, law=law, x=batch_size, value=getattr(r, law), n=r.n)
                for law in LAWS
            ]
    return rows


def ccdf_rows(pool: Pool, exps: np.ndarray) -> list[dict]:
    """The CCDF of the coordinate whose tail exponent is nearest the median, and the three laws
    fitted to its per-example noise."""
    finite = np.flatnonzero(np.isfinite(exps))
    if finite.size == 0:
        return []
    j = finite[np.argmin(np.abs(exps[finite] - np.median(exps[finite])))]
    u = pool.noise[:, j]
    a = np.sort(np.abs(u))[::-1]
    ranks = np.unique(np.geomspace(1, len(a), CCDF_POINTS).round().astype(np.int64))
    x = a[ranks - 1]
    alpha, sas_scale, _ = fit_sas(u)
    nu, t_scale, _ = fit_student_t(u)
    sigma = float(np.sqrt(np.mean(u**2)))
    laws = {
        "empirical": (ranks / len(a), np.nan, np.nan),
        "sas": (sas_abs_sf(x, alpha, sas_scale), alpha, sas_scale),
        "student_t": (2 * stdtr(nu, -(x / t_scale)), nu, t_scale),  # scipy.stats.t.sf's own
        "gaussian": (2 * ndtr(-(x / sigma)), sigma, sigma),  # scipy.stats.norm.sf's
    }
    layer, index = str(pool.layers[j]), int(pool.index[j])
    rows = []
    for law, (ccdf, parameter, scale) in laws.items():
        rows += [
            row("ccdf", layer, law, xi, value=float(c), n=index)
            for xi, c in zip(x, ccdf, strict=True)
        ]
        if law != "empirical":
            rows.append(row("ccdf_fit", layer, law, scale, value=float(parameter), n=index))
    return rows


def analyze(pool: Pool, batch_size: int, s: PoolSettings) -> list[dict]:
    """Every row of one checkpoint (module docstring); `batch_size`: the arm's training batch size."""
    if not max(max(s.batch_sizes), batch_size) < len(pool.noise):
        raise ValueError(
            f"batch sizes up to {max(max(s.batch_sizes), batch_size)} need more than "
            f"{len(pool.noise)} examples in the pool"
        )
    rows, exps = tail_rows(pool, s)
    rows += norm_and_hill_rows(pool, s)
    cols = study_columns(pool.noise.shape[1], s)
    cmp = compare_with_predictions(
        pool.noise[:, cols], list(s.batch_sizes), s.n_draws, s.seed, s.n_pools, s.bootstrap, LEVEL
    )
    rows += curve_rows(cmp)
    params = cmp.predictions.drop_duplicates("model").set_index("model").parameter.to_dict()
    rows += law_rows(pool, cols, batch_size, params, s)
    return rows + ccdf_rows(pool, exps)
