"""One burden of proof for every claims table (DESIGN.md §7a): t intervals over seeds, the rule family
that turns an interval into a verdict, the power of that rule, counting over independent units,
Holm's adjustment within a claim and the leave-one-seed-out fragility of a verdict.

Intervals. Seeds are few (2–5), so the interval of a mean over n seeds is mean ± t_{(1+L)/2, n−1}·s/√n
(Student's t with n − 1 degrees of freedom, not 1.96); with one seed no interval exists and the verdict
is inconclusive for that reason. Comparisons of two arms are paired by seed (both runs of a seed start
from the same initialization and see the same batches).

The rule family (``Rule``). Every claim states the smallest effect that would matter, a margin m > 0
(never 0: a margin-0 rule can never call a useless change "not supported"), and the side of m the
claim puts the effect on. At level L each side is a one-sided test at (1 − L)/2:

- ``above`` (effect > m): *supported* when the interval lies wholly above m, *not supported* when it
  lies wholly below m, otherwise *inconclusive*;
- ``below`` (effect < m, e.g. "the gap is closed"): the mirror image;
- ``within`` (|effect| < m, equivalence by two one-sided tests, TOST): *supported* when the interval
  lies inside (−m, m), *not supported* when it lies wholly outside, otherwise inconclusive;
- ``differs`` (|effect| > m, direction reported): the complement of ``within``.

So at a true effect exactly on the margin every rule says supported in at most (1 − L)/2 of data sets
and not supported in at most as many, and far from the margin, with enough seeds, it decides.

Power ("detectable"): for the directional rules, the smallest true effect that the rule as applied
(margin, level, n, the observed spread s) calls supported with probability ``power``, from the
non-central t; for ``within``, the smallest margin the rule would establish with that probability at a
true effect of 0 (the equivalence counterpart).

Several statements in one claim (``all_of``) need each; a share of cases (``count``) counts
independent units only, with an exact fraction; the rows of one claim are Holm-adjusted (``holm``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

import numpy as np
from scipy import optimize
from scipy import stats as st

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"
Side = Literal["above", "below", "within", "differs"]


@dataclass(frozen=True)
class Interval:
    """A mean over seeds with its t interval at `level` (NaN where undefined) and the seeds' sd."""

    value: float
    low: float
    high: float
    n: int
    sd: float = math.nan
    level: float = 0.95

    def __str__(self) -> str:
        if not math.isfinite(self.value):
            return "n/a"
        if not math.isfinite(self.low):
            return f"{self.value:.3g} (n = {self.n})"
        return f"{self.value:.3g} [{self.low:.3g}, {self.high:.3g}] (n = {self.n})"


NO_INTERVAL = Interval(math.nan, math.nan, math.nan, 0)


def t_interval(values: Iterable[float], level: float = 0.95) -> Interval:
    """Mean of the finite `values` (one per seed) with its Student-t interval at `level`."""
    v = np.asarray([x for x in values if math.isfinite(x)], dtype=float)
    if v.size == 0:
        return NO_INTERVAL
    if v.size == 1:
        return Interval(float(v[0]), math.nan, math.nan, 1, math.nan, level)
    sd = float(v.std(ddof=1))
    half = float(st.t.ppf((1 + level) / 2, v.size - 1)) * sd / math.sqrt(v.size)
    return Interval(float(v.mean()), v.mean() - half, v.mean() + half, int(v.size), sd, level)


def paired_differences(a: Mapping[int, float], b: Mapping[int, float]) -> dict[int, float]:
    """Seed → a[s] − b[s] for every seed s with finite values in both, in seed order."""
    return {
        s: a[s] - b[s]
        for s in sorted(set(a) & set(b))
        if math.isfinite(a[s]) and math.isfinite(b[s])
    }


@dataclass(frozen=True)
class Decision:
    verdict: str
    reason: str
    cases: int = 0  # for a verdict decided by counting cases: how many were counted


