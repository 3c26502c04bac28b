"""The claims of Zhou et al. (2020), C1–C8 of DESIGN.md §1: for each claim and each pair of arms it
compares, the measured effect with its rule (``gradnoise.stats``; decided by ``gradnoise.claims``).

Pairs: C2, C6, C7 and C8 compare every SGD-family arm (sgd, sgdm) with every Adam-family arm (adam,
adamw), the paper's pair first — its "SGD" is SGD with momentum 0.9 (DESIGN.md §3); the paper's
pair decides the claim-level verdict and the other pairs are reported beside it (without SGD-M and Adam,
every pair must hold). C3 and C4 are about Adam's own update: one row per Adam-family arm. α
estimates are those of the training split, whole network, at the final checkpoint (C2: averaged over
the checkpoints of ``alpha_window``), from the controlled estimators (``readings.CONTROLLED``), each
view against its own Gaussian null; both must agree. A run that diverged leaves its seed out of the
paired differences (the row says so).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import special
from scipy import stats as st

from gradnoise.claims import ClaimSettings, Row, missing
from gradnoise.io import ALL
from gradnoise.readings import (
    CONTROLLED,
    Alphas,
    combine,
    diverged_note,
    estimator_label,
    run_values,
)
from gradnoise.stats import (
    INCONCLUSIVE,
    Agreement,
    Decision,
    Interval,
    Rule,
    SeedTest,
    all_of,
    count,
    paired_differences,
)

SGD_FAMILY, ADAM_FAMILY = ("sgdm", "sgd"), ("adam", "adamw")  # paper's first
PAIRED = ("C2", "C6", "C7", "C8")  # claims compared pair by pair

CLAIMS = {
    "C1": "The raw gradient noise of SGD and Adam reads heavier-tailed than Gaussian noise of the same per-coordinate scale (α̂ below its Gaussian surrogate's; whether the noise is α-stable with α < 2 is decided by S1–S3, study alpha_stable).",
    "C2": "SGD's noise is heavier-tailed than Adam's (α_SGD < α_Adam).",
    "C3": "Adam's moving average lightens the tails of its noise.",
    "C4": "Adam's coordinate-wise scaling removes much of the noise anisotropy.",
    "C5": "The simulator reproduces the Lévy escape law Γ ≈ ε^(−α)/m(W) of Imkeller & Pavlyukevich (a check of the simulator, not of the optimizers).",
    "C6": "For the same basin, SGD escapes sharp minima faster than Adam.",
    "C7": "SGD lands in flatter minima than Adam.",
    "C8": "SGD generalizes better than Adam.",
}


def arm_pairs(runs: pd.DataFrame) -> list[tuple[str, str]]:
    """(SGD-family arm, Adam-family arm) pairs, the paper's (sgdm, adam) first."""
    opt = runs.drop_duplicates("arm").set_index("arm").optimizer.to_dict()

    def rank(family: tuple[str, ...]) -> list[str]:
        members = [a for a in opt if opt[a] in family]
        return sorted(members, key=lambda a: (family.index(opt[a]), a))

    return [(s, a) for s in rank(SGD_FAMILY) for a in rank(ADAM_FAMILY)]


def _pair(sgd: str, adam: str) -> str:
    return f"{sgd} vs {adam}"


def _papers(runs: pd.DataFrame, sgd: str, adam: str) -> bool:
    """Whether this is the paper's own pair, SGD with momentum against Adam (DESIGN.md §3)."""
    opt = runs.drop_duplicates("arm").set_index("arm").optimizer
    return (opt.get(sgd), opt.get(adam)) == ("sgdm", "adam")


