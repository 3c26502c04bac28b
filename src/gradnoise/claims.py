"""The claims table of Zhou et al. (2020): for each claim C1–C8 of DESIGN.md §1 and each pair of arms it
compares, the measured quantity with its t interval over seeds (``gradnoise.stats``), the control, the
decision rule (thresholds from the ``claims`` config section, fixed before results are seen) and a
verdict with its reason.

Pairs: C2, C6, C7 and C8 compare every SGD-family arm (sgd, sgdm) with every Adam-family arm (adam,
adamw), the paper's pair first — its "SGD" is SGD with momentum 0.9 (DESIGN.md §3). C3 and C4 are
about Adam's own update: one row per Adam-family arm. α estimates are those of the training split,
whole network, at the final checkpoint (C2: averaged over the checkpoints of ``alpha_window``), from
the controlled estimators (per-coordinate and robustly standardized), each view against its own
Gaussian null. A run that diverged leaves its seed out of the paired differences (the row says so).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from gradnoise.io import ALL
from gradnoise.stats import (
    INCONCLUSIVE,
    NOT_SUPPORTED,
    SUPPORTED,
    Decision,
    Interval,
    agree,
    claim_row,
    claims_frame,
    decide,
    majority,
    paired_differences,
    t_interval,
)

CONTROLLED = ("per_coordinate", "pooled_standardized")  # α estimators immune to scale mixing
SGD_FAMILY, ADAM_FAMILY = ("sgdm", "sgd"), ("adam", "adamw")  # paper's first

CLAIMS = {
    "C1": "The gradient noise of SGD and Adam is heavy-tailed (α < 2).",
    "C2": "SGD's noise is heavier-tailed than Adam's (α_SGD < α_Adam).",
    "C3": "Adam's moving average lightens the tails of its noise.",
    "C4": "Adam's coordinate-wise scaling removes much of the noise anisotropy.",
    "C5": "Mean escape time scales as ε^(−α)/m(W).",
    "C6": "For the same basin, SGD escapes sharp minima faster than Adam.",
    "C7": "SGD lands in flatter minima than Adam.",
    "C8": "SGD generalizes better than Adam.",
}


@dataclass(frozen=True)
class ClaimSettings:
    ci_level: float = 0.95
    power: float = 0.8
    majority: float = 0.667
    heavy_margin: float = 0.05
    alpha_margin: float = 0.05
    alpha_window: list[int | None] = field(default_factory=lambda: [1, None])
    anisotropy_ratio: float = 1.5
    exit_ratio_band: list[float] = field(default_factory=lambda: [0.8, 1.25])
    slope_tolerance: float = 0.15
    asymptotic_eps: float = 0.05
    law_fraction: float = 0.9
    law_against: float = 0.25
    escape_ratio: float = 1.2
    sharpness_margin: float = 0.05
    accuracy_margin: float = 0.5

    def interval(self, values) -> Interval:
        return t_interval(values, self.ci_level, self.power)


def arm_pairs(runs: pd.DataFrame) -> list[tuple[str, str]]:
    """(SGD-family arm, Adam-family arm) pairs, the paper's (sgdm, adam) first."""
    opt = runs.drop_duplicates("arm").set_index("arm").optimizer.to_dict()

    def rank(family: tuple[str, ...]) -> list[str]:
        members = [a for a in opt if opt[a] in family]
        return sorted(members, key=lambda a: (family.index(opt[a]), a))

    return [(s, a) for s in rank(SGD_FAMILY) for a in rank(ADAM_FAMILY)]


def _pair(sgd: str, adam: str) -> str:
    return f"{sgd} vs {adam}"


