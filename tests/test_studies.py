"""The studies' measurements and rules on constructed inputs: the distance fits recover the law that made
the data, and every claim of the large-batch (H1–H6) and random-label (R1–R4) studies reaches each
verdict."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tables import tails_row

from gradnoise.claims import ClaimSettings, decide_rows
from gradnoise.stats import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED
from gradnoise.studies import STUDIES
from gradnoise.studies.large_batch import claims as large_batch
from gradnoise.studies.large_batch import distance
from gradnoise.studies.random_labels import claims as random_labels

SEEDS = (3, 7, 11)
JITTER = {3: -0.1, 7: 0.0, 11: 0.1}
LB_ROLES = STUDIES["large_batch"].roles


# ---------------------------------------------------------------------------------------------------
# distance fits


T = np.unique(np.round(np.geomspace(1, 600, 45)))
LAWS = {
    "log": lambda t: 1.5 + 0.8 * np.log(t),
    "power": lambda t: 0.4 * t**0.45,
    "sqrt": lambda t: 0.7 + 0.25 * np.sqrt(t),
}


@pytest.mark.parametrize("law", LAWS)
def test_each_distance_law_is_recovered_from_its_own_curve(law):
    rng = np.random.default_rng(0)
    d = LAWS[law](T) * (1 + 0.005 * rng.standard_normal(T.size))
    fits = distance.fit_distance(T, d)
    assert max(fits, key=lambda m: fits[m][2]) == law
    p1, p2, r2 = fits[law]
    expected = {"log": (1.5, 0.8), "power": (0.4, 0.45), "sqrt": (0.7, 0.25)}[law]
    assert (p1, p2) == pytest.approx(expected, rel=0.05) and r2 > 0.999


def _histories(law: str, arms=("sb", "lb"), phase_end=300) -> pd.DataFrame:
    rows = []
    for arm in arms:
        for seed in SEEDS:
            for t in np.concatenate([[0], T]):
                d = LAWS[law](max(t, 1)) if t else 0.0
                after = t > phase_end  # the curve bends after the learning-rate drop
                rows.append(
                    dict(
                        arm=arm,
                        seed=seed,
                        iteration=int(t),
                        status="ok",
                        evaluated=bool(t % 100 == 0),
                        test_acc=90.0,
                        weight_distance=d if not after else LAWS[law](phase_end),
                        first_layer_distance=0.5 * d if not after else 0.5 * LAWS[law](phase_end),
                    )
                )
    return pd.DataFrame(rows)


def test_distance_fits_use_only_the_high_learning_rate_phase():
    fits = distance.distance_fits(_histories("log"), {"sb": 300, "lb": 300})
    best = fits[fits.best]
    assert set(best.model) == {"log"} and len(best) == 2 * len(SEEDS) * 2
    assert (fits.phase_end == 300).all() and (fits.points == (T <= 300).sum()).all()


# ---------------------------------------------------------------------------------------------------
# H1–H6


# config/large_batch.yaml's schedules: (iterations, first lr drop) per role
LB_SCHEDULE = {
    "small": (1250, 625),
    "large": (70, 35),
    "large_lr": (70, 35),
    "large_gbn": (70, 35),
    "large_ra": (1120, 560),
}


def _lb_runs(acc: dict[str, float]) -> pd.DataFrame:
    batch = {"small": 32, "large": 512, "large_lr": 512, "large_gbn": 512, "large_ra": 512}
    return pd.DataFrame(
        [
            dict(
                arm=LB_ROLES[role],
                seed=s,
                status="ok",
                test_acc=a + JITTER[s],
                batch_size=batch[role],
                iterations=LB_SCHEDULE[role][0],
                phase_end=LB_SCHEDULE[role][1],
            )
            for role, a in acc.items()
            for s in SEEDS
        ]
    )


def _alpha_row(
    arm: str, optimizer: str, seed: int, step: int, estimator: str, value: float
) -> dict:
    """One tails-table row: the whole network's α of the raw training noise, its null at 2."""
    return tails_row(
        arm=arm,
        optimizer=optimizer,
        seed=seed,
        step=step,
        estimator=estimator,
        value=value,
        null_value=2.0,
    )


LB_STEPS = {"small": (28, 500, 1250), "large": (28, 70)}  # 500/1250 = 28/70 = 0.4


