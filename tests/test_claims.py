"""The statistics and verdict rules of the claims table on constructed inputs: every verdict of every
claim is reachable, with several seeds, checkpoints, splits and layers present, with one seed, and with
estimators that disagree."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from tables import tails_row

from gradnoise.claims import ClaimSettings, decide_rows, to_markdown
from gradnoise.stats import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED
from gradnoise.studies.optimizers.claims import arm_pairs, evaluate_claims

SEEDS = (3, 7, 11)
ARMS = {"sgd": "sgd", "sgdm": "sgdm", "adam": "adam", "adamw": "adamw"}
JITTER = {3: -0.02, 7: 0.0, 11: 0.02}  # seed-to-seed spread of every constructed value


# ---------------------------------------------------------------------------------------------------
# constructed experiment tables


def _tails(
    alpha, er=None, seeds=SEEDS, steps=(0, 200, 1000), arms=ARMS, jitter=1.0
) -> pd.DataFrame:
    """alpha(arm, view, estimator, step) → (α, null) for the training split, whole network; every
    other split and layer gets values that would flip the verdicts if a claim read them."""
    rows = []
    for arm, opt in arms.items():
        views = ["raw"] + (["preconditioned", "averaged"] if opt.startswith("adam") else [])
        for seed in seeds:
            for step in steps:
                for view in views:
                    for est in ("pooled", "pooled_standardized", "per_coordinate", "mcculloch"):
                        a, null = alpha(arm, view, est, step)
                        for split, layer, v in (
                            ("train", "__all__", a + jitter * JITTER[seed]),
                            ("test", "__all__", 0.3),
                            ("train", "fc.weight", 0.3),
                        ):
                            rows.append(
                                tails_row(
                                    arm=arm,
                                    optimizer=opt,
                                    seed=seed,
                                    step=step,
                                    split=split,
                                    view=view,
                                    layer=layer,
                                    estimator=est,
                                    value=v,
                                    null_value=null,
                                )
                            )
                    if er is not None and view in ("raw", "preconditioned"):
                        rows.append(
                            tails_row(
                                arm=arm,
                                optimizer=opt,
                                seed=seed,
                                step=step,
                                view=view,
                                quantity="effective_rank",
                                estimator="gram",
                                value=er(arm, view) * (1 + JITTER[seed]),
                                null_value=math.nan,
                            )
                        )
    return pd.DataFrame(rows)


def _alpha(sgd=1.3, adam=1.6, null=2.0, averaged_shift=0.0):
    def f(arm, view, est, step):
        a = adam if ARMS[arm].startswith("adam") else sgd
        if view == "averaged":
            a += averaged_shift
        return a, null

    return f


def _escape(
    gamma_sgd=10.0, gamma_adam=30.0, ratio=1.0, eps_rel=0.01, exits=2000, measured=1.5
) -> pd.DataFrame:
    rows = []
    base = dict(
        status="ok",
        noise_model="independent",
        n_paths=exits,
        n_censored=0,
        alpha=1.5,
        alpha_measured=measured,
        alpha_source="raw/per_coordinate",
    )
    for arm in ARMS:
        g = gamma_adam if arm.startswith("adam") else gamma_sgd
        for basin in ("box", "valley"):
            for eps in (0.01, 0.02):
                mean = g * (eps / 0.01) ** -1.5
                rows.append(
                    dict(
                        base,
                        scenario="matched",
                        arm=arm,
                        optimizer=arm,
                        basin=basin,
                        scale="sharp",
                        eps=eps,
                        eps_rel=eps_rel * eps / 0.01,
                        mean_exit=mean * ratio,
                        ci_low=0.95 * mean * ratio,
                        ci_high=1.05 * mean * ratio,
                        predicted=mean,
                        ratio=ratio,
                    )
                )
    return pd.DataFrame(rows)


def _runs(lam_sgd=5.0, lam_adam=20.0, acc_sgd=98.0, acc_adam=95.0, seeds=SEEDS) -> pd.DataFrame:
    return pd.DataFrame(
        [
            dict(
                arm=arm,
                optimizer=arm,
                seed=s,
                status="ok",
                top_eigenvalue=(lam_adam if arm.startswith("adam") else lam_sgd) + JITTER[s],
                train_acc=99.0,
                test_acc=(acc_adam if arm.startswith("adam") else acc_sgd) + 10 * JITTER[s],
            )
            for arm in ARMS
            for s in seeds
        ]
    )


def _verdicts(claims: pd.DataFrame, claim: str) -> dict[str, str]:
    sel = claims[claims.claim == claim]
    return dict(zip(sel.pair, sel.verdict, strict=True))


def _evaluate(tails=None, escape=None, runs=None, hparams=None, **settings) -> pd.DataFrame:
    cs = ClaimSettings(**settings)
    rows = evaluate_claims(
        _tails(_alpha(), er=lambda a, v: 5.0 if v == "raw" else 12.0) if tails is None else tails,
        _escape() if escape is None else escape,
        _runs() if runs is None else runs,
        cs,
        hparams,
    )
    return decide_rows(rows, cs)


def test_pairs_are_every_sgd_arm_with_every_adam_arm_the_papers_first():
    assert arm_pairs(_runs()) == [
        ("sgdm", "adam"),
        ("sgdm", "adamw"),
        ("sgd", "adam"),
        ("sgd", "adamw"),
    ]
    claims = _evaluate()
    assert claims[claims.claim == "C2"].pair.iloc[0] == "sgdm vs adam"
    assert set(claims[claims.claim == "C3"].pair) == {"adam", "adamw"}


def test_every_claim_supported_when_the_data_say_so():
    tails = _tails(_alpha(averaged_shift=0.3), er=lambda a, v: 5.0 if v == "raw" else 12.0)
    claims = _evaluate(tails=tails, escape=_escape(), runs=_runs())
    assert set(claims.verdict) == {SUPPORTED}, claims[["claim", "pair", "reason"]]
    text = to_markdown(claims, "x")
    assert "| C1 |" in text and "sgdm vs adam" in text


def test_claims_not_supported_when_the_data_contradict_them():
    tails = _tails(
        _alpha(sgd=2.2, adam=1.6, averaged_shift=-0.2), er=lambda a, v: 10.0 if v == "raw" else 9.0
    )
    tails.loc[(tails.arm == "adam") | (tails.arm == "adamw"), "null_value"] = 1.4
    claims = _evaluate(
        tails=tails, escape=_escape(30.0, 10.0, ratio=0.5), runs=_runs(20.0, 5.0, 95.0, 98.0)
    )
    verdicts = claims.groupby("claim").verdict.agg(set).to_dict()
    assert verdicts == {f"C{i}": {NOT_SUPPORTED} for i in range(1, 9)}, claims[
        ["claim", "pair", "reason"]
    ]


def test_one_seed_makes_every_seed_based_claim_inconclusive_for_that_reason():
    claims = _evaluate(
        tails=_tails(
            _alpha(averaged_shift=0.3), er=lambda a, v: 5.0 if v == "raw" else 12.0, seeds=(7,)
        ),
        runs=_runs(seeds=(7,)),
    )
    for claim in ("C1", "C2", "C3", "C4", "C7", "C8"):
        rows = claims[claims.claim == claim]
        assert set(rows.verdict) == {INCONCLUSIVE}, claim
        assert all("one seed" in r for r in rows.reason) or claim == "C1"
    assert (claims[claims.claim == "C4"].n == 1).all()


def test_c2_needs_both_controlled_estimators_to_agree():
    def f(arm, view, est, step):
        a = 1.3
        if ARMS[arm].startswith("adam"):
            a += 0.4 if est == "per_coordinate" else -0.3
        return a, 2.0

    verdicts = _verdicts(_evaluate(tails=_tails(f)), "C2")
    assert set(verdicts.values()) == {INCONCLUSIVE}
    reason = _evaluate(tails=_tails(f)).query("claim == 'C2'").reason.iloc[0]
    assert "disagree" in reason


def test_c2_is_decided_over_the_configured_window_and_reports_where_it_holds():
    def early_gap(arm, view, est, step):
        gap = 0.3 if step == 200 else -0.3
        return (1.3 + gap if ARMS[arm].startswith("adam") else 1.3), 2.0

    tails = _tails(early_gap)
    whole = _evaluate(tails=tails).query("claim == 'C2'").iloc[0]
    early = _evaluate(tails=tails, alpha_window=[150, 1000 - 1]).query("claim == 'C2'").iloc[0]
    assert whole.verdict == NOT_SUPPORTED  # the mean over 200 and 1000 is 0
    assert early.verdict == SUPPORTED
    assert "200: per-coord 0.3" in whole.measured


def test_c3_compares_each_view_with_its_own_null():
    # the averaged view reads 0.3 higher, but so does its own null: no lightening
    tails = _tails(_alpha(averaged_shift=0.3), er=lambda a, v: 5.0)
    tails.loc[tails.view == "averaged", "null_value"] += 0.3
    claims = _evaluate(tails=tails)
    assert set(_verdicts(claims, "C3").values()) == {NOT_SUPPORTED}


def test_c5_decides_in_the_asymptotic_regime_only():
    # configurations far from the regime are off the law; in it the law holds
    far = _escape(ratio=0.4, eps_rel=0.2)
    near = _escape(ratio=1.0, eps_rel=0.01)
    both = pd.concat([far, near.assign(eps=near.eps / 10)])
    c5 = _evaluate(escape=both).query("claim == 'C5'").iloc[0]
    assert c5.verdict == SUPPORTED
    assert "median ratio by ε" in c5.measured
    assert c5.n == len(near)  # the configurations in the regime, not the seeds (none here)
    none = _evaluate(escape=far).query("claim == 'C5'").iloc[0]
    assert none.verdict == INCONCLUSIVE and "regime" in none.reason
    assert (
        _evaluate(escape=_escape(ratio=0.5)).query("claim == 'C5'").verdict.iloc[0] == NOT_SUPPORTED
    )


def test_c5_band_and_slope_tolerance_come_from_the_config():
    escape = _escape(ratio=0.7)
    assert _evaluate(escape=escape).query("claim == 'C5'").verdict.iloc[0] == NOT_SUPPORTED
    wide = _evaluate(escape=escape, exit_ratio_band=[0.6, 1.4]).query("claim == 'C5'")
    assert wide.verdict.iloc[0] == SUPPORTED


def test_c6_overlapping_intervals_are_no_power_not_evidence_against():
    # Γ_Adam/Γ_SGD = 1.1 from 50 exits each: the intervals overlap the threshold 1.2
    weak = _evaluate(escape=_escape(10.0, 11.0, exits=50))
    assert set(_verdicts(weak, "C6").values()) == {INCONCLUSIVE}
    # the same ratio from 20,000 exits each and a tight α over seeds: clearly below the threshold
    tight = _tails(_alpha(), er=lambda a, v: 5.0, jitter=0.01)
    strong = _evaluate(tails=tight, escape=_escape(10.0, 11.0, exits=20000))
    assert set(_verdicts(strong, "C6").values()) == {NOT_SUPPORTED}
    assert set(_verdicts(_evaluate(escape=_escape(10.0, 30.0)), "C6").values()) == {SUPPORTED}


def test_c6_carries_the_seed_spread_of_the_matched_alpha():
    # many exits, but α spreads over seeds (sd 0.3): a factor e^{±…} in Γ the Monte-Carlo error misses
    wide = _tails(_alpha(), er=lambda a, v: 5.0, jitter=15.0)
    claims = _evaluate(tails=wide, escape=_escape(10.0, 11.0, exits=20000))
    assert set(_verdicts(claims, "C6").values()) == {INCONCLUSIVE}


def test_c6_cannot_compare_two_arms_at_the_alpha_cap():
    claims = _evaluate(escape=_escape(10.0, 30.0, measured=1.97))
    c6 = claims[claims.claim == "C6"]
    assert set(c6.verdict) == {INCONCLUSIVE}
    assert all("cap" in r for r in c6.reason)


def test_c7_reports_the_stability_edge_of_the_sgd_arm():
    hp = {"sgdm": {"lr": 0.01, "momentum": 0.9}, "sgd": {"lr": 0.05, "momentum": 0.0}}
    c7 = _evaluate(hparams=hp).query("claim == 'C7'")
    assert "λ_max·η_eff of sgdm 0.5" in c7.measured.iloc[0]  # λ 5 × 0.01/(1 − 0.9)
    assert "λ_max decides" in c7.rule.iloc[0]


def test_c7_relative_difference_carries_the_seed_spread_of_its_denominator():
    runs = _runs(lam_sgd=5.0, lam_adam=20.0)
    # λ_Adam swings between seeds: the relative difference is large but uncertain
    runs.loc[runs.arm.str.startswith("adam"), "top_eigenvalue"] = np.tile([5.2, 40.0, 6.0], 2)
    assert set(_verdicts(_evaluate(runs=runs), "C7").values()) == {INCONCLUSIVE}
    assert set(_verdicts(_evaluate(runs=_runs()), "C7").values()) == {SUPPORTED}


def test_thresholds_come_from_the_config():
    runs = _runs(acc_sgd=96.0, acc_adam=95.0)  # a 1-point gap
    assert set(_verdicts(_evaluate(runs=runs), "C8").values()) == {SUPPORTED}
    assert set(_verdicts(_evaluate(runs=runs, accuracy_margin=2.0), "C8").values()) == {
        NOT_SUPPORTED
    }
    assert set(_verdicts(_evaluate(runs=_runs(lam_adam=5.2)), "C7").values()) == {NOT_SUPPORTED}
    assert set(
        _verdicts(_evaluate(runs=_runs(lam_adam=5.2), sharpness_margin=0.01), "C7").values()
    ) == {SUPPORTED}


def test_diverged_runs_leave_their_seed_out_and_are_named():
    runs = _runs()
    runs.loc[(runs.arm == "adam") & (runs.seed == 11), "status"] = "diverged"
    c8 = _evaluate(runs=runs).query("claim == 'C8' and pair == 'sgdm vs adam'").iloc[0]
    assert c8.n == 2 and "adam/seed11" in c8.measured
    claims = _evaluate(runs=runs)
    for claim, pair in (
        ("C1", "adam"),
        ("C2", "sgdm vs adam"),
        ("C3", "adam"),
        ("C4", "adam"),
        ("C6", "sgdm vs adam"),  # the matched α is the other seeds' mean
        ("C7", "sgdm vs adam"),
    ):
        row = claims.query(f"claim == '{claim}' and pair == '{pair}'").iloc[0]
        assert "diverged (left out): adam/seed11" in row.measured, claim
    assert (
        "diverged" not in claims.query("claim == 'C6' and pair == 'sgdm vs adamw'").measured.iloc[0]
    )


def test_an_arm_whose_every_run_diverged_has_no_matched_sde_and_c6_says_why():
    runs = _runs()
    runs.loc[runs.arm == "adam", "status"] = "diverged"
    escape = _escape()
    # the simulate stage's one row for an arm without an ok tails row (simulate.matched)
    escape = pd.concat(
        [
            escape[escape.arm != "adam"],
            pd.DataFrame(
                [dict(scenario="matched", arm="adam", optimizer="adam", status="diverged")]
            ),
        ],
        ignore_index=True,
    )
    tails = _tails(_alpha(), er=lambda a, v: 5.0 if v == "raw" else 12.0)
    tails = tails[tails.arm != "adam"]  # the tails stage's status rows of adam carry no α
    claims = _evaluate(tails=tails, runs=runs, escape=escape)
    c1 = claims.query("claim == 'C1' and pair == 'adam'").measured.iloc[0]
    assert c1.startswith("α̂ (raw view, no estimate at any step): ")
    c6 = claims.query("claim == 'C6'").set_index("pair")
    row = c6.loc["sgdm vs adam"]
    assert row.verdict == INCONCLUSIVE
    assert row.reason == "no common configuration: adam not simulated (diverged)"
    assert "diverged (left out): adam/seed3, adam/seed7, adam/seed11" in row.measured
    assert c6.loc["sgdm vs adamw"].verdict == SUPPORTED


def test_missing_families_are_inconclusive_with_the_reason():
    runs = _runs()
    only_sgd = runs[~runs.arm.str.startswith("adam")]
    tails = _tails(_alpha(), arms={"sgd": "sgd", "sgdm": "sgdm"})
    claims = decide_rows(
        evaluate_claims(tails, _escape(), only_sgd, ClaimSettings()), ClaimSettings()
    )
    for claim in ("C2", "C3", "C4", "C6", "C7", "C8"):
        row = claims[claims.claim == claim].iloc[0]
        assert row.verdict == INCONCLUSIVE and "no" in row.reason


def test_c1_says_what_it_measures_and_needs_every_arm():
    def one_light(arm, view, est, step):
        return (2.1 if arm == "adamw" else 1.3), 2.0

    claims = _evaluate(tails=_tails(one_light, er=lambda a, v: 5.0))
    c1 = claims[claims.claim == "C1"]
    assert "below its Gaussian surrogate" in c1.statement.iloc[0]
    assert dict(zip(c1.pair, c1.verdict, strict=True))["adamw"] == NOT_SUPPORTED
    assert set(c1.claim_verdict) == {NOT_SUPPORTED}


def test_c5_needs_each_interval_inside_the_band():
    # 45 % off the law: with few exits the interval merely meets the band, which is not support
    few = _evaluate(escape=_escape(ratio=0.55, exits=20)).query("claim == 'C5'")
    assert few.verdict.iloc[0] != SUPPORTED
    many = _evaluate(escape=_escape(ratio=0.55, exits=2000)).query("claim == 'C5'")
    assert many.verdict.iloc[0] == NOT_SUPPORTED
    assert "simulator" in many.statement.iloc[0]


def test_the_papers_pair_decides_a_paired_claim_the_others_are_reported():
    runs = _runs()
    runs.loc[runs.arm == "sgd", "test_acc"] = 90.0 + np.tile([-0.1, 0.0, 0.1], 1)  # plain SGD worse
    claims = _evaluate(runs=runs)
    c8 = claims[claims.claim == "C8"].set_index("pair")
    assert c8.verdict["sgdm vs adam"] == SUPPORTED and c8.verdict["sgd vs adam"] == NOT_SUPPORTED
    assert set(c8.claim_verdict) == {SUPPORTED}
    assert "the paper's pair sgdm vs adam" in c8.claim_reason.iloc[0]
    # without the paper's pair every pair must hold
    no_sgdm = runs[runs.arm != "sgdm"]
    tails = _tails(
        _alpha(), er=lambda a, v: 5.0, arms={k: v for k, v in ARMS.items() if k != "sgdm"}
    )
    c8 = _evaluate(tails=tails, runs=no_sgdm).query("claim == 'C8'")
    assert set(c8.claim_verdict) == {NOT_SUPPORTED}