class Alphas:
    """Per-seed α estimates and nulls of the tails table (training split, whole network)."""

    def __init__(self, tails: pd.DataFrame) -> None:
        self.df = tails[
            (tails.status == "ok")
            & (tails.quantity == "alpha")
            & (tails.split == "train")
            & (tails.layer == ALL)
        ]

    def final_step(self, arm: str) -> int | None:
        steps = self.df[self.df.arm == arm].step
        return int(steps.max()) if len(steps) else None

    def per_seed(
        self, arm: str, view: str, estimator: str, step: int | None, column: str = "value"
    ) -> dict[int, float]:
        sel = self.df[
            (self.df.arm == arm)
            & (self.df.view == view)
            & (self.df.estimator == estimator)
            & (self.df.step == step)
        ]
        return dict(zip(sel.seed.astype(int), sel[column].astype(float), strict=True))

    def heaviness(self, arm: str, view: str, estimator: str, step: int | None) -> dict[int, float]:
        """null − α per seed: how far below its Gaussian null the estimate lies."""
        return _combine(
            self.per_seed(arm, view, estimator, step, "null_value"),
            self.per_seed(arm, view, estimator, step),
            lambda null, a: null - a,
        )

    def notes(self, arm: str, view: str, step: int | None) -> str:
        sel = self.df[(self.df.arm == arm) & (self.df.view == view) & (self.df.step == step)]
        notes = sorted({n for n in sel.note.dropna() if n})
        return "; ".join(notes)


def run_values(runs: pd.DataFrame, arm: str, column: str) -> dict[int, float]:
    """Seed → `column` of the arm's runs that ended ok (the sharpness tables: one row per run)."""
    ok = runs[(runs.arm == arm) & (runs.status == "ok")]
    return dict(zip(ok.seed.astype(int), ok[column].astype(float), strict=True))


def diverged_note(runs: pd.DataFrame, *arms: str) -> str:
    """What a paired comparison of these arms leaves out: their runs that did not end ok."""
    bad = runs[(runs.status != "ok") & runs.arm.isin(arms)]
    names = ", ".join(f"{r.arm}/seed{r.seed}" for r in bad.itertuples())
    return f"; diverged (left out): {names}" if names else ""


def _combine(a: dict[int, float], b: dict[int, float], f: Callable) -> dict[int, float]:
    return {s: f(a[s], b[s]) for s in sorted(set(a) & set(b))}


def evaluate_claims(
    tails: pd.DataFrame, escape: pd.DataFrame, runs: pd.DataFrame, cs: ClaimSettings
) -> pd.DataFrame:
    """`runs`: one row per (arm, seed): optimizer, status, top_eigenvalue, train_acc, test_acc."""
    alphas = Alphas(tails)
    pairs = arm_pairs(runs)
    adams = sorted({a for _, a in pairs}, key=lambda a: [p[1] for p in pairs].index(a))
    rows = [_c1(alphas, runs, cs)]
    rows += [_c2(alphas, s, a, cs) for s, a in pairs] or [_missing("C2", "an SGD and an Adam arm")]
    rows += [_c3(alphas, a, cs) for a in adams] or [_missing("C3", "an Adam arm")]
    rows += [_c4(tails, a, cs) for a in adams] or [_missing("C4", "an Adam arm")]
    rows.append(_c5(escape, cs))
    rows += [_c6(escape, s, a, cs) for s, a in pairs] or [_missing("C6", "an SGD and an Adam arm")]
    for claim in ("C7", "C8"):
        rows += [_c7_c8(claim, runs, s, a, cs) for s, a in pairs] or [
            _missing(claim, "an SGD and an Adam arm")
        ]
    return claims_frame(rows)


def _missing(claim: str, what: str) -> dict[str, object]:
    return claim_row(
        claim,
        CLAIMS[claim],
        measured=f"needs {what}",
        control="",
        rule="",
        decision=Decision(INCONCLUSIVE, f"the experiment trains no {what}"),
    )