def _lb_tails(alpha_small=1.6, alpha_large=1.9, steps=LB_STEPS, late=None) -> pd.DataFrame:
    """α per checkpoint of each arm (null 2): `late` = (SB's, LB's) α at the checkpoints after LB's
    first lr drop (iterations 50 of both, where the old rule compared them)."""
    rows = []
    for role, arm in LB_ROLES.items():
        a = alpha_small if role == "small" else alpha_large
        for s in SEEDS:
            for est in ("per_coordinate", "mcculloch", "pooled_standardized"):
                for step in steps.get(role, steps["large"]):
                    rows.append(_alpha_row(arm, "sgdm", s, step, est, a + JITTER[s] / 10))
                if late is not None:
                    b = late[0] if role == "small" else late[1]
                    rows.append(_alpha_row(arm, "sgdm", s, 50, est, b + JITTER[s] / 10))
    return pd.DataFrame(rows)


def _lb_curves(offset: float) -> pd.DataFrame:
    """SB and RA test accuracy at the same update counts, RA `offset` points below."""
    rows = []
    for role in ("small", "large_ra"):
        for s in SEEDS:
            for t in (100, 200, 300):
                rows.append(
                    dict(
                        arm=LB_ROLES[role],
                        seed=s,
                        iteration=t,
                        status="ok",
                        evaluated=True,
                        test_acc=80 + t / 20 - (offset if role == "large_ra" else 0) + JITTER[s],
                    )
                )
    return pd.DataFrame(rows)


def _lb_claims(acc, curve_offset=0.0, law="log", alphas=(1.6, 1.9), ra_spread=0.0):
    fits = distance.distance_fits(
        _histories(law, arms=tuple(LB_ROLES.values())), dict.fromkeys(LB_ROLES.values(), 300)
    )
    runs = _lb_runs(acc)
    ra = runs.arm == LB_ROLES["large_ra"]
    runs.loc[ra, "test_acc"] += ra_spread * np.array([-1.0, 0.0, 1.0])
    rows = large_batch.evaluate(
        runs,
        _lb_curves(curve_offset),
        fits,
        _lb_tails(*alphas),
        LB_ROLES,
        large_batch.LargeBatchSettings(),
        ClaimSettings(),
    )
    return decide_rows(rows, ClaimSettings()).set_index(["claim", "pair"]).verdict


HOFFER = {"small": 94.0, "large": 91.0, "large_lr": 92.5, "large_gbn": 93.2, "large_ra": 94.2}


def test_large_batch_claims_supported_when_the_data_follow_the_paper():
    v = _lb_claims(HOFFER)
    assert set(v) == {SUPPORTED}, v


def test_large_batch_claims_not_supported_when_the_data_contradict_the_paper():
    flat = {"small": 94.0, "large": 94.5, "large_lr": 93.0, "large_gbn": 92.0, "large_ra": 91.0}
    v = _lb_claims(flat, curve_offset=3.0, law="sqrt", alphas=(1.9, 1.6))
    decided = v.drop(["H2", "H3"])
    assert set(decided) == {NOT_SUPPORTED}, v
    # no gap to shrink or close: the conditional claims wait for H1
    assert set(v[["H2", "H3"]]) == {INCONCLUSIVE}


def test_large_batch_claims_inconclusive_without_power():
    v = _lb_claims(
        {**HOFFER, "large_ra": 93.6}, curve_offset=1.0, alphas=(1.6, 1.62), ra_spread=0.5
    )
    assert v["H3"].iloc[0] == INCONCLUSIVE  # the gap left, 0.4 ± its seeds' spread, straddles 0.5
    assert v["H5"].iloc[0] == INCONCLUSIVE  # a 1-point difference at equal updates: on the margin
    assert v["H6"].iloc[0] == NOT_SUPPORTED  # α differs by 0.02 < alpha_margin, decided
    mixed = distance.distance_fits(
        pd.concat(
            [_histories("log", arms=("sb", "lb")), _histories("sqrt", arms=("lb_lr", "lb_lr_gbn"))]
        ),
        dict.fromkeys(LB_ROLES.values(), 300),
    )
    h4 = large_batch._h4(mixed, ClaimSettings())
    # runs are the units (whole network): 6 of 12 log wins cannot reach 2/3
    assert h4.decision.verdict == NOT_SUPPORTED and "out of reach" in h4.decision.reason
    mostly = distance.distance_fits(
        pd.concat(
            [_histories("log", arms=("sb", "lb", "lb_lr")), _histories("sqrt", arms=("lb_lr_gbn",))]
        ),
        dict.fromkeys(LB_ROLES.values(), 300),
    )
    assert large_batch._h4(mostly, ClaimSettings()).decision.verdict == SUPPORTED  # 9 of 12


