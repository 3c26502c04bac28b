"""The claims of Zhou et al. (2020), C1–C8 of DESIGN.md §1: for each claim and each pair of arms it
compares, the measured effect with its rule (``gradnoise.stats``; decided by ``gradnoise.claims``).

Pairs: C2, C6, C7 and C8 compare every SGD-family arm (sgd, sgdm) with every Adam-family arm (adam,
adamw), the paper's pair first — its "SGD" is SGD with momentum 0.9 (DESIGN.md §3); the paper's
pair decides the claim-level verdict and the other pairs are reported beside it (without SGD-M and Adam,
every pair must hold). C3 and C4 are about Adam's own update: one row per Adam-family arm. α
estimates are those of the training split, whole network, at the final checkpoint (C2: averaged over
the checkpoints of ``alpha_window``), from the controlled estimators (``readings.CONTROLLED``), each
view against its own Gaussian null; both must agree. A run that diverged leaves its seed out of the
paired differences and of C6's matched α, and every row that needed it says so ("diverged (left
out)"); an arm with no run left has no matched SDE, and C6 names why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pandas as pd

from gradnoise.claims import ClaimSettings, Row, missing
from gradnoise.readings import Alphas, diverged_note
from gradnoise.studies.optimizers.adam_update import _c3, _c4
from gradnoise.studies.optimizers.definitions import (
    ADAM_FAMILY,
    CLAIMS,
    PAIRED,
    SGD_FAMILY,
    _pair,
    _papers,
    arm_pairs,
)
from gradnoise.studies.optimizers.escape import _c5, _c6
from gradnoise.studies.optimizers.flat_minima import _c7
from gradnoise.studies.optimizers.generalization import _c8
from gradnoise.studies.optimizers.heavy_tails import _c1, _c2

__all__ = [
    "ADAM_FAMILY",
    "CLAIMS",
    "PAIRED",
    "SGD_FAMILY",
    "arm_pairs",
    "claims",
    "evaluate_claims",
]


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
    rows += [_c6(escape, alphas, s, a, cs, diverged_note(runs, s, a)) for s, a in pairs] or [
        missing("C6", CLAIMS["C6"], need)
    ]
    rows += [_c7(runs, s, a, cs, hparams or {}) for s, a in pairs] or [
        missing("C7", CLAIMS["C7"], need)
    ]
    rows += [_c8(runs, s, a, cs) for s, a in pairs] or [missing("C8", CLAIMS["C8"], need)]
    paper = next((_pair(s, a) for s, a in pairs if _papers(runs, s, a)), None)
    return [  # the paper's pair states C2, C6, C7 and C8; the other pairs extend them
        replace(r, primary=True) if r.claim in PAIRED and r.pair == paper else r for r in rows
    ]


def claims(tables: Any, s: Mapping[str, Any], cs: ClaimSettings) -> list[Row]:
    """The registry's entry point (``gradnoise.studies.STUDIES["optimizers"]``): C1–C8 from the
    claims stage's tables (scripts/claims.py)."""
    return evaluate_claims(tables.tails, tables.escape, tables.runs, cs, s.get("hparams"))