def _c1(alphas: Alphas, runs: pd.DataFrame, cs: ClaimSettings) -> dict[str, object]:
    arms = [
        a
        for a in runs.drop_duplicates("arm").sort_values("arm").itertuples()
        if a.optimizer in SGD_FAMILY + ADAM_FAMILY
    ]
    cases, parts = [], []
    for a in arms:
        step = alphas.final_step(a.arm)
        per_est = []
        for est in CONTROLLED:
            iv = cs.interval(alphas.per_seed(a.arm, "raw", est, step).values())
            null = cs.interval(alphas.per_seed(a.arm, "raw", est, step, "null_value").values())
            cases.append(
                decide(
                    cs.interval(alphas.heaviness(a.arm, "raw", est, step).values()), cs.heavy_margin
                )
            )
            per_est.append(f"{estimator_label(est)} {iv} (null {null.value:.3g})")
        ref = cs.interval(alphas.per_seed(a.arm, "raw", "pooled", step).values())
        parts.append(f"{a.arm}: " + ", ".join(per_est) + f"; pooled (reference) {ref}")
    decision = majority(cases, cs.majority, "(arm, estimator) cases")
    return claim_row(
        "C1",
        CLAIMS["C1"],
        measured="α̂ (raw view, final checkpoint): " + " | ".join(parts),
        control="each estimate against a Gaussian surrogate with the same per-coordinate robust scale (IQR/1.349), through the same estimator",
        rule=f"per (arm, controlled estimator): null − α over seeds, supported if its interval lies above 0 and its mean above heavy_margin ({cs.heavy_margin}); the claim is supported (not supported) if ≥ majority ({cs.majority:.0%}) of the cases are",
        decision=decision,
    )


def estimator_label(estimator: str) -> str:
    return {"per_coordinate": "per-coord", "pooled_standardized": "std"}.get(estimator, estimator)


def _window_steps(alphas: Alphas, sgd: str, adam: str, window: list[int | None]) -> list[int]:
    steps = sorted(
        set(alphas.df[alphas.df.arm == sgd].step) & set(alphas.df[alphas.df.arm == adam].step)
    )
    lo, hi = window[0] or 0, window[1] if window[1] is not None else math.inf
    return [int(s) for s in steps if s > 0 and lo <= s <= hi]


def _c2(alphas: Alphas, sgd: str, adam: str, cs: ClaimSettings) -> dict[str, object]:
    steps = _window_steps(alphas, sgd, adam, [1, None])
    window = _window_steps(alphas, sgd, adam, cs.alpha_window)

    def diff(step: int, est: str) -> dict[int, float]:
        return _combine(
            alphas.per_seed(adam, "raw", est, step),
            alphas.per_seed(sgd, "raw", est, step),
            lambda a, b: a - b,
        )

    def over_window(est: str) -> Interval:
        per_step = [diff(s, est) for s in window]
        seeds = set.intersection(*(set(d) for d in per_step)) if per_step else set()
        return cs.interval(np.mean([d[s] for d in per_step]) for s in sorted(seeds))

    headline = {est: over_window(est) for est in CONTROLLED}
    decision = agree(
        {estimator_label(e): decide(iv, cs.alpha_margin) for e, iv in headline.items()}
    )
    holds = [
        s
        for s in steps
        if agree(
            {e: decide(cs.interval(diff(s, e).values()), cs.alpha_margin) for e in CONTROLLED}
        ).verdict
        == SUPPORTED
    ]
    per_step = "; ".join(
        f"{s}: "
        + ", ".join(f"{estimator_label(e)} {cs.interval(diff(s, e).values())}" for e in CONTROLLED)
        for s in steps
    )
    return claim_row(
        "C2",
        CLAIMS["C2"],
        pair=_pair(sgd, adam),
        measured=f"α_{adam} − α_{sgd} (raw view) over checkpoints {window}: "
        + ", ".join(f"{estimator_label(e)} {iv}" for e, iv in headline.items())
        + f"; per checkpoint — {per_step}; holds at checkpoints {holds or 'none'}",
        control=f"{sgd} and {adam} runs paired by seed (same initialization and data); two controlled estimators",
        rule=f"per estimator: the seed-paired difference averaged over alpha_window {cs.alpha_window}, supported if its interval lies above 0 and its mean above alpha_margin ({cs.alpha_margin}), not supported if the interval lies below the margin; both estimators must agree",
        decision=decision,
        interval=headline["per_coordinate"],
        margin=cs.alpha_margin,
    )


