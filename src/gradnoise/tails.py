"""The tails stage: from one noise file, α̂ in every variant with bootstrap CIs and a Gaussian null,
and the anisotropy of the covariance — as one tidy long-format table.

Variants (DESIGN.md §3): ``pooled`` (the reference estimator; from the streamed statistics, so it covers
every coordinate), ``pooled_standardized`` (stored coordinates divided by their std across samples, then
pooled), ``per_coordinate`` (along the sample axis of each stored coordinate: median and IQR),
``mcculloch`` and ``hill`` (on the standardized pooled sample, as cross-checks). Each is computed on a
Gaussian surrogate with the same shapes and per-coordinate scale (``null_*`` columns): for ``pooled``
the surrogate was streamed through the exact reference layout by the noise stage. The scale is the
robust one (IQR/1.349, equal to the std for Gaussian noise): a std-matched surrogate of heavy-tailed
noise inherits the extremes through each coordinate's sample std and is itself scale-mixed.

Verdict of each α estimate against its null (rule fixed here, not tuned on results):
``heavy-tailed`` if ci_high < null_ci_low and null − estimate > null_margin; ``not heavy-tailed`` if
ci_low > null − null_margin; otherwise ``inconclusive``. The pooled estimate alone never decides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from gradnoise import anisotropy
from gradnoise.estimators import (
    EPS,
    IQR_PER_STD,
    alpha_from_log_means,
    mcculloch_from_quantiles,
    ref_k1,
)
from gradnoise.io import ALL, CHECKPOINT_KEY

TAILS_SCHEMA = pa.schema(
    [
        *CHECKPOINT_KEY,
        ("split", pa.string()),
        ("view", pa.string()),
        ("layer", pa.string()),
        ("quantity", pa.string()),
        ("estimator", pa.string()),
        ("value", pa.float64()),
        ("ci_low", pa.float64()),
        ("ci_high", pa.float64()),
        ("q25", pa.float64()),
        ("q75", pa.float64()),
        ("null_value", pa.float64()),
        ("null_ci_low", pa.float64()),
        ("null_ci_high", pa.float64()),
        ("verdict", pa.string()),
        ("n", pa.int64()),
        ("spectrum", pa.list_(pa.float64())),
    ]
)


@dataclass(frozen=True)
class TailSettings:
    bootstrap: int = 200
    seed: int = 0
    hill_fraction: float = 0.05
    ci_level: float = 0.95
    null_margin: float = 0.05


def robust_scale(c: np.ndarray) -> np.ndarray:
    """Per-column IQR/1.349, or the std where the IQR is 0 (see noise.iqr_scale)."""
    q25, q75 = np.quantile(c, [0.25, 0.75], axis=0)
    iqr = (q75 - q25) / IQR_PER_STD
    return np.where(iqr > 0, iqr, c.std(axis=0, ddof=1))


def _mohammadi_rows(x: np.ndarray, k1: int) -> np.ndarray:
    """Mohammadi on each row of a 2-D array (blocks of k1 consecutive entries, tail dropped)."""
    n = x.shape[1] // k1 * k1
    y = x[:, :n].reshape(x.shape[0], -1, k1).sum(axis=2)
    inv = (np.log(np.abs(y) + EPS).mean(1) - np.log(np.abs(x[:, :n]) + EPS).mean(1)) / math.log(k1)
    with np.errstate(divide="ignore"):
        return np.where(inv > 0, 1.0 / inv, np.inf)


def batched_estimates(c: np.ndarray, hill_fraction: float) -> dict[str, np.ndarray]:
    """The estimators on a batch of stored-coordinate matrices c (B × P × n), vectorized over B.

    Columns are standardized by their std across samples (columns with zero std in any matrix of the
    batch are dropped); ``per_coordinate`` is the median over columns, with its quartiles.
    """
    sd = c.std(axis=1, ddof=1)
    keep = (sd > 0).all(axis=0)
    z = c[:, :, keep] / sd[:, None, keep]
    b, p, n = z.shape
    flat = z.reshape(b, p * n)
    out = {"pooled_standardized": _mohammadi_rows(flat, ref_k1(p * n)) if n else np.full(b, np.nan)}
    k1 = ref_k1(p)
    m = p // k1 * k1
    y = z[:, :m].reshape(b, m // k1, k1, n).sum(axis=2)
    inv = (np.log(np.abs(y) + EPS).mean(1) - np.log(np.abs(z[:, :m]) + EPS).mean(1)) / math.log(k1)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_col = np.where(inv > 0, 1.0 / inv, np.inf)
    per_col = np.where(np.isfinite(per_col), per_col, np.nan)
    q25, med, q75 = _row_quantiles(per_col, (0.25, 0.5, 0.75))
    out["per_coordinate"], out["per_coordinate_q25"], out["per_coordinate_q75"] = med, q25, q75
    q = np.quantile(flat, [0.05, 0.25, 0.75, 0.95], axis=1)
    out["mcculloch"] = np.array([mcculloch_from_quantiles(*q[:, i]) for i in range(b)])
    k = max(1, int(hill_fraction * p * n))
    out["hill"] = _hill_rows(np.abs(flat), k) if p * n > k else np.full(b, np.nan)
    return out


def _row_quantiles(x: np.ndarray, qs: tuple[float, ...]) -> list[np.ndarray]:
    """Linear-interpolation quantiles of each row over its non-NaN entries (np.nanquantile's rule,
    vectorized: NaN sorts last, so row i's finite values are the first count_i of its sorted row)."""
    srt = np.sort(x, axis=1)
    count = np.isfinite(x).sum(axis=1)
    last = np.maximum(count - 1, 0)
    rows = np.arange(x.shape[0])
    out = []
    for q in qs:
        pos = q * last
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, last)
        val = srt[rows, lo] + (pos - lo) * (srt[rows, hi] - srt[rows, lo])
        out.append(np.where(count > 0, val, np.nan))
    return out


