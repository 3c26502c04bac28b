"""The simulate stage: escape times of Lévy-driven SDEs matched to the measured noise, and the built-in
calibration of the simulator against the closed-form 1-D law.

Matching (per optimizer, final checkpoint, mean over seeds, training split, whole network):
- α: the ``alpha_estimator`` estimate (config) of the view that drives the optimizer — ``averaged`` for
  optimizers with momentum (SGD-M, Adam/AdamW, Adai/AdaiW), ``raw`` for plain SGD — capped at
  ``alpha_max`` (α = 2 has no Lévy measure; rows say when the cap was applied);
- M: diag(√λ_1, …, √λ_d) from the top d eigenvalues of the noise covariance of the update — the
  ``preconditioned`` view for Adam/AdamW (whose spectrum is that of D⁻¹ΣD⁻¹), ``raw`` otherwise.

Integrator (``scheme``, stated in every row): the jump-adapted scheme of sde.simulate_exits_jump, or
Euler–Maruyama as the cross-check.

Normalization (stated in every row): M is rescaled to trace(MMᵀ) = d and the drift is not
preconditioned (D = I), and every optimizer shares ε and the basin. The comparison therefore isolates
the two quantities the paper's argument rests on — the tail index and the shape (anisotropy) of the
noise — and says nothing about the absolute step sizes of the optimizers.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gradnoise.io import ALL, ESCAPE_SCHEMA
from gradnoise.sde import (
    Basin,
    Noise,
    exponential_mle,
    loglog_slope,
    make_basin,
    radon_measure,
    simulate_exits_batch,
)
from gradnoise.seeds import hash_seed

log = logging.getLogger(__name__)

NORMALIZATION = "trace(M Mᵀ) = d, D = I, same ε and basin for every optimizer"


@dataclass(frozen=True)
class SimSettings:
    seed: int
    n_paths: int
    dt: float
    censor_factor: float
    eps: list[float]
    dims: int
    basins: list[str]
    noise_models: list[str]
    sharp_flat_ratio: float
    alpha_estimator: str
    alpha_max: float
    calibration: dict[str, Any]
    scheme: str = "jump"
    device: str = "cpu"
    threads: int = 2


def _runs(
    basins: list[Basin],
    noise: Noise,
    eps: list[float],
    n_paths: int,
    ss: SimSettings,
    keys: list[tuple],
) -> list[dict]:
    """Configurations (basins[k], eps[k]) of one noise, simulated together (basins of one kind),
    each with its own stream seeded from keys[k]. m(G) is computed once per basin: it does not
    depend on ε, and isotropic noise's is a 200,000-point Monte Carlo integral."""
    m_of = {id(b): radon_measure(b, noise) for b in basins}
    m_g = [m_of[id(b)] for b in basins]
    predicted = [1.0 / (e**noise.alpha * m) for e, m in zip(eps, m_g, strict=True)]
    t_max = [ss.censor_factor * p for p in predicted]
    exits = simulate_exits_batch(
        basins,
        noise,
        eps,
        n_paths=n_paths,
        dt=ss.dt,
        t_max=t_max,
        seeds=[hash_seed(ss.seed, *key) for key in keys],
        device=ss.device,
        scheme=ss.scheme,
    )
    rows = []
    for b, e, p, tm, ex in zip(basins, eps, predicted, t_max, exits, strict=True):
        mean, lo, hi = exponential_mle(ex.times, ex.exited)
        rows.append(
            {
                "eps": e,
                "eps_rel": e / b.min_exit_distance(noise.m),
                "scheme": ss.scheme,
                "dt": ss.dt,
                "basin": b.kind,
                "dim": b.dim,
                "noise_model": noise.model,
                "n_paths": n_paths,
                "n_censored": int((~ex.exited).sum()),
                "t_max": tm,
                "mean_exit": mean,
                "ci_low": lo,
                "ci_high": hi,
                "predicted": p,
                "ratio": mean / p,
                "m_G": 1.0 / (p * e**noise.alpha),
                "path_steps": ex.path_steps,
            }
        )
    return rows


