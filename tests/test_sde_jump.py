"""The jump-adapted exit-time scheme against the closed form and Euler, and its building blocks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

import gradnoise.sde.jump_scheme
from gradnoise.levy import small_jump_variance, tail_rate
from gradnoise.sde import (
    Basin,
    Noise,
    exponential_mle,
    make_basin,
    mean_exit_time_1d,
    predicted_exit_time,
    predicted_exit_time_1d,
    radon_measure,
    simulate_exits,
)
from gradnoise.sde.ou_steps import _ou_factors, _skew_ou_step
from gradnoise.sde.streams import Streams
from gradnoise.simulate import SimSettings, calibration, matched, matched_noise


@pytest.mark.parametrize("alpha", [1.2, 1.5, 1.8])
def test_jump_scheme_matches_closed_form_at_eps_001(alpha):
    # 4,000 paths: the MLE's relative sd is 1/√4000 = 1.6 %; the finite-ε bias at ε = 0.01 < 0.5 %
    measured = mean_exit_time_1d(alpha, 0.01, 1.0, 1.0, n_paths=4000, seed=3, scheme="jump")
    assert measured / predicted_exit_time_1d(alpha, 0.01, 1.0, 1.0) == pytest.approx(1.0, abs=0.065)


def test_jump_scheme_exit_times_are_exponential():
    basin = Basin("box", np.array([2.0]), np.array([1.0]), np.ones(1), np.ones(1))
    noise = Noise(1.5, "independent", np.eye(1))
    pred = predicted_exit_time(basin, noise, 0.01)
    ex = simulate_exits(
        basin, noise, 0.01, n_paths=3000, dt=0.01, t_max=50 * pred, seed=2, scheme="jump"
    )
    assert ex.exited.all()
    assert stats.kstest(ex.times / ex.times.mean(), "expon").pvalue > 0.01
    # the nearer face (distance 1 against 2) takes 2^α/(1 + 2^α) of the exits
    share = np.mean(ex.face == 1)
    assert share == pytest.approx(2**1.5 / (1 + 2**1.5), abs=0.035)


def _assert_jump_agrees_with_fine_euler(basin, noise, seed: int) -> None:
    """ε = 0.1: the mean exit times of both schemes agree within 4 sd of the log-ratio of two
    independent MLEs plus the ≈ 2 % by which Euler at dt = 0.005 misses its dt → 0 limit."""
    pred = predicted_exit_time(basin, noise, 0.1)
    runs = [
        simulate_exits(basin, noise, 0.1, n_paths=1500, dt=dt, t_max=4 * pred, seed=seed, scheme=s)
        for s, dt in (("euler", 0.005), ("jump", 0.02))
    ]
    (m_euler, *_), (m_jump, *_) = (exponential_mle(r.times, r.exited) for r in runs)
    sd = math.sqrt(sum(1 / r.exited.sum() for r in runs))
    assert abs(math.log(m_jump / m_euler)) < 4 * sd + 0.02


@pytest.mark.parametrize("model", ["independent", "isotropic"])
@pytest.mark.parametrize("kind", ["box", "ellipsoid", "valley"])
def test_jump_scheme_agrees_with_fine_euler_in_2d(kind, model):
    # ε/r = 0.2: finite-ε corrections of 10–25 %, carried partly by the small jumps and the
    # diffusive crossings that the jump scheme approximates; Euler at dt = 0.005 is within ≈ 2 % of
    # its dt → 0 limit here. Tolerance: 4 sd of the log-ratio of two independent MLEs plus that 2 %.
    basin = make_basin(kind, 2, 0.5, 4.0)
    noise = Noise(1.5, model, np.diag([1.0, 0.6]))
    _assert_jump_agrees_with_fine_euler(basin, noise, seed=9)


def test_jump_scheme_handles_a_non_diagonal_noise_matrix():
    basin = make_basin("box", 2, 0.5, 4.0)
    c, s = math.cos(0.5), math.sin(0.5)
    noise = Noise(1.5, "independent", np.array([[c, -s], [s, c]]) @ np.diag([1.0, 0.6]))
    _assert_jump_agrees_with_fine_euler(basin, noise, seed=4)


def test_jump_scheme_is_reproducible_and_censors_at_t_max():
    basin, noise = make_basin("valley", 3, 1.0, 4.0), Noise(1.3, "isotropic", np.eye(3))
    run = lambda seed, t_max: simulate_exits(  # noqa: E731
        basin, noise, 0.05, n_paths=300, dt=0.02, t_max=t_max, seed=seed, scheme="jump"
    )
    a, b, c = run(3, 100.0), run(3, 100.0), run(4, 100.0)
    assert np.array_equal(a.times, b.times) and np.array_equal(a.face, b.face)
    assert not np.array_equal(a.times, c.times)
    short = run(3, 0.5)
    assert np.all(short.times[~short.exited] == 0.5) and np.all(short.times <= 0.5)
    assert np.all((short.face == 0) == ~short.exited)


def test_big_jump_rate_and_small_jump_variance_match_the_levy_measure():
    # the tail of unit SαS is its Lévy tail: P(|X| > x) → ν(|y| > x) as x → ∞
    assert tail_rate(1.5, 200.0) == pytest.approx(2 * stats.levy_stable.sf(200.0, 1.5, 0), rel=0.01)
    # isotropic: ν(‖y‖ > R) is m(G) of the ball of radius R (radon_measure's Monte Carlo)
    ball = make_basin("ellipsoid", 3, 2.0, 4.0)
    assert tail_rate(1.3, 2.0, 3) == pytest.approx(
        radon_measure(ball, Noise(1.3, "isotropic", np.eye(3)), n_mc=1000), rel=1e-9
    )
    # the jumps up to δ of a unit-time increment have variance Σ y² over ν: Monte Carlo of
    # Poisson(ν) on [δ/100, δ] (the rest below adds (1/100)^(2−α) = 10 %, in closed form)
    rng = np.random.default_rng(0)
    delta, a = 0.5, 1.5
    lo = delta / 100
    y = lo * rng.uniform(size=2_000_000) ** (-1 / a)
    y = y[y <= delta]
    per_jump = np.mean(y**2) * (tail_rate(a, lo) - tail_rate(a, delta))
    assert per_jump + small_jump_variance(a, lo) == pytest.approx(
        small_jump_variance(a, delta), rel=0.01
    )


def test_skew_step_relaxes_to_the_two_sided_stationary_law():
    # dX = −a(X) X dt + dB, a = 1 (X > 0), 16 (X < 0): stationary density ∝ exp(−a± x²), so
    # P(X > 0) = (1/√a₊) / (1/√a₊ + 1/√a₋) = 0.8 and E[X²] = P± / (2a±)
    n, f32 = 100_000, torch.float32
    gen = torch.Generator().manual_seed(0)
    a_pos, a_neg, q = (torch.tensor([v], dtype=f32) for v in (1.0, 16.0, 1.0))
    x = torch.zeros((n, 1), dtype=f32)
    for tau in (0.03, 0.3, 3.0, 30.0):  # short, intermediate and long steps, from 0 and on
        t = torch.full((n,), tau, dtype=f32)
        a = torch.where(x > 0, a_pos, a_neg)
        decay, g = _ou_factors(a, t[:, None])
        x1 = decay * x + (q * g).sqrt() * torch.randn((n, 1), generator=gen)
        streams = Streams([gen], [n], torch.device("cpu"))
        x = _skew_ou_step(x, x1, t, decay, q * g, a_pos, a_neg, q, streams)
    assert float((x > 0).float().mean()) == pytest.approx(0.8, abs=0.006)
    assert float(x.square().mean()) == pytest.approx(0.8 / 2 + 0.2 / 32, rel=0.02)


@pytest.mark.parametrize(
    ("kind", "model"),
    [("box", "independent"), ("ellipsoid", "isotropic"), ("valley", "independent")],
)
def test_batch_equals_each_configuration_run_alone(kind, model):
    """Each configuration of a batch (its basin's scale, ε, t_max and seed) draws from its own
    generator in its own run's order, and every operation that mixes paths runs per configuration:
    the batch's exits are bit for bit those of the separate runs (a non-diagonal M exercises the
    correlated Gaussian part and the isotropic jumps' matrix product)."""
    m = np.array([[1.0, 0.3, 0.0], [0.3, 0.8, 0.1], [0.0, 0.1, 0.5]])
    noise = Noise(1.6, model, m)
    basins = [make_basin(kind, 3, w, 4.0) for w in (1.0, 0.5, 1.0)]
    eps, t_max, seeds = [0.02, 0.02, 0.1], [400.0, 80.0, 30.0], [3, 4, 5]
    batch = gradnoise.sde.jump_scheme.simulate_exits_jump_batch(
        basins, noise, eps, n_paths=300, dt=0.02, t_max=t_max, seeds=seeds
    )
    for basin, e, tm, s, b in zip(basins, eps, t_max, seeds, batch, strict=True):
        alone = simulate_exits(
            basin, noise, e, n_paths=300, dt=0.02, t_max=tm, seed=s, scheme="jump"
        )
        np.testing.assert_array_equal(b.times, alone.times)
        np.testing.assert_array_equal(b.exited, alone.exited)
        np.testing.assert_array_equal(b.face, alone.face)
        assert (b.t_max, b.path_steps) == (alone.t_max, alone.path_steps)
        assert 0 < b.exited.sum() < 300  # exits and censored paths both occur
    with pytest.raises(ValueError, match="share their kind"):
        gradnoise.sde.jump_scheme.simulate_exits_jump_batch(
            [basins[0], make_basin("ellipsoid" if kind == "box" else "box", 3, 1.0, 4.0)],
            noise,
            [0.1, 0.1],
            n_paths=10,
            dt=0.02,
            t_max=[1.0, 1.0],
            seeds=[0, 1],
        )


def test_nan_state_stops_the_jump_simulation(monkeypatch):
    real = gradnoise.sde.jump_scheme._big_jumps

    def poisoned(*args):
        step = real(*args)
        step[:1] = float("nan")
        return step

    monkeypatch.setattr(gradnoise.sde.jump_scheme, "_big_jumps", poisoned)
    basin, noise = make_basin("valley", 2, 1.0, 4.0), Noise(1.5, "independent", np.eye(2))
    with pytest.raises(FloatingPointError, match=r"jump scheme, valley basin \(d = 2\)"):
        simulate_exits(basin, noise, 0.1, n_paths=50, dt=0.02, t_max=50.0, seed=0, scheme="jump")


def test_calibration_rows_record_the_scheme(test_config):
    from gradnoise.config import prepare_config

    settings = prepare_config(test_config)["simulate"]
    assert settings["scheme"] == "jump"
    ss = SimSettings(
        **{**settings, "calibration": {"alphas": [1.5], "eps": [0.1, 0.2], "n_paths": 200}}
    )
    table = calibration("test", ss)
    assert set(table["scheme"].to_pylist()) == {"jump"}
    assert all(0.5 < r < 2 for r in table["ratio"].to_pylist())


def test_matched_predictions_equal_the_per_configuration_law(test_config):
    """m(G) is computed once per basin and noise and shared across ε: every row's prediction is
    still exactly 1/(ε^α m(G)) of its own configuration."""
    import pyarrow as pa

    from gradnoise.config import prepare_config
    from gradnoise.io import ALL
    from gradnoise.sde import predicted_exit_time
    from gradnoise.tails import TAILS_SCHEMA

    base = {"experiment": "t", "arm": "sgd", "optimizer": "sgd", "seed": 0, "step": 10}
    base |= {"status": "ok", "split": "train", "view": "raw", "layer": ALL}
    rows = [
        {**base, "quantity": "alpha", "estimator": "per_coordinate", "value": 1.6},
        {
            **base,
            "quantity": "effective_rank",
            "estimator": "gram",
            "value": 3.0,
            "spectrum": [4.0, 2.0, 1.0, 0.5],
        },
    ]
    tails = pa.Table.from_pylist(rows, schema=TAILS_SCHEMA)
    settings = prepare_config(test_config)["simulate"]
    ss = SimSettings(
        **{
            **settings,
            "n_paths": 40,
            "eps": [0.02, 0.05],
            "dims": 4,
            "basins": ["box"],
            "noise_models": ["isotropic", "independent"],
        }
    )
    table = matched("t", "sgd", tails, ss).to_pylist()
    assert len(table) == 2 * 2 * 2  # scales × noise models × ε
    m = matched_noise(tails, ss)["m"]
    for r in table:
        basin = make_basin("box", 4, r["width"], ss.sharp_flat_ratio)
        expected = predicted_exit_time(basin, Noise(1.6, r["noise_model"], m), r["eps"])
        assert r["predicted"] == expected
