"""The claims-table format every study shares: rows built from a measured effect and its rule
(``gradnoise.stats``), decided in one place — Holm within each claim, leave-one-seed-out fragility,
one claim-level verdict per claim, conditions — and written as Parquet columns and markdown.

A study's ``evaluate`` returns ``Row``s; ``decide_rows`` turns them into the table. A row decided over
seeds carries its ``test`` (per-seed values and the rule); a row decided otherwise (counting
independent units, a simulator check) carries its ``decision``. A claim with several rows holds only if
every row does (``stats.all_of``); a claim with a ``condition`` (another claim, e.g. "the gap exists")
is inconclusive unless that claim is supported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import pandas as pd
import pyarrow as pa

from gradnoise.stats import (
    INCONCLUSIVE,
    NO_INTERVAL,
    Decision,
    Interval,
    Test,
    Verdict,
    all_of,
    as_fraction,
    conditioned,
    decide_test,
    holm_levels,
    t_interval,
)

SCHEMA = pa.schema(
    [
        *((c, pa.string()) for c in ("claim", "pair", "statement", "measured")),
        *((c, pa.float64()) for c in ("estimate", "ci_low", "ci_high")),
        ("n", pa.int64()),
        *((c, pa.float64()) for c in ("detectable", "margin", "level")),
        *((c, pa.string()) for c in ("control", "rule", "verdict", "reason")),
        ("stable", pa.bool_()),
        ("decides", pa.bool_()),
        ("loo_verdicts", pa.list_(pa.string())),
        ("claim_verdict", pa.string()),
        ("claim_reason", pa.string()),
    ]
)


@dataclass(frozen=True)
class ClaimSettings:
    """The thresholds every study reads (config: ``claims``); each study adds its own section."""

    ci_level: float = 0.95
    power: float = 0.8
    majority: Fraction = Fraction(2, 3)
    heavy_margin: float = 0.05
    alpha_margin: float = 0.05
    alpha_window: list[int | None] = field(default_factory=lambda: [1, None])
    anisotropy_ratio: float = 1.5
    exit_ratio_band: list[float] = field(default_factory=lambda: [0.8, 1.25])
    slope_tolerance: float = 0.15
    asymptotic_eps: float = 0.05
    law_fraction: Fraction = Fraction(9, 10)
    escape_ratio: float = 1.2
    sharpness_margin: float = 0.05
    accuracy_margin: float = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "majority", as_fraction(self.majority))
        object.__setattr__(self, "law_fraction", as_fraction(self.law_fraction))

    def interval(self, values) -> Interval:
        """A t interval at ``ci_level``, for the numbers a row prints beside its verdict."""
        return t_interval(values, self.ci_level)


@dataclass(frozen=True)
class Row:
    """One row before its verdict: what it compares, what it measured, and how it is decided."""

    claim: str
    statement: str
    measured: str
    control: str
    rule: str
    pair: str = ""
    test: Test | None = None
    decision: Decision | None = None
    condition: str | None = None  # a claim that must be supported for this one to be decided
    prerequisite: Decision | None = None  # a measured premise of this row (e.g. "the runs fit")
    interval: Interval = NO_INTERVAL  # for rows decided without a test: the number they report
    margin: float = math.nan
    primary: bool = (
        False  # the row that states the claim (the paper's own pair); the others extend it
    )


def missing(claim: str, statement: str, what: str) -> Row:
    """The row of a claim the experiment cannot test."""
    return Row(
        claim,
        statement,
        measured=f"needs {what}",
        control="",
        rule="",
        decision=Decision(INCONCLUSIVE, f"the experiment has no {what}"),
    )


def decide_rows(rows: list[Row], cs: ClaimSettings) -> pd.DataFrame:
    """The claims table: every row decided by the shared rules (module docstring)."""
    verdicts = _row_verdicts(rows, cs)
    decisions = [
        v.decision
        if r.prerequisite is None
        else conditioned(v.decision, r.prerequisite, "its premise")
        for r, v in zip(rows, verdicts, strict=True)
    ]
    claim_level = _claim_verdicts(rows, decisions)
    unmeasured = Decision(INCONCLUSIVE, "not measured")
    for i, row in enumerate(rows):
        if row.condition is not None:
            cond = claim_level.get(row.condition, unmeasured)
            decisions[i] = conditioned(decisions[i], cond, f"its condition {row.condition}")
            claim_level[row.claim] = conditioned(
                claim_level[row.claim], cond, f"its condition {row.condition}"
            )
    has_primary = {r.claim for r in rows if r.primary}
    out = []
    for row, v, decision in zip(rows, verdicts, decisions, strict=True):
        iv = v.interval if row.test is not None else row.interval
        claim = claim_level[row.claim]
        out.append(
            {
                "claim": row.claim,
                "pair": row.pair,
                "statement": row.statement,
                "measured": row.measured,
                "estimate": iv.value,
                "ci_low": iv.low,
                "ci_high": iv.high,
                "n": iv.n or decision.cases,
                "detectable": v.detectable,
                "margin": row.test.rule.margin if row.test is not None else row.margin,
                "level": v.level,
                "control": row.control,
                "rule": row.rule,
                "verdict": decision.verdict,
                "reason": decision.reason,
                "stable": v.stable,
                "decides": row.primary or row.claim not in has_primary,
                "loo_verdicts": v.loo,
                "claim_verdict": claim.verdict,
                "claim_reason": claim.reason,
            }
        )
    return pd.DataFrame(out, columns=SCHEMA.names)


def to_arrow(claims: pd.DataFrame) -> pa.Table:
    """The claims table with its fixed schema (nullable ``stable``: rows not decided over seeds)."""
    return pa.Table.from_pylist(claims.to_dict("records"), schema=SCHEMA)


def _row_verdicts(rows: list[Row], cs: ClaimSettings) -> list[Verdict]:
    """Rows decided over seeds at their Holm level within their claim; the others as given."""
    levels: dict[int, float] = {}
    for claim in dict.fromkeys(r.claim for r in rows):
        tested = [i for i, r in enumerate(rows) if r.claim == claim and r.test is not None]
        p = [rows[i].test.p_value(cs.ci_level) for i in tested]
        levels |= dict(zip(tested, holm_levels(p, cs.ci_level), strict=True))
    return [
        decide_test(r.test, levels[i], cs.power)
        if r.test is not None
        else Verdict(r.decision or Decision(INCONCLUSIVE, "not decided"), cs.ci_level)
        for i, r in enumerate(rows)
    ]


def _claim_verdicts(rows: list[Row], decisions: list[Decision]) -> dict[str, Decision]:
    """Claim → its verdict: the primary row's where the claim has one (the paper's own pair; the
    other rows extend the claim and are reported), else every row must hold."""
    out = {}
    for claim in dict.fromkeys(r.claim for r in rows):
        mine = [(r, d) for r, d in zip(rows, decisions, strict=True) if r.claim == claim]
        primary = [(r, d) for r, d in mine if r.primary]
        if primary and len(mine) > 1:
            row, d = primary[0]
            out[claim] = Decision(d.verdict, f"the paper's pair {row.pair}: {d.reason}", d.cases)
        elif len(mine) == 1:
            out[claim] = mine[0][1]
        else:
            out[claim] = all_of({r.pair or str(i): d for i, (r, d) in enumerate(mine)}, "rows")
    return out


def claim_summary(claims: pd.DataFrame) -> list[str]:
    """One markdown line per claim with its claim-level verdict (the lines README.md quotes)."""
    lines = ["| claim | verdict |", "|---|---|"]
    for claim, g in claims.groupby("claim", sort=False):
        first = g.iloc[0]
        fragile = " — fragile" if g[g.decides].stable.eq(False).any() else ""
        reason = str(first.claim_reason).replace("|", "\\|")
        lines.append(f"| {claim} | **{first.claim_verdict}**{fragile} ({reason}) |")
    return lines


def to_markdown(claims: pd.DataFrame, title: str) -> str:
    """The claims table as markdown: one line per claim with its verdict, then every row."""
    lines = [
        f"# {title}",
        "",
        "Intervals: mean [low, high] over seeds, Student's t at the row's level (Holm-adjusted within a "
        "claim); n = seeds (or independent units); 'detectable' = the smallest true effect the rule as "
        "applied calls supported with 80 % power (equivalence rows: the smallest margin it would "
        "establish at a true effect of 0); 'fragile' = the verdict changes when one seed is left out.",
        "",
        *claim_summary(claims),
    ]
    lines += [
        "",
        "| claim | compares | statement | measured | n | detectable | level | control | rule | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in claims.itertuples():
        detectable = f"{r.detectable:.3g}" if math.isfinite(r.detectable) else "—"
        fragile = " — fragile: " + ", ".join(r.loo_verdicts) if r.stable is False else ""
        cells = [
            r.claim,
            r.pair or "—",
            r.statement,
            r.measured,
            r.n,
            detectable,
            f"{r.level:.3g}",
            r.control,
            r.rule,
            f"**{r.verdict}** ({r.reason}){fragile}",
        ]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
