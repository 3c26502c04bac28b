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


# Repeated-draw spread behind the tolerances (6 seeds × 64 columns, β = 0.9, sd of one seed's estimate,
# largest over estimators and inputs): P = 400: sd ≤ 0.07 → 3 se of a 6-seed mean ≤ 0.09; P = 200: sd
# ≤ 0.15 → 3 se ≤ 0.18; P = 116 (the smallest P with blocks of 2 rows 2·lag apart; n_eff ≈ 6): sd ≤
# 0.15 → 3 se ≤ 0.19. Known biases inside them: per_coordinate is a median capped at 2, so on Gaussian
# input it reads low by ≈ 0.07 (P = 400) to 0.14 (P = 116), and so does its null; McCulloch reads SαS(1.5)
# high by ≈ 0.07 at P ≤ 200. The old stride-order blocks read Gaussian 1.73 (P = 400) and 1.54 (P = 200).
CALIBRATION_TOLERANCE = {116: 0.25, 200: 0.2, 400: 0.1}


@pytest.mark.parametrize("p", sorted(CALIBRATION_TOLERANCE))
@pytest.mark.parametrize("alpha", [1.5, 2.0])
def test_averaged_view_of_iid_draws_has_their_tail_index(p, alpha):
    """An EMA of iid SαS(α) draws is SαS(α): every estimator on the averaged view must return α
    (2 for Gaussian draws), on average over seeds, at the P of the default config (400), of the test
    config (200) and the smallest P that gives an estimate at β = 0.9 (116)."""
    from gradnoise.levy import sample_sas
    from gradnoise.tails import alpha_of_view
    from gradnoise.views import averaging_matrix

    beta, ests = 0.9, ("pooled_standardized", "per_coordinate", "mcculloch")
    errors: dict[str, list[float]] = {e: [] for e in ests}
    for seed in range(6):
        rng = np.random.default_rng(seed)
        u = sample_sas(alpha, (p, 64), rng) if alpha < 2 else rng.standard_normal((p, 64))
        a = averaging_matrix(p, beta) @ u  # exactly the noise stage's averaged view
        for est in ests:
            errors[est].append(
                alpha_of_view(a, "averaged", beta, est, min_effective_draws=4) - alpha
            )
    for est, err in errors.items():
        assert abs(np.mean(err)) < CALIBRATION_TOLERANCE[p], (est, np.mean(err))


def test_averaged_view_below_four_lags_gives_no_estimate():
    from gradnoise.tails import TailSettings, alpha_of_view, unavailable_reason
    from gradnoise.views import averaging_matrix

    u = np.random.default_rng(0).standard_normal((115, 16))
    a = averaging_matrix(115, 0.9) @ u
    assert math.isnan(alpha_of_view(a, "averaged", 0.9, "per_coordinate", min_effective_draws=4))
    assert "no block of 2 rows 58 apart" in unavailable_reason(
        115, 0.9, TailSettings(min_effective_draws=4)
    )


def test_averaged_view_bootstrap_spread_matches_the_repeated_draw_spread():
    """Resampling the recovered draws keeps the EMA's dependence: the bootstrap sd of one data set
    is near the sd over independent data sets (Gaussian, P = 400, β = 0.9: ≈ 0.07 for
    pooled_standardized). Resampling rows of the averaged view as if independent gives ≈ 1/3 of it."""
    from gradnoise.tails import bootstrap_estimates
    from gradnoise.views import RowDependence, averaging_matrix

    p, beta = 400, 0.9
    dep = RowDependence.of(p, beta, 0.05)
    a_mat = averaging_matrix(p, beta)
    values, boot_sd = [], []
    for seed in range(8):
        rng = np.random.default_rng(seed)
        a = a_mat @ rng.standard_normal((p, 64))
        from gradnoise.tails import coordinate_estimates

        values.append(coordinate_estimates(a, 0.05, dep)["pooled_standardized"][0])
        boot = bootstrap_estimates(a, dep, 60, 0.05, rng, beta=beta)["pooled_standardized"]
        boot_sd.append(np.std(boot[np.isfinite(boot)]))
    ratio = np.mean(boot_sd) / np.std(values, ddof=1)
    # the sd of 8 values is itself uncertain by ≈ 25 %: accept a factor 1.6 either way
    assert 1 / 1.6 < ratio < 1.6, ratio


@pytest.mark.parametrize("structure", ["rank1", "rank5", "full"])
def test_gaussian_noise_of_any_covariance_reads_as_its_null(structure):
    """Cross-coordinate dependence is not heavy tails: exactly Gaussian noise of rank 1, rank 5 or
    full rank with scales over 3 decades reads within 0.15 of its independent-coordinate null
    (P = 400, 64 coordinates; the rank-1 case has one series' spread, sd ≈ 0.07 per estimate, mean
    over 4 seeds), and never ``heavy-tailed``. The old pooled layout read rank 1 as 1.60 vs 1.97."""
    from gradnoise.tails.null_verdicts import _coordinate

    errors: dict[str, list[float]] = {}
    for seed in range(4):
        rng = np.random.default_rng(seed)
        rank = {"rank1": 1, "rank5": 5, "full": 64}[structure]
        mix = rng.standard_normal((rank, 64)) * 10 ** rng.uniform(-1.5, 1.5, 64)
        c = rng.standard_normal((400, rank)) @ mix
        for name, e in _coordinate(c, None, TailSettings(bootstrap=40), rng).items():
            if name == "hill":  # Hill is no α near 2 (DESIGN §5b): only its verdict counts
                assert verdict(e.value, e.ci, e.null, e.null_ci, 0.05) != "heavy-tailed"
                continue
            assert verdict(e.value, e.ci, e.null, e.null_ci, 0.05) != "heavy-tailed", name
            errors.setdefault(name, []).append(e.value - e.null)
    for name, err in errors.items():
        assert abs(np.mean(err)) < 0.15, (name, np.mean(err))


