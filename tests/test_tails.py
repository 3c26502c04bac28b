"""The tails stage on constructed noise: verdicts against the Gaussian null, and anisotropy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from gradnoise import anisotropy
from gradnoise.noise import NoiseSettings, sample_split, to_tables
from gradnoise.tails import TailSettings, analyze, verdict


class Linear(torch.nn.Module):
    """Logits (⟨w, x⟩, 0, …, 0) at w = 0 with label 0: the cross-entropy gradient of an example is
    (softmax_0 − 1) x = −0.9 x, so the noise of batch k is −0.9 (mean of its rows − overall mean)."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(d))

    def forward(self, x):
        return torch.nn.functional.pad((x @ self.w)[:, None], (0, 9))


def _tails_of(rows: np.ndarray, batch: int = 1, boot: int = 100):
    """Run the real sampler and tails stage on data whose per-batch gradients are `rows`-derived."""
    n, d = rows.shape
    model = Linear(d)
    x = torch.tensor(rows / 0.9, dtype=torch.float32)  # undo the −0.9 (the sign does not matter)
    y = torch.zeros(n, dtype=torch.int64)
    res = sample_split(
        model, x, y, NoiseSettings(batch_size=batch, coords_per_layer=d), {"raw": None}, 0
    )
    samples, st = to_tables({"train": res}, d)
    run = {"experiment": "e", "arm": "sgd", "optimizer": "sgd", "hparams": {}, "seed": 0, "step": 0}
    return analyze(samples, st, run, TailSettings(bootstrap=boot)).to_pandas()


def _alpha(df, estimator):
    return df[
        (df.layer == "__all__") & (df.quantity == "alpha") & (df.estimator == estimator)
    ].iloc[0]


def test_heavy_tailed_noise_is_called_heavy_against_its_null():
    rng = np.random.default_rng(0)
    rows = stats.levy_stable.rvs(1.3, 0, size=(400, 40), random_state=rng)
    df = _tails_of(rows)
    for est in ("pooled", "pooled_standardized", "per_coordinate"):
        r = _alpha(df, est)
        assert r.verdict == "heavy-tailed", (est, r.value, r.null_value)
        assert r.ci_low <= r.value <= r.ci_high


def test_scale_mixed_gaussian_noise_fools_only_the_pooled_estimate():
    rng = np.random.default_rng(1)
    rows = rng.standard_normal((400, 60)) * np.exp(2 * rng.standard_normal(60))
    df = _tails_of(rows)
    pooled = _alpha(df, "pooled")
    assert pooled.value < 1.5  # the reference estimate reads heavy tails here ...
    assert abs(pooled.null_value - pooled.value) < 0.15  # ... and so does its Gaussian null
    assert pooled.verdict != "heavy-tailed"
    for est in ("pooled_standardized", "per_coordinate"):
        assert _alpha(df, est).verdict != "heavy-tailed"
        assert abs(_alpha(df, est).value - 2) < 0.25


def test_reported_spectrum_matches_a_known_covariance():
    rng = np.random.default_rng(2)
    true = np.array([16.0, 4.0, 1.0, 1.0, 0.25])
    rows = rng.standard_normal((1000, 5)) * np.sqrt(true)  # one example per batch: noise = x − mean
    df = _tails_of(rows, boot=10)
    eff = df[(df.layer == "__all__") & (df.quantity == "effective_rank")].iloc[0]
    # sample eigenvalues of P = 1000 draws: relative error ≈ √(2/P) ≈ 0.045 each
    np.testing.assert_allclose(np.asarray(eff.spectrum)[:5], true, rtol=0.15)
    # rank 5: the rest is zero, to the rounding of the Gram's float32 products (≲ 1e-6 tr G)
    assert np.allclose(np.asarray(eff.spectrum)[5:], 0, atol=1e-6 * true.sum())
    assert eff.value == pytest.approx(true.sum() ** 2 / np.sum(true**2), rel=0.1)
    top = df[(df.layer == "__all__") & (df.quantity == "top_share")].iloc[0]
    assert top.value == pytest.approx(16 / true.sum(), rel=0.1)
    assert top.ci_low < top.value < top.ci_high