def _with_slopes(rows: list[dict], group_keys: tuple[str, ...]) -> list[dict]:
    """Add the log-log slope of mean exit time against ε within each group (finite times only)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r.get(k) for k in group_keys), []).append(r)
    for members in groups.values():
        ok = [r for r in members if math.isfinite(r["mean_exit"])]
        slope = (
            loglog_slope(np.array([r["eps"] for r in ok]), np.array([r["mean_exit"] for r in ok]))
            if len(ok) >= 2
            else math.nan
        )
        for r in members:
            r["slope"], r["slope_target"] = slope, -r["alpha"]
    return rows


def calibration(experiment: str, ss: SimSettings) -> pa.Table:
    """1-D, U = x²/2 on (−1, 1): simulated vs closed-form exit times for several α and ε."""
    cal = ss.calibration
    rows = []
    basin = Basin("box", np.ones(1), np.ones(1), np.ones(1), np.ones(1))
    for alpha in cal["alphas"]:
        runs = _runs(
            [basin] * len(cal["eps"]),
            Noise(alpha, "independent", np.eye(1)),
            cal["eps"],
            cal["n_paths"],
            ss,
            [("cal", alpha, eps) for eps in cal["eps"]],
        )
        for eps, r in zip(cal["eps"], runs, strict=True):
            rows.append(
                {
                    "experiment": experiment,
                    "scenario": "calibration",
                    "arm": "",
                    "optimizer": "",
                    "status": "ok",
                    "alpha": alpha,
                    "alpha_measured": math.nan,
                    "alpha_source": "fixed",
                    "spectrum_view": "",
                    "scale": "unit",
                    "width": 1.0,
                    "normalization": "M = 1, D = 1",
                    **r,
                }
            )
            log.info("calibration α=%.2f ε=%.3f: measured/predicted = %.3f", alpha, eps, r["ratio"])
    return pa.Table.from_pylist(_with_slopes(rows, ("alpha",)), schema=ESCAPE_SCHEMA)


def matched_noise(tails: pa.Table, ss: SimSettings) -> dict[str, Any]:
    """α and the covariance spectrum that drive an arm's optimizer, from the arm's tails tables
    (final checkpoint)."""
    ok = tails.filter(pc.equal(tails["status"], "ok"))
    if ok.num_rows == 0:
        statuses = sorted(set(tails["status"].to_pylist()))
        return {"status": ",".join(s or "missing" for s in statuses)}
    final = pc.max(ok["step"]).as_py()
    t = ok.filter(
        pc.and_(
            pc.equal(ok["step"], final),
            pc.and_(pc.equal(ok["split"], "train"), pc.equal(ok["layer"], ALL)),
        )
    ).to_pylist()
    views = {r["view"] for r in t}
    alpha_view = "averaged" if "averaged" in views else "raw"
    spec_view = "preconditioned" if "preconditioned" in views else "raw"
    alphas = [
        r["value"]
        for r in t
        if r["view"] == alpha_view
        and r["quantity"] == "alpha"
        and r["estimator"] == ss.alpha_estimator
    ]
    spectra = [
        np.asarray(r["spectrum"])
        for r in t
        if r["view"] == spec_view and r["quantity"] == "effective_rank"
    ]
    alphas = [a for a in alphas if math.isfinite(a)]
    if not alphas or not spectra:
        return {"status": "no estimate"}
    k = min(ss.dims, min(len(s) for s in spectra))
    lam = np.mean([s[:k] for s in spectra], axis=0)
    lam = np.concatenate(
        [lam, np.full(ss.dims - k, lam[-1])]
    )  # fewer samples than dims: repeat the last
    lam = np.clip(lam, lam.max() * 1e-12, None)
    m = np.diag(np.sqrt(lam * ss.dims / lam.sum()))
    a = float(np.mean(alphas))
    return {
        "status": "ok",
        "alpha_measured": a,
        "alpha": min(a, ss.alpha_max),
        "alpha_source": f"{alpha_view}/{ss.alpha_estimator}",
        "spectrum_view": spec_view,
        "m": m,
    }


def matched(experiment: str, arm: str, tails: pa.Table, ss: SimSettings) -> pa.Table:
    """Escape times of `arm`'s matched SDE over ε, basins, noise models, flat and sharp scales."""
    optimizers = set(tails["optimizer"].to_pylist())
    base = {
        "experiment": experiment,
        "scenario": "matched",
        "arm": arm,
        "optimizer": optimizers.pop() if len(optimizers) == 1 else "",
        "scheme": ss.scheme,
        "normalization": NORMALIZATION,
    }
    match = matched_noise(tails, ss)
    if match["status"] != "ok":
        log.warning("%s: no simulation (%s)", arm, match["status"])
        return pa.Table.from_pylist([{**base, "status": match["status"]}], schema=ESCAPE_SCHEMA)
    scales = {"flat": 1.0, "sharp": 1.0 / ss.sharp_flat_ratio}
    runs = {}
    for kind in ss.basins:  # both scales and every ε of a basin kind and noise model at once
        basins = {s: make_basin(kind, ss.dims, w, ss.sharp_flat_ratio) for s, w in scales.items()}
        for model in ss.noise_models:
            configs = [(scale, eps) for scale in scales for eps in ss.eps]
            batch = _runs(
                [basins[scale] for scale, _ in configs],
                Noise(match["alpha"], model, match["m"]),
                [eps for _, eps in configs],
                ss.n_paths,
                ss,
                [(arm, kind, scale, model, eps) for scale, eps in configs],
            )
            runs |= {
                (kind, scale, model, eps): r for (scale, eps), r in zip(configs, batch, strict=True)
            }
    measured = {k: match[k] for k in ("alpha", "alpha_measured", "alpha_source", "spectrum_view")}
    rows = [
        {
            **base,
            "status": "ok",
            "scale": scale,
            "width": width,
            **measured,
            **runs[kind, scale, model, eps],
        }
        for kind in ss.basins
        for scale, width in scales.items()
        for model in ss.noise_models
        for eps in ss.eps
    ]
    log.info(
        "%s: α=%.3f (%s), %d configurations",
        arm,
        match["alpha"],
        match["alpha_source"],
        len(rows),
    )
    return pa.Table.from_pylist(
        _with_slopes(rows, ("basin", "scale", "noise_model")), schema=ESCAPE_SCHEMA
    )
