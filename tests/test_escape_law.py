"""The escape-law stage: claims A1–A5 reach every verdict on constructed tables, the config rejects a bad
`escape` block naming the key, and the stage's scripts run end to end on a tiny trained run."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from gradnoise.claims import ClaimSettings, decide_rows
from gradnoise.config import ConfigError, prepare_config
from gradnoise.io import (
    ALL,
    ESCAPE_MINIMA_SCHEMA,
    ESCAPE_SCHEMA,
    ESCAPE_SLOPES_SCHEMA,
    ESCAPE_SWEEP_SCHEMA,
    SHARPNESS_SCHEMA,
    read_parquet,
    write_parquet,
)
from gradnoise.stats import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED
from gradnoise.studies import FIGURE_SETS
from gradnoise.studies.escape_law.claims import EscapeLawSettings, evaluate, radius_exponents
from gradnoise.tails import TAILS_SCHEMA

from conftest import run_script

SEEDS = (3, 7, 11)
JITTER = {3: -0.02, 7: 0.0, 11: 0.02}  # seed-to-seed spread of every constructed value
OPTS = ("sgd", "sgdm", "adam", "adai")
CS, ES = ClaimSettings(), EscapeLawSettings()


def _empty(schema: pa.Schema) -> pd.DataFrame:
    return schema.empty_table().to_pandas()


def _empty_tables(**tables: pd.DataFrame | None) -> list[pd.DataFrame]:
    """runs, tails, sweeps, slopes, minima: those given, the others empty."""
    empty = {
        "runs": pd.DataFrame(columns=["arm", "optimizer", "seed", "status", "test_acc"]),
        "tails": _empty(TAILS_SCHEMA),
        "sweeps": _empty(ESCAPE_SWEEP_SCHEMA),
        "slopes": _empty(ESCAPE_SLOPES_SCHEMA),
        "minima": _empty(ESCAPE_MINIMA_SCHEMA),
    }
    return [empty[k] if tables.get(k) is None else tables[k] for k in empty]


def verdicts(claim: str, **tables: pd.DataFrame) -> list[str]:
    """The verdicts of one claim's rows, the other claims' tables empty."""
    out = decide_rows(evaluate(*_empty_tables(**tables), ES, CS), CS)
    return out[out.claim == claim].verdict.tolist()


# ---------------------------------------------------------------------------------------------------
# constructed tables


def runs_table(acc: dict[str, float], seeds=SEEDS, spread: float = 10.0) -> pd.DataFrame:
    """Test accuracy per arm (named after its optimizer), jittered by seed, more for later arms."""
    return pd.DataFrame(
        [
            {
                "arm": o,
                "optimizer": o,
                "seed": s,
                "status": "ok",
                "test_acc": a + spread * (i + 1) * JITTER[s],
            }
            for i, (o, a) in enumerate(acc.items())
            for s in seeds
        ]
    )


def slope_row(axis, noise, opt, regressor, slope, half, chi2_red, kramers=5.0, n=4) -> dict:
    return {
        "experiment": "t",
        "axis": axis,
        "noise": noise,
        "optimizer": opt,
        "lr_scale": 1.0,
        "lr": 0.1,
        "alpha": 1.5 if noise == "sas" else 2.0,
        "regressor": regressor,
        "n_points": n,
        "n_without_exits": 0,
        "slope": slope,
        "slope_low": slope - half,
        "slope_high": slope + half,
        "chi2_red": chi2_red,
        "slope_diffusion": kramers,
        "slope_kramers": kramers,
        "slope_levy": 1.5,
    }


def law_slopes(chi2_predicted: float, chi2_other: float) -> pd.DataFrame:
    """Gaussian sharpness fits of every optimizer: its predicted law's and the other law's χ²."""
    rows = []
    for opt in OPTS:
        want = "inv_sqrt_h" if opt == "adam" else "inv_h"
        for reg in ("inv_h", "inv_sqrt_h"):
            chi2 = chi2_predicted if reg == want else chi2_other
            rows.append(slope_row("sharpness", "gaussian", opt, reg, 5.0, 0.5, chi2))
    return pd.DataFrame(rows)


def sas_slopes(width: tuple[float, float], height: tuple[float, float]) -> pd.DataFrame:
    """SαS width and height fits of every optimizer: (slope, half-width) each; diffusion 1/T = 10."""
    return pd.DataFrame(
        [slope_row("width", "sas", o, "log_width", *width, 1.0) for o in OPTS]
        + [slope_row("height", "sas", o, "height", *height, 1.0, kramers=10.0) for o in OPTS]
    )


RADII = (0.05, 0.1, 0.2, 0.4, 0.8)


def minima_rows(times: dict[tuple[int, float], list[float]], radii=RADII) -> pd.DataFrame:
    """A minima table from (seed, lr scale) → continuous exit times per radius: the first iteration
    past each time is what the escape stage records (ceil)."""
    rows = []
    for (s, scale), ts in times.items():
        for r, t in zip(radii, ts, strict=True):
            rows.append(
                {
                    "experiment": "t",
                    "arm": "sgd",
                    "optimizer": "sgd",
                    "seed": s,
                    "step": 30,
                    "status": "ok",
                    "lr_scale": scale,
                    "lr": 0.1 * scale,
                    "batch_size": 32,
                    "radius": r,
                    "exit_iteration": max(1, math.ceil(t)),
                    "censored": False,
                    "max_iters": 100000,
                    "max_distance": 1.0,
                }
            )
    return pd.DataFrame(rows)


def minima_table(
    exponent: float, seeds=SEEDS, scales=(1.0, 2.0), base: float = 9.7
) -> pd.DataFrame:
    """Lévy-like exits τ = base·(r/0.05)^k at radii 0.05…0.8, k = exponent (jittered by seed); a
    dict gives each lr scale its own exponent."""
    k = exponent if isinstance(exponent, dict) else dict.fromkeys(scales, exponent)
    return minima_rows(
        {
            (s, scale): [base * (r / 0.05) ** (k[scale] + JITTER[s]) for r in RADII]
            for s in seeds
            for scale in k
        }
    )


def drift_diffusion_exits(drift: float, sigma: float, seed: int, paths: int = 400) -> list[float]:
    """Median first iteration with |x_k| > r of x_k = Σ (drift + σ ξ_j), ξ standard normal (no
    jumps): τ ≈ r²/σ² at small radii, r/drift at large ones."""
    radii = np.array(RADII_DD)
    steps = int(3 * radii[-1] / drift)
    rng = np.random.default_rng(seed)
    x = np.cumsum(drift + sigma * rng.standard_normal((paths, steps)), axis=1)
    reach = np.maximum.accumulate(np.abs(x), axis=1)
    assert (reach[:, -1] > radii[-1]).all()
    return [float(np.median((reach > r).argmax(axis=1) + 1)) for r in radii]


RADII_DD = tuple(0.05 * 2.0**j for j in range(6))


def tails_alpha(arm: str, alpha: float, seeds=SEEDS, step: int = 30) -> pd.DataFrame:
    """Per-coordinate α of the raw noise (training split, whole network) per seed."""
    return pd.DataFrame(
        [
            {
                "arm": arm,
                "optimizer": arm,
                "seed": s,
                "step": step,
                "status": "ok",
                "split": "train",
                "view": "raw",
                "layer": ALL,
                "quantity": "alpha",
                "estimator": "per_coordinate",
                "value": alpha + JITTER[s],
                "null_value": 2.0,
                "note": "",
            }
            for s in seeds
        ]
    )


SHARPNESS = (2.0, 4.0, 8.0, 16.0)


def sharp_sweeps(laws: dict[str, tuple[float, float, float]], exits: int) -> pd.DataFrame:
    """Sharpness sweeps, both noise kinds: per optimizer log τ = a + b·H^(−p) for (a, b, p)."""
    return pd.DataFrame(
        [
            {
                "axis": "sharpness",
                "noise": noise,
                "optimizer": opt,
                "lr_scale": 1.0,
                "sharpness": h,
                "mean_exit": math.exp(a + b * h**-p),
                "n_exits": exits,
            }
            for noise in ("gaussian", "sas")
            for h in SHARPNESS
            for opt, (a, b, p) in laws.items()
        ]
    )


def kramers(s: float) -> dict[str, tuple[float, float, float]]:
    """Kramers' leading order at noise scale s: temperature ∝ s² for SGD-M and Adai, ∝ s for Adam."""
    return {"sgdm": (0.0, 30 / s**2, 1.0), "adai": (0.0, 28 / s**2, 1.0), "adam": (0.0, 8 / s, 0.5)}