def test_verdict_rules():
    assert verdict(1.2, (1.1, 1.3), 1.9, (1.85, 1.95), 0.05) == "heavy-tailed"
    assert verdict(1.97, (1.93, 2.0), 1.97, (1.9, 2.05), 0.05) == "not heavy-tailed"
    assert verdict(1.7, (1.3, 2.1), 1.9, (1.85, 1.95), 0.05) == "inconclusive"
    assert verdict(math.nan, (1.0, 2.0), 2.0, (1.9, 2.1), 0.05) == "inconclusive"


def test_anisotropy_summaries():
    assert anisotropy.effective_rank(np.ones(7)) == pytest.approx(7)
    assert anisotropy.top_share(np.array([3.0, 1.0])) == pytest.approx(0.75)
    assert anisotropy.effective_rank(np.array([1.0, 0, 0])) == pytest.approx(1)


def test_diverged_noise_file_gives_a_status_row():
    import pyarrow as pa

    from gradnoise.noise import empty_tables

    samples, st = empty_tables(4)
    df = analyze(
        samples,
        st,
        {
            "experiment": "e",
            "arm": "a",
            "optimizer": "sgd",
            "seed": 0,
            "step": 5,
            "status": "diverged",
        },
        TailSettings(),
    ).to_pandas()
    assert df.status.tolist() == ["diverged"] and isinstance(samples, pa.Table)


# ---------------------------------------------------------------------------------------------------
# the averaged view: dependent rows (DESIGN.md §3)


@pytest.mark.parametrize("alpha", [1.2, 1.5, 1.8, 2.0])
def test_averaged_view_of_iid_draws_has_their_tail_index(alpha):
    """An EMA of iid SαS(α) draws is SαS(α): every estimator on the averaged view must return α
    (≈ 2 for Gaussian draws), at P = 2,000 and β = 0.9, within 0.15."""
    from gradnoise.levy import sample_sas
    from gradnoise.tails import alpha_of_view
    from gradnoise.views import averaging_matrix

    rng = np.random.default_rng(0)
    p, beta = 2000, 0.9
    u = sample_sas(alpha, (p, 64), rng) if alpha < 2 else rng.standard_normal((p, 64))
    a = averaging_matrix(p, beta) @ u
    for est in ("pooled_standardized", "per_coordinate", "mcculloch"):
        assert alpha_of_view(a, "averaged", beta, est) == pytest.approx(alpha, abs=0.15), est
    # read as if its rows were independent, the per-coordinate estimate collapses toward 1
    assert alpha_of_view(a, "raw", None, "per_coordinate") < alpha - 0.15


def test_too_few_effective_draws_give_no_estimate_and_say_why():
    from gradnoise.tails import alpha_of_view
    from gradnoise.views import averaging_matrix

    u = np.random.default_rng(0).standard_normal((80, 16))
    assert math.isnan(
        alpha_of_view(averaging_matrix(80, 0.9) @ u, "averaged", 0.9, "per_coordinate")
    )
    assert math.isfinite(alpha_of_view(u, "raw", None, "per_coordinate"))


def test_per_coordinate_counts_estimates_at_or_above_two_as_two():
    from gradnoise.tails import per_coordinate_alphas

    z = np.random.default_rng(3).standard_normal((1, 20, 4000))
    per_col = per_coordinate_alphas(z)
    assert np.isfinite(per_col).all() and per_col.max() == 2.0
    # dropping the estimates ≥ 2 would give ≈ 1.74 here; counting them as 2 gives ≈ 1.86
    assert np.median(per_col) > 1.8


@pytest.mark.parametrize("p", [4, 23, 97])
def test_per_coordinate_works_for_any_number_of_rows(p):
    from gradnoise.tails import alpha_of_view

    u = np.random.default_rng(p).standard_normal((p, 32))
    assert math.isfinite(alpha_of_view(u, "raw", None, "per_coordinate", min_effective_draws=4))


