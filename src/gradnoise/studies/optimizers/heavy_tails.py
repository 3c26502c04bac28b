"""C1 and C2: the raw noise against its Gaussian surrogate, and SGD's tails against Adam's."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from gradnoise.claims import ClaimSettings, Row, missing
from gradnoise.readings import (
    CONTROLLED,
    Alphas,
    diverged_note,
    estimator_label,
)
from gradnoise.stats import (
    Rule,
    paired_differences,
)
from gradnoise.studies.optimizers.definitions import (
    ADAM_FAMILY,
    CLAIMS,
    SGD_FAMILY,
    _agreement,
    _pair,
)


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
                measured=f"α̂ (raw view, {'no estimate at any step' if step is None else f'step {step}'}): "
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