# ---------------------------------------------------------------------------------------------------
# claims


def test_a1_adai_against_sgdm_and_adam_reaches_every_verdict():
    good = runs_table({"sgdm": 97.0, "adai": 97.2, "adam": 94.0})
    assert verdicts("A1", runs=good) == [SUPPORTED, SUPPORTED]
    bad = runs_table({"sgdm": 97.0, "adai": 94.0, "adam": 96.0})
    assert verdicts("A1", runs=bad) == [NOT_SUPPORTED, NOT_SUPPORTED]
    noisy = runs_table({"sgdm": 97.0, "adai": 97.0, "adam": 96.0}, spread=100.0)
    noisy.loc[noisy.arm == "adai", "test_acc"] = noisy[noisy.arm == "adai"].test_acc.to_numpy()[
        ::-1
    ]
    assert verdicts("A1", runs=noisy) == [INCONCLUSIVE, INCONCLUSIVE]
    one = runs_table({"sgdm": 97.0, "adai": 97.2, "adam": 94.0}, seeds=(3,))
    assert verdicts("A1", runs=one) == [INCONCLUSIVE, INCONCLUSIVE]
    assert verdicts("A1", runs=runs_table({"sgd": 97.0})) == [INCONCLUSIVE]  # no Adai arm


def test_a2_decides_the_law_by_chi2_only_where_the_other_law_fails():
    # dof = 2: χ²_red 10 has p ≈ 5e-5 (fails), 0.5 has p ≈ 0.6 (fits)
    assert verdicts("A2", slopes=law_slopes(0.5, 10.0)) == [SUPPORTED]
    assert verdicts("A2", slopes=law_slopes(10.0, 0.5)) == [NOT_SUPPORTED]
    assert verdicts("A2", slopes=law_slopes(0.5, 0.8)) == [INCONCLUSIVE]  # both laws fit
    falling = law_slopes(0.5, 10.0).assign(slope=-5.0, slope_low=-5.5, slope_high=-4.5)
    assert verdicts("A2", slopes=falling) == [NOT_SUPPORTED]
    assert verdicts("A2") == [INCONCLUSIVE]