def too_few(iv: Interval) -> Decision | None:
    """The inconclusive verdict of an interval that cannot be formed, or None."""
    if iv.n < 2:
        return Decision(
            INCONCLUSIVE, "no estimate" if iv.n == 0 else "one seed: no interval over seeds"
        )
    if not math.isfinite(iv.low):
        return Decision(INCONCLUSIVE, "no spread over seeds: no interval")
    return None


@dataclass(frozen=True)
class Rule:
    """A claim's side of its margin (module docstring); `margin` > 0 in the effect's own units."""

    side: Side
    margin: float

    def __post_init__(self) -> None:
        if not self.margin > 0:
            raise ValueError(f"a claim's margin must be > 0 (got {self.margin}): see DESIGN.md §7a")

    def decide(self, iv: Interval) -> Decision:
        if (few := too_few(iv)) is not None:
            return few
        m, lo, hi, span = self.margin, iv.low, iv.high, f"[{iv.low:.3g}, {iv.high:.3g}]"
        if self.side in ("above", "below"):
            beyond, short = (lo > m, hi < m) if self.side == "above" else (hi < m, lo > m)
            if beyond:
                return Decision(SUPPORTED, f"interval {span} wholly {self.side} {m:.3g}")
            if short:
                other = "below" if self.side == "above" else "above"
                return Decision(NOT_SUPPORTED, f"interval {span} wholly {other} {m:.3g}")
            return Decision(INCONCLUSIVE, f"interval {span} holds {m:.3g}: no power")
        inside, outside = -m < lo and hi < m, lo > m or hi < -m
        if (inside, outside) == (False, False):
            return Decision(INCONCLUSIVE, f"interval {span} crosses ±{m:.3g}: no power")
        if self.side == "within":
            if inside:
                return Decision(SUPPORTED, f"interval {span} inside ±{m:.3g}")
            return Decision(NOT_SUPPORTED, f"interval {span} outside ±{m:.3g}")
        if outside:
            sign = "positive" if lo > m else "negative"
            return Decision(SUPPORTED, f"{sign}: interval {span} beyond ±{m:.3g}")
        return Decision(NOT_SUPPORTED, f"interval {span} inside ±{m:.3g}: no difference that large")

    def p_value(self, iv: Interval) -> float:
        """The smallest one-sided level at which this interval would be decisive (for Holm)."""
        if too_few(iv) is not None:
            return 1.0
        df, se = iv.n - 1, iv.sd / math.sqrt(iv.n)
        if se == 0:
            return 0.0 if (iv.value != self.margin) else 1.0

        def above(x: float) -> float:  # p of "effect > x"
            return float(st.t.sf((iv.value - x) / se, df))

        def below(x: float) -> float:
            return float(st.t.cdf((iv.value - x) / se, df))

        m = self.margin
        if self.side in ("above", "below"):
            return min(above(m), below(m))
        equivalent = max(above(-m), below(m))
        different = min(above(m), below(-m))
        return min(equivalent, different)

    def detectable(self, iv: Interval, power: float) -> float:
        """Module docstring: the rule's own power at this n, level and spread (NaN without one)."""
        if too_few(iv) is not None or not iv.sd > 0:
            return math.nan
        n, df, sigma = iv.n, iv.n - 1, iv.sd
        tc = float(st.t.ppf((1 + iv.level) / 2, df))
        if self.side == "within":
            return _tost_margin(n, sigma, tc, power)
        nc = optimize.brentq(lambda d: st.nct.sf(tc, df, d) - power, 0.0, 200.0)
        shift = nc * sigma / math.sqrt(n)
        return self.margin - shift if self.side == "below" else self.margin + shift

    def text(self) -> str:
        return {
            "above": f"supported if the interval lies wholly above {self.margin:.3g}, not supported if wholly below",
            "below": f"supported if the interval lies wholly below {self.margin:.3g}, not supported if wholly above",
            "within": f"equivalence (TOST): supported if the interval lies inside ±{self.margin:.3g}, not supported if wholly outside",
            "differs": f"supported if the interval lies wholly beyond ±{self.margin:.3g}, not supported if inside",
        }[self.side]


