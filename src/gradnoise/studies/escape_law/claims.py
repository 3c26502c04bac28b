"""The escape-law study (DESIGN.md §10c): which escape-time law do the real optimizers follow — Xie et
al.'s diffusion (Kramers: log τ ∝ ΔL/(ηH) for SGD, SGD-M and Adai, ∝ ΔL/(η√H) for Adam) or Zhou et
al.'s Lévy flight (τ a power law in the width, blind to the height)? Claims A1–A5, appended to the
experiment's C1–C8, from the escape stage's tables (``gradnoise.escape_tables``) and the sharpness
tables.

Rules, fixed before results (thresholds: config ``claims.escape``; level, power and majority share:
``claims``), all from the shared family of ``gradnoise.stats``. Families: Adai = adai, adaiw; Adam = adam,
adamw; SGD-M = sgdm.

- A1, per pair of arms, runs paired by seed (final test accuracy): Adai vs SGD-M — SGD-M − Adai
  ``below`` ``accuracy_margin``; Adai vs Adam — Adai − Adam ``above`` the same margin. Every pair must
  hold.
- A2, Gaussian noise, sharpness sweep, per (optimizer, lr scale) with at least ``min_points`` points
  with exits: the law predicted for the optimizer (log τ linear in 1/H for SGD, SGD-M and Adai; in 1/√H
  for Adam) against the other, by the reduced χ² of the weighted fits (``gradnoise.escape.fit_sweep``).
  Supported: the predicted law is favoured and passes its own χ² goodness-of-fit test at ``ci_level``,
  the other fails it, and the predicted slope's interval lies above 0. Not supported: the other law is
  favoured and the predicted one fails, or the predicted slope's interval lies below 0. Every case must
  hold (Adam's 1/√H included: it is the one distinctive prediction).
- A3, SαS noise, per (optimizer, lr scale), Adam left out (one jump moves it by a bounded amount,
  DESIGN.md §10c): the slope of log τ against log w minus the Lévy prediction inside
  ± ``width_tolerance``, and the slope against ΔL inside ± ``height_fraction`` × the diffusion slope 1/T.
  Every case must hold.
- A4, per (arm, lr scale): per seed the slope of log(exit iteration − ½) against log(radius) over the
  radii exited after at least ``min_exit_iterations`` iterations (``radius_exponents``); a Lévy flight
  of index α predicts α (the seed's per-coordinate α of the raw noise at the final checkpoint), drift
  alone 1, Brownian motion 2, drift plus diffusion a line that bends from 2 to 1. Supported if
  exponent − α lies ``within`` ± ``levy_tolerance``, exponent − 1 ``above`` ``drift_margin``,
  2 − exponent ``above`` ``brownian_margin`` and the bend ``within`` ± ``bend_tolerance`` (all four, at
  every lr scale: the rows of the claim). A run that diverged, or whose continuation diverged at that
  lr scale, is left out and named ("diverged (left out)").
- A5, per noise kind and lr scale, over the sharpness sweep: the exponent p of log τ in 1/H (slope of
  log log τ on log 1/H, ``selection_exponent``: free of the noise scale, unlike τ at one landscape,
  whose Adam/Adai order flips with it). Adai vs SGD-M: p_SGD-M − p_Adai ``below``
  ``selection_margin``; Adai vs Adam: p_Adai − p_Adam ``above`` it. Each lr scale is its own
  simulation, so the scales are counted (``count`` with the exact share ``majority``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from gradnoise.claims import ClaimSettings, Row, missing
from gradnoise.escape import fit_line
from gradnoise.readings import Alphas, diverged_note, run_values
from gradnoise.stats import (
    INCONCLUSIVE,
    NO_INTERVAL,
    NOT_SUPPORTED,
    SUPPORTED,
    Conjunction,
    Decision,
    Interval,
    Rule,
    SeedTest,
    all_of,
    count,
    paired_differences,
)

ADAI_FAMILY, SGDM_FAMILY, ADAM_FAMILY = ("adai", "adaiw"), ("sgdm",), ("adam", "adamw")
ORDER = (
    "sgd",
    "sgdm",
    "adam",
    "adamw",
    "adai",
    "adaiw",
)  # gradnoise.optim.OPTIMIZERS, without torch
LAWS = {"inv_h": "1/H", "inv_sqrt_h": "1/√H"}

CLAIMS = {
    "A1": "Adai generalizes at least as well as SGD-M and better than Adam.",
    "A2": "Under Gaussian noise, log τ of SGD, SGD-M and Adai scales with 1/H, Adam's with the weaker 1/√H.",
    "A3": "Under SαS noise, τ is a power law in the basin's width and insensitive to the barrier's height.",
    "A4": "Escape times from trained minima follow the Lévy law: τ ∝ radius^α with α below 2 (Brownian motion: radius²).",
    "A5": "Adai selects flat minima at least as strongly as SGD-M and more strongly than Adam: log τ grows with 1/H with an exponent at least SGD-M's and above Adam's.",
}


@dataclass(frozen=True)
class EscapeLawSettings:
    """Thresholds of A1–A5 (config: claims.escape)."""

    accuracy_margin: float = 0.5
    height_fraction: float = 0.25
    levy_tolerance: float = 0.25
    brownian_margin: float = 0.1
    drift_margin: float = 0.1
    bend_tolerance: float = 0.3
    min_exit_iterations: int = 5
    selection_margin: float = 0.1
    width_tolerance: float = 0.3
    min_points: int = 3


def predicted_law(optimizer: str) -> str:
    """The regressor of log τ on the sharpness axis that the diffusion theory predicts."""
    return "inv_sqrt_h" if optimizer in ADAM_FAMILY else "inv_h"


def evaluate(
    runs: pd.DataFrame,
    tails: pd.DataFrame,
    sweeps: pd.DataFrame,
    slopes: pd.DataFrame,
    minima: pd.DataFrame,
    es: EscapeLawSettings,
    cs: ClaimSettings,
    simulated: pd.DataFrame | None = None,
) -> list[Row]:
    """Claims A1–A5 (``claims.Row``s). `runs`: one row per
    (arm, seed) with optimizer, status and test_acc; `sweeps`: rows of the sharpness sweeps (at least);
    `slopes`, `minima`: the stage's tables; `simulated`: the simulate stage's escape table, whose
    matched SDEs' α A4 reports beside the measured exponent."""
    rows = _a1(runs, es, cs)
    rows.append(_a2(slopes, es, cs))
    rows.append(_a3(slopes, es, cs))
    rows += _a4(minima, tails, es, cs, simulated)
    rows += _a5(sweeps, es, cs)
    return rows