def test_a3_tests_the_width_exponent_against_the_levy_prediction_and_the_height_band():
    # Lévy prediction 1.5, width_tolerance 0.3; height band: 0.25 × diffusion slope 10 = ±2.5
    assert verdicts("A3", slopes=sas_slopes((1.45, 0.1), (0.2, 0.7))) == [SUPPORTED]
    assert verdicts("A3", slopes=sas_slopes((1.45, 0.1), (9.0, 1.0))) == [NOT_SUPPORTED]
    # τ increases with w, but with exponent 0.3 against a predicted 1.5: not the Lévy law
    assert verdicts("A3", slopes=sas_slopes((0.3, 0.1), (0.2, 0.7))) == [NOT_SUPPORTED]
    assert verdicts("A3", slopes=sas_slopes((1.4, 0.3), (0.2, 0.7))) == [INCONCLUSIVE]
    assert verdicts("A3", slopes=sas_slopes((1.45, 0.1), (2.0, 1.0))) == [INCONCLUSIVE]


def test_a3_leaves_adam_out_with_the_reason():
    slopes = sas_slopes((1.45, 0.1), (0.2, 0.7))
    slopes.loc[slopes.optimizer.isin(["adam", "adamw"]), "slope"] = 0.0  # saturated jumps
    assert verdicts("A3", slopes=slopes) == [SUPPORTED]


