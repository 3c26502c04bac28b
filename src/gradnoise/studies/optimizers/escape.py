"""C5 and C6, from the simulate stage's exit times: the simulator against the Lévy escape law, and
SGD's escape from sharp minima against Adam's."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import special
from scipy import stats as st

from gradnoise.claims import ClaimSettings, Row
from gradnoise.readings import (
    Alphas,
)
from gradnoise.stats import (
    INCONCLUSIVE,
    Decision,
    Interval,
    Rule,
    all_of,
    count,
)
from gradnoise.studies.optimizers.definitions import CLAIMS, _pair


def _z(cs: ClaimSettings) -> float:
    return float(st.norm.ppf((1 + cs.ci_level) / 2))


def _log_mean_se(exits: pd.Series) -> pd.Series:
    """A log exit-time MLE with r exits has standard error ≈ 1/√r."""
    return 1 / np.sqrt(exits.clip(lower=1))


def _c5(escape: pd.DataFrame, cs: ClaimSettings) -> Row:
    ok = escape[(escape.status == "ok") & np.isfinite(escape.mean_exit)]
    regime = ok[ok.eps_rel <= cs.asymptotic_eps].copy()
    lo_band, hi_band = cs.exit_ratio_band
    center, half = (
        (math.log(lo_band) + math.log(hi_band)) / 2,
        (math.log(hi_band) - math.log(lo_band)) / 2,
    )
    trend = ok.groupby("eps").ratio.median().sort_index().map(lambda r: f"{r:.2f}").to_dict()
    if regime.empty:
        return Row(
            "C5",
            CLAIMS["C5"],
            measured=f"median measured/predicted by ε: {trend}",
            control="",
            rule="",
            decision=Decision(
                INCONCLUSIVE,
                f"no configuration in the law's regime (ε/r_L ≤ asymptotic_eps = {cs.asymptotic_eps})",
            ),
        )
    z = _z(cs)
    exits = regime.n_paths - regime.n_censored
    log_ratio, se = np.log(regime.mean_exit / regime.predicted) - center, _log_mean_se(exits)
    band = Rule("within", half)
    configs = [
        band.decide(Interval(v, v - z * s, v + z * s, int(r), level=cs.ci_level))
        for v, s, r in zip(log_ratio, se, exits, strict=True)
    ]
    slopes = []
    keys = ["scenario", "arm", "basin", "scale", "noise_model", "alpha"]
    for _, g in regime.groupby(keys, dropna=False):
        if g.eps.nunique() >= 2:
            slope, slope_se = _weighted_slope(
                np.log(g.eps), np.log(g.mean_exit), _log_mean_se(g.n_paths - g.n_censored)
            )
            v = slope + g.alpha.iloc[0]
            slopes.append(
                Rule("within", cs.slope_tolerance).decide(
                    Interval(v, v - z * slope_se, v + z * slope_se, len(g), level=cs.ci_level)
                )
            )
    parts = {"exit times": count(configs, cs.law_fraction, "configurations")}
    if slopes:
        parts["slopes"] = count(slopes, cs.law_fraction, "slope groups")
    decision = all_of(parts, "checks")
    cal = regime[regime.scenario == "calibration"]
    return Row(
        "C5",
        CLAIMS["C5"],
        measured=f"in the regime (ε/r_L ≤ {cs.asymptotic_eps}): {parts['exit times'].reason} (interval of measured/predicted inside {cs.exit_ratio_band}); log-log slopes: {parts['slopes'].reason if slopes else 'no group with two ε'}; calibration ratios {', '.join(f'{r:.2f}' for r in cal.ratio) or 'none'}; median ratio by ε over all configurations: {trend}",
        control="closed-form 1-D law (Imkeller & Pavlyukevich 2006) and m(G) computed independently of the simulation; each configuration on its own random stream (independent units)",
        rule=f"equivalence per configuration: the {cs.ci_level:.0%} interval of measured/predicted (exponential MLE, se 1/√exits) inside exit_ratio_band, and per group the slope + α inside ±slope_tolerance ({cs.slope_tolerance}); each check supported if ≥ law_fraction ({cs.law_fraction}) of its units are, not supported once that is out of reach; both checks must hold",
        decision=Decision(decision.verdict, decision.reason, len(regime)),
    )


def _weighted_slope(x: np.ndarray, y: np.ndarray, se: np.ndarray) -> tuple[float, float]:
    """Weighted least-squares slope of y on x with known standard errors, and its standard error."""
    w = 1 / np.asarray(se) ** 2
    xm = np.sum(w * x) / np.sum(w)
    sxx = float(np.sum(w * (x - xm) ** 2))
    slope = float(np.sum(w * (x - xm) * y) / sxx)
    return slope, math.sqrt(1 / sxx)


def _dlog_rate_dalpha(alpha: float) -> float:
    """d/dα of log(c_α/α), c_α = Γ(1+α) sin(πα/2)/π (the Lévy measure's constant, DESIGN.md §5a)."""
    return float(
        special.digamma(1 + alpha) + math.pi / 2 / math.tan(math.pi * alpha / 2) - 1 / alpha
    )


def _unsimulated(escape: pd.DataFrame, arms: tuple[str, ...]) -> str:
    """Why the simulate stage has no matched SDE of these arms (its status row: e.g. every run of
    the arm diverged, so there is no α to match)."""
    rows = escape[(escape.scenario == "matched") & escape.arm.isin(arms) & (escape.status != "ok")]
    return ", ".join(f"{r.arm} not simulated ({r.status})" for r in rows.itertuples())


def _c6(
    escape: pd.DataFrame, alphas: Alphas, sgd: str, adam: str, cs: ClaimSettings, note: str
) -> Row:
    ok = escape[
        (escape.status == "ok")
        & (escape.scenario == "matched")
        & (escape.scale == "sharp")
        & (escape.eps_rel <= cs.asymptotic_eps)
        & np.isfinite(escape.mean_exit)
    ]
    keys = ["basin", "noise_model", "eps"]
    both = ok[ok.arm == sgd].merge(ok[ok.arm == adam], on=keys, suffixes=("_sgd", "_adam"))
    pair = _pair(sgd, adam)
    if both.empty:
        why = _unsimulated(escape, (sgd, adam))
        return Row(
            "C6",
            CLAIMS["C6"],
            pair=pair,
            measured="no matched sharp-basin simulations of both arms in the law's regime" + note,
            control="",
            rule="",
            decision=Decision(
                INCONCLUSIVE, "no common configuration" + (f": {why}" if why else "")
            ),
        )
    first = both.iloc[0]
    source = {sgd: first.alpha_source_sgd, adam: first.alpha_source_adam}
    capped = [
        arm
        for arm, a, measured in (
            (sgd, first.alpha_sgd, first.alpha_measured_sgd),
            (adam, first.alpha_adam, first.alpha_measured_adam),
        )
        if measured > a
    ]
    seed_se, n_seeds = {}, {}
    for arm in (sgd, adam):
        view, estimator = source[arm].split("/")
        values = alphas.per_seed(arm, view, estimator, alphas.final_step(arm)).values()
        iv = cs.interval(values)
        seed_se[arm] = iv.sd / math.sqrt(iv.n) if iv.n > 1 else math.nan
        n_seeds[arm] = iv.n
    df = max(min(n_seeds.values()) - 1, 1)
    crit = float(st.t.ppf((1 + cs.ci_level) / 2, df))
    log_ratio = np.log(both.mean_exit_adam) - np.log(both.mean_exit_sgd)
    mc = np.hypot(
        _log_mean_se(both.n_paths_adam - both.n_censored_adam),
        _log_mean_se(both.n_paths_sgd - both.n_censored_sgd),
    )
    # delta method: log Γ = α log(r/ε) − log(2 c_α/α) + …, so d log Γ/dα ≈ −log(ε/r) − d log(c_α/α)/dα
    sens = {
        arm: np.abs(
            -np.log(both[f"eps_rel_{tag}"]) - _dlog_rate_dalpha(float(both[f"alpha_{tag}"].iloc[0]))
        )
        for arm, tag in ((sgd, "sgd"), (adam, "adam"))
    }
    alpha_part = np.hypot(sens[sgd] * seed_se[sgd], sens[adam] * seed_se[adam])
    se = np.hypot(mc, alpha_part)
    rule = Rule("above", math.log(cs.escape_ratio))
    per_config = {
        f"{r.basin}/{r.noise_model}/ε={r.eps:g}": rule.decide(
            Interval(v, v - crit * s, v + crit * s, min(n_seeds.values()), level=cs.ci_level)
        )
        for r, v, s in zip(both.itertuples(), log_ratio, se, strict=True)
    }
    if len(capped) == 2:
        decision = Decision(
            INCONCLUSIVE,
            f"both arms' α sit at the simulate stage's cap (alpha_max = {first.alpha_sgd:.3g}; measured {first.alpha_measured_sgd:.3g} and {first.alpha_measured_adam:.3g}): no Lévy difference left to test",
        )
    elif not all(math.isfinite(v) for v in seed_se.values()):
        decision = Decision(INCONCLUSIVE, "one seed: the spread of the matched α is unknown")
    else:
        decision = all_of(per_config, "configurations (they share one α and one M per arm)")
    ratio = np.exp(log_ratio)
    return Row(
        "C6",
        CLAIMS["C6"],
        pair=pair,
        measured=f"Γ_{adam}/Γ_{sgd} in sharp basins in the law's regime: median {ratio.median():.3g} (range {ratio.min():.3g}–{ratio.max():.3g}) over {len(both)} configurations; matched α: {sgd} {first.alpha_sgd:.3g} ({source[sgd]}), {adam} {first.alpha_adam:.3g} ({source[adam]})"
        + (f"; capped at alpha_max: {', '.join(capped)}" if capped else "")
        + note,
        control="same basin, ε and normalization for both arms; each log ratio's interval combines the Monte-Carlo error (1/√exits) and the seed spread of each arm's matched α (delta method through ε^(−α)/m(W), t with n − 1 df)",
        rule=f"per configuration, log(Γ_Adam/Γ_SGD) against log escape_ratio (log {cs.escape_ratio}); the configurations share one α and one M per arm, so they are not independent votes: every one must hold; inconclusive when both arms sit at the α cap",
        decision=decision,
    )
