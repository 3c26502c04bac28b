"""SαS sampling against scipy, and the simulator against the closed-form exit-time laws."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

import gradnoise.sde.euler
from gradnoise.levy import (
    isotropic_levy_constant,
    levy_constant,
    sample_isotropic,
    sample_isotropic_torch,
    sample_sas,
    sample_sas_torch,
)
from gradnoise.sde import (
    Noise,
    exponential_mle,
    loglog_slope,
    make_basin,
    mean_exit_time_1d,
    predicted_exit_time,
    predicted_exit_time_1d,
    radon_measure,
    simulate_exits,
)


@pytest.mark.parametrize("alpha", [0.8, 1.0, 1.5, 1.9])
def test_sas_samplers_pass_ks_against_scipy(alpha):
    cdf = lambda x: stats.levy_stable.cdf(x, alpha, 0.0)  # noqa: E731
    x = sample_sas(alpha, 2000, np.random.default_rng(11))
    xt = sample_sas_torch(
        alpha, (2000,), torch.Generator().manual_seed(11), dtype=torch.float64
    ).numpy()
    iso = sample_isotropic(alpha, 2000, 3, np.random.default_rng(11))[
        :, 1
    ]  # a marginal is unit SαS
    for sample in (x, xt, iso):
        assert stats.kstest(sample, cdf).pvalue > 0.01


EXTREMES32 = [0.0, 2.0**-24, 0.5, 1 - 2.0**-24, 1.0]


def _extreme_rand(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch.rand returning only the extreme float32 uniforms, every pair of successive calls (V
    then W in CMS) covering every combination."""
    pairs = torch.tensor([(u, w) for u in EXTREMES32 for w in EXTREMES32])
    calls = [0]

    def rand(shape, *, generator=None, device=None, dtype=torch.float32):
        column = pairs[:, calls[0] % 2]
        calls[0] += 1
        n = int(np.prod(shape))
        return column.repeat(n // len(column) + 1)[:n].reshape(shape).to(dtype)

    monkeypatch.setattr(torch, "rand", rand)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("alpha", [0.6, 1.0, 1.2, 1.5, 1.9, 2.0])
def test_torch_samplers_are_finite_at_the_extreme_uniforms(monkeypatch, alpha, dtype):
    _extreme_rand(monkeypatch)
    n = 2 * len(EXTREMES32) ** 2
    assert torch.isfinite(sample_sas_torch(alpha, (n,), dtype=dtype)).all()
    assert torch.isfinite(sample_isotropic_torch(alpha, n, 3, dtype=dtype)).all()


@pytest.mark.parametrize("alpha", [0.6, 1.0, 1.5, 1.9, 2.0])
def test_numpy_sampler_is_finite_at_the_extreme_uniforms(alpha):
    class Extremes:
        values = np.array([0.0, 2.0**-53, 0.5, 1 - 2.0**-53])
        calls = 0

        def random(self, size):
            self.calls += 1
            shift = self.calls % 2  # V and W see different orders, so all pairs occur
            v = np.repeat(self.values, 4) if shift else np.tile(self.values, 4)
            return np.resize(v, size)

    assert np.isfinite(sample_sas(alpha, 16, Extremes())).all()


def test_nan_state_stops_the_euler_simulation(monkeypatch):
    calls = [0]
    real = gradnoise.sde.euler.sample_sas_torch

    def poisoned(*args, **kwargs):
        xi = real(*args, **kwargs)
        calls[0] += 1
        if calls[0] == 3:
            xi[0, 0] = float("nan")
        return xi

    monkeypatch.setattr(gradnoise.sde.euler, "sample_sas_torch", poisoned)
    basin, noise = make_basin("box", 2, 1.0, 4.0), Noise(1.5, "independent", np.eye(2))
    with pytest.raises(FloatingPointError, match=r"euler scheme, box basin \(d = 2\).*ε = 0.2"):
        simulate_exits(basin, noise, 0.2, n_paths=50, dt=0.05, t_max=5.0, seed=0)


def test_isotropic_vectors_are_rotation_invariant():
    v = sample_isotropic(1.5, 20000, 2, np.random.default_rng(0))
    angle = np.arctan2(v[:, 1], v[:, 0])
    assert stats.kstest(angle, stats.uniform(-np.pi, 2 * np.pi).cdf).pvalue > 0.01


def test_levy_constants_agree_in_one_dimension():
    for a in (0.7, 1.0, 1.5, 1.9):
        assert isotropic_levy_constant(a, 1) == pytest.approx(levy_constant(a), rel=1e-12)
    assert levy_constant(1.0) == pytest.approx(1 / np.pi)


def test_closed_form_matches_design_reference_numbers():
    assert predicted_exit_time_1d(1.5, 0.1, 1, 1) == pytest.approx(79.3, abs=0.1)
    assert predicted_exit_time_1d(1.5, 0.05, 1, 1) == pytest.approx(224.2, abs=0.1)


def test_1d_simulation_matches_closed_form_at_small_eps():
    measured = mean_exit_time_1d(1.5, 0.05, 1.0, 1.0, n_paths=2000, dt=0.01, seed=1)
    assert measured / predicted_exit_time_1d(1.5, 0.05, 1.0, 1.0) == pytest.approx(1.0, abs=0.10)


def test_loglog_slope_over_small_eps_is_minus_alpha():
    eps = np.array([0.02, 0.03, 0.045])
    times = [
        mean_exit_time_1d(1.5, e, 1.0, 1.0, n_paths=1500, dt=0.05, seed=i)
        for i, e in enumerate(eps)
    ]
    assert loglog_slope(eps, np.array(times)) == pytest.approx(-1.5, abs=0.1)


def test_2d_box_with_independent_noise_matches_its_radon_measure():
    basin = make_basin("box", 2, 1.0, 4.0)
    noise = Noise(1.5, "independent", np.diag([1.0, 0.5]))
    # analytic m(G): jumps along each axis, exit at distance 1 (axis 1) and 2 (axis 2, half the noise)
    c = levy_constant(1.5) / 1.5
    assert radon_measure(basin, noise) == pytest.approx(c * (2 * 1.0 + 2 * 2.0**-1.5))
    pred = predicted_exit_time(basin, noise, 0.05)
    ex = simulate_exits(basin, noise, 0.05, n_paths=2000, dt=0.02, t_max=4 * pred, seed=5)
    mean, lo, hi = exponential_mle(ex.times, ex.exited)
    assert mean / pred == pytest.approx(1.0, abs=0.10)
    assert lo < mean < hi
    # jumps leave along the axes: coordinate 1 (larger noise) accounts for most exits
    share = np.mean(np.abs(ex.face[ex.exited]) == 1)
    assert share == pytest.approx(2 / (2 + 2 * 2.0**-1.5), abs=0.05)


def test_isotropic_radon_measure_of_a_ball_is_analytic():
    basin = make_basin("ellipsoid", 3, 2.0, 4.0)
    noise = Noise(1.3, "isotropic", np.eye(3))
    sphere = 4 * np.pi
    analytic = isotropic_levy_constant(1.3, 3) / 1.3 * sphere * 2.0**-1.3
    assert radon_measure(basin, noise, n_mc=20000) == pytest.approx(analytic, rel=1e-9)


def test_exponential_mle_with_censoring():
    rng = np.random.default_rng(0)
    t = rng.exponential(10.0, 20000)
    censored = np.minimum(t, 15.0)
    mean, lo, hi = exponential_mle(censored, t < 15.0)
    assert lo < 10.0 < hi and mean == pytest.approx(10.0, rel=0.03)


def test_chi2_quantiles_are_scipy_stats_own():
    from scipy import stats

    from gradnoise.sde.estimates import _chi2_quantile

    for df in (2, 3, 40, 4000):
        for p in (0.025, 0.5, 0.975):
            assert _chi2_quantile(p, df) == stats.chi2.ppf(p, df)


def test_same_seed_same_exits_and_disjoint_seeds_differ():
    basin, noise = make_basin("box", 1, 1.0, 4.0), Noise(1.5, "independent", np.eye(1))
    a = simulate_exits(basin, noise, 0.2, n_paths=200, dt=0.05, t_max=50, seed=3)
    b = simulate_exits(basin, noise, 0.2, n_paths=200, dt=0.05, t_max=50, seed=3)
    c = simulate_exits(basin, noise, 0.2, n_paths=200, dt=0.05, t_max=50, seed=4)
    assert np.array_equal(a.times, b.times) and not np.array_equal(a.times, c.times)