def test_radius_exponent_is_the_log_log_slope_over_the_radii_passed():
    m = minima_table(1.5)
    censored = m.radius == 0.8
    m.loc[censored, ["censored", "exit_iteration"]] = [True, 100000]
    exps = radius_exponents(m)
    assert len(exps) == len(SEEDS) * 2 and (exps.radii_passed == 4).all()
    # integer iterations (ceil of the exit time) move the slope of log(k − ½) by less than 0.02
    expected = np.array([1.5 + JITTER[s] for s in exps.seed])
    np.testing.assert_allclose(exps.exponent, expected, atol=0.02)
    np.testing.assert_allclose(exps.bend, 0.0, atol=0.1)


def test_radius_exponent_of_pure_drift_is_one_not_the_integer_iterations_bias():
    # drift 0.3 per iteration exits 0.05…0.8 in 1, 1, 1, 2, 3 iterations: a slope of 0.56 on those
    # integers; none takes min_exit_iterations, so there is no exponent to fit
    fast = radius_exponents(minima_rows({(3, 1.0): [r / 0.3 for r in RADII]}))
    assert fast.radii_passed.iloc[0] == 0 and np.isnan(fast.exponent.iloc[0])
    # drift 0.013 per iteration: 4, 8, 16, 31, 62 iterations; the radius exited in 4 is left out
    slow = radius_exponents(minima_rows({(3, 1.0): [r / 0.013 for r in RADII]}))
    assert slow.radii_passed.iloc[0] == 4
    assert abs(slow.exponent.iloc[0] - 1.0) < 0.02 and abs(slow.bend.iloc[0]) < 0.05


def test_a4_only_a_levy_law_is_supported_not_drift_nor_drift_with_diffusion():
    alpha = tails_alpha("sgd", 1.45)
    # (c) Lévy-like τ ∝ r^α at both lr scales
    assert verdicts("A4", minima=minima_table(1.45), tails=alpha) == [SUPPORTED] * 2
    # (a) pure drift, integer iterations: exponent 1, the drift null
    drift = minima_rows({(s, 1.0): [r / (0.013 + 0.001 * JITTER[s]) for r in RADII] for s in SEEDS})
    assert verdicts("A4", minima=drift, tails=alpha) == [NOT_SUPPORTED]
    # (b) drift plus Gaussian diffusion, no jumps: overall exponent ≈ 1.44, next to α = 1.45 (the
    # old rule called it Lévy), but the log-log line bends from ≈ 2 to ≈ 1
    dd = minima_rows(
        {(s, 1.0): drift_diffusion_exits(1.5e-3, 0.02, seed=s) for s in SEEDS}, radii=RADII_DD
    )
    exps = radius_exponents(dd)
    assert (abs(exps.exponent - 1.45) < 0.1).all() and (exps.bend < -0.4).all()
    assert verdicts("A4", minima=dd, tails=alpha) == [NOT_SUPPORTED]


def test_a4_tests_each_lr_scale_and_tells_the_levy_law_from_brownian_motion():
    alpha = tails_alpha("sgd", 1.5)
    assert verdicts("A4", minima=minima_table(2.0), tails=alpha) == [NOT_SUPPORTED] * 2
    # exponents 1.9 and 1.1 average to α = 1.5, but neither lr scale follows the Lévy law
    split = minima_table({1.0: 1.9, 2.0: 1.1})
    assert verdicts("A4", minima=split, tails=alpha) == [NOT_SUPPORTED] * 2
    # α close to 2: the Lévy exponent holds but Brownian motion is not excluded
    near_two = tails_alpha("sgd", 1.95)
    assert verdicts("A4", minima=minima_table(1.95), tails=near_two) == [INCONCLUSIVE] * 2
    one = minima_table(1.5, seeds=(3,))
    assert (
        verdicts("A4", minima=one, tails=tails_alpha("sgd", 1.5, seeds=(3,))) == [INCONCLUSIVE] * 2
    )
    matched = pd.DataFrame(
        [
            {
                "scenario": "matched",
                "arm": "sgd",
                "status": "ok",
                "alpha": 1.52,
                "alpha_source": "raw",
            }
        ]
    )
    table = decide_rows(
        evaluate(*_empty_tables(runs=None, tails=alpha, minima=minima_table(1.5)), ES, CS, matched),
        CS,
    )
    a4 = table[table.claim == "A4"]
    assert "matched SDE predicts exponent α = 1.52 (raw)" in a4.measured.iloc[0]
    assert a4.pair.tolist() == ["sgd lr×1", "sgd lr×2"]
    assert (a4.claim_verdict == SUPPORTED).all()