def _missing(claim: str, what: str) -> Row:
    return missing(claim, CLAIMS[claim], what)


def _members(optimizers: pd.Series, names: pd.Series, family: tuple[str, ...]) -> list[str]:
    """The names whose optimizer is in the family, the family's order first."""
    pairs = {n: o for n, o in zip(names, optimizers, strict=True) if o in family}
    return sorted(pairs, key=lambda n: (family.index(pairs[n]), n))


# ---------------------------------------------------------------------------------------------------
# A1: generalization


def _a1(runs: pd.DataFrame, es: EscapeLawSettings, cs: ClaimSettings) -> list[Row]:
    arms = runs.drop_duplicates("arm")
    adais = _members(arms.optimizer, arms.arm, ADAI_FAMILY)

    def acc(arm: str) -> dict[int, float]:
        return run_values(runs, arm, "test_acc")

    rows = []
    m = es.accuracy_margin
    for adai in adais:
        for sgdm in _members(arms.optimizer, arms.arm, SGDM_FAMILY):
            d = paired_differences(acc(sgdm), acc(adai))
            rows.append(
                Row(
                    "A1",
                    CLAIMS["A1"],
                    pair=f"{sgdm} − {adai}",
                    measured=f"test accuracy {adai} {cs.interval(acc(adai).values())} vs {sgdm} {cs.interval(acc(sgdm).values())}; {sgdm} − {adai} = {cs.interval(d.values())} points{diverged_note(runs, adai, sgdm)}",
                    control="runs paired by seed; the same data, model and number of iterations",
                    rule=f"at least as well: SGD-M − Adai below accuracy_margin ({m} points)",
                    test=SeedTest(d, Rule("below", m)),
                )
            )
        for adam in _members(arms.optimizer, arms.arm, ADAM_FAMILY):
            d = paired_differences(acc(adai), acc(adam))
            rows.append(
                Row(
                    "A1",
                    CLAIMS["A1"],
                    pair=f"{adai} − {adam}",
                    measured=f"test accuracy {adai} − {adam} = {cs.interval(d.values())} points{diverged_note(runs, adai, adam)}",
                    control="runs paired by seed; the same data, model and number of iterations",
                    rule=f"better: Adai − Adam above accuracy_margin ({m} points)",
                    test=SeedTest(d, Rule("above", m)),
                )
            )
    return rows or [_missing("A1", "Adai arm with an SGD-M or Adam arm")]


