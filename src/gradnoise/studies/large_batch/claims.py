"""The large-batch study (DESIGN.md §10a; Hoffer, Hubara & Soudry 2017, "Train longer, generalize
better"): measurements and claims H1–H6.

Arms play roles: ``small`` (SB, B_S), ``large`` (LB, B_L, same epochs), ``large_lr`` (+ √(B_L/B_S) learning
rate), ``large_gbn`` (+ Ghost Batch Normalization with ghosts of B_S), ``large_ra`` (+ regime adaptation:
as many updates as SB). Every comparison pairs the arms' runs by seed.

Distance from the initialization (their Fig. 2): per run, ‖w_t − w_0‖ (whole network and first layer) over
the high-learning-rate phase (iterations 1 up to the first learning-rate drop) is fitted by three
two-parameter laws on the raw scale — a + b·log t, c·t^γ (nonlinear least squares started from the
log-log line) and a + b·√t — and compared by R² (equal parameter counts, so R² orders them as AIC does).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from gradnoise.claims import ClaimSettings, Row
from gradnoise.readings import CONTROLLED, Alphas, estimator_label, run_values
from gradnoise.stats import (
    INCONCLUSIVE,
    NOT_SUPPORTED,
    SUPPORTED,
    Agreement,
    Decision,
    Rule,
    SeedTest,
    count,
    paired_differences,
)

FIT_MODELS = ("log", "power", "sqrt")
DISTANCES = {"whole": "weight_distance", "first_layer": "first_layer_distance"}
MIN_FIT_POINTS = 5

CLAIMS = {
    "H1": "Training with large batches generalizes worse: a large-batch generalization gap exists.",
    "H2": "√B learning-rate scaling, Ghost Batch Normalization and regime adaptation each shrink the gap, in that order.",
    "H3": "Regime adaptation closes the gap: LB+LR+GBN+RA tests within the margin of SB.",
    "H4": "‖w_t − w_0‖ grows logarithmically in the high-learning-rate phase (log fit beats power-law and √t fits).",
    "H5": "Accuracy is a function of the number of updates rather than of the batch size.",
    "H6": "The gradient noise of large batches is lighter-tailed (α rises with B at matched phases of training).",
}


@dataclass(frozen=True)
class LargeBatchSettings:
    """Margins of the study's rules (config: claims.large_batch), in accuracy points unless stated."""

    gap_margin: float = 1.0
    step_margin: float = 0.5
    closes_margin: float = 0.5
    curve_margin: float = 1.0
    phase_tolerance: float = 0.05


def _curve_gap(histories: pd.DataFrame, a: str, b: str) -> dict[int, float]:
    """Per seed: test accuracy of arm a minus arm b at equal numbers of updates, averaged over the
    evaluations both runs made (iteration > 0)."""
    ev = histories[histories.evaluated & (histories.status == "ok") & (histories.iteration > 0)]
    out = {}
    for seed in sorted(set(ev.seed)):
        x = ev[(ev.arm == a) & (ev.seed == seed)].set_index("iteration").test_acc
        y = ev[(ev.arm == b) & (ev.seed == seed)].set_index("iteration").test_acc
        common = x.index.intersection(y.index)
        if len(common):
            out[int(seed)] = float((x[common] - y[common]).mean())
    return out