def test_a4_leaves_out_and_names_the_runs_that_diverged():
    """Seed 11 diverged in training (its minima rows carry the checkpoint's status, no exits); seed
    7's continuation diverged at lr×2 only (escape_tables.minimum_table)."""
    minima = minima_table(1.5)
    minima.loc[minima.seed == 11, ["status", "exit_iteration", "censored"]] = ["diverged", 0, True]
    at_2 = (minima.seed == 7) & (minima.lr_scale == 2.0)
    minima.loc[at_2, ["status", "exit_iteration", "censored"]] = ["escape diverged", 0, True]
    table = decide_rows(
        evaluate(*_empty_tables(tails=tails_alpha("sgd", 1.5), minima=minima), ES, CS), CS
    )
    a4 = table[table.claim == "A4"].set_index("pair")
    assert a4.measured["sgd lr×1"].endswith("; diverged (left out): sgd/seed11")
    assert a4.measured["sgd lr×2"].endswith(
        "; diverged (left out): sgd/seed7 (escape diverged), sgd/seed11"
    )
    assert a4.n.to_dict() == {"sgd lr×1": 2, "sgd lr×2": 1}
    assert "over 5–5 radii per seed" in a4.measured["sgd lr×1"]  # the runs left out count none


def test_a5_decides_flat_minima_selection_free_of_the_noise_scale():
    # at s = 1 Adam escapes the sharpest landscape (H = 16) slower than Adai (τ ratio e^(2 − 1.75)),
    # at s = 0.25 far faster (e^(8 − 28)): the ratio flips with the scale, the exponents do not
    for s in (1.0, 0.25):
        assert verdicts("A5", sweeps=sharp_sweeps(kramers(s), exits=1000)) == [SUPPORTED] * 4
    # Adam's τ at the sharpest landscape is 7.4× Adai's (the old rule: "Adai faster"), but Adam's
    # log τ grows with 1/H (p = 1) more steeply than Adai's (p = ½)
    flipped = {"sgdm": (0.0, 30.0, 1.0), "adai": (0.0, 12.0, 0.5), "adam": (0.0, 80.0, 1.0)}
    assert verdicts("A5", sweeps=sharp_sweeps(flipped, exits=1000)) == [NOT_SUPPORTED] * 4
    # 5 exits each: the exponents' intervals decide nothing
    close = {"sgdm": (0.0, 30.0, 1.0), "adai": (0.0, 28.0, 0.95), "adam": (0.0, 8.0, 0.85)}
    assert verdicts("A5", sweeps=sharp_sweeps(close, exits=5)) == [INCONCLUSIVE] * 4


def test_measured_alpha_is_the_sgd_arms_final_checkpoint_mean_capped_below_two():
    from gradnoise.escape_tables import injected_noise, measured_alpha

    tails = pd.concat(
        [
            tails_alpha("sgd", 1.9),
            tails_alpha("sgdm", 2.1),
            tails_alpha("sgdm", 1.0, step=10),  # an earlier checkpoint
            tails_alpha("adam", 1.2),  # not an SGD-family arm
        ]
    )
    alpha, source = measured_alpha(tails)
    assert alpha == pytest.approx(2.0) and "sgd, sgdm (6 runs)" in source
    spec = {"kind": "sas", "scale": 1.0, "batch_size": 1.0, "alpha": "measured"}
    noise = injected_noise({**spec, "alpha_max": 1.95, "model": "independent"}, alpha)
    assert noise.alpha == 1.95
    with pytest.raises(ValueError, match="escape.noise.alpha"):
        measured_alpha(tails_alpha("adam", 1.2))


# ---------------------------------------------------------------------------------------------------
# config


def _escape(cfg: dict) -> dict:
    return cfg.setdefault("escape", {})