def _hill_rows(a: np.ndarray, k: int) -> np.ndarray:
    top = np.sort(np.partition(a, a.shape[1] - k - 1, axis=1)[:, a.shape[1] - k - 1 :], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.log(top[:, 1:] / top[:, :1]).mean(axis=1)
        return np.where(inv > 0, 1.0 / inv, np.inf)


def coordinate_estimates(
    c: np.ndarray, hill_fraction: float
) -> dict[str, tuple[float, float, float]]:
    """The estimators on one stored-coordinate matrix (P × n): value, q25, q75 (IQR for per_coordinate)."""
    est = batched_estimates(c[None], hill_fraction)
    nan = math.nan
    return {
        name: (
            float(est[name][0]),
            float(est[f"{name}_q25"][0]) if name == "per_coordinate" else nan,
            float(est[f"{name}_q75"][0]) if name == "per_coordinate" else nan,
        )
        for name in COORDINATE_ESTIMATORS
    }


COORDINATE_ESTIMATORS = ("pooled_standardized", "per_coordinate", "mcculloch", "hill")


def bootstrap_estimates(
    c: np.ndarray,
    n_boot: int,
    hill_fraction: float,
    rng: np.random.Generator,
    max_elements: int = 2**22,
) -> dict[str, np.ndarray]:
    """Bootstrap over samples (rows) of every estimator, in vectorized batches of replicates."""
    p, n = c.shape
    per_batch = max(1, max_elements // max(1, p * n))
    reps: dict[str, list[np.ndarray]] = {}
    for start in range(0, n_boot, per_batch):
        idx = rng.integers(0, p, (min(per_batch, n_boot - start), p))
        for name, values in batched_estimates(c[idx], hill_fraction).items():
            reps.setdefault(name, []).append(values)
    return {k: np.concatenate(v) for k, v in reps.items()}


def pooled_from_rows(
    log_x: np.ndarray,
    log_y: np.ndarray,
    n_y: np.ndarray,
    numel: int,
    k1: int,
    weights: np.ndarray | None = None,
) -> np.ndarray | float:
    """The reference estimate from per-row sums; `weights` (n_boot × P) gives bootstrap replicates."""
    if weights is None:
        return alpha_from_log_means(log_y.sum() / n_y.sum(), log_x.sum() / (len(log_x) * numel), k1)
    mean_y = weights @ log_y / (weights @ n_y)
    mean_x = weights @ log_x / (weights.sum(1) * numel)
    inv = (mean_y - mean_x) / math.log(k1)
    with np.errstate(divide="ignore"):
        return np.where(inv > 0, 1.0 / inv, np.inf)


def _ci(reps: np.ndarray, level: float) -> tuple[float, float]:
    reps = reps[np.isfinite(reps)]
    if reps.size < 2:
        return math.nan, math.nan
    lo, hi = np.quantile(reps, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def verdict(
    value: float, ci: tuple[float, float], null: float, null_ci: tuple[float, float], margin: float
) -> str:
    if not all(np.isfinite([value, *ci, null, *null_ci])):
        return "inconclusive"
    if ci[1] < null_ci[0] and null - value > margin:
        return "heavy-tailed"
    if ci[0] > null - margin:
        return "not heavy-tailed"
    return "inconclusive"


def _alpha_rows(
    stat: dict[str, Any], coords: np.ndarray, ts: TailSettings, rng: np.random.Generator
) -> list[dict]:
    """α rows of one (split, view, layer)."""
    p = stat["P"]
    weights = rng.multinomial(p, np.full(p, 1.0 / p), size=ts.bootstrap).astype(np.float64)
    args = (np.asarray(stat["row_n_y"]), stat["numel"], stat["k1"])
    real = (np.asarray(stat["row_log_x"]), np.asarray(stat["row_log_y"]))
    null = (np.asarray(stat["null_row_log_x"]), np.asarray(stat["null_row_log_y"]))
    pooled = pooled_from_rows(*real[:2], *args)
    pooled_null = pooled_from_rows(*null[:2], *args)
    results = {
        "pooled": (
            pooled,
            _ci(pooled_from_rows(*real, *args, weights), ts.ci_level),
            math.nan,
            math.nan,
        ),
    }
    nulls = {"pooled": (pooled_null, _ci(pooled_from_rows(*null, *args, weights), ts.ci_level))}
    n_obs = {"pooled": p * stat["numel"]}
    c = coords[:, np.isfinite(coords).all(axis=0)].astype(np.float64)
    if c.shape[1] > 0 and p >= 4:
        surrogate = rng.standard_normal(c.shape) * robust_scale(c)
        est = coordinate_estimates(c, ts.hill_fraction)
        est_null = coordinate_estimates(surrogate, ts.hill_fraction)
        boot = bootstrap_estimates(c, ts.bootstrap, ts.hill_fraction, rng)
        boot_null = bootstrap_estimates(surrogate, ts.bootstrap, ts.hill_fraction, rng)
        for name, (v, q25, q75) in est.items():
            results[name] = (v, _ci(boot[name], ts.ci_level), q25, q75)
            nulls[name] = (est_null[name][0], _ci(boot_null[name], ts.ci_level))
            n_obs[name] = c.size
    rows = []
    for name, (v, ci, q25, q75) in results.items():
        nv, nci = nulls[name]
        rows.append(
            {
                "quantity": "alpha",
                "estimator": name,
                "value": float(v),
                "ci_low": ci[0],
                "ci_high": ci[1],
                "q25": q25,
                "q75": q75,
                "null_value": float(nv),
                "null_ci_low": nci[0],
                "null_ci_high": nci[1],
                "verdict": verdict(v, ci, nv, nci, ts.null_margin),
                "n": n_obs[name],
            }
        )
    return rows


def _anisotropy_rows(
    stat: dict[str, Any], ts: TailSettings, rng: np.random.Generator
) -> list[dict]:
    ev = np.asarray(stat["eigenvalues"])
    spread = stat["var_q99"] / stat["var_q01"] if stat["var_q01"] > 0 else math.inf
    cis: dict[str, tuple[float, float]] = {}
    if stat.get("gram") is not None:
        p = stat["P"]
        spectra = anisotropy.bootstrap_gram_spectra(
            np.asarray(stat["gram"]).reshape(p, p), ts.bootstrap, rng
        )
        cis["top_share"] = _ci(np.array([anisotropy.top_share(s) for s in spectra]), ts.ci_level)
        cis["effective_rank"] = _ci(
            np.array([anisotropy.effective_rank(s) for s in spectra]), ts.ci_level
        )
    nan2 = (math.nan, math.nan)
    quantities = {
        "top_share": anisotropy.top_share(ev),
        "effective_rank": anisotropy.effective_rank(ev),
        "var_spread": float(spread),
    }
    return [
        {
            "quantity": q,
            "estimator": "gram" if q != "var_spread" else "q99/q01",
            "value": v,
            "ci_low": cis.get(q, nan2)[0],
            "ci_high": cis.get(q, nan2)[1],
            "n": stat["numel"],
            "spectrum": ev.tolist() if q == "effective_rank" else None,
        }
        for q, v in quantities.items()
    ]


def analyze(samples: pa.Table, stats: pa.Table, run: dict[str, Any], ts: TailSettings) -> pa.Table:
    """The tidy tails table of one noise file; `run` holds experiment, optimizer, seed, step, status."""
    base = {k: run[k] for k in ("experiment", "optimizer", "seed", "step")}
    if run.get("status", "ok") != "ok" or stats.num_rows == 0:
        row = {
            **base,
            "status": run.get("status", "empty"),
            "quantity": "status",
            "verdict": run.get("status"),
        }
        return pa.Table.from_pylist([row], schema=TAILS_SCHEMA)
    coords = _coords_by_key(samples)
    rng = np.random.default_rng(ts.seed)
    rows = []
    for stat in stats.to_pylist():
        key = (stat["split"], stat["view"])
        if stat["layer"] == ALL:
            c = np.concatenate(list(coords[key].values()), axis=1)  # model order
        else:
            c = coords[key][stat["layer"]]
        ident = {
            **base,
            "status": "ok",
            "split": stat["split"],
            "view": stat["view"],
            "layer": stat["layer"],
        }
        for r in _alpha_rows(stat, c, ts, rng) + _anisotropy_rows(stat, ts, rng):
            rows.append({**ident, **r})
    return pa.Table.from_pylist(rows, schema=TAILS_SCHEMA)


def _coords_by_key(samples: pa.Table) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    """Stored coordinates as P × n matrices keyed by (split, view) and layer."""
    out: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    cols = {c: samples.column(c).to_pylist() for c in ("split", "view", "layer", "sample")}
    values = samples.column("coords").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    n = samples.schema.field("coords").type.list_size
    values = values.reshape(-1, n)
    groups: dict[tuple[str, str, str], list[tuple[int, np.ndarray]]] = {}
    for i, key in enumerate(zip(cols["split"], cols["view"], cols["layer"], strict=True)):
        groups.setdefault(key, []).append((cols["sample"][i], values[i]))
    for (split, view, layer), rows in groups.items():
        rows.sort(key=lambda r: r[0])
        out.setdefault((split, view), {})[layer] = np.stack([r[1] for r in rows])
    return out