# ---------------------------------------------------------------------------------------------------
# A2, A3: laws on the landscapes


def fit_interval(fit: pd.Series) -> Interval:
    """A fitted slope and its interval (``fit_sweep``) as an Interval over its design points."""
    return Interval(
        float(fit.slope), float(fit.slope_low), float(fit.slope_high), int(fit.n_points)
    )


def _fails(fit: pd.Series, level: float) -> bool:
    """The χ² goodness-of-fit test of a weighted line rejects it at `level` (False without a test)."""
    dof = int(fit.n_points) - 2
    if dof < 1 or not math.isfinite(fit.chi2_red):
        return False
    return float(stats.chi2.sf(fit.chi2_red * dof, dof)) < 1 - level


def law_case(fits: pd.DataFrame, optimizer: str, level: float, min_points: int = 3) -> Decision:
    """A2's verdict for one (optimizer, lr scale): `fits` indexed by regressor (module docstring)."""
    want = predicted_law(optimizer)
    other = next(r for r in LAWS if r != want)
    if want not in fits.index or other not in fits.index:
        return Decision(INCONCLUSIVE, "no fit")
    p, o = fits.loc[want], fits.loc[other]
    if p.n_points < min_points or not (math.isfinite(p.chi2_red) and math.isfinite(o.chi2_red)):
        return Decision(
            INCONCLUSIVE, f"fewer than {min_points} points with exits: no test of the law's shape"
        )
    if p.slope_high < 0:
        return Decision(NOT_SUPPORTED, f"slope on {LAWS[want]} below 0")
    favoured, loser = (want, other) if p.chi2_red <= o.chi2_red else (other, want)
    if not _fails(fits.loc[loser], level):
        return Decision(INCONCLUSIVE, f"both laws fit (χ² test at {level:g}): no power")
    if favoured == other:
        return Decision(NOT_SUPPORTED, f"{LAWS[other]} favoured, {LAWS[want]} fails")
    if _fails(p, level):
        return Decision(INCONCLUSIVE, f"{LAWS[want]} favoured but fails its own χ² test too")
    if p.slope_low > 0:
        return Decision(SUPPORTED, f"{LAWS[want]} favoured, {LAWS[other]} fails, slope above 0")
    return Decision(INCONCLUSIVE, f"{LAWS[want]} favoured but its slope's interval holds 0")


def _cases(slopes: pd.DataFrame, axis: str, noise: str) -> list[tuple[str, float, pd.DataFrame]]:
    """(optimizer, lr scale, its fits indexed by regressor) in the optimizers' order."""
    sel = slopes[(slopes.axis == axis) & (slopes.noise == noise)]
    keys = sorted(
        {(o, float(s)) for o, s in zip(sel.optimizer, sel.lr_scale, strict=True)},
        key=lambda k: (ORDER.index(k[0]), k[1]),
    )
    return [
        (o, s, sel[(sel.optimizer == o) & (sel.lr_scale == s)].set_index("regressor"))
        for o, s in keys
    ]


def _slope_text(fit: pd.Series) -> str:
    chi2 = f", χ²_red {fit.chi2_red:.2g}" if math.isfinite(fit.chi2_red) else ""
    return f"{fit.slope:.3g} [{fit.slope_low:.3g}, {fit.slope_high:.3g}]{chi2}"


