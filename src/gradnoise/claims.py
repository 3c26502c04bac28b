"""The claims table: for each claim C1–C8 of DESIGN.md §1, the measured quantities with uncertainty, the
control, the decision rule and a verdict (``supported``, ``not supported`` or ``inconclusive``).

The rules are fixed here (and in config/README.md) before any result is looked at; their thresholds
come from the ``claims`` config section. "SGD" is ``sgd`` when the experiment trains it, else ``sgdm``;
"Adam" is ``adam``, else ``adamw``. Estimates are taken on the training split, whole network, at the
final checkpoint, and averaged over seeds; an uncertainty combines the bootstrap CIs with the spread
over seeds (se² = mean(ci half-width/1.96)²/n + var over seeds/n).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"
CONTROLLED = ("pooled_standardized", "per_coordinate")  # α estimators immune to scale mixing

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
    alpha_margin: float = 0.05
    anisotropy_ratio: float = 1.5
    escape_ratio: float = 1.2


@dataclass(frozen=True)
class Estimate:
    """A seed-averaged quantity with its standard error (NaN when it cannot be assessed)."""

    value: float
    se: float
    n: int

    def __str__(self) -> str:
        if not math.isfinite(self.value):
            return "n/a"
        return (
            f"{self.value:.3g} ± {1.96 * self.se:.2g}"
            if math.isfinite(self.se)
            else f"{self.value:.3g}"
        )


def combine(
    values: list[float], ci_low: list[float] | None = None, ci_high: list[float] | None = None
) -> Estimate:
    v = np.asarray([x for x in values if math.isfinite(x)], dtype=float)
    if v.size == 0:
        return Estimate(math.nan, math.nan, 0)
    var = v.var(ddof=1) / v.size if v.size > 1 else 0.0
    if ci_low is not None and ci_high is not None:
        half = (np.asarray(ci_high, dtype=float) - np.asarray(ci_low, dtype=float)) / 2 / 1.96
        half = half[np.isfinite(half)]
        var += float(np.mean(half**2)) / v.size if half.size else math.nan
    elif v.size == 1:
        var = math.nan  # a single seed without a CI carries no uncertainty estimate
    return Estimate(
        float(v.mean()), math.sqrt(var) if math.isfinite(var) else math.nan, int(v.size)
    )


def difference_verdict(diff: Estimate, margin: float) -> str:
    """`diff` should be positive: supported if it exceeds `margin` and its 95 % interval excludes 0;
    not supported if its 95 % interval lies below `margin`; otherwise inconclusive."""
    if not (math.isfinite(diff.value) and math.isfinite(diff.se)):
        return INCONCLUSIVE
    lo, hi = diff.value - 1.96 * diff.se, diff.value + 1.96 * diff.se
    if lo > 0 and diff.value > margin:
        return SUPPORTED
    if hi < margin:
        return NOT_SUPPORTED
    return INCONCLUSIVE


def subtract(a: Estimate, b: Estimate) -> Estimate:
    return Estimate(a.value - b.value, math.hypot(a.se, b.se), min(a.n, b.n))


def pick(available: list[str], *prefs: str) -> str | None:
    return next((p for p in prefs if p in available), None)


def _final_alpha(tails: pd.DataFrame) -> pd.DataFrame:
    ok = tails[
        (tails.status == "ok")
        & (tails.quantity == "alpha")
        & (tails.split == "train")
        & (tails.layer == "__all__")
    ]
    final = ok.groupby("optimizer").step.transform("max")
    return ok[ok.step == final]


def _alpha(df: pd.DataFrame, opt: str, view: str, estimator: str) -> Estimate:
    sel = df[(df.optimizer == opt) & (df.view == view) & (df.estimator == estimator)]
    return combine(sel.value.tolist(), sel.ci_low.tolist(), sel.ci_high.tolist())


def _row(cid: str, measured: str, control: str, rule: str, verdict: str) -> dict[str, str]:
    return {
        "claim": cid,
        "statement": CLAIMS[cid],
        "measured": measured,
        "control": control,
        "rule": rule,
        "verdict": verdict,
    }


def evaluate_claims(
    tails: pd.DataFrame, escape: pd.DataFrame, runs: pd.DataFrame, cs: ClaimSettings
) -> pd.DataFrame:
    """`runs`: one row per (optimizer, seed) with top_eigenvalue, train_acc, test_acc (sharpness files)."""
    opts = sorted(set(runs.optimizer))
    sgd, adam = pick(opts, "sgd", "sgdm"), pick(opts, "adam", "adamw")
    rows = [
        _c1(tails, sgd, adam),
        *_c2_c3_c4(tails, sgd, adam, cs),
        _c5(escape),
        _c6(escape, sgd, adam, cs),
        *_c7_c8(runs, sgd, adam, cs),
    ]
    return pd.DataFrame(rows)


def _c1(tails: pd.DataFrame, sgd: str | None, adam: str | None) -> dict[str, str]:
    df = _final_alpha(tails)
    sel = df[
        df.optimizer.isin([o for o in (sgd, adam) if o])
        & (df.view == "raw")
        & df.estimator.isin(CONTROLLED)
    ]
    counts = sel.verdict.value_counts()
    n = int(counts.sum())
    heavy, light = int(counts.get("heavy-tailed", 0)), int(counts.get("not heavy-tailed", 0))
    pooled = df[
        df.optimizer.isin([o for o in (sgd, adam) if o])
        & (df.view == "raw")
        & (df.estimator == "pooled")
    ]
    measured = ", ".join(
        f"{o}: α̂ std {_alpha(df, o, 'raw', 'pooled_standardized')}, per-coord {_alpha(df, o, 'raw', 'per_coordinate')} (pooled {_alpha(df, o, 'raw', 'pooled')})"
        for o in (sgd, adam)
        if o
    )
    verdict = INCONCLUSIVE
    if n and heavy >= 2 * n / 3:
        verdict = SUPPORTED
    elif n and light >= 2 * n / 3:
        verdict = NOT_SUPPORTED
    return _row(
        "C1",
        f"{measured}; verdicts of controlled estimates: {heavy} heavy, {light} not heavy, {n - heavy - light} inconclusive; pooled (reference) verdicts: {', '.join(f'{int(c)} {v}' for v, c in pooled.verdict.value_counts().items())}",
        "Gaussian surrogate with the same per-coordinate robust scale (IQR/1.349); controlled estimators (standardized, per-coordinate)",
        "supported if ≥ 2/3 of the controlled (optimizer, seed, estimator) verdicts are heavy-tailed (CI below the null's CI by > null_margin); not supported if ≥ 2/3 are not heavy-tailed",
        verdict,
    )


def _c2_c3_c4(tails: pd.DataFrame, sgd, adam, cs: ClaimSettings) -> list[dict[str, str]]:
    df = _final_alpha(tails)
    est = "per_coordinate"
    rows = []
    if sgd and adam:
        diff = subtract(_alpha(df, adam, "raw", est), _alpha(df, sgd, "raw", est))
        ref = subtract(_alpha(df, adam, "raw", "pooled"), _alpha(df, sgd, "raw", "pooled"))
        rows.append(
            _row(
                "C2",
                f"α_{adam} − α_{sgd} = {diff} (per-coordinate, raw); reference pooled: {ref}",
                f"{sgd} vs {adam} on the same data and model; seeds and bootstrap",
                f"supported if the difference > alpha_margin ({cs.alpha_margin}) and its 95 % interval excludes 0; not supported if the interval lies below the margin",
                difference_verdict(diff, cs.alpha_margin),
            )
        )
    else:
        rows.append(_row("C2", "needs both an SGD and an Adam optimizer", "", "", INCONCLUSIVE))
    if adam:
        raw, avg = _alpha(df, adam, "raw", est), _alpha(df, adam, "averaged", est)
        diff = subtract(avg, raw)
        rows.append(
            _row(
                "C3",
                f"{adam}: α averaged {avg} vs raw {raw}; difference {diff}",
                "the same noise draws without averaging; Gaussian null of each view",
                f"supported if α(averaged) − α(raw) > alpha_margin ({cs.alpha_margin}) with 95 % interval above 0; not supported if the interval lies below the margin",
                difference_verdict(diff, cs.alpha_margin),
            )
        )
        rows.append(_c4(tails, adam, cs))
    else:
        rows += [_row(c, "needs an Adam optimizer", "", "", INCONCLUSIVE) for c in ("C3", "C4")]
    return rows


def _c4(tails: pd.DataFrame, adam: str, cs: ClaimSettings) -> dict[str, str]:
    ok = tails[
        (tails.status == "ok")
        & (tails.optimizer == adam)
        & (tails.split == "train")
        & (tails.layer == "__all__")
        & (tails.quantity == "effective_rank")
    ]
    ok = ok[ok.step == ok.step.max()] if len(ok) else ok
    er = {
        v: combine(
            ok[ok.view == v].value.tolist(),
            ok[ok.view == v].ci_low.tolist(),
            ok[ok.view == v].ci_high.tolist(),
        )
        for v in ("raw", "preconditioned")
    }
    if not all(math.isfinite(e.value) for e in er.values()):
        return _row("C4", "no preconditioned view at the final checkpoint", "", "", INCONCLUSIVE)
    # log ratio of effective ranks; its se by the delta method
    lr = Estimate(
        math.log(er["preconditioned"].value / er["raw"].value),
        math.hypot(
            er["preconditioned"].se / er["preconditioned"].value, er["raw"].se / er["raw"].value
        ),
        er["raw"].n,
    )
    verdict = difference_verdict(lr, math.log(cs.anisotropy_ratio))
    return _row(
        "C4",
        f"{adam}: effective rank preconditioned {er['preconditioned']} vs raw {er['raw']} (ratio {math.exp(lr.value):.3g})",
        "the raw noise at the same iterate",
        f"supported if effective-rank ratio > anisotropy_ratio ({cs.anisotropy_ratio}) and the 95 % interval of its log excludes 0; not supported if the interval lies below the threshold",
        verdict,
    )


def _c5(escape: pd.DataFrame) -> dict[str, str]:
    ok = escape[(escape.status == "ok") & np.isfinite(escape.mean_exit)]
    if ok.empty:
        return _row("C5", "no simulations", "", "", INCONCLUSIVE)
    ratio_ok = ok.ratio.between(0.8, 1.25)
    groups = ok.groupby(["scenario", "optimizer", "basin", "scale", "noise_model"], dropna=False)
    slopes = groups.agg(slope=("slope", "first"), target=("slope_target", "first"))
    slope_ok = (slopes.slope - slopes.target).abs() <= 0.15
    frac_ratio, frac_slope = float(ratio_ok.mean()), float(slope_ok.mean())
    cal = ok[ok.scenario == "calibration"]
    verdict = INCONCLUSIVE
    if frac_ratio >= 0.9 and frac_slope >= 0.9:
        verdict = SUPPORTED
    elif frac_ratio < 0.5 or frac_slope < 0.5:
        verdict = NOT_SUPPORTED
    return _row(
        "C5",
        f"measured/predicted within [0.8, 1.25] in {ratio_ok.sum()}/{len(ok)} configurations (calibration: {', '.join(f'{r:.2f}' for r in cal.ratio)}); slope within 0.15 of −α in {slope_ok.sum()}/{len(slopes)} groups",
        "closed-form 1-D law (Imkeller & Pavlyukevich 2006) and m(G) computed independently of the simulation",
        "supported if ≥ 90 % of configurations have ratio in [0.8, 1.25] and ≥ 90 % of groups a slope within 0.15 of −α; not supported if either is < 50 %",
        verdict,
    )


def _c6(escape: pd.DataFrame, sgd, adam, cs: ClaimSettings) -> dict[str, str]:
    ok = escape[
        (escape.status == "ok") & (escape.scenario == "matched") & (escape.scale == "sharp")
    ]
    if not (sgd and adam) or ok.empty:
        return _row("C6", "needs matched simulations of SGD and Adam", "", "", INCONCLUSIVE)
    keys = ["basin", "noise_model", "eps"]
    both = ok[ok.optimizer == sgd].merge(
        ok[ok.optimizer == adam], on=keys, suffixes=("_sgd", "_adam")
    )
    if both.empty:
        return _row("C6", "no common configurations", "", "", INCONCLUSIVE)
    ratio = both.mean_exit_adam / both.mean_exit_sgd
    faster = (both.ci_high_sgd < both.ci_low_adam) & (ratio >= cs.escape_ratio)
    slower = both.ci_high_adam < both.ci_low_sgd
    verdict = (
        SUPPORTED
        if faster.mean() >= 2 / 3
        else NOT_SUPPORTED
        if (~faster).mean() >= 2 / 3
        else INCONCLUSIVE
    )
    return _row(
        "C6",
        f"Γ_{adam}/Γ_{sgd} in sharp basins: median {ratio.median():.3g} (range {ratio.min():.3g}–{ratio.max():.3g}); SGD clearly faster in {int(faster.sum())}/{len(both)}, clearly slower in {int(slower.sum())}",
        "same basin, ε and normalization for both optimizers; 95 % CIs of the exponential MLE",
        f"supported if in ≥ 2/3 of the sharp-basin configurations SGD's CI lies below Adam's and Γ_Adam/Γ_SGD ≥ escape_ratio ({cs.escape_ratio}); not supported if that holds in ≤ 1/3",
        verdict,
    )


def _c7_c8(runs: pd.DataFrame, sgd, adam, cs: ClaimSettings) -> list[dict[str, str]]:
    ok = runs[runs.status == "ok"]
    if not (sgd and adam):
        return [
            _row(c, "needs both an SGD and an Adam optimizer", "", "", INCONCLUSIVE)
            for c in ("C7", "C8")
        ]

    def est(opt: str, col: str) -> Estimate:
        return combine(ok[ok.optimizer == opt][col].tolist())

    sharp = subtract(est(adam, "top_eigenvalue"), est(sgd, "top_eigenvalue"))
    rel = Estimate(
        sharp.value / max(abs(est(adam, "top_eigenvalue").value), 1e-12),
        sharp.se / max(abs(est(adam, "top_eigenvalue").value), 1e-12),
        sharp.n,
    )
    acc = subtract(est(sgd, "test_acc"), est(adam, "test_acc"))
    gap = subtract(
        combine((ok[ok.optimizer == adam].train_acc - ok[ok.optimizer == adam].test_acc).tolist()),
        combine((ok[ok.optimizer == sgd].train_acc - ok[ok.optimizer == sgd].test_acc).tolist()),
    )
    diverged = runs[runs.status != "ok"]
    note = (
        f"; diverged runs: {', '.join(f'{r.optimizer}/seed{r.seed}' for r in diverged.itertuples())}"
        if len(diverged)
        else ""
    )
    return [
        _row(
            "C7",
            f"λ_max {adam} {est(adam, 'top_eigenvalue')} vs {sgd} {est(sgd, 'top_eigenvalue')} (relative difference {rel}){note}",
            "seeds (power iteration on the same training batches)",
            "supported if λ_max(Adam) − λ_max(SGD) > 5 % of λ_max(Adam) with a 95 % interval (over seeds) above 0; not supported if the interval lies below 5 %; one seed is inconclusive",
            difference_verdict(rel, 0.05),
        ),
        _row(
            "C8",
            f"test accuracy {sgd} − {adam} = {acc} points; generalization gap (train − test) {adam} − {sgd} = {gap} points{note}",
            "seeds; the same data, model and iterations",
            "supported if SGD's test accuracy exceeds Adam's by > 0.5 points with a 95 % interval (over seeds) above 0; not supported if the interval lies below 0.5 points",
            difference_verdict(acc, 0.5),
        ),
    ]


def to_markdown(claims: pd.DataFrame, experiment: str) -> str:
    lines = [
        f"# Claims of Zhou et al. (2020) — experiment `{experiment}`",
        "",
        "| claim | statement | measured | control | rule | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for r in claims.itertuples():
        cells = [r.claim, r.statement, r.measured, r.control, r.rule, f"**{r.verdict}**"]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