BAD = [
    (
        "sharpness too low for the barrier",
        lambda c: _escape(c).update(sweeps={"sharpness": [0.4, 2.0]}),
        r"escape\.sweeps\.sharpness: 0\.4 leaves no room for the barrier .* allowed: sharpness > 2·height/width² = 0\.5",
    ),
    (
        "base height above H w²/2",
        lambda c: _escape(c).update(landscape={"height": 1.5}),
        r"escape\.landscape\.height: 1\.5 leaves no room",
    ),
    (
        "SαS index above 2",
        lambda c: _escape(c).update(noise={"alpha": 2.5}),
        r"escape\.noise\.alpha",
    ),
    (
        "unknown key",
        lambda c: _escape(c).update(minima={"radius": [0.1]}),
        r"escape\.minima: unknown key\(s\) 'radius'; allowed keys: batch_size, lr_scales, max_iters, radii, seeds",
    ),
    (
        "measured α without an SGD arm",
        lambda c: (
            _escape(c).update(enabled=True),
            c["experiments"]["test"]["optimizers"].pop("sgd"),
            c["experiments"]["test"]["optimizers"].pop("sgdm"),
        ),
        r"escape\.noise\.alpha: `measured` needs an sgd or sgdm arm in experiments\.test",
    ),
]


@pytest.mark.parametrize(("case", "mutate", "message"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_escape_block_is_rejected_naming_the_key(test_config, case, mutate, message):
    mutate(test_config)
    with pytest.raises(ConfigError, match=message):
        prepare_config(test_config)


# ---------------------------------------------------------------------------------------------------
# the scripts, end to end


@pytest.fixture()
def trained(tmp_path):
    """A tiny SGD-M run's final checkpoint, its tails row and its sharpness row."""
    from gradnoise.arms import Training
    from gradnoise.train import RunSettings, train_run

    training = Training("sgdm", {"lr": 0.05, "momentum": 0.9}, 32, 30, [30])
    settings = RunSettings(
        run={"experiment": "t", "arm": "sgdm", "optimizer": "sgdm", "seed": 3},
        training=training,
        dataset={"name": "mnist_embedded", "train_size": 400, "test_size": 200},
        model={"name": "mlp", "hidden": [16]},
        eval_every=10,
    )
    train_run(settings, tmp_path / "run")
    tails = tails_alpha("sgdm", 1.6, seeds=(3,)).assign(experiment="t").to_dict("records")
    write_parquet(pa.Table.from_pylist(tails, schema=TAILS_SCHEMA), tmp_path / "tails.parquet", {})
    row = {"experiment": "t", "arm": "sgdm", "optimizer": "sgdm", "seed": 3, "step": 30}
    row.update(status="ok", test_acc=80.0, train_acc=85.0)
    sharp = pa.Table.from_pylist([row], schema=SHARPNESS_SCHEMA)
    write_parquet(sharp, tmp_path / "sharpness.parquet", {})
    return settings, tmp_path


def test_the_stage_scripts_run_end_to_end(trained, monkeypatch, test_config):
    settings, tmp = trained
    sweep = {
        "experiment": "t",
        "values": [1.5, 4.0],
        "landscape": {"sharpness": 2.0, "height": 0.25, "width": 1.0, "other_curvatures": [1.0]},
        "optimizers": {
            "sgdm": {"hparams": {"momentum": 0.9}, "lr": 0.01},
            "adai": {"hparams": {}, "lr": 0.1},
        },
        "lr_scales": [1.0],
        "seed": 0,
        "device": "cpu",
        "n_paths": 50,
        "max_iters": 100,
    }
    noises = {
        "gaussian": {"kind": "gaussian", "scale": 1.0, "batch_size": 1.0},
        "sas": {"kind": "sas", "scale": 1.0, "batch_size": 1.0, "alpha": "measured"}
        | {"alpha_max": 1.95, "model": "independent"},
    }
    sweeps = []
    for axis, values in (("sharpness", [1.5, 4.0]), ("width", [0.8, 1.2])):
        for kind, noise in noises.items():
            out = tmp / f"sweep_{axis}_{kind}.parquet"
            s = {**sweep, "axis": axis, "values": values, "noise": noise}
            tails = ["--tails", str(tmp / "tails.parquet")] if kind == "sas" else []
            run_script(
                "escape",
                "sweep",
                "--settings",
                json.dumps(s),
                *tails,
                "--out",
                str(out),
                monkeypatch=monkeypatch,
            )
            sweeps.append(str(out))
    table = read_parquet(sweeps[1], schema=ESCAPE_SWEEP_SCHEMA).to_pandas()
    alpha = 1.6 + JITTER[3]  # the one SGD-family run's α
    assert (
        len(table) == 4
        and np.allclose(table.alpha, alpha)
        and np.allclose(table.alpha_measured, alpha)
    )
    run_script(
        "escape",
        "slopes",
        "--settings",
        '{"level": 0.95}',
        "--sweeps",
        *sweeps,
        "--out",
        str(tmp / "slopes.parquet"),
        monkeypatch=monkeypatch,
    )
    slopes = read_parquet(tmp / "slopes.parquet", schema=ESCAPE_SLOPES_SCHEMA).to_pandas()
    assert set(slopes.regressor) == {"inv_h", "inv_sqrt_h", "log_h", "log_width"}
    minimum = {
        **json.loads(json.dumps(settings.as_dict())),
        "minima": {"radii": [1e-3, 1e-2, 1e6], "max_iters": 20, "lr_scales": [1.0, 2.0]}
        | {"batch_size": "training"},
        "seed": 0,
    }
    ckpt = tmp / "run" / "checkpoints" / "step30.pt"
    one = tmp / "minima" / "sgdm" / "seed3.parquet"
    run_script(
        "escape",
        "minimum",
        "--settings",
        json.dumps(minimum),
        "--checkpoint",
        str(ckpt),
        "--out",
        str(one),
        monkeypatch=monkeypatch,
    )
    run_script(
        "aggregate",
        str(one),
        "--contract",
        "escape_minima",
        "--out",
        str(tmp / "minima.parquet"),
        monkeypatch=monkeypatch,
    )
    minima = read_parquet(tmp / "minima.parquet", schema=ESCAPE_MINIMA_SCHEMA).to_pandas()
    assert len(minima) == 6 and (minima.status == "ok").all() and (minima.batch_size == 32).all()
    assert (minima[minima.radius == 1e6].censored).all()
    assert (minima[minima.radius == 1e-3].exit_iteration >= 1).all()
    assert sorted(set(minima.lr)) == pytest.approx([0.05, 0.1])  # the final lr × each scale

    fig_settings = {
        "figures": {"formats": ["png"], "dpi": 50, "split": "train"},
        "dataset": "mnist_embedded",
        "arms": {"sgdm": ["sgdm", "sgdm"]},
        "roles": {},
    }
    run_script(
        "figures",
        "escape_law_figures",
        "--settings",
        json.dumps(fig_settings),
        "--escape_sweeps",
        *sweeps,
        "--escape_minima",
        str(tmp / "minima.parquet"),
        "--outdir",
        str(tmp / "figures"),
        monkeypatch=monkeypatch,
    )
    for name in FIGURE_SETS["escape_law_figures"].figures:
        assert (tmp / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"

    write_parquet(ESCAPE_SCHEMA.empty_table(), tmp / "escape.parquet", {})
    claims = {
        "claims": prepare_config(test_config)["claims"],
        "studies": ["optimizers", "escape_law"],
        "roles": {},
        "arms": {"sgdm": ["sgdm", "sgdm"]},
    }
    run_script(
        "claims",
        "--settings", json.dumps(claims),
        "--experiment", "t",
        "--tails", str(tmp / "tails.parquet"),
        "--sharpness", str(tmp / "sharpness.parquet"),
        "--escape", str(tmp / "escape.parquet"),
        "--escape_sweeps", *[s for s in sweeps if "sharpness" in s],
        "--escape_slopes", str(tmp / "slopes.parquet"),
        "--escape_minima", str(tmp / "minima.parquet"),
        "--out-md", str(tmp / "claims.md"),
        "--out-parquet", str(tmp / "claims.parquet"),
        monkeypatch=monkeypatch,
    )  # fmt: skip
    text = (tmp / "claims.md").read_text()
    assert all(f"| C{i} |" in text for i in range(1, 9))
    assert all(f"| A{i} |" in text for i in range(1, 6))
