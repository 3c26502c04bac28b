"""A2 and A3: the escape-time laws on the controlled landscapes — under Gaussian noise, log τ in
1/H (SGD, SGD-M, Adai) or 1/√H (Adam); under SαS noise, a power law in the width, blind to the
height."""

from __future__ import annotations

import math

import pandas as pd
from scipy import stats

from gradnoise.claims import ClaimSettings, Row
from gradnoise.stats import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, Decision, Interval, Rule, all_of
from gradnoise.studies.escape_law.definitions import (
    ADAM_FAMILY,
    CLAIMS,
    ORDER,
    EscapeLawSettings,
    _missing,
)

LAWS = {"inv_h": "1/H", "inv_sqrt_h": "1/√H"}


def predicted_law(optimizer: str) -> str:
    """The regressor of log τ on the sharpness axis that the diffusion theory predicts."""
    return "inv_sqrt_h" if optimizer in ADAM_FAMILY else "inv_h"


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
    """A2's verdict for one (optimizer, lr scale): `fits` indexed by regressor (the rule: the
    ``claims`` module's docstring)."""
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
