"""A4: escape from trained networks' minima — the exponent of the exit iteration in the radius,
against α (Lévy), 1 (drift) and 2 (Brownian motion)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from gradnoise.claims import ClaimSettings, Row
from gradnoise.readings import Alphas, diverged_note
from gradnoise.stats import Conjunction, Rule, SeedTest, paired_differences
from gradnoise.studies.escape_law.definitions import CLAIMS, EscapeLawSettings, _missing


def radius_exponents(minima: pd.DataFrame, min_iterations: int = 5) -> pd.DataFrame:
    """Per (arm, seed, lr scale): the least-squares slope of log τ against log(radius) over the radii
    passed after at least `min_iterations` iterations (NaN with fewer than two), the same slope over the
    smaller and over the larger half of those radii (``bend`` = larger − smaller; NaN with fewer than
    three), and how many radii it used.

    τ is the exit iteration k less ½: the crossing happened in (k − 1, k], and the integer k biases a
    log-log slope low where k is small (pure drift of 0.3 per iteration reads 0.56 over radii exited in
    1–3 iterations); radii exited in fewer than `min_iterations` iterations are left out for the same
    reason. Each lr scale is its own exponent: the law's exponent does not depend on the step, so
    scales are tested, not averaged."""
    rows = []
    ok = minima[
        (minima.status == "ok")
        & ~minima.censored
        & (minima.exit_iteration >= max(1, min_iterations))
    ]
    for (arm, seed, scale), g in minima.groupby(["arm", "seed", "lr_scale"], sort=True):
        e = ok[(ok.arm == arm) & (ok.seed == seed) & (ok.lr_scale == scale)].sort_values("radius")
        e = e.drop_duplicates("radius")
        x, y = np.log(e.radius.to_numpy(float)), np.log(e.exit_iteration.to_numpy(float) - 0.5)
        n, half = len(e), (len(e) + 1) // 2
        rows.append(
            {
                "arm": arm,
                "optimizer": g.optimizer.iloc[0],
                "seed": int(seed),
                "lr_scale": float(scale),
                "exponent": _slope(x, y),
                "bend": _slope(x[n - half :], y[n - half :]) - _slope(x[:half], y[:half])
                if n >= 3
                else math.nan,
                "radii_passed": n,
            }
        )
    return pd.DataFrame(
        rows, columns=["arm", "optimizer", "seed", "lr_scale", "exponent", "bend", "radii_passed"]
    )


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of y on x (NaN with fewer than two points)."""
    return float(np.polyfit(x, y, 1)[0]) if len(x) >= 2 else math.nan


def _matched_alpha(simulated: pd.DataFrame | None, arm: str) -> str:
    """The α of the arm's matched SDE in the simulate stage (its escape time ∝ basin size^α too)."""
    if simulated is None:
        return "not given"
    sel = simulated[
        (simulated.scenario == "matched") & (simulated.arm == arm) & (simulated.status == "ok")
    ]
    if sel.empty:
        return "no estimate"
    return f"{sel.alpha.iloc[0]:.3g} ({sel.alpha_source.iloc[0]})"


def _a4(
    minima: pd.DataFrame,
    tails: pd.DataFrame,
    es: EscapeLawSettings,
    cs: ClaimSettings,
    simulated: pd.DataFrame | None,
) -> list[Row]:
    """One row per (arm, lr scale). Four statements, each per seed: the exponent is α's (``within``
    levy_tolerance), above the drift null 1 (``above`` drift_margin) and below the Brownian null 2
    (``above`` brownian_margin), and one power law holds across the radii (the bend ``within``
    bend_tolerance). The nulls only count as told apart when the margins separate them: drift plus
    Gaussian diffusion has τ ∝ r² at small radii and ∝ r at large ones, so its overall exponent can sit
    anywhere between 1 and 2 — next to α — and only the bend shows it."""
    alphas = Alphas(tails)
    exps = radius_exponents(minima, es.min_exit_iterations)
    rows = []
    for (arm, scale), g in exps.groupby(["arm", "lr_scale"], sort=False):
        # a run that diverged, or whose continuation did at this lr scale, has no exponent
        left_out = minima[(minima.arm == arm) & (minima.lr_scale == scale)]
        note = diverged_note(left_out, arm)
        g = g[g.seed.isin(left_out[left_out.status == "ok"].seed)]
        slope = {int(s): float(v) for s, v in zip(g.seed, g.exponent, strict=True)}
        bend = {int(s): float(v) for s, v in zip(g.seed, g.bend, strict=True)}
        alpha = alphas.per_seed(arm, "raw", "per_coordinate", alphas.final_step(arm))
        diff = paired_differences(slope, alpha)
        test = Conjunction(
            {
                "exponent − α": SeedTest(diff, Rule("within", es.levy_tolerance)),
                "exponent − 1 (drift)": SeedTest(
                    {k: v - 1 for k, v in slope.items()}, Rule("above", es.drift_margin)
                ),
                "2 − exponent (Brownian)": SeedTest(
                    {k: 2 - v for k, v in slope.items()}, Rule("above", es.brownian_margin)
                ),
                "bend": SeedTest(bend, Rule("within", es.bend_tolerance)),
            }
        )
        exponent, a = cs.interval(slope.values()), cs.interval(alpha.values())
        laws = {"Brownian (2)": 2.0, f"Lévy (α = {a.value:.3g})": a.value, "drift (1)": 1.0}
        finite = {k: v for k, v in laws.items() if math.isfinite(v)}
        nearest = (
            min(finite, key=lambda k: abs(finite[k] - exponent.value))
            if math.isfinite(exponent.value) and finite
            else "none"
        )
        radii = f"{int(g.radii_passed.min())}–{int(g.radii_passed.max())}" if len(g) else "no"
        rows.append(
            Row(
                "A4",
                CLAIMS["A4"],
                pair=f"{arm} lr×{scale:g}",
                measured=f"{arm} at lr×{scale:g}: exponent of τ in the radius {exponent} over {radii} radii per seed; bend (larger − smaller half of the radii) {cs.interval(bend.values())}; α {a}; exponent − α {cs.interval(diff.values())}; nearest law: {nearest}; the simulate stage's matched SDE predicts exponent α = {_matched_alpha(simulated, arm)}{note}",
                control="from each run's final checkpoint, its optimizer and checkpointed state on its own training data; α is the per-coordinate α of the raw noise at that checkpoint, per seed (the sweeps' measured α is the same estimate). Each lr scale on its own. Nulls: drift alone gives exponent 1, Brownian motion 2, drift plus Gaussian diffusion bends from 2 (small radii) to 1 (large)",
                rule=f"per seed, least squares of log(exit iteration − ½) on log radius over the radii exited after at least min_exit_iterations ({es.min_exit_iterations}) iterations: exponent − α inside ± levy_tolerance ({es.levy_tolerance}), exponent − 1 above drift_margin ({es.drift_margin}), 2 − exponent above brownian_margin ({es.brownian_margin}) and the bend inside ± bend_tolerance ({es.bend_tolerance}); all four must hold, at every lr scale",
                test=test,
            )
        )
    return rows or [_missing("A4", "escape from a trained minimum")]