def evaluate_claims(
    tails: pd.DataFrame,
    escape: pd.DataFrame,
    runs: pd.DataFrame,
    cs: ClaimSettings,
    hparams: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Row]:
    """`runs`: one row per (arm, seed): optimizer, status, top_eigenvalue, train_acc, test_acc;
    `hparams`: arm → its final learning rate and momentum (C7's stability edge)."""
    alphas = Alphas(tails)
    pairs = arm_pairs(runs)
    adams = list(dict.fromkeys(a for _, a in pairs))
    need = "an SGD and an Adam arm"
    rows = _c1(alphas, runs, cs)
    rows += [_c2(alphas, s, a, cs, diverged_note(runs, s, a)) for s, a in pairs] or [
        missing("C2", CLAIMS["C2"], need)
    ]
    rows += [_c3(alphas, a, cs, diverged_note(runs, a)) for a in adams] or [
        missing("C3", CLAIMS["C3"], "Adam arm")
    ]
    rows += [_c4(tails, a, cs, diverged_note(runs, a)) for a in adams] or [
        missing("C4", CLAIMS["C4"], "Adam arm")
    ]
    rows.append(_c5(escape, cs))
    rows += [_c6(escape, alphas, s, a, cs) for s, a in pairs] or [missing("C6", CLAIMS["C6"], need)]
    rows += [_c7(runs, s, a, cs, hparams or {}) for s, a in pairs] or [
        missing("C7", CLAIMS["C7"], need)
    ]
    rows += [_c8(runs, s, a, cs) for s, a in pairs] or [missing("C8", CLAIMS["C8"], need)]
    paper = next((_pair(s, a) for s, a in pairs if _papers(runs, s, a)), None)
    return [  # the paper's pair states C2, C6, C7 and C8; the other pairs extend them
        replace(r, primary=True) if r.claim in PAIRED and r.pair == paper else r for r in rows
    ]


def _agreement(per_estimator: Mapping[str, Mapping[int, float]], rule: Rule) -> Agreement:
    return Agreement({estimator_label(e): SeedTest(v, rule) for e, v in per_estimator.items()})


def _c1(alphas: Alphas, runs: pd.DataFrame, cs: ClaimSettings) -> list[Row]:
    arms = [
        a.arm
        for a in runs.drop_duplicates("arm").sort_values("arm").itertuples()
        if a.optimizer in SGD_FAMILY + ADAM_FAMILY
    ]
    rows = []
    for arm in arms:
        step = alphas.final_step(arm)
        parts = [
            f"{estimator_label(e)} {cs.interval(alphas.per_seed(arm, 'raw', e, step).values())} "
            f"(null {cs.interval(alphas.per_seed(arm, 'raw', e, step, 'null_value').values()).value:.3g})"
            for e in CONTROLLED
        ]
        ref = cs.interval(alphas.per_seed(arm, "raw", "pooled", step).values())
        rows.append(
            Row(
                "C1",
                CLAIMS["C1"],
                pair=arm,
                measured=f"α̂ (raw view, step {step}): "
                + ", ".join(parts)
                + f"; pooled (reference, never decides) {ref}; effect: null − α̂"
                + diverged_note(runs, arm),
                control="each estimate against a Gaussian surrogate with the same per-coordinate robust scale (IQR/1.349), through the same estimator",
                rule=f"per controlled estimator, null − α̂ over seeds against heavy_margin ({cs.heavy_margin}); both estimators must agree; the claim needs every arm",
                test=_agreement(
                    {e: alphas.heaviness(arm, "raw", e, step) for e in CONTROLLED},
                    Rule("above", cs.heavy_margin),
                ),
            )
        )
    return rows or [missing("C1", CLAIMS["C1"], "SGD- or Adam-family arm")]


def _window_steps(alphas: Alphas, sgd: str, adam: str, window: list[int | None]) -> list[int]:
    steps = sorted(
        set(alphas.df[alphas.df.arm == sgd].step) & set(alphas.df[alphas.df.arm == adam].step)
    )
    lo, hi = window[0] or 0, window[1] if window[1] is not None else math.inf
    return [int(s) for s in steps if s > 0 and lo <= s <= hi]


