"""C7: the sharpness of the minima SGD and Adam land in, with SGD's distance to its stability edge."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from gradnoise.claims import ClaimSettings, Row
from gradnoise.readings import (
    combine,
    diverged_note,
    run_values,
)
from gradnoise.stats import (
    Rule,
    SeedTest,
)
from gradnoise.studies.optimizers.definitions import CLAIMS, SGD_FAMILY, _pair


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
