"""C3 and C4, about Adam's own update: its moving average's tails and its preconditioner's
anisotropy, one row per Adam-family arm."""

from __future__ import annotations

import math

import pandas as pd

from gradnoise.claims import ClaimSettings, Row
from gradnoise.io import ALL
from gradnoise.readings import (
    CONTROLLED,
    Alphas,
    combine,
    estimator_label,
)
from gradnoise.stats import (
    Rule,
    SeedTest,
)
from gradnoise.studies.optimizers.definitions import CLAIMS, _agreement


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
