"""The statistics every claims table shares (DESIGN.md §7a): t intervals over seeds, the smallest effect
the data could have detected, the verdict rules, and the row format.

Seeds are few (2–5), so an interval over seeds is mean ± t_{(1+level)/2, n−1} · s/√n (Student's t with
n − 1 degrees of freedom, not 1.96); with one seed no interval exists and every claim is inconclusive
for that reason. The smallest detectable effect (two-sided test at `level`, power `power`) is
(t_{(1+level)/2, n−1} + t_{power, n−1}) · s/√n. Comparisons of two arms are paired by seed (both runs of
a seed start from the same initialization and see the same batches).

Verdict of a measured effect that the claim says is positive, against its margin m (``decide``):
``supported`` if the interval lies above 0 and the mean exceeds m; ``not supported`` if the interval lies
below m (the data exclude an effect as large as the claim needs); otherwise ``inconclusive`` (the data
lack the power to decide) — overlapping intervals are never evidence against a claim. Claims that an
effect stays below a bound (``decide_below``) or is absent (``decide_within``, equivalence within ±m)
follow the same logic: decided only where the interval lies wholly on one side.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"
ROW_COLUMNS = (
    "claim",
    "pair",
    "statement",
    "measured",
    "estimate",
    "ci_low",
    "ci_high",
    "n",
    "mde",
    "margin",
    "control",
    "rule",
    "verdict",
    "reason",
)


@dataclass(frozen=True)
class Interval:
    """A mean over seeds with its t interval and smallest detectable effect (NaN where undefined)."""

    value: float
    low: float
    high: float
    n: int
    mde: float

    def __str__(self) -> str:
        if not math.isfinite(self.value):
            return "n/a"
        if not math.isfinite(self.low):
            return f"{self.value:.3g} (n = {self.n})"
        return f"{self.value:.3g} [{self.low:.3g}, {self.high:.3g}] (n = {self.n})"


NO_INTERVAL = Interval(math.nan, math.nan, math.nan, 0, math.nan)


def t_interval(values: Iterable[float], level: float = 0.95, power: float = 0.8) -> Interval:
    """Mean of the finite `values` (one per seed) with its t interval and smallest detectable effect."""
    v = np.asarray([x for x in values if math.isfinite(x)], dtype=float)
    if v.size == 0:
        return NO_INTERVAL
    if v.size == 1:
        return Interval(float(v[0]), math.nan, math.nan, 1, math.nan)
    se = float(v.std(ddof=1) / math.sqrt(v.size))
    t = float(stats.t.ppf((1 + level) / 2, v.size - 1))
    mde = (t + float(stats.t.ppf(power, v.size - 1))) * se
    return Interval(float(v.mean()), v.mean() - t * se, v.mean() + t * se, int(v.size), mde)


def paired_differences(a: Mapping[int, float], b: Mapping[int, float]) -> list[float]:
    """a[s] − b[s] for every seed s with finite values in both, in seed order."""
    return [
        a[s] - b[s] for s in sorted(set(a) & set(b)) if math.isfinite(a[s]) and math.isfinite(b[s])
    ]


@dataclass(frozen=True)
class Decision:
    verdict: str
    reason: str
    cases: int = 0  # for a verdict decided by counting cases: how many were counted


def decide(iv: Interval, margin: float) -> Decision:
    """The verdict rule of the module docstring for an effect the claim says is positive."""
    if (few := _too_few(iv)) is not None:
        return few
    if iv.low > 0 and iv.value > margin:
        return Decision(
            SUPPORTED, f"interval above 0 and mean {iv.value:.3g} above the margin {margin:g}"
        )
    if iv.high < margin:
        return Decision(NOT_SUPPORTED, f"interval below the margin {margin:g}")
    return Decision(
        INCONCLUSIVE,
        f"interval [{iv.low:.3g}, {iv.high:.3g}] holds 0 or the margin {margin:g}: no power "
        f"(smallest detectable effect {iv.mde:.3g})",
    )


def _too_few(iv: Interval) -> Decision | None:
    if iv.n < 2:
        return Decision(
            INCONCLUSIVE, "no estimate" if iv.n == 0 else "one seed: no interval over seeds"
        )
    return None


def decide_below(iv: Interval, bound: float) -> Decision:
    """For an effect the claim says stays below `bound` (e.g. a gap that is closed): supported if
    the interval lies below it, not supported if it lies above, else inconclusive."""
    if (few := _too_few(iv)) is not None:
        return few
    if iv.high < bound:
        return Decision(SUPPORTED, f"interval below {bound:g}")
    if iv.low > bound:
        return Decision(NOT_SUPPORTED, f"interval above {bound:g}")
    return Decision(
        INCONCLUSIVE, f"interval [{iv.low:.3g}, {iv.high:.3g}] holds {bound:g}: no power"
    )


def decide_within(iv: Interval, margin: float) -> Decision:
    """For an effect the claim says is absent (equivalence, two one-sided tests): supported if the
    interval lies inside (−margin, margin), not supported if it lies wholly outside, else inconclusive."""
    if (few := _too_few(iv)) is not None:
        return few
    if -margin < iv.low and iv.high < margin:
        return Decision(SUPPORTED, f"interval inside ±{margin:g}")
    if iv.low > margin or iv.high < -margin:
        return Decision(NOT_SUPPORTED, f"interval outside ±{margin:g}")
    return Decision(
        INCONCLUSIVE, f"interval [{iv.low:.3g}, {iv.high:.3g}] crosses ±{margin:g}: no power"
    )


def decide_differs(iv: Interval, margin: float) -> Decision:
    """For an effect the claim says exists in either direction: supported if the interval excludes 0
    and the mean is beyond ±margin; not supported if the interval lies inside ±margin (equivalence);
    else inconclusive. The reason names the direction."""
    if (few := _too_few(iv)) is not None:
        return few
    direction = "positive" if iv.value > 0 else "negative"
    if (iv.low > 0 or iv.high < 0) and abs(iv.value) > margin:
        return Decision(SUPPORTED, f"{direction}: interval excludes 0, |mean| above {margin:g}")
    if -margin < iv.low and iv.high < margin:
        return Decision(NOT_SUPPORTED, f"interval inside ±{margin:g}: no difference that large")
    return Decision(INCONCLUSIVE, f"interval [{iv.low:.3g}, {iv.high:.3g}]: no power either way")


def agree(decisions: Mapping[str, Decision]) -> Decision:
    """One verdict from several estimators: theirs if they agree, else inconclusive."""
    verdicts = {d.verdict for d in decisions.values()}
    if len(verdicts) == 1:
        return next(iter(decisions.values()))
    detail = ", ".join(f"{k}: {d.verdict}" for k, d in decisions.items())
    return Decision(INCONCLUSIVE, f"estimators disagree ({detail})")


def majority(decisions: list[Decision], share: float, what: str = "cases") -> Decision:
    """Supported (not supported) if at least `share` of the cases are; otherwise inconclusive."""
    n = len(decisions)
    if n == 0:
        return Decision(INCONCLUSIVE, f"no {what}")
    count = {v: sum(d.verdict == v for d in decisions) for v in (SUPPORTED, NOT_SUPPORTED)}
    tally = (
        f"{count[SUPPORTED]} supported, {count[NOT_SUPPORTED]} not supported, "
        f"{n - sum(count.values())} inconclusive of {n} {what}"
    )
    for verdict in (SUPPORTED, NOT_SUPPORTED):
        if count[verdict] >= share * n:
            return Decision(verdict, f"{tally} (≥ {share:.0%} needed)", n)
    return Decision(INCONCLUSIVE, f"{tally} (≥ {share:.0%} needed either way)", n)


def claim_row(
    claim: str,
    statement: str,
    *,
    measured: str,
    control: str,
    rule: str,
    decision: Decision,
    pair: str = "",
    interval: Interval = NO_INTERVAL,
    margin: float = math.nan,
) -> dict[str, object]:
    """One row of a claims table (ROW_COLUMNS)."""
    return {
        "claim": claim,
        "pair": pair,
        "statement": statement,
        "measured": measured,
        "estimate": interval.value,
        "ci_low": interval.low,
        "ci_high": interval.high,
        "n": interval.n or decision.cases,
        "mde": interval.mde,
        "margin": margin,
        "control": control,
        "rule": rule,
        "verdict": decision.verdict,
        "reason": decision.reason,
    }


def claims_frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(ROW_COLUMNS))


def to_markdown(claims: pd.DataFrame, title: str) -> str:
    """The claims table as markdown: what each row compares, the numbers, the rule, the verdict."""
    lines = [
        f"# {title}",
        "",
        "Intervals: mean [low, high] over seeds, Student's t; n = seeds (or cases); "
        "'detectable' = the smallest effect these seeds could have detected.",
        "",
        "| claim | compares | statement | measured | n | detectable | control | rule | verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in claims.itertuples():
        mde = f"{r.mde:.3g}" if math.isfinite(r.mde) else "—"
        cells = [
            r.claim,
            r.pair or "—",
            r.statement,
            r.measured,
            r.n,
            mde,
            r.control,
            r.rule,
            f"**{r.verdict}** ({r.reason})",
        ]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