def _tost_margin(n: int, sigma: float, tc: float, power: float, grid: int = 2000) -> float:
    """The smallest margin m for which TOST at a true effect of 0 passes with probability `power`:
    P(|mean| + tc·s/√n < m), averaged over the sample sd s at `grid` equal-probability quantiles of
    its distribution (σ·√(χ²_{n−1}/(n − 1)))."""
    df, root = n - 1, math.sqrt(n)
    s = sigma * np.sqrt(st.chi2.ppf((np.arange(grid) + 0.5) / grid, df) / df)

    def passes(m: float) -> float:
        room = (m - tc * s / root) * root / sigma
        return float(np.mean(np.clip(2 * st.norm.cdf(room) - 1, 0, None)))

    return optimize.brentq(lambda m: passes(m) - power, 1e-9 * sigma, 100 * sigma * tc)


@dataclass(frozen=True)
class SeedTest:
    """A per-seed effect and the rule that decides it: the unit every row decided over seeds uses."""

    values: Mapping[int, float]
    rule: Rule

    @property
    def seeds(self) -> list[int]:
        return sorted(s for s, v in self.values.items() if math.isfinite(v))

    def interval(self, level: float, drop: int | None = None) -> Interval:
        return t_interval((v for s, v in self.values.items() if s != drop), level)

    def decide(self, level: float, drop: int | None = None) -> Decision:
        return self.rule.decide(self.interval(level, drop))

    def p_value(self, level: float) -> float:
        return self.rule.p_value(self.interval(level))

    def detectable(self, level: float, power: float) -> float:
        return self.rule.detectable(self.interval(level), power)


@dataclass(frozen=True)
class Agreement:
    """Several estimators of one effect (on the same draws) that must each reach the verdict: an
    intersection–union test, valid whatever their dependence. The first one is reported."""

    tests: Mapping[str, SeedTest]

    @property
    def rule(self) -> Rule:
        return next(iter(self.tests.values())).rule

    @property
    def seeds(self) -> list[int]:
        return sorted(set().union(*(t.seeds for t in self.tests.values())))

    def interval(self, level: float, drop: int | None = None) -> Interval:
        return next(iter(self.tests.values())).interval(level, drop)

    def decide(self, level: float, drop: int | None = None) -> Decision:
        return agree({k: t.decide(level, drop) for k, t in self.tests.items()})

    def p_value(self, level: float) -> float:
        return decisive_p(self.decide)

    def detectable(self, level: float, power: float) -> float:
        return max(t.detectable(level, power) for t in self.tests.values())


class Conjunction(Agreement):
    """Several statements about different effects that a claim joins: supported only if every one
    is, not supported if any one is not (``all_of``)."""

    def decide(self, level: float, drop: int | None = None) -> Decision:
        return all_of({k: t.decide(level, drop) for k, t in self.tests.items()}, "statements")


Test = SeedTest | Agreement | Conjunction


def decisive_p(decide_at) -> float:
    """The smallest one-sided level a at which a rule is decisive when applied at level 1 − 2a (the
    p-value Holm's procedure orders by): intervals only widen with the level, so bisect."""

    def decisive(a: float) -> bool:
        return decide_at(1 - 2 * a).verdict != INCONCLUSIVE

    if not decisive(0.4999):
        return 1.0
    lo, hi = 0.0, 0.4999
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if decisive(mid) else (mid, hi)
    return hi


def agree(decisions: Mapping[str, Decision]) -> Decision:
    """One verdict from several estimators: theirs if they agree, else inconclusive."""
    verdicts = {d.verdict for d in decisions.values()}
    if len(verdicts) == 1:
        return next(iter(decisions.values()))
    detail = ", ".join(f"{k}: {d.verdict}" for k, d in decisions.items())
    return Decision(INCONCLUSIVE, f"estimators disagree ({detail})")


