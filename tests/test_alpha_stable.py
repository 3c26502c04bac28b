"""The α-stable study (DESIGN.md §11, claims S1–S3): known answers at the default config's sizes, its
pool and claims on constructed inputs, the config's checks, and the stage's scripts end to end on a
tiny trained run."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from gradnoise.claims import ClaimSettings, decide_rows
from gradnoise.clt.pool import Pool, PoolSettings, analyze
from gradnoise.clt.table import SCHEMA
from gradnoise.config import ConfigError, prepare_config
from gradnoise.io import ALL, read_parquet, write_parquet
from gradnoise.levy import sample_sas
from gradnoise.stats import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED
from gradnoise.studies import ADD_ONS, FIGURE_SETS, STUDIES, by_kind, enabled_add_ons, studies_of
from gradnoise.studies.alpha_stable.claims import AlphaStableSettings, evaluate

from conftest import run_script

CS, SS = ClaimSettings(), AlphaStableSettings()
# The default config's sizes: 4,000 training digits, 5 seeds, the training batch size 64, and the
# study's defaults (PoolSettings: B = 2 … 256, P = 400, 64 coordinates, 4 simulated pools).
N, SEEDS, BATCH, LAYERS, PER_LAYER = 4_000, range(5), 64, 4, 16


def pool_of(law: str, seed: int) -> Pool:
    """A per-example pool of one law: 4 layers × 16 coordinates whose scales span e^±2 (as network
    gradients' do), the layers' norms over their coordinates."""
    rng = np.random.default_rng([seed, len(law), ord(law[-1])])
    shape = (N, LAYERS * PER_LAYER)
    if law.startswith("sas"):
        x = sample_sas(float(law[3:]), shape, rng)
    elif law.startswith("t"):
        x = rng.standard_t(float(law[1:]), shape)
    else:
        x = rng.standard_normal(shape)
    coords = (x * np.exp(rng.normal(0, 1, shape[1]))).reshape(N, LAYERS, PER_LAYER)
    index = np.arange(LAYERS * PER_LAYER).reshape(LAYERS, PER_LAYER)
    norms = np.sqrt((coords**2).sum(axis=2))
    return Pool.of(coords, index, norms, [f"layer{i}" for i in range(LAYERS)])


def table_of(rows_by_seed: dict[int, list[dict]], arm: str = "sgdm", step: int = 1000):
    key = {"experiment": "t", "arm": arm, "optimizer": arm, "step": step, "status": "ok"}
    return pd.DataFrame([key | {"seed": s} | r for s, rows in rows_by_seed.items() for r in rows])


@pytest.fixture(scope="module")
def verdicts() -> dict[str, dict[str, str]]:
    """Law → claim → verdict, each law's five seeds decided on their own (≈ 2 s per pool)."""
    out = {}
    for law in ("sas1.2", "sas1.5", "t3", "t5", "gauss"):
        table = table_of({s: analyze(pool_of(law, s), BATCH, PoolSettings()) for s in SEEDS})
        claims = decide_rows(evaluate(table, SS, CS), CS)
        out[law] = dict(zip(claims.claim, claims.verdict, strict=True))
    return out


@pytest.mark.parametrize("law", ["sas1.2", "sas1.5"])
def test_sas_pools_are_called_alpha_stable_by_every_claim(verdicts, law):
    assert verdicts[law] == {"S1": SUPPORTED, "S2": SUPPORTED, "S3": SUPPORTED}


@pytest.mark.parametrize("law", ["t3", "t5"])
def test_student_t_pools_are_called_finite_variance_by_every_claim(verdicts, law):
    assert verdicts[law] == {"S1": NOT_SUPPORTED, "S2": NOT_SUPPORTED, "S3": NOT_SUPPORTED}


def test_a_gaussian_pool_is_not_called_heavy_tailed(verdicts):
    assert verdicts["gauss"]["S1"] == NOT_SUPPORTED
    assert SUPPORTED not in verdicts["gauss"].values()


def test_pool_is_centred_without_padding_or_constant_columns():
    coords = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(10, 3, 4) % 7
    coords[:, 0, 3] = np.nan  # padding of a small layer
    coords[:, 2, 1] = 1.5  # a coordinate without spread
    index = np.arange(12).reshape(3, 4)
    index[0, 3] = -1
    pool = Pool.of(coords, index, np.ones((10, 3)), ["a", "b", "c"])
    assert pool.noise.shape == (10, 10)
    assert list(pool.index) == [0, 1, 2, 4, 5, 6, 7, 8, 10, 11]
    assert list(pool.layers) == ["a"] * 3 + ["b"] * 4 + ["c"] * 3
    np.testing.assert_allclose(pool.noise.mean(axis=0), 0, atol=1e-12)
    with pytest.raises(ValueError, match="NaN or inf"):
        inf = np.where(index >= 0, np.inf, np.nan)[None].repeat(4, axis=0)
        Pool.of(inf, index, np.ones((4, 3)), ["a", "b", "c"])


def test_pool_rows_cover_every_quantity_the_claims_and_figures_read():
    rows = pd.DataFrame(analyze(pool_of("sas1.5", 0), BATCH, PoolSettings(n_pools=2)))
    key = {"experiment": "t", "arm": "a", "optimizer": "sgd", "seed": 0, "step": 1, "status": "ok"}
    table = pa.Table.from_pylist([key | r for r in rows.to_dict("records")], schema=SCHEMA)
    assert table.num_rows == len(rows)
    layers = {f"layer{i}" for i in range(LAYERS)}
    for quantity in ("tail_exponent", "infinite_variance_share", "law_share"):
        assert set(rows[rows.quantity == quantity].layer) == {ALL} | layers, quantity
    assert set(rows[rows.quantity == "norm_tail_exponent"].layer) == layers
    curve = rows[rows.quantity == "alpha"]
    assert set(curve.law) == {"measured", "sas", "finite_variance"}
    assert sorted(set(curve.x)) == list(PoolSettings().batch_sizes)
    assert set(rows[rows.quantity == "t_tail_index"].x) == {BATCH}
    assert set(rows[rows.quantity == "ccdf"].law) == {"empirical", "sas", "student_t", "gaussian"}
    ccdf = rows[(rows.quantity == "ccdf") & (rows.law == "empirical")].sort_values("x")
    assert ccdf.value.is_monotonic_decreasing and ccdf.value.iloc[-1] == 1 / N


def test_a_run_that_did_not_end_ok_is_left_out_of_its_row_with_the_reason():
    rows = {s: analyze(pool_of("sas1.2", s), BATCH, PoolSettings(n_pools=2)) for s in (0, 1, 2)}
    table = table_of(rows)
    bad = {"experiment": "t", "arm": "sgdm", "optimizer": "sgdm", "seed": 9, "step": 1000}
    table = pd.concat([table, pd.DataFrame([bad | {"status": "diverged", "layer": ALL}])])
    claims = decide_rows(evaluate(table, SS, CS), CS)
    assert (claims.n == 3).all()
    assert claims.measured.str.endswith("; diverged (left out): sgdm/seed9").all()
    assert (claims.verdict == SUPPORTED).all()


def test_without_tables_every_claim_is_inconclusive_with_the_reason():
    claims = decide_rows(evaluate(pd.DataFrame(columns=SCHEMA.names), SS, CS), CS)
    assert list(claims.claim) == ["S1", "S2", "S3"] and (claims.verdict == INCONCLUSIVE).all()


def test_the_study_is_an_add_on_of_the_optimizers_study_where_enabled(test_config):
    cfg = prepare_config(test_config)
    exp = cfg["experiments"]["test"]
    assert enabled_add_ons(cfg, exp) == {"escape_law", "alpha_stable"}
    kinds = [s.kind for s in studies_of("optimizers", enabled_add_ons(cfg, exp))]
    assert kinds == ["optimizers", "escape_law", "alpha_stable"]
    assert [s.kind for s in studies_of("large_batch", {"alpha_stable"})] == ["large_batch"]
    assert by_kind("alpha_stable") in ADD_ONS["optimizers"] and "alpha_stable" not in STUDIES
    assert by_kind("alpha_stable").figure_sets == ("alpha_stable_figures",)
    exp["alpha_stable"]["enabled"] = False
    assert enabled_add_ons(cfg, exp) == {"escape_law"}


@pytest.mark.parametrize(
    ("experiment", "change", "message"),
    [
        (
            "test_lb",
            {"enabled": True},
            r"test_lb\.alpha_stable\.enabled: .* add-on of study 'optimizers'",
        ),
        (
            "test",
            {"pool_size": 900},
            r"test\.alpha_stable\.pool_size: 900 > the training split \(800",
        ),
        (
            "test",
            {"batch_sizes": [2, 400]},
            r"test\.alpha_stable\.batch_sizes: 400 is not smaller than the pool \(400",
        ),
        (
            "test",
            {"pool_size": 32, "batch_sizes": [2, 8]},
            r"test\.alpha_stable\.pool_size: 32 examples, not more than arm 'sgd'",
        ),
        (
            "test",
            {"checkpoints": "some"},
            r"test\.alpha_stable\.checkpoints: 'some' is not allowed",
        ),
        ("test", {"n_pools": 1}, r"test\.alpha_stable\.n_pools"),
    ],
)
def test_a_bad_alpha_stable_block_is_rejected_naming_the_key(
    test_config, experiment, change, message
):
    test_config["experiments"][experiment].setdefault("alpha_stable", {}).update(change)
    with pytest.raises(ConfigError, match=message):
        prepare_config(test_config)


def test_the_stage_scripts_run_end_to_end(tmp_path, monkeypatch, test_config):
    """A tiny SGD-M run through the stage (both checkpoints), the figures and the claims."""
    from gradnoise.arms import Training
    from gradnoise.train import RunSettings, train_run

    run = {"experiment": "t", "arm": "sgdm", "optimizer": "sgdm", "seed": 3}
    dataset = {"name": "mnist_embedded", "train_size": 400, "test_size": 200}
    model = {"name": "mlp", "hidden": [16]}
    training = Training("sgdm", {"lr": 0.05, "momentum": 0.9}, 32, 30, [10, 30])
    train_run(RunSettings(run, training, dataset, model, eval_every=10), tmp_path / "run")
    cfg = prepare_config(test_config)
    study = cfg["experiments"]["test"]["alpha_stable"]
    settings = {
        "run": run,
        "steps": [10, 30],
        "training_batch_size": 32,
        "dataset": dataset,
        "model": model,
        "device": "cpu",
        "coordinates": {"per_layer": 8, "seed": 0},
        "alpha_stable": {k: v for k, v in study.items() if k not in ("enabled", "checkpoints")},
    }
    out = tmp_path / "alpha_stable" / "sgdm" / "seed3.parquet"
    args = [
        "--settings",
        json.dumps(settings),
        "--checkpoints",
        str(tmp_path / "run" / "checkpoints"),
    ]
    run_script("alpha_stable", *args, "--out", str(out), monkeypatch=monkeypatch)
    table = read_parquet(out, schema=SCHEMA).to_pandas()
    assert set(table.step) == {10, 30} and set(table.status) == {"ok"} and set(table.seed) == {3}
    tails = table[(table.quantity == "tail_exponent") & (table.layer == ALL)]
    assert ((tails.n > 0) & (tails.n <= 8 * 4)).all()  # 8 per layer, less those without spread

    fig_settings = {
        "figures": {"formats": ["png"], "dpi": 50, "split": "train"},
        "dataset": "mnist_embedded",
        "arms": {"sgdm": ["sgdm", "sgdm"]},
        "roles": {},
    }
    fig_args = ["--settings", json.dumps(fig_settings), "--alpha_stable", str(out)]
    figs = tmp_path / "figures"
    run_script(
        "figures", "alpha_stable_figures", *fig_args, "--outdir", str(figs), monkeypatch=monkeypatch
    )
    for name in FIGURE_SETS["alpha_stable_figures"].figures:
        assert (figs / f"{name}.png").read_bytes()[:4] == b"\x89PNG"

    unused = tmp_path / "unused.parquet"  # the claims stage's required tables S1–S3 do not read
    write_parquet(pa.Table.from_pylist([], schema=SCHEMA), unused, {})
    claims = {"claims": cfg["claims"], "studies": ["alpha_stable"], "roles": {}, "arms": {}}
    run_script(
        "claims",
        "--settings", json.dumps(claims),
        "--experiment", "t",
        "--tails", str(unused),
        "--sharpness", str(unused),
        "--alpha_stable", str(out),
        "--out-md", str(tmp_path / "claims.md"),
        "--out-parquet", str(tmp_path / "claims.parquet"),
        monkeypatch=monkeypatch,
    )  # fmt: skip
    text = (tmp_path / "claims.md").read_text()
    assert all(f"| S{i} |" in text for i in (1, 2, 3))
    assert "sgdm @ 10" in text and "sgdm @ 30" in text