def _c3(alphas: Alphas, adam: str, cs: ClaimSettings) -> dict[str, object]:
    step = alphas.final_step(adam)

    def lightening(est: str) -> Interval:
        return cs.interval(
            _combine(
                alphas.heaviness(adam, "raw", est, step),
                alphas.heaviness(adam, "averaged", est, step),
                lambda raw, avg: raw - avg,
            ).values()
        )

    effect = {est: lightening(est) for est in CONTROLLED}
    decision = agree({estimator_label(e): decide(iv, cs.alpha_margin) for e, iv in effect.items()})
    views = ", ".join(
        f"{estimator_label(e)} α averaged {cs.interval(alphas.per_seed(adam, 'averaged', e, step).values())} "
        f"vs raw {cs.interval(alphas.per_seed(adam, 'raw', e, step).values())}"
        for e in CONTROLLED
    )
    notes = alphas.notes(adam, "averaged", step)
    return claim_row(
        "C3",
        CLAIMS["C3"],
        pair=adam,
        measured=f"{adam}: {views}; lightening (null − α)_raw − (null − α)_averaged: "
        + ", ".join(f"{estimator_label(e)} {iv}" for e, iv in effect.items())
        + (f"; averaged view: {notes}" if notes else ""),
        control="each view against its own Gaussian null (the averaged view's null is the same EMA of Gaussian draws); the same noise draws without averaging",
        rule=f"per estimator: supported if the seed interval of the lightening lies above 0 and its mean above alpha_margin ({cs.alpha_margin}); not supported if it lies below the margin; both estimators must agree",
        decision=decision,
        interval=effect["per_coordinate"],
        margin=cs.alpha_margin,
    )


def _c4(tails: pd.DataFrame, adam: str, cs: ClaimSettings) -> dict[str, object]:
    er = tails[
        (tails.status == "ok")
        & (tails.arm == adam)
        & (tails.split == "train")
        & (tails.layer == ALL)
        & (tails.quantity == "effective_rank")
    ]
    er = er[er.step == er.step.max()]
    by_view = {
        v: dict(zip(er[er.view == v].seed.astype(int), er[er.view == v].value, strict=True))
        for v in ("raw", "preconditioned")
    }
    log_ratio = cs.interval(
        _combine(by_view["preconditioned"], by_view["raw"], lambda p, r: math.log(p / r)).values()
    )
    margin = math.log(cs.anisotropy_ratio)
    decision = (
        decide(log_ratio, margin)
        if by_view["preconditioned"]
        else Decision(INCONCLUSIVE, "no preconditioned view at the final checkpoint")
    )
    ratio = (
        f"{math.exp(log_ratio.value):.3g} [{math.exp(log_ratio.low):.3g}, {math.exp(log_ratio.high):.3g}]"
        if math.isfinite(log_ratio.low)
        else "n/a"
    )
    return claim_row(
        "C4",
        CLAIMS["C4"],
        pair=adam,
        measured=f"{adam}: effective rank preconditioned {cs.interval(by_view['preconditioned'].values())} vs raw {cs.interval(by_view['raw'].values())}; ratio {ratio}",
        control="the raw noise at the same iterate",
        rule=f"log(effective rank preconditioned / raw) per seed: supported if its interval lies above 0 and its mean above log(anisotropy_ratio) = log {cs.anisotropy_ratio}; not supported if it lies below",
        decision=decision,
        interval=log_ratio,
        margin=margin,
    )


def _log_ratio_ci(mean: pd.Series, exits: pd.Series) -> tuple[pd.Series, pd.Series]:
    """A log exit-time MLE with r exits has standard error ≈ 1/√r."""
    return np.log(mean), 1 / np.sqrt(exits.clip(lower=1))