def _a2(slopes: pd.DataFrame, es: EscapeLawSettings, cs: ClaimSettings) -> Row:
    cases, parts = {}, []
    for opt, scale, fits in _cases(slopes, "sharpness", "gaussian"):
        d = law_case(fits, opt, cs.ci_level, es.min_points)
        cases[f"{opt} lr×{scale:g}"] = d
        laws = "; ".join(
            f"on {label}: {_slope_text(fits.loc[r])} (diffusion {fits.loc[r].slope_kramers:.3g}, "
            f"exact SDE {fits.loc[r].slope_diffusion:.3g})"
            for r, label in LAWS.items()
            if r in fits.index
        )
        parts.append(
            f"{opt} lr×{scale:g} (predicted {LAWS[predicted_law(opt)]}): {laws} → {d.verdict}"
        )
    if not cases:
        return _missing("A2", "Gaussian sharpness sweep")
    return Row(
        "A2",
        CLAIMS["A2"],
        pair="sgd, sgdm, adai(w): 1/H; adam(w): 1/√H",
        measured="slope of log τ (iterations) [95 % interval], reduced χ²: " + " | ".join(parts),
        control="the same landscapes, noise (Σ = s²H/B) and paths for every optimizer; the theories' slopes from their predictions at the same points (Lévy: no prediction at α = 2)",
        rule=f"per (optimizer, lr scale), with at least min_points ({es.min_points}) points with exits: supported if the predicted law has the smaller reduced χ² and passes its own χ² test while the other fails it (level {cs.ci_level:g}), and the predicted slope's interval lies above 0; not supported if the other law is favoured and the predicted one fails, or the predicted slope lies below 0; every optimizer's prediction must hold (Adam's 1/√H included)",
        decision=all_of(cases, "(optimizer, lr scale) cases"),
    )


def _a3(slopes: pd.DataFrame, es: EscapeLawSettings, cs: ClaimSettings) -> Row:
    """Adam is left out: its response to one jump saturates (≈ 3.18·lr/0.1 at β = (0.9, 0.999),
    whatever the jump, DESIGN.md §10c), so the one-jump Lévy exponent does not apply to it."""
    width = {(o, s): f for o, s, f in _cases(slopes, "width", "sas")}
    height = {(o, s): f for o, s, f in _cases(slopes, "height", "sas")}
    cases, parts = {}, []
    for key in [k for k in width if k in height and k[0] not in ADAM_FAMILY]:
        w, h = width[key].loc["log_width"], height[key].loc["height"]
        margin = es.height_fraction * abs(float(h.slope_kramers))
        fw = fit_interval(w)
        exponent = Rule("within", es.width_tolerance).decide(
            Interval(fw.value - w.slope_levy, fw.low - w.slope_levy, fw.high - w.slope_levy, fw.n)
        )
        flat = Rule("within", margin).decide(fit_interval(h)) if margin > 0 else exponent
        d = all_of({"width exponent": exponent, "height": flat}, "statements")
        cases[f"{key[0]} lr×{key[1]:g}"] = d
        parts.append(
            f"{key[0]} lr×{key[1]:g}: on log w {_slope_text(w)} (Lévy {w.slope_levy:.3g}, exact SDE "
            f"{w.slope_diffusion:.3g}); on ΔL {_slope_text(h)} (diffusion {h.slope_kramers:.3g}, "
            f"band ±{margin:.3g}) → {d.verdict}"
        )
    if not cases:
        return _missing("A3", "SαS width and height sweeps of a non-Adam optimizer")
    alpha = slopes[(slopes.noise == "sas")].alpha
    return Row(
        "A3",
        CLAIMS["A3"],
        pair="every optimizer but Adam",
        measured=f"SαS α = {alpha.iloc[0]:.3g}; slope of log τ [95 % interval]: "
        + " | ".join(parts)
        + "; Adam left out: one jump moves it by a bounded amount (DESIGN.md §10c)",
        control="the same landscapes, noise scale and paths for every optimizer; the theories' slopes from their predictions at the same points",
        rule=f"per (optimizer, lr scale): the slope against log w minus the Lévy prediction inside ± width_tolerance ({es.width_tolerance}), and the slope against ΔL inside ± height_fraction ({es.height_fraction}) × the diffusion slope; both must hold, in every case",
        decision=all_of(cases, "(optimizer, lr scale) cases"),
    )


# ---------------------------------------------------------------------------------------------------
# A4: real networks


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


# ---------------------------------------------------------------------------------------------------
# A5: escape from the sharpest landscape


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


def claims(tables: Any, s: Mapping[str, Any], cs: ClaimSettings) -> list[Row]:
    """The registry's entry point (``gradnoise.studies.ESCAPE_LAW``): A1–A5 from the escape-law
    stage's tables and the simulate stage's (scripts/claims.py)."""
    es = EscapeLawSettings(**s["claims"]["escape"])
    return evaluate(
        tables.runs,
        tables.tails,
        tables.escape_sweeps,
        tables.escape_slopes,
        tables.escape_minima,
        es,
        cs,
        tables.escape,
    )
