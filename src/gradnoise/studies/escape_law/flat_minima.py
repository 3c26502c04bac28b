"""A5: flat-minima selection — the exponent of log τ in 1/H over the sharpness sweep, free of the
noise scale, compared between Adai, SGD-M and Adam."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from gradnoise.claims import ClaimSettings, Row
from gradnoise.escape import fit_line
from gradnoise.stats import INCONCLUSIVE, NO_INTERVAL, Decision, Interval, Rule, count
from gradnoise.studies.escape_law.definitions import (
    ADAI_FAMILY,
    ADAM_FAMILY,
    CLAIMS,
    SGDM_FAMILY,
    EscapeLawSettings,
    _members,
    _missing,
)


def selection_exponent(sweep: pd.DataFrame, level: float) -> Interval:
    """How strongly one optimizer selects flat minima, free of the noise scale: the slope p of
    log(log τ) against log(1/H) over a sharpness sweep (rows with exits and τ > 1), weighted by
    sd(log log τ̂) ≈ 1/(√r · log τ) (r exits), with ``fit_line``'s interval.

    Why this and not τ at one landscape: Kramers' leading order is log τ ≈ ΔL/(T·H^p) with p = 1 for
    SGD, SGD-M and Adai and p = ½ for Adam, and the temperature T carries the noise scale σ₀ (ησ₀²/2
    for Adai, ησ₀/2 for Adam), so a ratio of τ — or of slopes of log τ on 1/H — flips with the
    arbitrary σ₀, while log log τ = −log T + log ΔL + p log(1/H) leaves T in the intercept. A
    prefactor of τ (log τ = a + ΔL/(T H^p)) biases p low where ΔL/T is not ≫ a."""
    ok = sweep[(sweep.n_exits > 0) & (sweep.mean_exit > 1)].sort_values("sharpness")
    log_tau = np.log(ok.mean_exit.to_numpy(float))
    fit = fit_line(
        -np.log(ok.sharpness.to_numpy(float)),
        np.log(log_tau),
        1 / (np.sqrt(ok.n_exits.to_numpy(float)) * log_tau),
        level,
    )
    return Interval(fit.slope, fit.low, fit.high, fit.n, level=level)


def exponent_difference(a: Interval, b: Interval) -> Interval:
    """a − b with half-widths combined in quadrature (the sweeps of two optimizers share their
    landscapes and streams, so their errors are positively correlated and this is conservative)."""
    if not (math.isfinite(a.low) and math.isfinite(b.low)):
        return NO_INTERVAL
    half = math.hypot((a.high - a.low) / 2, (b.high - b.low) / 2)
    d = a.value - b.value
    return Interval(d, d - half, d + half, min(a.n, b.n), level=a.level)


def _a5(sweeps: pd.DataFrame, es: EscapeLawSettings, cs: ClaimSettings) -> list[Row]:
    """Flat-minima selection (``selection_exponent``) per noise kind and lr scale: Adai's exponent at
    least SGD-M's (SGD-M − Adai ``below`` selection_margin) and above Adam's (Adai − Adam ``above``
    selection_margin). Each lr scale is its own simulation: the scales are counted."""
    sharp = sweeps[sweeps.axis == "sharpness"]
    opts = sharp.drop_duplicates("optimizer")
    adais = _members(opts.optimizer, opts.optimizer, ADAI_FAMILY)
    pairs = [
        (a, b, "as steep")
        for a in adais
        for b in _members(opts.optimizer, opts.optimizer, SGDM_FAMILY)
    ]
    pairs += [
        (a, b, "steeper")
        for a in adais
        for b in _members(opts.optimizer, opts.optimizer, ADAM_FAMILY)
    ]
    m = es.selection_margin
    rows = []
    for noise in ("gaussian", "sas"):
        sel = sharp[sharp.noise == noise]
        for adai, other, kind in pairs:
            cases, parts, intervals = [], [], []
            for scale in sorted(set(sel.lr_scale)):
                at = sel[sel.lr_scale == scale]
                pa_, pb = (
                    selection_exponent(at[at.optimizer == o], cs.ci_level) for o in (adai, other)
                )
                if pa_.n == 0 or pb.n == 0:
                    continue
                if kind == "as steep":
                    iv, rule = exponent_difference(pb, pa_), Rule("below", m)
                else:
                    iv, rule = exponent_difference(pa_, pb), Rule("above", m)
                d = (
                    rule.decide(iv)
                    if iv.n >= es.min_points
                    else Decision(
                        INCONCLUSIVE,
                        f"fewer than min_points ({es.min_points}) landscapes with exits",
                    )
                )
                cases.append(d)
                intervals.append(iv)
                parts.append(
                    f"lr×{scale:g}: p_{adai} {pa_}, p_{other} {pb}, difference {iv} → {d.verdict}"
                )
            if not cases:
                continue
            what = f"p_{other} − p_{adai}" if kind == "as steep" else f"p_{adai} − p_{other}"
            rule = (
                f"per lr scale: supported if the interval of p_SGD-M − p_Adai lies below selection_margin ({m}) (Adai at least as steep), not supported if above"
                if kind == "as steep"
                else f"per lr scale: supported if the interval of p_Adai − p_Adam lies above selection_margin ({m}), not supported if below"
            )
            rows.append(
                Row(
                    "A5",
                    CLAIMS["A5"],
                    pair=f"{adai} vs {other} ({noise})",
                    measured=f"{noise} noise, sharpness sweep: exponent p of log τ in 1/H (slope of log log τ on log 1/H; Kramers: 1 for SGD-M and Adai, ½ for Adam), {what} — "
                    + "; ".join(parts),
                    control=f"the same landscapes, noise and paths for every optimizer; p is free of the noise scale (the temperature enters log log τ's intercept only); {cs.ci_level:.0%} intervals of weighted fits, combined in quadrature",
                    rule=rule
                    + f"; each lr scale is its own simulation (independent units): supported if ≥ majority ({cs.majority}) of them are, not supported once that is out of reach",
                    decision=count(cases, cs.majority, "lr scales"),
                    interval=intervals[0] if len(intervals) == 1 else NO_INTERVAL,
                    margin=m,
                )
            )
    return rows or [_missing("A5", "sharpness sweep of Adai with SGD-M or Adam")]