def _h6(tails: pd.DataFrame, tolerance: float = 0.05):
    row = large_batch._h6(
        tails,
        _lb_runs(HOFFER),
        LB_ROLES,
        large_batch.LargeBatchSettings(phase_tolerance=tolerance),
        ClaimSettings(),
    )
    return row, decide_rows([row], ClaimSettings()).verdict.iloc[0]


def test_h6_compares_alpha_at_matched_phases_before_any_learning_rate_drop():
    # at iteration 50 LB (70 iterations, drop at 35) is past its first drop and SB (1,250, drop at
    # 625) is not: there LB reads lighter (1.9 vs 1.6), at the matched phase 0.4 they are alike
    tails = _lb_tails(1.6, 1.6, late=(1.6, 1.9))
    row, verdict = _h6(tails)
    assert verdict == NOT_SUPPORTED
    assert "sb at iteration 500, lb at iteration 28" in row.measured
    # and the other way: alike at iteration 50, LB lighter at the matched phase
    row, verdict = _h6(_lb_tails(1.6, 1.9, late=(1.6, 1.6)))
    assert verdict == SUPPORTED


def test_h6_weighs_each_arm_against_its_own_null():
    # both arms read α 1.7; LB's null is 1.8 (small samples bias it low), SB's 2.0: SB is heavier
    # than its null by 0.3, LB by 0.1
    tails = _lb_tails(1.7, 1.7)
    tails.loc[tails.arm == LB_ROLES["large"], "null_value"] = 1.8
    assert _h6(tails)[1] == SUPPORTED


def test_h6_without_matched_checkpoints_is_inconclusive_with_the_reason():
    # only iteration 50 and the final ones: LB's 50 is past its first drop
    tails = _lb_tails(1.6, 1.9, steps={"small": (50, 1250), "large": (50, 70)})
    row, verdict = _h6(tails)
    assert verdict == INCONCLUSIVE and "no checkpoints at the same fraction" in row.decision.reason
    # 28/70 = 0.4 against 450/1250 = 0.36: matched only with a tolerance of 0.04 or more
    near = _lb_tails(1.6, 1.9, steps={"small": (450, 1250), "large": (28, 70)})
    assert _h6(near, tolerance=0.03)[1] == INCONCLUSIVE
    assert _h6(near, tolerance=0.05)[1] == SUPPORTED
    no_settings = large_batch._h6(
        _lb_tails(),
        _lb_runs(HOFFER).drop(columns=["iterations", "phase_end"]),
        LB_ROLES,
        large_batch.LargeBatchSettings(),
        ClaimSettings(),
    )
    assert no_settings.decision.verdict == INCONCLUSIVE


# ---------------------------------------------------------------------------------------------------
# R1–R4

RL_ROLES = {
    role: arm
    for role, arm in STUDIES["random_labels"].roles.items()
    if not role.startswith(("weight_decay", "momentum", "augment"))
}


def _rl_inputs(
    gaps: dict[str, float], lam=(8.0, 4.0), alpha=(1.6, 1.9), train_acc=100.0, missed=()
):
    runs, tails, settings = [], [], []
    for role, arm in RL_ROLES.items():
        regime, _, init = role.rpartition("_")
        for s in SEEDS:
            adversarial = init == "adversarial"
            acc = 95.0 - (gaps.get(regime, 0.0) if adversarial else 0.0) + JITTER[s]
            runs.append(
                dict(
                    arm=arm,
                    seed=s,
                    status="ok",
                    test_acc=acc,
                    train_acc=train_acc if adversarial else 100.0,
                    top_eigenvalue=(lam[0] if adversarial else lam[1]) + JITTER[s],
                )
            )
            settings.append(
                dict(
                    arm=arm, seed=s, target_reached=s not in missed if role == "pretrain" else None
                )
            )
            for est in ("per_coordinate", "mcculloch", "pooled_standardized"):
                value = (alpha[0] if adversarial else alpha[1]) + JITTER[s] / 10
                tails.append(_alpha_row(arm, "sgd", s, 100, est, value))
    return pd.DataFrame(runs), pd.DataFrame(settings), pd.DataFrame(tails)


