"""The shared rule family (DESIGN.md §7a) by its operating characteristics: simulated data sets with a
known true effect, decided exactly as the claims tables decide them."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

from gradnoise.claims import ClaimSettings, Row, decide_rows, to_arrow, to_markdown
from gradnoise.stats import (
    INCONCLUSIVE,
    NOT_SUPPORTED,
    SUPPORTED,
    Agreement,
    Decision,
    Interval,
    Rule,
    SeedTest,
    all_of,
    count,
    holm_levels,
    paired_differences,
    t_interval,
)

REPS = 2000


def _rates(rule: Rule, true: float, n: int, sd: float = 1.0, seed: int = 0) -> dict[str, float]:
    """How often the rule reaches each verdict over REPS data sets of n seeds (the t intervals of
    ``t_interval``, vectorized)."""
    x = np.random.default_rng(seed).normal(true, sd, (REPS, n))
    mean, s = x.mean(axis=1), x.std(axis=1, ddof=1)
    half = stats.t.ppf(0.975, n - 1) * s / math.sqrt(n)
    assert t_interval(x[0]).high == pytest.approx(mean[0] + half[0])
    verdicts = [
        rule.decide(Interval(m, m - h, m + h, n, sd_, 0.95)).verdict
        for m, h, sd_ in zip(mean, half, s, strict=True)
    ]
    return {v: verdicts.count(v) / REPS for v in (SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE)}


def test_t_interval_uses_student_t_with_n_minus_1_degrees_of_freedom():
    iv = t_interval([1.0, 2.0], level=0.95)
    assert iv.value == pytest.approx(1.5)
    assert iv.high - iv.value == pytest.approx(12.7062 * 0.5, rel=1e-4)
    five = t_interval([1, 2, 3, 4, 5])
    assert five.high - five.value == pytest.approx(2.7764 * math.sqrt(2.5 / 5), rel=1e-4)
    one = t_interval([1.0, math.nan])
    assert one.n == 1 and math.isnan(one.low)


@pytest.mark.parametrize("side", ["above", "below", "within", "differs"])
@pytest.mark.parametrize("n", [3, 5])
def test_at_the_margin_no_rule_decides_more_than_its_level(side, n):
    # a one-sided test at 2.5 %: 5 % is the tolerance the level and 2,000 replicates allow
    rates = _rates(Rule(side, 0.5), true=0.5, n=n)
    assert rates[SUPPORTED] <= 0.05 and rates[NOT_SUPPORTED] <= 0.05, rates


@pytest.mark.parametrize(
    ("side", "true", "verdict"),
    [
        ("above", 3.0, SUPPORTED),
        ("above", 0.0, NOT_SUPPORTED),  # a useless change is rejected once the seeds are enough
        ("below", 0.0, SUPPORTED),
        ("below", 3.0, NOT_SUPPORTED),
        ("within", 0.0, SUPPORTED),
        ("within", 3.0, NOT_SUPPORTED),
        ("differs", -3.0, SUPPORTED),
        ("differs", 0.0, NOT_SUPPORTED),
    ],
)
def test_far_from_the_margin_with_many_seeds_every_rule_decides(side, true, verdict):
    # one standard deviation from the margin (1.0), 40 seeds
    assert _rates(Rule(side, 1.0), true=true, n=40)[verdict] > 0.97


def test_a_margin_of_zero_is_refused():
    with pytest.raises(ValueError, match="margin must be > 0"):
        Rule("above", 0.0)


@pytest.mark.parametrize("n", [2, 3, 5])
def test_detectable_is_the_rules_own_80_percent_power(n):
    values = [0.1, 1.3, 0.6, 0.9, 0.2][:n]
    iv = t_interval(values)
    rule = Rule("above", 0.5)
    effect = rule.detectable(iv, 0.8)
    # simulated with the observed spread as the true one: the rule says supported 80 % of the time
    rates = _rates(rule, true=effect, n=n, sd=iv.sd, seed=1)
    assert rates[SUPPORTED] == pytest.approx(0.8, abs=0.03)
    # the central-t approximation (t + t_power)·s/√n understates it at n = 2
    central = 0.5 + (stats.t.ppf(0.975, n - 1) + stats.t.ppf(0.8, n - 1)) * iv.sd / math.sqrt(n)
    assert effect > central


def test_detectable_of_an_equivalence_row_is_the_margin_it_would_establish():
    iv = t_interval([0.1, -0.3, 0.2, 0.0, -0.1])
    margin = Rule("within", 1.0).detectable(iv, 0.8)
    rates = _rates(Rule("within", margin), true=0.0, n=5, sd=iv.sd, seed=2)
    assert rates[SUPPORTED] == pytest.approx(0.8, abs=0.03)


def test_paired_differences_keep_common_finite_seeds():
    d = paired_differences({1: 3.0, 2: 5.0, 3: math.nan}, {1: 1.0, 2: 1.0, 3: 1.0, 4: 0.0})
    assert d == {1: 2.0, 2: 4.0}


def test_counting_uses_exact_fractions_and_rejects_only_when_out_of_reach():
    s, n, i = (Decision(v, "") for v in (SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE))
    two_thirds = Fraction(2, 3)
    assert count([s, s, n], two_thirds).verdict == SUPPORTED  # 2 of 3 counts (0.667 did not)
    assert count([s] * 4 + [n] * 2, two_thirds).verdict == SUPPORTED
    assert count([s, n, i], two_thirds).verdict == INCONCLUSIVE
    assert count([s, n, n], two_thirds).verdict == NOT_SUPPORTED
    assert count([], two_thirds).verdict == INCONCLUSIVE


def test_a_joined_claim_needs_every_part():
    s, n, i = (Decision(v, "") for v in (SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE))
    assert all_of({"a": s, "b": s}).verdict == SUPPORTED
    assert all_of({"a": s, "b": i}).verdict == INCONCLUSIVE
    assert all_of({"a": s, "b": i, "c": n}).verdict == NOT_SUPPORTED


def test_holm_adjusts_the_level_within_a_claim():
    assert holm_levels([0.001, 0.02, 0.5], 0.95) == pytest.approx([1 - 0.05 / 3, 0.975, 0.975])
    assert holm_levels([0.001, 0.002], 0.95) == pytest.approx([1 - 0.05 / 2, 0.95])


def _rows(*tests: SeedTest, claim: str = "X") -> list[Row]:
    return [
        Row(claim, "s", measured="m", control="c", rule="r", pair=f"p{i}", test=t)
        for i, t in enumerate(tests)
    ]


def test_holm_turns_a_marginal_row_of_a_family_inconclusive():
    marginal = SeedTest(
        {s: 1.0 + 0.3 * d for s, d in enumerate([-1, 0, 1, -1, 1])}, Rule("above", 0.5)
    )
    alone = decide_rows(_rows(marginal), ClaimSettings())
    assert alone.verdict.iloc[0] == SUPPORTED
    nulls = [
        SeedTest({s: 0.5 + v for s, v in enumerate([-1, 1, 0.5, -0.5, 0])}, Rule("above", 0.5))
    ] * 3
    family = decide_rows(_rows(marginal, *nulls), ClaimSettings())
    assert family.verdict.iloc[0] == INCONCLUSIVE
    assert family.level.iloc[0] > 0.95


def test_a_verdict_that_one_seed_carries_is_fragile():
    robust = SeedTest({s: 2.0 + 0.01 * s for s in range(5)}, Rule("above", 0.5))
    carried = SeedTest({0: 1.0, 1: 1.1, 2: 1.05, 3: 1.02, 4: 0.2}, Rule("above", 0.5))
    table = decide_rows(_rows(robust, claim="A") + _rows(carried, claim="B"), ClaimSettings())
    assert table.stable.tolist() == [True, False]
    assert len(table.loo_verdicts.iloc[1]) == 5
    md = to_markdown(table, "t")
    assert md.count("fragile") >= 2  # the legend and the row
    arrow = to_arrow(table)
    assert arrow.schema.field("stable").type == "bool"


def test_estimators_that_disagree_decide_nothing():
    up = SeedTest({s: 2.0 + 0.01 * s for s in range(4)}, Rule("above", 0.5))
    down = SeedTest({s: -2.0 + 0.01 * s for s in range(4)}, Rule("above", 0.5))
    both = Agreement({"a": up, "b": down})
    assert both.decide(0.95).verdict == INCONCLUSIVE and "disagree" in both.decide(0.95).reason
    assert both.p_value(0.95) == 1.0


def test_a_conditional_claim_waits_for_its_condition():
    gap = SeedTest({s: 0.01 * s for s in range(6)}, Rule("above", 1.0))  # no gap: not supported
    closed = SeedTest({s: 0.01 * s for s in range(6)}, Rule("below", 0.5))  # would be "closed"
    rows = _rows(gap, claim="G") + [
        Row("C", "s", measured="m", control="c", rule="r", test=closed, condition="G")
    ]
    table = decide_rows(rows, ClaimSettings())
    assert table.verdict.tolist() == [NOT_SUPPORTED, INCONCLUSIVE]
    assert "condition G" in table.reason.iloc[1]
    assert table.claim_verdict.iloc[1] == INCONCLUSIVE
