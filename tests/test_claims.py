"""Verdict rules of the claims table on constructed inputs: every verdict is reachable."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from gradnoise.claims import (
    INCONCLUSIVE,
    NOT_SUPPORTED,
    SUPPORTED,
    ClaimSettings,
    Estimate,
    combine,
    difference_verdict,
    evaluate_claims,
    to_markdown,
)


@pytest.mark.parametrize(
    ("diff", "expected"),
    [
        (Estimate(0.3, 0.05, 3), SUPPORTED),
        (Estimate(-0.2, 0.05, 3), NOT_SUPPORTED),
        (Estimate(0.02, 0.01, 3), NOT_SUPPORTED),  # real but below the margin
        (Estimate(0.1, 0.2, 3), INCONCLUSIVE),
        (Estimate(0.3, math.nan, 1), INCONCLUSIVE),
    ],
)
def test_difference_verdict(diff, expected):
    assert difference_verdict(diff, margin=0.05) == expected


def test_combine_uses_seed_spread_and_bootstrap_intervals():
    e = combine([1.0, 1.2], [0.9, 1.1], [1.1, 1.3])
    assert e.value == pytest.approx(1.1) and e.n == 2
    assert e.se == pytest.approx(math.sqrt(0.02 / 2 + (0.1 / 1.96) ** 2 / 2))
    assert math.isnan(combine([1.0]).se)  # one seed without a CI: no uncertainty, no decision


def _tails_row(**fields) -> dict:
    base = dict(step=100, status="ok", split="train", layer="__all__")
    return {**base, **fields}


def _tails(
    alpha_sgd, alpha_adam, verdict_sgd, verdict_adam, er_raw=5.0, er_pre=12.0, seeds=(0, 1, 2)
):
    rows = []
    for seed in seeds:
        for opt, a, v in (("sgd", alpha_sgd, verdict_sgd), ("adam", alpha_adam, verdict_adam)):
            for view in ("raw", "averaged"):
                for est in ("pooled", "pooled_standardized", "per_coordinate"):
                    val = a + (0.3 if view == "averaged" else 0) + 0.01 * seed
                    rows.append(
                        _tails_row(
                            optimizer=opt,
                            seed=seed,
                            view=view,
                            quantity="alpha",
                            estimator=est,
                            value=val,
                            ci_low=val - 0.05,
                            ci_high=val + 0.05,
                            null_value=2.0,
                            null_ci_low=1.95,
                            null_ci_high=2.05,
                            verdict=v,
                        )
                    )
            if opt == "adam":
                for view, er in (("raw", er_raw), ("preconditioned", er_pre)):
                    rows.append(
                        _tails_row(
                            optimizer=opt,
                            seed=seed,
                            view=view,
                            quantity="effective_rank",
                            estimator="gram",
                            value=er + 0.1 * seed,
                            ci_low=er - 0.5,
                            ci_high=er + 0.5,
                            null_value=np.nan,
                            null_ci_low=np.nan,
                            null_ci_high=np.nan,
                            verdict=None,
                        )
                    )
    return pd.DataFrame(rows)


def _escape(t_sgd, t_adam):
    rows = []
    for opt, t in (("sgd", t_sgd), ("adam", t_adam)):
        for basin in ("box", "valley"):
            for eps in (0.05, 0.1):
                rows.append(
                    dict(
                        scenario="matched",
                        optimizer=opt,
                        status="ok",
                        basin=basin,
                        scale="sharp",
                        noise_model="independent",
                        eps=eps,
                        mean_exit=t / eps,
                        ci_low=0.95 * t / eps,
                        ci_high=1.05 * t / eps,
                        predicted=t / eps,
                        ratio=1.0,
                        slope=-1.5,
                        slope_target=-1.5,
                        alpha=1.5,
                    )
                )
    rows.append(
        dict(
            scenario="calibration",
            optimizer="",
            status="ok",
            basin="box",
            scale="unit",
            noise_model="independent",
            eps=0.1,
            mean_exit=79.0,
            ci_low=75.0,
            ci_high=83.0,
            predicted=79.3,
            ratio=0.996,
            slope=-1.5,
            slope_target=-1.5,
            alpha=1.5,
        )
    )
    return pd.DataFrame(rows)


def _runs(lam_sgd, lam_adam, acc_sgd, acc_adam):
    return pd.DataFrame(
        [
            dict(
                optimizer=o,
                seed=s,
                status="ok",
                top_eigenvalue=lam + 0.1 * s,
                train_acc=99.0,
                test_acc=a + 0.1 * s,
            )
            for o, lam, a in (("sgd", lam_sgd, acc_sgd), ("adam", lam_adam, acc_adam))
            for s in range(3)
        ]
    )


def test_every_claim_supported_when_the_data_say_so():
    claims = evaluate_claims(
        _tails(1.2, 1.6, "heavy-tailed", "heavy-tailed"),
        _escape(10.0, 30.0),
        _runs(5.0, 20.0, 98.0, 95.0),
        ClaimSettings(),
    )
    assert dict(zip(claims.claim, claims.verdict, strict=True)) == {
        f"C{i}": SUPPORTED for i in range(1, 9)
    }
    assert "| C1 |" in to_markdown(claims, "x")


def test_claims_not_supported_when_the_data_contradict_them():
    claims = evaluate_claims(
        _tails(1.9, 1.5, "not heavy-tailed", "not heavy-tailed", er_raw=10.0, er_pre=9.0),
        _escape(30.0, 10.0),
        _runs(20.0, 5.0, 95.0, 98.0),
        ClaimSettings(),
    )
    verdicts = dict(zip(claims.claim, claims.verdict, strict=True))
    assert {k: verdicts[k] for k in ("C1", "C2", "C4", "C6", "C7", "C8")} == dict.fromkeys(
        ("C1", "C2", "C4", "C6", "C7", "C8"), NOT_SUPPORTED
    )


def test_one_seed_and_mixed_verdicts_are_inconclusive():
    tails = _tails(1.2, 1.6, "heavy-tailed", "inconclusive", seeds=(0,))
    tails.loc[tails.optimizer == "sgd", "verdict"] = "inconclusive"
    runs = _runs(5.0, 20.0, 98.0, 95.0)
    claims = evaluate_claims(tails, _escape(10.0, 30.0), runs[runs.seed == 0], ClaimSettings())
    verdicts = dict(zip(claims.claim, claims.verdict, strict=True))
    assert (
        verdicts["C1"] == INCONCLUSIVE
        and verdicts["C7"] == INCONCLUSIVE
        and verdicts["C8"] == INCONCLUSIVE
    )
