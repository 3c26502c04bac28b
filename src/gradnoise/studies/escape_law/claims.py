"""The escape-law study (DESIGN.md §10c): which escape-time law do the real optimizers follow — Xie et
al.'s diffusion (Kramers: log τ ∝ ΔL/(ηH) for SGD, SGD-M and Adai, ∝ ΔL/(η√H) for Adam) or Zhou et
al.'s Lévy flight (τ a power law in the width, blind to the height)? Claims A1–A5, appended to the
experiment's C1–C8, from the escape stage's tables (``gradnoise.escape_tables``) and the sharpness
tables.

Rules, fixed before results (thresholds: config ``claims.escape``; level, power and majority share:
``claims``), all from the shared family of ``gradnoise.stats``. Families: Adai = adai, adaiw; Adam = adam,
adamw; SGD-M = sgdm.

- A1, per pair of arms, runs paired by seed (final test accuracy): Adai vs SGD-M — SGD-M − Adai
  ``below`` ``accuracy_margin``; Adai vs Adam — Adai − Adam ``above`` the same margin. Every pair must
  hold.
- A2, Gaussian noise, sharpness sweep, per (optimizer, lr scale) with at least ``min_points`` points
  with exits: the law predicted for the optimizer (log τ linear in 1/H for SGD, SGD-M and Adai; in 1/√H
  for Adam) against the other, by the reduced χ² of the weighted fits (``gradnoise.escape.fit_sweep``).
  Supported: the predicted law is favoured and passes its own χ² goodness-of-fit test at ``ci_level``,
  the other fails it, and the predicted slope's interval lies above 0. Not supported: the other law is
  favoured and the predicted one fails, or the predicted slope's interval lies below 0. Every case must
  hold (Adam's 1/√H included: it is the one distinctive prediction).
- A3, SαS noise, per (optimizer, lr scale), Adam left out (one jump moves it by a bounded amount,
  DESIGN.md §10c): the slope of log τ against log w minus the Lévy prediction inside
  ± ``width_tolerance``, and the slope against ΔL inside ± ``height_fraction`` × the diffusion slope 1/T.
  Every case must hold.
- A4, per (arm, lr scale): per seed the slope of log(exit iteration − ½) against log(radius) over the
  radii exited after at least ``min_exit_iterations`` iterations (``radius_exponents``); a Lévy flight
  of index α predicts α (the seed's per-coordinate α of the raw noise at the final checkpoint), drift
  alone 1, Brownian motion 2, drift plus diffusion a line that bends from 2 to 1. Supported if
  exponent − α lies ``within`` ± ``levy_tolerance``, exponent − 1 ``above`` ``drift_margin``,
  2 − exponent ``above`` ``brownian_margin`` and the bend ``within`` ± ``bend_tolerance`` (all four, at
  every lr scale: the rows of the claim). A run that diverged, or whose continuation diverged at that
  lr scale, is left out and named ("diverged (left out)").
- A5, per noise kind and lr scale, over the sharpness sweep: the exponent p of log τ in 1/H (slope of
  log log τ on log 1/H, ``selection_exponent``: free of the noise scale, unlike τ at one landscape,
  whose Adam/Adai order flips with it). Adai vs SGD-M: p_SGD-M − p_Adai ``below``
  ``selection_margin``; Adai vs Adam: p_Adai − p_Adam ``above`` it. Each lr scale is its own
  simulation, so the scales are counted (``count`` with the exact share ``majority``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from gradnoise.claims import ClaimSettings, Row
from gradnoise.studies.escape_law.definitions import CLAIMS, ORDER, EscapeLawSettings
from gradnoise.studies.escape_law.flat_minima import _a5
from gradnoise.studies.escape_law.generalization import _a1
from gradnoise.studies.escape_law.landscape_laws import _a2, _a3
from gradnoise.studies.escape_law.trained_minima import _a4, radius_exponents

__all__ = ["CLAIMS", "ORDER", "EscapeLawSettings", "claims", "evaluate", "radius_exponents"]


def evaluate(
    runs: pd.DataFrame,
    tails: pd.DataFrame,
    sweeps: pd.DataFrame,
    slopes: pd.DataFrame,
    minima: pd.DataFrame,
    es: EscapeLawSettings,
    cs: ClaimSettings,
    simulated: pd.DataFrame | None = None,
) -> list[Row]:
    """Claims A1–A5 (``claims.Row``s). `runs`: one row per
    (arm, seed) with optimizer, status and test_acc; `sweeps`: rows of the sharpness sweeps (at least);
    `slopes`, `minima`: the stage's tables; `simulated`: the simulate stage's escape table, whose
    matched SDEs' α A4 reports beside the measured exponent."""
    rows = _a1(runs, es, cs)
    rows.append(_a2(slopes, es, cs))
    rows.append(_a3(slopes, es, cs))
    rows += _a4(minima, tails, es, cs, simulated)
    rows += _a5(sweeps, es, cs)
    return rows


def claims(tables: Any, s: Mapping[str, Any], cs: ClaimSettings) -> list[Row]:
    """The registry's entry point (``gradnoise.studies.ESCAPE_LAW``): A1–A5 from the escape-law
    stage's tables and the simulate stage's (scripts/claims.py)."""
    es = EscapeLawSettings(**s["claims"]["escape"])
    return evaluate(
        tables.runs,
        tables.tails,
        tables.escape_sweeps,
        tables.escape_slopes,
        tables.escape_minima,
        es,
        cs,
        tables.escape,
    )