def evaluate(
    runs: pd.DataFrame,
    histories: pd.DataFrame,
    fits: pd.DataFrame,
    tails: pd.DataFrame,
    roles: Mapping[str, str],
    ls: LargeBatchSettings,
    cs: ClaimSettings,
) -> list[Row]:
    """Claims H1–H6 (``claims.Row``s). H2 and H3 are conditional on H1: a change cannot shrink
    or close a gap that is not there."""
    acc = {role: run_values(runs, arm, "test_acc") for role, arm in roles.items()}
    r = roles
    gap = paired_differences(acc["small"], acc["large"])
    rows = [
        Row(
            "H1",
            CLAIMS["H1"],
            pair=f"{r['small']} − {r['large']}",
            measured=f"test accuracy {r['small']} {cs.interval(acc['small'].values())} vs {r['large']} {cs.interval(acc['large'].values())}; gap {cs.interval(gap.values())} points",
            control="runs paired by seed; same epochs, model, data and schedule",
            rule=f"the seed-paired gap SB − LB against gap_margin ({ls.gap_margin} points)",
            test=SeedTest(gap, Rule("above", ls.gap_margin)),
        )
    ]
    for before, after, what in (
        ("large", "large_lr", "√B learning rate"),
        ("large_lr", "large_gbn", "Ghost Batch Normalization"),
        ("large_gbn", "large_ra", "regime adaptation"),
    ):
        step = paired_differences(acc[after], acc[before])
        rows.append(
            Row(
                "H2",
                CLAIMS["H2"],
                pair=f"{r[after]} − {r[before]}",
                measured=f"adding {what}: test accuracy {r[after]} − {r[before]} = {cs.interval(step.values())} points",
                control="runs paired by seed; the arms differ by this one change",
                rule=f"the seed-paired gain against step_margin ({ls.step_margin} points); conditional on H1 (a gap to shrink)",
                test=SeedTest(step, Rule("above", ls.step_margin)),
                condition="H1",
            )
        )
    left = paired_differences(acc["small"], acc["large_ra"])
    rows.append(
        Row(
            "H3",
            CLAIMS["H3"],
            pair=f"{r['small']} − {r['large_ra']}",
            measured=f"test accuracy {r['small']} − {r['large_ra']} = {cs.interval(left.values())} points (the gap left after all three changes)",
            control="runs paired by seed; both arms make the same number of updates",
            rule=f"SB − RA below closes_margin ({ls.closes_margin} points); conditional on H1 (a gap to close)",
            test=SeedTest(left, Rule("below", ls.closes_margin)),
            condition="H1",
        )
    )
    rows.append(_h4(fits, cs))
    curve = _curve_gap(histories, roles["small"], roles["large_ra"])
    civ = cs.interval(curve.values())
    better = (
        f"; {r['small'] if civ.value > 0 else r['large_ra']} is better at equal updates (interval excludes 0)"
        if math.isfinite(civ.low) and (civ.low > 0 or civ.high < 0)
        else ""
    )
    rows.append(
        Row(
            "H5",
            CLAIMS["H5"],
            pair=f"{r['small']} vs {r['large_ra']}",
            measured=f"test accuracy at equal numbers of updates, {r['small']} − {r['large_ra']} (batch ×{_ratio(runs, roles)}), mean over their common evaluations: {civ} points{better} (at equal epochs the gap is H1's)",
            control="the same evaluation iterations of both runs of a seed",
            rule=f"the mean difference at equal updates inside ±curve_margin ({ls.curve_margin} points)",
            test=SeedTest(curve, Rule("within", ls.curve_margin)),
        )
    )
    rows.append(_h6(tails, runs, roles, ls, cs))
    return rows


def _ratio(runs: pd.DataFrame, roles: Mapping[str, str]) -> str:
    if "batch_size" not in runs:
        return "?"
    b = runs.drop_duplicates("arm").set_index("arm").batch_size
    return f"{b[roles['large_ra']] / b[roles['small']]:g}"


def _h4(fits: pd.DataFrame, cs: ClaimSettings) -> Row:
    """Counted over runs (independent units); the first-layer fits of a run share its trajectory
    with the whole-network fit, so they are reported, not counted."""
    best = fits[fits.best]
    whole = best[best.quantity == "whole"]
    cases = [Decision(SUPPORTED if m == "log" else NOT_SUPPORTED, "") for m in whole.model]
    tally = best.groupby(["quantity", "model"]).size().to_dict()
    r2 = fits.groupby(["quantity", "model"]).r2.median().round(3).to_dict()
    slopes = (
        fits[(fits.model == "log") & (fits.quantity == "whole")].groupby("arm").p2.mean().round(3)
    )
    return Row(
        "H4",
        CLAIMS["H4"],
        pair="every run",
        measured=f"best law per (quantity, law): {tally}; median R² {r2}; mean log-slope b of the whole network per arm {slopes.to_dict()}",
        control="three two-parameter laws on the same points of the high-learning-rate phase",
        rule=f"per run, the law with the highest R² on the whole network's distance (the first layer is reported: it is the same run); supported if the log law wins in ≥ majority ({cs.majority}) of the runs, not supported once that is out of reach",
        decision=count(cases, cs.majority, "runs"),
    )