def _rl_claims(*args, **kwargs):
    runs, settings, tails = _rl_inputs(*args, **kwargs)
    rows = random_labels.evaluate(
        runs,
        pd.DataFrame(),
        settings,
        tails,
        RL_ROLES,
        random_labels.RandomLabelSettings(),
        ClaimSettings(),
    )
    return decide_rows(rows, ClaimSettings())


def test_random_label_claims_supported_when_the_data_follow_the_paper():
    claims = _rl_claims({"vanilla": 10.0, "all": 0.0})
    assert set(claims.verdict) == {SUPPORTED}, claims[["claim", "pair", "reason"]]
    assert "heavier-tailed at the bad minima" in claims.set_index("claim").measured["R4"]


def test_random_label_claims_not_supported_when_the_data_contradict_the_paper():
    claims = _rl_claims({"vanilla": -2.0, "all": 5.0}, lam=(4.0, 8.0), alpha=(1.9, 1.9))
    decided = claims[claims.claim != "R2"]
    assert set(decided.verdict) == {NOT_SUPPORTED}, claims[["claim", "pair", "reason"]]
    r2 = claims[claims.claim == "R2"]
    assert set(r2.verdict) == {INCONCLUSIVE} and all("condition R1" in r for r in r2.reason)


def test_r2_all_cannot_remove_a_gap_that_is_not_there():
    # no vanilla gap, and no gap with all regularizers: "removed" would be vacuous
    claims = _rl_claims({"vanilla": 0.0, "all": 0.0}).set_index("claim")
    assert claims.verdict["R1"] == NOT_SUPPORTED
    assert claims.verdict["R2"] == INCONCLUSIVE and "condition R1" in claims.reason["R2"]


def test_a_useless_change_is_not_supported_once_the_seeds_are_enough():
    seeds = range(12)
    acc = {**HOFFER, "large_gbn": HOFFER["large_lr"]}  # Ghost BN adds nothing
    runs = pd.DataFrame(
        [
            dict(arm=arm, seed=s, status="ok", test_acc=acc[role] + 0.05 * ((s * 7) % 5 - 2))
            for role, arm in LB_ROLES.items()
            for s in seeds
        ]
    )
    rows = large_batch.evaluate(
        runs,
        _lb_curves(0.0),
        distance.distance_fits(
            _histories("log", arms=tuple(LB_ROLES.values())),
            dict.fromkeys(LB_ROLES.values(), 300),
        ),
        _lb_tails(1.6, 1.8),
        LB_ROLES,
        large_batch.LargeBatchSettings(),
        ClaimSettings(),
    )
    v = decide_rows(rows, ClaimSettings()).set_index("pair").verdict
    assert v[f"{LB_ROLES['large_gbn']} − {LB_ROLES['large_lr']}"] == NOT_SUPPORTED


def test_random_label_claims_inconclusive_when_the_minimum_is_not_global_or_a_pretraining_missed():
    claims = _rl_claims({"vanilla": 10.0, "all": 0.0}, train_acc=90.0).set_index("claim")
    assert claims.verdict["R1"] == INCONCLUSIVE and "not a global minimum" in claims.reason["R1"]
    missed = _rl_claims({"vanilla": 10.0, "all": 0.0}, missed=(3, 7)).set_index("claim")
    assert "pretraining missed its accuracy target for seeds [3, 7]" in missed.measured["R1"]
    assert set(missed.verdict) == {INCONCLUSIVE}  # one seed is left: no interval


def test_the_registry_names_only_entry_points_tables_and_captions_that_exist():
    from gradnoise.studies import ADD_ONS, FIGURE_SETS
    from gradnoise.tables import TABLES

    def resolve(entry: str):
        module, function = entry.split(":")
        return getattr(importlib.import_module(module), function)

    for study in [*STUDIES.values(), *(a for adds in ADD_ONS.values() for a in adds)]:
        assert callable(resolve(study.claims)), study.kind
        assert set(study.tables) <= set(TABLES), study.kind
        assert set(study.figure_sets) <= set(FIGURE_SETS), study.kind
    report = Path(__file__).resolve().parents[1] / "workflow" / "report"
    for name, figure_set in FIGURE_SETS.items():
        assert callable(resolve(figure_set.draw)), name
        assert set(figure_set.tables) <= set(TABLES), name
        for figure in figure_set.figures:
            assert (report / f"{figure}.rst").is_file(), figure
    names = [f for s in FIGURE_SETS.values() for f in s.figures]
    assert len(names) == len(set(names))  # one output file per figure name
