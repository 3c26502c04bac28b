"""The tails table of one noise file: every α row and the anisotropy rows, per (split, view,
layer), in one tidy long-format table."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa

from gradnoise import anisotropy
from gradnoise.io import ALL, CHECKPOINT_KEY, InputError
from gradnoise.tails.coordinate_estimators import COORDINATE_ESTIMATORS
from gradnoise.tails.null_verdicts import NAN2, UNAVAILABLE, _ci, _coordinate, verdict
from gradnoise.tails.pooled import _pooled
from gradnoise.tails.settings import TailSettings
from gradnoise.views import RowDependence, effective_draws, momentum_of

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
        ("n_effective", pa.float64()),
        ("rows_skipped", pa.int64()),
        ("note", pa.string()),
        ("spectrum", pa.list_(pa.float64())),
    ]
)


def finite_rows(coords: np.ndarray) -> tuple[np.ndarray, int]:
    """The stored coordinates without padding columns (NaN in every row: layers smaller than the
    per-layer count) and without rows holding a non-finite value; and how many rows were dropped."""
    c = coords[:, ~np.isnan(coords).all(axis=0)]
    good = np.isfinite(c).all(axis=1)
    return c[good].astype(np.float64), int((~good).sum())


def unavailable_reason(p: int, beta: float | None, ts: TailSettings, skipped: int = 0) -> str:
    """Why no α can be estimated from P rows of a view (β: the averaged view's), or ""."""
    n_eff = effective_draws(p, beta)
    dep = RowDependence.of(p, beta, ts.max_row_correlation)
    if n_eff < ts.min_effective_draws:
        return (
            f"≈{n_eff:.0f} effective independent draws (P = {p}, β = {beta}) < min_effective_draws "
            f"({ts.min_effective_draws:g})"
        )
    if not dep.usable:
        return (
            f"P = {p} rows hold no block of 2 rows {2 * dep.lag} apart (β = {beta}: rows closer "
            f"than that correlate more than max_row_correlation² = {ts.max_row_correlation**2:g})"
        )
    if beta and skipped:
        return f"{skipped} rows skipped: the rest is no longer an EMA whose draws can be recovered"
    return ""


def _alpha_rows(
    stat: dict[str, Any],
    coords: np.ndarray,
    beta: float | None,
    ts: TailSettings,
    rng,
    skipped: int = 0,
) -> list[dict]:
    """α rows of one (split, view, layer); `coords` finite, P' × n (rows already filtered)."""
    p = coords.shape[0]
    n_eff = effective_draws(p, beta)
    note = unavailable_reason(p, beta, ts, skipped)
    too_few = bool(note)
    pooled, pooled_note = (UNAVAILABLE, note) if too_few else _pooled(stat, beta, ts, rng)
    results = {"pooled": (pooled, p * stat["numel"], pooled_note)}
    # a layer none of whose stored coordinates has noise (dead units, a blown-up run) has no tail
    silent = p > 0 and coords.shape[1] > 0 and not np.ptp(coords, axis=0).any()
    usable = coords.shape[1] > 0 and not too_few and not silent
    coord = _coordinate(coords, beta, ts, rng) if usable else {}
    why = note if too_few else "no stored coordinate has noise" if silent else ""
    for name in COORDINATE_ESTIMATORS:
        results[name] = (coord.get(name, UNAVAILABLE), coords.size, why)
    return [
        {
            "quantity": "alpha",
            "estimator": name,
            "value": float(e.value),
            "ci_low": e.ci[0],
            "ci_high": e.ci[1],
            "q25": e.q25,
            "q75": e.q75,
            "null_value": float(e.null),
            "null_ci_low": e.null_ci[0],
            "null_ci_high": e.null_ci[1],
            "verdict": verdict(e.value, e.ci, e.null, e.null_ci, ts.null_margin),
            "n": n,
            "n_effective": n_eff,
            "note": text or None,
        }
        for name, (e, n, text) in results.items()
    ]


def _anisotropy_rows(
    stat: dict[str, Any], beta: float | None, ts: TailSettings, rng: np.random.Generator
) -> list[dict]:
    ev = np.asarray(stat["eigenvalues"])
    spread = stat["var_q99"] / stat["var_q01"] if stat["var_q01"] > 0 else math.inf
    cis: dict[str, tuple[float, float]] = {}
    if stat.get("gram") is not None:
        p = stat["P"]
        lag = RowDependence.of(p, beta, ts.max_row_correlation).lag
        shares, ranks = anisotropy.bootstrap_anisotropy(
            np.asarray(stat["gram"]).reshape(p, p), ts.bootstrap, rng, lag
        )
        cis["top_share"] = _ci(shares, ts.ci_level)
        cis["effective_rank"] = _ci(ranks, ts.ci_level)
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
            "ci_low": cis.get(q, NAN2)[0],
            "ci_high": cis.get(q, NAN2)[1],
            "n": stat["numel"],
            "n_effective": effective_draws(stat["P"], beta),
            "spectrum": ev.tolist() if q == "effective_rank" else None,
        }
        for q, v in quantities.items()
    ]


def analyze(
    samples: pa.Table, stats: pa.Table, run: dict[str, Any], ts: TailSettings, source: str = ""
) -> pa.Table:
    """The tidy tails table of one noise file. `run`: the run that made it (experiment, arm,
    optimizer, hparams, seed, step, status); `source` names the file in error messages."""
    base = {k: run[k] for k in ("experiment", "arm", "optimizer", "seed", "step")}
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
    momentum = momentum_of(run["optimizer"], run["hparams"])
    rows = []
    for stat in stats.to_pylist():
        key = (stat["split"], stat["view"])
        if stat["layer"] == ALL:
            c = np.concatenate(list(coords[key].values()), axis=1)  # model order
        else:
            c = coords[key][stat["layer"]]
        c, skipped = finite_rows(c)
        if skipped and c.shape[0] < max(4, stat["P"] / 2):
            raise InputError(
                f"{source}: {skipped} of {stat['P']} noise rows of {key[0]}/{key[1]}/"
                f"{stat['layer']} hold non-finite values; too few remain for an estimate"
            )
        beta = momentum if stat["view"] == "averaged" else None
        ident = {
            **base,
            "status": "ok",
            "split": stat["split"],
            "view": stat["view"],
            "layer": stat["layer"],
            "rows_skipped": skipped,
        }
        for r in _alpha_rows(stat, c, beta, ts, rng, skipped) + _anisotropy_rows(
            stat, beta, ts, rng
        ):
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