def test_bootstrap_order_statistics_equal_explicit_replicates():
    from gradnoise.tails import MCCULLOCH_QUANTILES, _hill_rows, _Resampled, standardize

    rng = np.random.default_rng(0)
    z = standardize(stats.levy_stable.rvs(1.4, 0, size=(50, 7), random_state=rng))
    idx = rng.integers(0, 50, (20, 50))
    counts = np.stack([np.bincount(i, minlength=50) for i in idx])
    sample = _Resampled(z)
    direct = np.quantile(z[idx].reshape(20, -1), MCCULLOCH_QUANTILES, axis=1).T
    np.testing.assert_allclose(sample.quantiles(counts, MCCULLOCH_QUANTILES), direct, rtol=1e-12)
    np.testing.assert_allclose(
        sample.hill(counts, 17), _hill_rows(np.abs(z[idx].reshape(20, -1)), 17), rtol=1e-12
    )


def test_stride_order_and_block_bootstrap_respect_the_lag():
    from gradnoise.views import RowDependence

    dep = RowDependence.of(103, 0.9, 0.05)
    assert dep.lag == 29 and dep.usable
    order = dep.order()
    gaps = np.abs(np.diff(order))
    assert (np.minimum(gaps, dep.p - gaps) >= dep.lag).all()  # circular distance of neighbours
    idx = dep.resample(5, np.random.default_rng(0))
    steps = (np.diff(idx, axis=1) % dep.p)[:, : dep.lag - 1]
    assert (steps == 1).all()  # the first block is lag consecutive rows
    assert RowDependence.of(50, None, 0.05).lag == 1


def test_rows_with_a_nan_are_skipped_counted_and_too_many_are_an_error():
    from gradnoise.errors import InputError

    rng = np.random.default_rng(4)
    rows = stats.levy_stable.rvs(1.3, 0, size=(200, 20), random_state=rng)
    model = Linear(20)
    x = torch.tensor(rows / 0.9, dtype=torch.float32)
    y = torch.zeros(200, dtype=torch.int64)
    res = sample_split(
        model, x, y, NoiseSettings(batch_size=1, coords_per_layer=20), {"raw": None}, 0
    )
    res["views"]["raw"]["coords"][5, 3] = np.nan
    samples, st = to_tables({"train": res}, 20)
    run = {"experiment": "e", "arm": "sgd", "optimizer": "sgd", "hparams": {}, "seed": 0, "step": 0}
    df = analyze(samples, st, run, TailSettings(bootstrap=20)).to_pandas()
    per = _alpha(df, "per_coordinate")
    assert per.rows_skipped == 1 and math.isfinite(per.value) and per.n == 199 * 20
    res["views"]["raw"]["coords"][:150, 0] = np.nan
    samples, st = to_tables({"train": res}, 20)
    with pytest.raises(InputError, match="noise.parquet: 150 of 200 noise rows"):
        analyze(samples, st, run, TailSettings(bootstrap=20), source="noise.parquet")


@pytest.mark.parametrize("lag", [1, 4])
def test_bootstrap_anisotropy_equals_the_eigendecomposition_of_each_replicate(lag):
    rng = np.random.default_rng(5)
    u = rng.standard_normal((60, 30)) * np.sqrt(np.linspace(4, 0.2, 30))
    u -= u.mean(axis=0)
    gram = u @ u.T / 59
    shares, ranks = anisotropy.bootstrap_anisotropy(gram, 8, np.random.default_rng(1), lag)
    replay = np.random.default_rng(1)
    for b in range(8):
        w = (
            replay.dirichlet(np.ones(60))
            if lag == 1
            else anisotropy._block_weights(60, lag, replay)
        )
        c = np.eye(60) - np.outer(np.ones(60), w)
        ev = anisotropy.gram_spectrum(60 * np.sqrt(w)[:, None] * (c @ gram @ c.T) * np.sqrt(w))
        assert shares[b] == pytest.approx(anisotropy.top_share(ev), rel=1e-9)
        assert ranks[b] == pytest.approx(anisotropy.effective_rank(ev), rel=1e-9)