def _c2(alphas: Alphas, sgd: str, adam: str, cs: ClaimSettings, note: str) -> Row:
    window = _window_steps(alphas, sgd, adam, cs.alpha_window)

    def diff(step: int, est: str) -> dict[int, float]:
        return paired_differences(
            alphas.per_seed(adam, "raw", est, step), alphas.per_seed(sgd, "raw", est, step)
        )

    def over_window(est: str) -> dict[int, float]:
        per_step = [diff(s, est) for s in window]
        seeds = set.intersection(*(set(d) for d in per_step)) if per_step else set()
        return {s: float(np.mean([d[s] for d in per_step])) for s in sorted(seeds)}

    per_step = "; ".join(
        f"{s}: "
        + ", ".join(f"{estimator_label(e)} {cs.interval(diff(s, e).values())}" for e in CONTROLLED)
        for s in _window_steps(alphas, sgd, adam, [1, None])
    )
    return Row(
        "C2",
        CLAIMS["C2"],
        pair=_pair(sgd, adam),
        measured=f"α_{adam} − α_{sgd} (raw view) averaged over checkpoints {window}; per checkpoint — {per_step}{note}",
        control=f"{sgd} and {adam} runs paired by seed (same initialization and data); two controlled estimators",
        rule=f"per estimator, the seed-paired difference averaged over alpha_window {cs.alpha_window} against alpha_margin ({cs.alpha_margin}); both estimators must agree",
        test=_agreement({e: over_window(e) for e in CONTROLLED}, Rule("above", cs.alpha_margin)),
    )


def _c3(alphas: Alphas, adam: str, cs: ClaimSettings, note: str) -> Row:
    step = alphas.final_step(adam)

    def lightening(est: str) -> dict[int, float]:
        return combine(
            alphas.heaviness(adam, "raw", est, step),
            alphas.heaviness(adam, "averaged", est, step),
            lambda raw, avg: raw - avg,
        )

    views = ", ".join(
        f"{estimator_label(e)} α averaged {cs.interval(alphas.per_seed(adam, 'averaged', e, step).values())} "
        f"vs raw {cs.interval(alphas.per_seed(adam, 'raw', e, step).values())}"
        for e in CONTROLLED
    )
    notes = alphas.notes(adam, "averaged", step)
    return Row(
        "C3",
        CLAIMS["C3"],
        pair=adam,
        measured=f"{adam}: {views}; effect: lightening (null − α)_raw − (null − α)_averaged"
        + (f"; averaged view: {notes}" if notes else "")
        + note,
        control="each view against its own Gaussian null (the averaged view's null is the same EMA of Gaussian draws); the same noise draws without averaging",
        rule=f"per estimator, the lightening over seeds against alpha_margin ({cs.alpha_margin}); both estimators must agree",
        test=_agreement({e: lightening(e) for e in CONTROLLED}, Rule("above", cs.alpha_margin)),
    )


def _c4(tails: pd.DataFrame, adam: str, cs: ClaimSettings, note: str) -> Row:
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
    log_ratio = combine(by_view["preconditioned"], by_view["raw"], lambda p, r: math.log(p / r))
    iv = cs.interval(log_ratio.values())
    ratio = (
        f"{math.exp(iv.value):.3g} [{math.exp(iv.low):.3g}, {math.exp(iv.high):.3g}]"
        if math.isfinite(iv.low)
        else "n/a"
    )
    return Row(
        "C4",
        CLAIMS["C4"],
        pair=adam,
        measured=f"{adam}: effective rank preconditioned {cs.interval(by_view['preconditioned'].values())} vs raw {cs.interval(by_view['raw'].values())}; ratio {ratio}; effect: log ratio{note}",
        control="the raw noise at the same iterate",
        rule=f"log(effective rank preconditioned / raw) per seed against log(anisotropy_ratio) = log {cs.anisotropy_ratio}",
        test=SeedTest(log_ratio, Rule("above", math.log(cs.anisotropy_ratio))),
    )


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


def _c6(escape: pd.DataFrame, alphas: Alphas, sgd: str, adam: str, cs: ClaimSettings) -> Row:
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
        return Row(
            "C6",
            CLAIMS["C6"],
            pair=pair,
            measured="no matched sharp-basin simulations of both arms in the law's regime",
            control="",
            rule="",
            decision=Decision(INCONCLUSIVE, "no common configuration"),
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
        + (f"; capped at alpha_max: {', '.join(capped)}" if capped else ""),
        control="same basin, ε and normalization for both arms; each log ratio's interval combines the Monte-Carlo error (1/√exits) and the seed spread of each arm's matched α (delta method through ε^(−α)/m(W), t with n − 1 df)",
        rule=f"per configuration, log(Γ_Adam/Γ_SGD) against log escape_ratio (log {cs.escape_ratio}); the configurations share one α and one M per arm, so they are not independent votes: every one must hold; inconclusive when both arms sit at the α cap",
        decision=decision,
    )


