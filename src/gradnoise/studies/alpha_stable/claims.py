"""Claims S1–S3 (DESIGN.md §11): is the gradient noise α-stable, as Zhou et al.'s C1–C6 assume?
One row per arm and checkpoint, decided over seeds with the shared rules (``gradnoise.stats``), from
the alpha_stable stage's tables (``gradnoise.clt.table``). Every rule is ``above`` its margin (config:
``claims.alpha_stable``), so each claim can be supported or not supported (DESIGN.md §7a):

- S1, per seed 2 − ξ̂ (ξ̂: the median over the stored coordinates of the per-example noise's tail
  exponent): supported, the per-example gradients have infinite variance; not supported, ξ̂ is at
  least 2 − ``tail_margin``. Control: the Gaussian pool of the same shape (its reading is printed).
- S2, per seed d_fv − d_sas, the root-mean-square distances of the measured α̂(B) to the
  finite-variance and the SαS model's simulated curves: supported, the SαS curve is nearer by more
  than ``curve_margin``; not supported, it is not (the finite-variance one is nearer, or the two are
  as near).
- S3, per seed |m − m_fv| − |m − m_sas| for the Student-t tail index 1/ν̂ of the noise at the
  training batch size (``gradnoise.clt.pool``: why not the AIC winner), m_* the models' simulated values; margin
  ``law_margin``, read as S2's.

A claim holds only if every row does (``stats.all_of``): the premise is about both optimizers at every
checkpoint. Runs whose checkpoint did not end ok are left out of their row and named ("diverged (left
out): …", as in every claim).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from gradnoise.claims import ClaimSettings, Row, missing
from gradnoise.io import ALL
from gradnoise.readings import diverged_note
from gradnoise.stats import Rule, SeedTest

CLAIMS = {
    "S1": "Per-example gradients have infinite variance: the tail exponent of the per-example noise lies below 2 (Zhou et al.'s premise, which C1–C6 rest on).",
    "S2": "α̂ of minibatch noise against the batch size, all batch sizes from one per-example pool, follows the SαS model's curve (generalized CLT) rather than the finite-variance model's, each simulated at the same N, B and P.",
    "S3": "At the training batch size the noise has the tail a pool of SαS per-example gradients gives it, not the one a finite-variance pool gives it (SαS, Student-t and Gaussian fitted per coordinate).",
}


@dataclass(frozen=True)
class AlphaStableSettings:
    """Margins of the study's rules (config: claims.alpha_stable)."""

    tail_margin: float = 0.1
    curve_margin: float = 0.03
    law_margin: float = 0.03


class Readings:
    """Per-seed values of one (arm, checkpoint) from the stage's tables (whole network)."""

    def __init__(self, table: pd.DataFrame) -> None:
        self.df = table[(table.status == "ok") & (table.layer == ALL)]

    def per_seed(self, arm: str, step: int, quantity: str, law: str = "", column: str = "value"):
        sel = self.df[
            (self.df.arm == arm)
            & (self.df.step == step)
            & (self.df.quantity == quantity)
            & (self.df.law == law)
        ]
        return dict(zip(sel.seed.astype(int), sel[column].astype(float), strict=True))

    def combine(self, arm: str, step: int, f, *reads: tuple[str, str]) -> dict[int, float]:
        """Seed → f(value of each (quantity, law) read), over the seeds that have them all."""
        values = [self.per_seed(arm, step, q, law) for q, law in reads]
        seeds = sorted(set.intersection(*(set(v) for v in values)))
        return {s: f(*(v[s] for v in values)) for s in seeds}


def _mean(values: Mapping[int, float]) -> str:
    v = [x for x in values.values() if math.isfinite(x)]
    return f"{sum(v) / len(v):.3g}" if v else "n/a"


def _s1(r: Readings, arm: str, step: int, ss: AlphaStableSettings, cs: ClaimSettings, note: str):
    tail = r.per_seed(arm, step, "tail_exponent")
    null = r.per_seed(arm, step, "tail_exponent", column="null_value")
    share = r.per_seed(arm, step, "infinite_variance_share")
    n = r.per_seed(arm, step, "tail_exponent", column="n")
    return Row(
        "S1",
        CLAIMS["S1"],
        pair=f"{arm} @ {step}",
        measured=f"tail exponent of the per-example noise (Hill at the KS threshold, median over {_mean(n)} stored coordinates) {cs.interval(tail.values())}; share of coordinates below 2: {_mean(share)}{note}",
        control=f"the same estimator on a Gaussian pool of the same shape reads {_mean(null)}; at N = 4,000 it reads SαS(1.5) as ≈ 1.6 and Student-t(ν) as ≈ ν (tests/test_clt.py); above α ≈ 1.7 stable data read high (DESIGN.md §11)",
        rule=f"2 − tail exponent, per seed: {Rule('above', ss.tail_margin).text()}",
        test=SeedTest({s: 2.0 - v for s, v in tail.items()}, Rule("above", ss.tail_margin)),
    )


