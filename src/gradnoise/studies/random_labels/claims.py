"""The random-label study (DESIGN.md §10b; Liu, Papailiopoulos & Achlioptas 2020, "Bad global minima
exist and SGD can reach them"): claims R1–R4.

Arms play roles: ``pretrain`` fits R noisy copies of the training images with uniform random labels
(plain SGD); then, per regime (vanilla SGD; + weight decay; + momentum; + augmentation; all together),
``<regime>_adversarial`` trains on the clean labels from the pretrained weights and ``<regime>_random``
from a fresh random initialization. Every comparison pairs the two arms' runs of a seed. R3 and R4 are
this project's question: do the theories of DESIGN.md §1 — flatter minima, heavier-tailed noise — see
the difference between the bad and the good minima?
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
    NOT_SUPPORTED,
    SUPPORTED,
    Agreement,
    Decision,
    Rule,
    SeedTest,
    paired_differences,
)
from gradnoise.studies import REGIMES

CLAIMS = {
    "R1": "Vanilla SGD from the adversarial (random-label) initialization fits the training set but tests worse than from a random initialization.",
    "R2": "Each explicit regularizer shrinks that gap, and all of them together remove it.",
    "R3": "The bad minima (adversarial initialization, vanilla SGD) are sharper than the good ones.",
    "R4": "The gradient noise at the bad minima has another tail index than at the good ones (direction reported, not assumed).",
}


@dataclass(frozen=True)
class RandomLabelSettings:
    """Margins of the study's rules (config: claims.random_labels)."""

    gap_margin: float = 1.0
    fit_accuracy: float = 99.0
    reduction_margin: float = 0.5
    remove_margin: float = 1.0


def _gap(runs: pd.DataFrame, roles: Mapping[str, str], regime: str) -> dict[int, float]:
    """Per seed: test accuracy from a random initialization minus from the adversarial one."""
    rand = run_values(runs, roles[f"{regime}_random"], "test_acc")
    adv = run_values(runs, roles[f"{regime}_adversarial"], "test_acc")
    return {s: rand[s] - adv[s] for s in sorted(set(rand) & set(adv))}