def all_of(decisions: Mapping[str, Decision], what: str = "parts") -> Decision:
    """A claim that joins statements: supported only if every part is, not supported if any part is
    not, otherwise inconclusive."""
    if not decisions:
        return Decision(INCONCLUSIVE, f"no {what}")
    failed = [k for k, d in decisions.items() if d.verdict == NOT_SUPPORTED]
    open_ = [k for k, d in decisions.items() if d.verdict == INCONCLUSIVE]
    n = len(decisions)
    if failed:
        return Decision(NOT_SUPPORTED, f"not supported for {', '.join(failed)} ({n} {what})", n)
    if open_:
        return Decision(INCONCLUSIVE, f"undecided for {', '.join(open_)} ({n} {what})", n)
    return Decision(SUPPORTED, f"supported for all {n} {what}", n)


def count(decisions: Sequence[Decision], need: Fraction, what: str = "units") -> Decision:
    """A share of independent units: supported if at least `need` of them are supported; not
    supported if so many are not that `need` is out of reach; otherwise inconclusive."""
    n = len(decisions)
    if n == 0:
        return Decision(INCONCLUSIVE, f"no {what}")
    yes = sum(d.verdict == SUPPORTED for d in decisions)
    no = sum(d.verdict == NOT_SUPPORTED for d in decisions)
    tally = f"{yes} supported, {no} not supported, {n - yes - no} inconclusive of {n} {what}"
    if Fraction(yes, n) >= need:
        return Decision(SUPPORTED, f"{tally} (≥ {need} needed)", n)
    if Fraction(n - no, n) < need:
        return Decision(NOT_SUPPORTED, f"{tally} (≥ {need} out of reach)", n)
    return Decision(INCONCLUSIVE, f"{tally} (≥ {need} needed)", n)


def as_fraction(share: str | float | Fraction) -> Fraction:
    """A share from the config ("2/3", "9/10" or a decimal written as such) as an exact fraction."""
    return share if isinstance(share, Fraction) else Fraction(str(share))


def holm_levels(p_values: Sequence[float], level: float) -> list[float]:
    """Holm's step-down within one claim: the interval level at which each row is decided, so that
    the chance of any wrong decisive verdict among the rows stays at most (1 − level)/2 per side.
    A row past the first one that fails keeps the last level (it is not decisive at it either)."""
    alpha = (1 - level) / 2
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    levels, m = [level] * len(p_values), len(p_values)
    for rank, i in enumerate(order):
        levels[i] = 1 - 2 * alpha / (m - rank)
        if not p_values[i] < alpha / (m - rank):
            for j in order[rank + 1 :]:
                levels[j] = levels[i]
            break
    return levels


@dataclass
class Verdict:
    """A decided row: its verdict at the (adjusted) level, its power and its fragility."""

    decision: Decision
    level: float
    interval: Interval = NO_INTERVAL
    detectable: float = math.nan
    loo: list[str] = field(default_factory=list)

    @property
    def stable(self) -> bool | None:
        return None if not self.loo else all(v == self.decision.verdict for v in self.loo)


def decide_test(test: Test, level: float, power: float) -> Verdict:
    """A row decided over seeds at `level`, with each seed left out in turn."""
    loo = [test.decide(level, drop=s).verdict for s in test.seeds] if len(test.seeds) > 1 else []
    return Verdict(
        test.decide(level), level, test.interval(level), test.detectable(level, power), loo
    )


def conditioned(decision: Decision, condition: Decision, what: str) -> Decision:
    """A conditional claim ("X removes the gap") is inconclusive unless its condition holds."""
    if condition.verdict == SUPPORTED or decision.verdict == INCONCLUSIVE:
        return decision
    return Decision(
        INCONCLUSIVE,
        f"{what} not established ({condition.verdict}: {condition.reason}); "
        f"without it: {decision.verdict}, {decision.reason}",
    )