def _s2(r: Readings, arm: str, step: int, ss: AlphaStableSettings, cs: ClaimSettings, note: str):
    reads = [("rms_distance", m) for m in ("finite_variance", "sas")]
    effect = r.combine(arm, step, lambda fv, sas: fv - sas, *reads)
    d_sas, d_fv = (r.per_seed(arm, step, "rms_distance", m) for m in ("sas", "finite_variance"))
    alpha, nu = (r.per_seed(arm, step, "model_parameter", m) for m in ("sas", "finite_variance"))
    return Row(
        "S2",
        CLAIMS["S2"],
        pair=f"{arm} @ {step}",
        measured=f"rms distance of the measured α̂(B) to the finite-variance curve (Student-t, mean ν {_mean(nu)}) minus to the SαS curve (mean α {_mean(alpha)}): {cs.interval(effect.values())}; to SαS {_mean(d_sas)}, to finite variance {_mean(d_fv)}{note}",
        control="both models simulated at the pool's N, the same B, P, coordinates' robust scales, resampling and per-coordinate estimator; SαS at the smallest batch size's α̂, Student-t at the per-example tail exponent (ν ≥ 2.05)",
        rule=f"d_fv − d_sas, per seed: {Rule('above', ss.curve_margin).text()} (not supported: the finite-variance curve is as near or nearer)",
        test=SeedTest(effect, Rule("above", ss.curve_margin)),
    )


def _s3(r: Readings, arm: str, step: int, ss: AlphaStableSettings, cs: ClaimSettings, note: str):
    reads = [("t_tail_index", law) for law in ("measured", "finite_variance", "sas")]
    effect = r.combine(arm, step, lambda m, fv, sas: abs(m - fv) - abs(m - sas), *reads)
    m, fv, sas = (r.per_seed(arm, step, q, law) for q, law in reads)
    batch = r.per_seed(arm, step, "t_tail_index", "measured", "x")
    shares = ", ".join(
        f"{law} {_mean(r.per_seed(arm, step, 'law_share', law))}"
        for law in ("sas", "student_t", "gaussian")
    )
    return Row(
        "S3",
        CLAIMS["S3"],
        pair=f"{arm} @ {step}",
        measured=f"Student-t tail index 1/ν̂ of the noise at B = {_mean(batch)} (median over coordinates): measured {_mean(m)}, SαS model {_mean(sas)}, finite-variance model {_mean(fv)}; |m − fv| − |m − SαS| {cs.interval(effect.values())}; best law by AIC (share of coordinates): {shares}{note}",
        control="both models' pools simulated with S2's parameters at the same N, scales, batch size and draws, fitted the same way; the AIC winner alone does not decide (an SαS pool of this N gives the Student-t most coordinates: gradnoise.clt.pool)",
        rule=f"|m − m_fv| − |m − m_SαS|, per seed: {Rule('above', ss.law_margin).text()}",
        test=SeedTest(effect, Rule("above", ss.law_margin)),
    )


def evaluate(table: pd.DataFrame, ss: AlphaStableSettings, cs: ClaimSettings) -> list[Row]:
    """S1–S3, one row per (arm, checkpoint) of the stage's tables, in the tables' order."""
    keys = table[["arm", "step"]].drop_duplicates().itertuples(index=False)
    readings = Readings(table)
    rows: dict[str, list[Row]] = {claim: [] for claim in CLAIMS}
    for arm, step in keys:
        note = diverged_note(table[(table.arm == arm) & (table.step == step)], arm)
        for claim, make in (("S1", _s1), ("S2", _s2), ("S3", _s3)):
            rows[claim].append(make(readings, arm, int(step), ss, cs, note))
    need = "alpha_stable stage's tables"
    return [r for claim, rs in rows.items() for r in rs or [missing(claim, CLAIMS[claim], need)]]


def claims(tables: Any, s: Mapping[str, Any], cs: ClaimSettings) -> list[Row]:
    """The registry's entry point (``gradnoise.studies.ALPHA_STABLE``): S1–S3 from the claims stage's
    tables (scripts/claims.py)."""
    ss = AlphaStableSettings(**s["claims"]["alpha_stable"])
    return evaluate(tables.alpha_stable, ss, cs)