def evaluate(
    runs: pd.DataFrame,
    histories: pd.DataFrame,
    settings: pd.DataFrame,
    tails: pd.DataFrame,
    roles: Mapping[str, str],
    rs: RandomLabelSettings,
    cs: ClaimSettings,
) -> list[Row]:
    """Claims R1–R4 (rows in the claims-table format of ``gradnoise.stats``). `runs`: one row per (arm,
    seed) with the final accuracies, sharpness and outcome; `settings`: each run's training settings
    and outcome (target_reached of the pretraining)."""
    regimes = [r for r in REGIMES if f"{r}_adversarial" in roles and f"{r}_random" in roles]
    pre = settings[settings.arm == roles["pretrain"]]
    missed = sorted(pre[pre.target_reached.eq(False)].seed.astype(int))
    caveat = (
        f"; pretraining missed its accuracy target for seeds {missed} (their runs are left out)"
        if missed
        else ""
    )
    runs, tails = runs[~runs.seed.isin(missed)], tails[~tails.seed.isin(missed)]
    gaps = {r: _gap(runs, roles, r) for r in regimes}
    adv, rnd = roles["vanilla_adversarial"], roles["vanilla_random"]
    fit = cs.interval(run_values(runs, adv, "train_acc").values())
    fits = Decision(
        SUPPORTED if fit.value >= rs.fit_accuracy else NOT_SUPPORTED,
        f"the adversarial runs reach {fit.value:.3g} % training accuracy (fit_accuracy {rs.fit_accuracy} %)"
        + ("" if fit.value >= rs.fit_accuracy else ": not a global minimum"),
    )
    rows = [
        Row(
            "R1",
            CLAIMS["R1"],
            pair=f"{rnd} − {adv}",
            measured=f"test accuracy {rnd} {cs.interval(run_values(runs, rnd, 'test_acc').values())} vs {adv} {cs.interval(run_values(runs, adv, 'test_acc').values())}; gap {cs.interval(gaps['vanilla'].values())} points; training accuracy of {adv} {fit}{caveat}",
            control="runs paired by seed; the same clean data, optimizer and iterations, only the initialization differs",
            rule=f"the seed-paired gap (random − adversarial) against gap_margin ({rs.gap_margin} points), provided the adversarial runs fit the training set (mean ≥ fit_accuracy, {rs.fit_accuracy} %)",
            test=SeedTest(gaps["vanilla"], Rule("above", rs.gap_margin)),
            prerequisite=fits,
        )
    ]
    for regime in regimes[1:]:
        reduction = paired_differences(gaps["vanilla"], gaps[regime])
        if regime == "all":
            rule = f"all regularizers together: the remaining gap below remove_margin ({rs.remove_margin} points); conditional on R1 (a gap to remove)"
            test = SeedTest(gaps[regime], Rule("below", rs.remove_margin))
        else:
            rule = f"the seed-paired reduction of the gap (vanilla gap − this regime's gap) against reduction_margin ({rs.reduction_margin} points); conditional on R1"
            test = SeedTest(reduction, Rule("above", rs.reduction_margin))
        rows.append(
            Row(
                "R2",
                CLAIMS["R2"],
                pair=regime,
                measured=f"{regime}: gap {cs.interval(gaps[regime].values())} points (vanilla {cs.interval(gaps['vanilla'].values())}); reduction {cs.interval(reduction.values())}{caveat}",
                control="the same pair of initializations, trained with this regime",
                rule=rule,
                test=test,
                condition="R1",
            )
        )
    lam_adv, lam_rnd = (
        run_values(runs, adv, "top_eigenvalue"),
        run_values(runs, rnd, "top_eigenvalue"),
    )
    sharper = {
        s: (lam_adv[s] - lam_rnd[s]) / lam_rnd[s] for s in sorted(set(lam_adv) & set(lam_rnd))
    }
    others = {
        r: str(
            cs.interval(
                paired_differences(
                    run_values(runs, roles[f"{r}_adversarial"], "top_eigenvalue"),
                    run_values(runs, roles[f"{r}_random"], "top_eigenvalue"),
                )
            )
        )
        for r in regimes[1:]
    }
    rows.append(
        Row(
            "R3",
            CLAIMS["R3"],
            pair=f"{adv} vs {rnd}",
            measured=f"λ_max {adv} {cs.interval(lam_adv.values())} vs {rnd} {cs.interval(lam_rnd.values())}; relative difference {cs.interval(sharper.values())}; λ_adv − λ_rand in the other regimes {others}{caveat}",
            control="runs paired by seed; power iteration on the same clean training batches",
            rule=f"the seed-paired (λ_adv − λ_rand)/λ_rand against sharpness_margin ({cs.sharpness_margin})",
            test=SeedTest(sharper, Rule("above", cs.sharpness_margin)),
        )
    )
    rows.append(_r4(tails, adv, rnd, cs, caveat))
    return rows


def _r4(tails: pd.DataFrame, adv: str, rnd: str, cs: ClaimSettings, caveat: str) -> Row:
    alphas = Alphas(tails)
    step_a, step_r = alphas.final_step(adv), alphas.final_step(rnd)
    diffs = {
        est: paired_differences(
            alphas.per_seed(adv, "raw", est, step_a), alphas.per_seed(rnd, "raw", est, step_r)
        )
        for est in CONTROLLED
    }
    iv = cs.interval(diffs["per_coordinate"].values())
    direction = (
        "heavier-tailed at the bad minima"
        if iv.value < 0
        else "lighter-tailed at the bad minima"
        if math.isfinite(iv.value)
        else "n/a"
    )
    return Row(
        "R4",
        CLAIMS["R4"],
        pair=f"{adv} − {rnd}",
        measured="α_adv − α_rand (raw view, final checkpoints): "
        + ", ".join(f"{estimator_label(e)} {cs.interval(v.values())}" for e, v in diffs.items())
        + f" ({direction}){caveat}",
        control="runs paired by seed; controlled estimators, each against its Gaussian null",
        rule=f"two-sided: the difference beyond ±alpha_margin ({cs.alpha_margin}) for both controlled estimators; not supported if both lie inside",
        test=Agreement(
            {
                estimator_label(e): SeedTest(v, Rule("differs", cs.alpha_margin))
                for e, v in diffs.items()
            }
        ),
    )


def claims(tables: Any, s: Mapping[str, Any], cs: ClaimSettings) -> list[Row]:
    """The registry's entry point (``gradnoise.studies.STUDIES["random_labels"]``): R1–R4 from the
    claims stage's tables (scripts/claims.py)."""
    history, settings = tables.histories
    runs = tables.runs.merge(settings[["arm", "seed", "batch_size"]], on=["arm", "seed"])
    rs = RandomLabelSettings(**s["claims"]["random_labels"])
    return evaluate(runs, history, settings, tables.tails, s["roles"], rs, cs)