def _c5(escape: pd.DataFrame, cs: ClaimSettings) -> dict[str, object]:
    ok = escape[(escape.status == "ok") & np.isfinite(escape.mean_exit)]
    regime = ok[ok.eps_rel <= cs.asymptotic_eps]
    lo_band, hi_band = cs.exit_ratio_band
    trend = (
        ok.groupby("eps").ratio.median().sort_index().map(lambda r: f"{r:.2f}").to_dict()
        if len(ok)
        else {}
    )
    if regime.empty:
        return claim_row(
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
    r_low, r_high = regime.ci_low / regime.predicted, regime.ci_high / regime.predicted
    consistent = (r_high >= lo_band) & (r_low <= hi_band)
    off = ~consistent
    keys = ["scenario", "arm", "basin", "scale", "noise_model", "alpha"]
    slopes = []
    for _, g in regime.groupby(keys, dropna=False):
        if g.eps.nunique() >= 2:
            slope = np.polyfit(np.log(g.eps), np.log(g.mean_exit), 1)[0]
            slopes.append(abs(slope + g.alpha.iloc[0]) <= cs.slope_tolerance)
    slope_ok = float(np.mean(slopes)) if slopes else math.nan
    share = float(consistent.mean())
    if share >= cs.law_fraction and (not slopes or slope_ok >= cs.law_fraction):
        decision = Decision(
            SUPPORTED,
            f"{share:.0%} consistent, slopes within tolerance in {slope_ok:.0%} of groups",
            len(regime),
        )
    elif float(off.mean()) >= cs.law_against or (slopes and 1 - slope_ok >= cs.law_against):
        decision = Decision(
            NOT_SUPPORTED,
            f"{off.mean():.0%} of configurations clearly off the law, slopes off in {1 - slope_ok:.0%} of groups",
            len(regime),
        )
    else:
        decision = Decision(
            INCONCLUSIVE, f"{share:.0%} consistent, {off.mean():.0%} clearly off", len(regime)
        )
    cal = regime[regime.scenario == "calibration"]
    return claim_row(
        "C5",
        CLAIMS["C5"],
        measured=f"in the regime (ε/r_L ≤ {cs.asymptotic_eps}): 95 % CI of measured/predicted meets {cs.exit_ratio_band} in {int(consistent.sum())}/{len(regime)} configurations (calibration: {', '.join(f'{r:.2f}' for r in cal.ratio) or 'none'}); log-log slope within {cs.slope_tolerance} of −α in {sum(slopes)}/{len(slopes)} groups; trend of the median ratio by ε over all configurations: {trend}",
        control="closed-form 1-D law (Imkeller & Pavlyukevich 2006) and m(G) computed independently of the simulation",
        rule=f"over configurations with ε/r_L ≤ asymptotic_eps (r_L: the shortest jump of L that leaves the basin): supported if ≥ law_fraction ({cs.law_fraction:.0%}) have a ratio CI meeting exit_ratio_band and ≥ law_fraction of groups a slope within slope_tolerance; not supported if ≥ law_against ({cs.law_against:.0%}) are clearly off either way",
        decision=decision,
    )


def _c6(escape: pd.DataFrame, sgd: str, adam: str, cs: ClaimSettings) -> dict[str, object]:
    ok = escape[
        (escape.status == "ok")
        & (escape.scenario == "matched")
        & (escape.scale == "sharp")
        & (escape.eps_rel <= cs.asymptotic_eps)
        & np.isfinite(escape.mean_exit)
    ]
    keys = ["basin", "noise_model", "eps"]
    both = ok[ok.arm == sgd].merge(ok[ok.arm == adam], on=keys, suffixes=("_sgd", "_adam"))
    if both.empty:
        return claim_row(
            "C6",
            CLAIMS["C6"],
            pair=_pair(sgd, adam),
            measured="no matched sharp-basin simulations of both arms in the law's regime",
            control="",
            rule="",
            decision=Decision(INCONCLUSIVE, "no common configuration"),
        )
    la, sa = _log_ratio_ci(both.mean_exit_adam, both.n_paths_adam - both.n_censored_adam)
    ls, ss = _log_ratio_ci(both.mean_exit_sgd, both.n_paths_sgd - both.n_censored_sgd)
    log_ratio, se = la - ls, np.hypot(sa, ss)
    z = 1.959963984540054
    margin = math.log(cs.escape_ratio)
    cases = []
    for value, s in zip(log_ratio, se, strict=True):
        lo, hi = value - z * s, value + z * s
        if lo > 0 and value > margin:
            cases.append(Decision(SUPPORTED, ""))
        elif hi < margin:
            cases.append(Decision(NOT_SUPPORTED, ""))
        else:
            cases.append(Decision(INCONCLUSIVE, "no power"))
    ratio = np.exp(log_ratio)
    return claim_row(
        "C6",
        CLAIMS["C6"],
        pair=_pair(sgd, adam),
        measured=f"Γ_{adam}/Γ_{sgd} in sharp basins: median {ratio.median():.3g} (range {ratio.min():.3g}–{ratio.max():.3g}) over {len(both)} configurations",
        control="same basin, ε and normalization for both arms; 95 % CI of each log ratio from the exits (se 1/√r each)",
        rule=f"per configuration: SGD faster if the CI of log(Γ_Adam/Γ_SGD) lies above 0 and the ratio exceeds escape_ratio ({cs.escape_ratio}); against if the CI lies below log escape_ratio; overlap = no power. Supported (not supported) if ≥ majority ({cs.majority:.0%}) of configurations are faster (against)",
        decision=majority(cases, cs.majority, "configurations"),
    )


def _c7_c8(
    claim: str, runs: pd.DataFrame, sgd: str, adam: str, cs: ClaimSettings
) -> dict[str, object]:
    def col(arm: str, c: str) -> dict[int, float]:
        return run_values(runs, arm, c)

    note = diverged_note(runs, sgd, adam)
    if claim == "C7":
        lam_s, lam_a = col(sgd, "top_eigenvalue"), col(adam, "top_eigenvalue")
        iv = cs.interval(_combine(lam_a, lam_s, lambda a, s: (a - s) / a).values())
        return claim_row(
            "C7",
            CLAIMS["C7"],
            pair=_pair(sgd, adam),
            measured=f"λ_max {adam} {cs.interval(lam_a.values())} vs {sgd} {cs.interval(lam_s.values())}; relative difference (λ_Adam − λ_SGD)/λ_Adam {iv}{note}",
            control="runs paired by seed; power iteration on the same training batches",
            rule=f"the seed-paired relative difference: supported if its interval lies above 0 and its mean above sharpness_margin ({cs.sharpness_margin}); not supported if it lies below the margin",
            decision=decide(iv, cs.sharpness_margin),
            interval=iv,
            margin=cs.sharpness_margin,
        )
    acc = cs.interval(paired_differences(col(sgd, "test_acc"), col(adam, "test_acc")))
    gap = cs.interval(
        paired_differences(
            _combine(col(adam, "train_acc"), col(adam, "test_acc"), lambda a, b: a - b),
            _combine(col(sgd, "train_acc"), col(sgd, "test_acc"), lambda a, b: a - b),
        )
    )
    return claim_row(
        "C8",
        CLAIMS["C8"],
        pair=_pair(sgd, adam),
        measured=f"test accuracy {sgd} − {adam} = {acc} points; generalization gap (train − test) {adam} − {sgd} = {gap} points{note}",
        control="runs paired by seed; the same data, model and number of iterations",
        rule=f"the seed-paired test-accuracy difference: supported if its interval lies above 0 and its mean above accuracy_margin ({cs.accuracy_margin} points); not supported if it lies below the margin",
        decision=decide(acc, cs.accuracy_margin),
        interval=acc,
        margin=cs.accuracy_margin,
    )