def matched_phase(
    alphas: Alphas, runs: pd.DataFrame, small: str, large: str, tolerance: float
) -> tuple[int, int] | str:
    """The checkpoints (small's, large's) at the same fraction of each arm's training (within
    `tolerance`), both at or before the arm's first learning-rate drop and after iteration 0; the
    latest such pair. A string says why there is none. α is compared at matched phases, not at one
    iteration: a large batch makes fewer updates per epoch, so at one iteration it may have passed its
    first drop while the small batch has not."""
    if not {"iterations", "phase_end"} <= set(runs.columns):
        return "no training settings (iterations, first learning-rate drop) for the arms"
    phase: dict[str, dict[int, float]] = {}
    for arm in (small, large):
        settings = runs[runs.arm == arm].drop_duplicates(["iterations", "phase_end"])
        if len(settings) != 1:
            return f"{arm}: {len(settings)} different schedules over its seeds"
        total, drop = int(settings.iterations.iloc[0]), int(settings.phase_end.iloc[0])
        steps = set(alphas.df[alphas.df.arm == arm].step.dropna().astype(int))
        phase[arm] = {c: c / total for c in sorted(steps) if 0 < c <= drop}
    pairs = [
        (c_s, c_l)
        for c_s, f_s in phase[small].items()
        for c_l, f_l in phase[large].items()
        if abs(f_s - f_l) <= tolerance
    ]
    if not pairs:
        listed = "; ".join(
            f"{arm}: {', '.join(f'{c} ({f:.2f})' for c, f in phase[arm].items()) or 'none'}"
            for arm in (small, large)
        )
        return (
            f"no checkpoints at the same fraction of training (± {tolerance:g}) before the first "
            f"learning-rate drop of both arms (checkpoints before it, with their fractions: {listed})"
        )
    return max(pairs, key=lambda p: (phase[small][p[0]] + phase[large][p[1]], p))


def _h6(
    tails: pd.DataFrame,
    runs: pd.DataFrame,
    roles: Mapping[str, str],
    ls: LargeBatchSettings,
    cs: ClaimSettings,
) -> Row:
    """Heaviness (null − α) of SB minus LB's, at matched phases, for both controlled estimators: each
    arm's α against its own Gaussian null (the nulls differ with the arms' samples)."""
    alphas = Alphas(tails)
    small, large = roles["small"], roles["large"]
    matched = matched_phase(alphas, runs, small, large, ls.phase_tolerance)
    rule = f"heaviness (null − α) of {small} minus that of {large}, per seed at matched phases (the same fraction of training ± phase_tolerance {ls.phase_tolerance:g}, before either arm's first learning-rate drop), against alpha_margin ({cs.alpha_margin}); both controlled estimators must agree"
    control = "runs paired by seed, each arm at the same fraction of its training and before its first learning-rate drop; each α against its own Gaussian null"
    if isinstance(matched, str):
        return Row(
            "H6",
            CLAIMS["H6"],
            pair=f"{large} vs {small}",
            measured=matched,
            control=control,
            rule=rule,
            decision=Decision(INCONCLUSIVE, matched),
        )
    step_s, step_l = matched
    diffs = {
        est: paired_differences(
            alphas.heaviness(small, "raw", est, step_s),
            alphas.heaviness(large, "raw", est, step_l),
        )
        for est in CONTROLLED
    }
    per_arm = {
        f"{arm} at {step}": f"α {cs.interval(alphas.per_seed(arm, 'raw', 'per_coordinate', step).values())}, null {cs.interval(alphas.per_seed(arm, 'raw', 'per_coordinate', step, 'null_value').values())}"
        for arm, step in ((small, step_s), (large, step_l))
    }
    return Row(
        "H6",
        CLAIMS["H6"],
        pair=f"{large} vs {small}",
        measured=f"raw view, {small} at iteration {step_s}, {large} at iteration {step_l} (matched phases): heaviness {small} − {large} = "
        + ", ".join(f"{estimator_label(e)} {cs.interval(d.values())}" for e, d in diffs.items())
        + f"; per-coordinate per arm {per_arm}",
        control=control,
        rule=rule,
        test=Agreement(
            {
                estimator_label(e): SeedTest(d, Rule("above", cs.alpha_margin))
                for e, d in diffs.items()
            }
        ),
    )


def claims(tables: Any, s: Mapping[str, Any], cs: ClaimSettings) -> list[Row]:
    """The registry's entry point (``gradnoise.studies.STUDIES["large_batch"]``): H1–H6 from the
    claims stage's tables (scripts/claims.py)."""
    history, settings = tables.histories
    keys = ["arm", "seed", "batch_size", "iterations", "phase_end"]
    runs = tables.runs.merge(settings[keys], on=["arm", "seed"])
    ls = LargeBatchSettings(**s["claims"]["large_batch"])
    return evaluate(runs, history, tables.fits, tables.tails, s["roles"], ls, cs)