def _edge(hp: Mapping[str, Any] | None, optimizer: str) -> float | None:
    """The effective step of a plain or heavy-ball SGD arm, lr/(1 − momentum); None for adaptive ones
    (their stability edge is on the preconditioned Hessian, which the sharpness stage does not measure)."""
    if not hp or optimizer not in SGD_FAMILY or "lr" not in hp:
        return None
    return float(hp["lr"]) / (1 - float(hp.get("momentum", 0.0)))


def _c7(
    runs: pd.DataFrame,
    sgd: str,
    adam: str,
    cs: ClaimSettings,
    hparams: Mapping[str, Mapping[str, Any]],
) -> Row:
    lam_s, lam_a = run_values(runs, sgd, "top_eigenvalue"), run_values(runs, adam, "top_eigenvalue")
    rel = combine(lam_a, lam_s, lambda a, s: (a - s) / a)
    opt = runs.drop_duplicates("arm").set_index("arm").optimizer
    eta = _edge(hparams.get(sgd), opt.get(sgd, ""))
    edge = (
        f"; λ_max·η_eff of {sgd} {cs.interval(v * eta for v in lam_s.values())} (η_eff = lr/(1 − momentum) = {eta:.3g}; the stability edge is 2)"
        if eta
        else ""
    )
    return Row(
        "C7",
        CLAIMS["C7"],
        pair=_pair(sgd, adam),
        measured=f"λ_max {adam} {cs.interval(lam_a.values())} vs {sgd} {cs.interval(lam_s.values())}; effect: relative difference (λ_Adam − λ_SGD)/λ_Adam{edge}{diverged_note(runs, sgd, adam)}",
        control="runs paired by seed; power iteration on the same training batches; λ_max·η_eff says how close SGD sits to its stability edge (Adam's edge is on the preconditioned Hessian, not measured)",
        rule=f"λ_max decides: the seed-paired relative difference against sharpness_margin ({cs.sharpness_margin}); λ_max·η_eff is reported, not decided on",
        test=SeedTest(rel, Rule("above", cs.sharpness_margin)),
    )


def _c8(runs: pd.DataFrame, sgd: str, adam: str, cs: ClaimSettings) -> Row:
    def col(arm: str, c: str) -> dict[int, float]:
        return run_values(runs, arm, c)

    acc = paired_differences(col(sgd, "test_acc"), col(adam, "test_acc"))
    gap = cs.interval(
        paired_differences(
            combine(col(adam, "train_acc"), col(adam, "test_acc"), lambda a, b: a - b),
            combine(col(sgd, "train_acc"), col(sgd, "test_acc"), lambda a, b: a - b),
        ).values()
    )
    return Row(
        "C8",
        CLAIMS["C8"],
        pair=_pair(sgd, adam),
        measured=f"test accuracy {sgd} − {adam} = {cs.interval(acc.values())} points; generalization gap (train − test) {adam} − {sgd} = {gap} points{diverged_note(runs, sgd, adam)}",
        control="runs paired by seed; the same data, model and number of iterations",
        rule=f"the seed-paired test-accuracy difference against accuracy_margin ({cs.accuracy_margin} points)",
        test=SeedTest(acc, Rule("above", cs.accuracy_margin)),
    )


def claims(tables: Any, s: Mapping[str, Any], cs: ClaimSettings) -> list[Row]:
    """The registry's entry point (``gradnoise.studies.STUDIES["optimizers"]``): C1–C8 from the
    claims stage's tables (scripts/claims.py)."""
    return evaluate_claims(tables.tails, tables.escape, tables.runs, cs, s.get("hparams"))
