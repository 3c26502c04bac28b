"""Tail-index estimators: calibration on exact SαS samples and the pooling pitfall (DESIGN.md §3, §5b)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from gradnoise.estimators import (
    alpha_hill,
    alpha_mcculloch,
    alpha_mohammadi,
    alpha_per_column,
    alpha_pooled_reference,
    ref_k1,
)
from gradnoise.tails import coordinate_estimates


@pytest.fixture(scope="module")
def sas_samples():
    rng = np.random.default_rng(42)
    return {
        a: stats.levy_stable.rvs(a, 0.0, size=100_000, random_state=rng) for a in (1.2, 1.5, 1.8)
    }


@pytest.mark.parametrize("alpha", [1.2, 1.5, 1.8])
def test_mohammadi_and_mcculloch_recover_alpha(sas_samples, alpha):
    x = sas_samples[alpha]
    assert abs(alpha_mohammadi(x, k1=10) - alpha) <= 0.03
    assert abs(alpha_mcculloch(x) - alpha) <= 0.03


def test_gaussian_reads_two():
    x = np.random.default_rng(1).standard_normal(100_000)
    assert abs(alpha_mohammadi(x, k1=10) - 2) <= 0.05
    assert abs(alpha_mcculloch(x) - 2) <= 0.05


def test_hill_recovers_heavy_tails(sas_samples):
    assert abs(alpha_hill(sas_samples[1.2], k=1000) - 1.2) <= 0.1


def test_reference_block_size_is_largest_divisor_below_sqrt():
    assert ref_k1(100) == 10 and ref_k1(2 * 101) == 2 and ref_k1(97 * 89) == 89 and ref_k1(12) == 3


def test_pooled_reference_flattens_row_major():
    m = np.random.default_rng(0).standard_normal((30, 40))
    assert alpha_pooled_reference(m) == alpha_mohammadi(m.reshape(-1))
    assert alpha_pooled_reference(m) != alpha_mohammadi(m.T.reshape(-1))


def test_other_block_sizes_drop_the_incomplete_tail():
    x = np.random.default_rng(0).standard_normal(1003)
    assert alpha_mohammadi(x, k1=10) == alpha_mohammadi(x[:1000], k1=10)


def test_pooling_mistakes_scale_mixing_for_heavy_tails():
    """Gaussian noise with log-normal per-coordinate scales (sd 1), reference layout: pooled ≈ 1.5,
    standardized and per-coordinate ≈ 2."""
    rng = np.random.default_rng(3)
    p, d = 500, 4000
    noise = rng.standard_normal((p, d)) * np.exp(rng.standard_normal(d))
    assert abs(alpha_pooled_reference(noise) - 1.5) <= 0.1
    est = coordinate_estimates(noise, hill_fraction=0.05)
    assert abs(est["pooled_standardized"][0] - 2) <= 0.1
    assert abs(est["per_coordinate"][0] - 2) <= 0.1


def test_per_column_estimate_matches_the_1d_estimator():
    m = np.random.default_rng(5).standard_normal((100, 7))
    np.testing.assert_allclose(
        alpha_per_column(m), [alpha_mohammadi(m[:, j]) for j in range(7)], rtol=1e-12
    )


def test_mcculloch_table_is_reproduced_by_its_script(root):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "make_table", root / "scripts" / "make_mcculloch_table.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    shipped = np.load(root / "src" / "gradnoise" / "data" / "mcculloch_table.npz")
    pick = slice(None, None, 15)
    nu, alphas = module.table(shipped["alpha"][pick])
    np.testing.assert_allclose(nu, shipped["nu"][pick], rtol=1e-9)
    assert np.all(np.diff(shipped["nu"]) < 0)  # ν decreases with α: the inversion is well defined