def test_iid_stable_noise_reads_clearly_below_its_null():
    from gradnoise.levy import sample_sas
    from gradnoise.tails.null_verdicts import _coordinate

    rng = np.random.default_rng(0)
    c = sample_sas(1.5, (400, 64), rng) * 10 ** rng.uniform(-1.5, 1.5, 64)
    for name, e in _coordinate(c, None, TailSettings(bootstrap=40), rng).items():
        assert e.ci[1] < e.null_ci[0] and e.null - e.value > 0.2, name


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
    from gradnoise.tails import MCCULLOCH_QUANTILES, standardize
    from gradnoise.tails.bootstrap import _Resampled
    from gradnoise.tails.coordinate_estimators import _hill_rows

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


def test_bootstrap_shortcuts_equal_the_estimators_on_explicit_replicates():
    """Each shortcut of the bootstrap against the estimator on the replicate itself: block sums and
    log-means from the drawn rows (independent rows), strided blocks without a gather (averaged
    view), Hill from the sorted replicate's two ends; and Hill from counts when most values are 0
    (a replicate whose k + 1 largest reach a zero: inf, or 0 for a zero threshold alone)."""
    from gradnoise.estimators import EPS
    from gradnoise.tails import standardize
    from gradnoise.tails.block_estimators import _block_estimates, _inverse_alphas
    from gradnoise.tails.bootstrap import _Resampled, _ResampledBlocks, _sorted_estimates
    from gradnoise.tails.coordinate_estimators import _hill_rows
    from gradnoise.views import RowDependence

    rng = np.random.default_rng(1)
    z = standardize(stats.levy_stable.rvs(1.4, 0, size=(50, 7), random_state=rng))
    idx = rng.integers(0, 50, (20, 50))
    blocks = RowDependence(50, 1).blocks()
    fast = _ResampledBlocks(z, blocks).estimates(idx)
    for name, values in _block_estimates(z[idx], blocks).items():
        np.testing.assert_allclose(fast[name], values, rtol=1e-12, err_msg=name)
    strided = RowDependence.of(400, 0.9, 0.05).blocks()
    a = rng.standard_normal((3, 400, 5))
    log_y = np.log(np.abs(a[:, strided].sum(axis=2)) + EPS).mean(1)
    log_x = np.log(np.abs(a[:, : strided.size]) + EPS).mean(1)
    expected = (log_y - log_x) / math.log(strided.shape[1])
    np.testing.assert_array_equal(_inverse_alphas(a, strided)[0], expected)
    x = a.reshape(3, -1)
    np.testing.assert_array_equal(_sorted_estimates(x, 29)["hill"], _hill_rows(np.abs(x), 29))
    sparse = np.where(rng.random((50, 7)) < 0.85, 0.0, z)
    counts = np.stack([np.bincount(i, minlength=50) for i in idx])
    with np.errstate(divide="ignore", invalid="ignore"):
        direct = _hill_rows(np.abs(sparse[idx].reshape(20, -1)), 17)
    np.testing.assert_allclose(_Resampled(sparse).hill(counts, 17), direct, rtol=1e-12)


@pytest.mark.parametrize("p", [116, 200, 400, 2000])
def test_blocks_of_the_averaged_view_hold_rows_two_lags_apart(p):
    from gradnoise.views import RowDependence, averaging_matrix, circular_ema, innovations

    dep = RowDependence.of(p, 0.9, 0.05)
    assert dep.lag == 29 and dep.usable
    blocks = dep.blocks()
    assert sorted(blocks.ravel()) == list(range(blocks.size))  # every row once, the first ones
    d = np.abs(blocks[:, :, None] - blocks[:, None, :])
    d = np.minimum(d, p - d) + np.eye(dep.k1, dtype=int) * p  # circular distance, self excluded
    assert d.min() >= 2 * dep.lag
    u = np.random.default_rng(p).standard_normal((2, p, 3))
    a = averaging_matrix(p, 0.9) @ u
    np.testing.assert_allclose(circular_ema(u, 0.9, axis=1), a, atol=1e-12)
    np.testing.assert_allclose(innovations(a, 0.9, axis=1), u, atol=1e-10)
    assert RowDependence.of(50, None, 0.05).lag == 1
    np.testing.assert_array_equal(
        RowDependence.of(50, None, 0.05).blocks(), np.arange(49).reshape(7, 7)
    )


def test_circular_block_bootstrap_of_rows_is_runs_of_lag():
    from gradnoise.views import RowDependence

    dep = RowDependence.of(103, 0.9, 0.05)
    idx = dep.resample(5, np.random.default_rng(0))
    steps = (np.diff(idx, axis=1) % dep.p)[:, : dep.lag - 1]
    assert (steps == 1).all()  # the first block is lag consecutive rows


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
@pytest.mark.parametrize("dim", [30, 5])  # 5 < P: each replicate's Krylov space closes early
def test_bootstrap_anisotropy_equals_the_eigendecomposition_of_each_replicate(lag, dim):
    rng = np.random.default_rng(5)
    u = rng.standard_normal((60, dim)) * np.sqrt(np.linspace(4, 0.2, dim))
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
