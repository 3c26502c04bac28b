"""The escape stage: vectorized update rules against the optimizer classes, measured exit times against
exact and asymptotic laws, the theories' predictions, the fits, and escape from a network's minimum."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from gradnoise.escape import (
    InjectedNoise,
    diffusion_log_tau,
    escape_from_minimum,
    escape_sweep,
    escape_times,
    escape_times_batch,
    fit_line,
    fit_sweep,
    predictions,
    update_rule,
)
from gradnoise.landscapes import BarrierWell
from gradnoise.optim import build_optimizer
from gradnoise.sde import predicted_exit_time_1d

F64 = torch.float64

CASES = [
    ("sgd", {"lr": 0.05}),
    ("sgd", {"lr": 0.05, "weight_decay": 0.1}),
    ("sgdm", {"lr": 0.02, "momentum": 0.9}),
    ("sgdm", {"lr": 0.02, "momentum": 0.8, "nesterov": True, "weight_decay": 0.1}),
    ("adam", {"lr": 0.01}),
    ("adam", {"lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.1}),
    ("adamw", {"lr": 0.01}),
    ("adai", {"lr": 0.1}),
    ("adai", {"lr": 0.1, "betas": (0.2, 0.9), "weight_decay": 0.1}),
    ("adaiw", {"lr": 0.1, "weight_decay": 0.1}),
]


def _gradient(theta: torch.Tensor, noise: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """A θ-dependent, coordinate-coupled gradient: scale·(θ³ + θ·θ_0 + noise)."""
    return scale * (theta**3 + theta * theta[..., :1] + noise)


@pytest.mark.parametrize(("name", "hparams"), CASES)
def test_vectorized_rule_equals_the_optimizer_class_path_by_path(name, hparams):
    paths, d, steps = 4, 3, 20
    gen = torch.Generator().manual_seed(3)
    theta0 = torch.randn(paths, d, generator=gen, dtype=F64)
    noises = torch.randn(steps, paths, d, generator=gen, dtype=F64)
    # paths differ in gradient scale by 10×: a mean of v̂ taken across paths would show at once
    scale = 10.0 ** torch.arange(paths, dtype=F64)[:, None]
    rule = update_rule(name, hparams)
    theta, state = theta0.clone(), rule.init(theta0)
    vec = []
    for k in range(steps):
        theta = rule.step(theta, _gradient(theta, noises[k], scale), state)
        vec.append(theta)
    for p in range(paths):
        param = torch.nn.Parameter(theta0[p].clone())
        opt = build_optimizer(name, [param], hparams)
        for k in range(steps):
            param.grad = _gradient(param.detach(), noises[k, p], scale[p])
            opt.step()
            np.testing.assert_allclose(
                param.detach().numpy(), vec[k][p].numpy(), rtol=1e-9, atol=1e-12
            )


def _ar1_mean_exit(a: float, c: float, w: float, n: int = 200) -> float:
    """Exact mean first exit time from (−w, w) of x_{t+1} = a x_t + c z_t, x_0 = 0: T solves
    T(x) = 1 + ∫_{−w}^{w} φ((y − a x)/c)/c T(y) dy, by Nyström's method on Gauss–Legendre nodes."""
    x, wt = np.polynomial.legendre.leggauss(n)
    x, wt = x * w, wt * w
    kernel = stats.norm.pdf((x[None, :] - a * x[:, None]) / c) / c
    t = np.linalg.solve(np.eye(n) - kernel * wt[None, :], np.ones(n))
    return float(1 + np.sum(wt * stats.norm.pdf(x / c) / c * t))


def test_sgd_in_a_quadratic_well_matches_the_exact_ar1_first_passage_time():
    """SGD on H θ²/2 with N(0, σ²) gradient noise is θ ← (1 − ηH)θ − ησ z. With 4,000 uncensored paths
    the sample mean's standard error (≈ 1.5 %) is estimated from the sample; the quadrature is exact to
    far below that, so the measured mean must lie within 4 standard errors."""
    h, w, lr, s = 1.0, 1.0, 0.1, math.sqrt(4.75)
    exact = _ar1_mean_exit(1 - lr * h, lr * s * math.sqrt(h), w)
    ex = escape_times(
        BarrierWell(h, h * w * w / 2, w, other_curvatures=()),
        "sgd",
        {"lr": lr},
        InjectedNoise("gaussian", scale=s),
        n_paths=4000,
        max_iters=100_000,
        seed=1,
        dtype=F64,
    )
    assert ex.exited.all()
    se = ex.times.std(ddof=1) / math.sqrt(len(ex.times))
    assert abs(ex.times.mean() - exact) < 4 * se
    assert 50 < exact < 100  # a regime with several relaxation times (1/(ηH) = 10) per exit


def test_sgd_with_sas_noise_matches_the_levy_exit_law():
    """SGD with step η on θ²/2 and SαS noise of scale c is the Euler scheme (dt = η) of
    dθ = −θ dt + ε dL with ε = c η^(1−1/α) (DESIGN.md §5), so E τ ≈ predicted_exit_time_1d / η
    iterations. α = 1.5, ε = 0.05: the finite-ε bias is −1 to −3 % (DESIGN.md §5a) and the MLE's
    standard error 1/√2000 ≈ 2.2 %; the ratio must lie within about 3 standard errors of that."""
    alpha, eps, lr, w = 1.5, 0.05, 0.1, 1.0
    c = eps / lr ** (1 - 1 / alpha)
    noise = InjectedNoise("sas", scale=c * math.sqrt(2), alpha=alpha)  # u = s ξ/√2 has scale c
    land = BarrierWell(1.0, w * w / 2, w, other_curvatures=())
    predicted = predicted_exit_time_1d(alpha, eps, w, w) / lr
    assert math.exp(predictions(land, "sgd", {"lr": lr}, noise)["log_tau_levy"]) == pytest.approx(
        predicted, rel=1e-12
    )
    ex = escape_times(
        land,
        "sgd",
        {"lr": lr},
        noise,
        n_paths=2000,
        max_iters=int(4 * predicted),
        seed=2,
        dtype=F64,
    )
    assert 0.90 < ex.mean / predicted < 1.06


@pytest.mark.parametrize(
    ("name", "noise"),
    [("adam", InjectedNoise("sas", alpha=1.5)), ("adai", InjectedNoise("gaussian", 0.7))],
)
def test_batch_of_landscapes_equals_each_landscape_run_alone(name, noise):
    """Each landscape of a batch draws from its own generator in its own run's order and is frozen
    and dropped on the same iterations: the batch gives every landscape bit for bit its own run's
    exit times (a pure quadratic well and barrier wells of several shapes, with warm-up)."""
    lands = [
        BarrierWell(2.0, 0.25, 0.5, (1.0, 0.5)),  # ΔL = H w²/2: the pure quadratic well
        BarrierWell(2.0, 0.1, 0.5, (1.0, 0.5)),
        BarrierWell(4.0, 0.15, 0.8, (2.0, 0.5)),
    ]
    seeds, kw = [7, 8, 9], {"n_paths": 50, "max_iters": 150, "warmup": 20, "dtype": F64}
    batch = escape_times_batch(lands, name, {"lr": 0.1}, noise, seeds=seeds, **kw)
    for land, seed, b in zip(lands, seeds, batch, strict=True):
        alone = escape_times(land, name, {"lr": 0.1}, noise, seed=seed, **kw)
        np.testing.assert_array_equal(b.times, alone.times)
        assert (b.mean, b.path_steps) == (alone.mean, alone.path_steps)
        assert 0 < b.n_exits < 50  # exits and censored paths both occur


def test_noise_covariance_is_the_scaled_hessian_and_sas_at_two_is_gaussian():
    land = BarrierWell(4.0, 0.5, 1.0, other_curvatures=(1.0, 0.25))
    hess = land.hessian_at_minimum()
    gen = torch.Generator().manual_seed(0)
    for noise in (
        InjectedNoise("gaussian", 2.0, 8.0),
        InjectedNoise("sas", 2.0, 8.0, alpha=2.0),
        InjectedNoise("sas", 2.0, 8.0, alpha=2.0, model="isotropic"),
    ):
        u = noise.sampler(hess, gen, torch.device("cpu"), F64)(200_000).numpy()
        # Σ = s² H / B = diag(2, 0.5, 0.125); sampling sd of a variance ≈ √(2/n) ≈ 0.3 %
        np.testing.assert_allclose(np.cov(u.T), 0.5 * hess, rtol=0.02, atol=0.005)
    rot = np.array([[0.6, -0.8], [0.8, 0.6]])
    full = rot @ np.diag([4.0, 1.0]) @ rot.T
    m = InjectedNoise("gaussian", 1.5, 2.0).scale_matrix(full)
    np.testing.assert_allclose(m @ m, 1.5**2 * full / 2.0, rtol=1e-12)


def test_non_finite_parameters_raise_instead_of_counting_as_exits():
    # the confining coordinate is unstable (lr·h = 10 > 2): it overflows while θ_0 stays inside
    land = BarrierWell(0.01, 0.001, 1.0, other_curvatures=(100.0,))
    with pytest.raises(FloatingPointError, match="non-finite"):
        escape_times(
            land,
            "sgd",
            {"lr": 0.1},
            InjectedNoise("gaussian", 1e-3),
            n_paths=10,
            max_iters=200,
            seed=0,
        )


@pytest.mark.parametrize(
    ("name", "hparams", "exponent"),
    [
        ("sgd", {"lr": 0.1}, lambda b, dl, lr, s, h: 2 * b * dl / (lr * s * s * h)),
        ("adai", {"lr": 0.1}, lambda b, dl, lr, s, h: 2 * b * dl / (lr * s * s * h)),
        (
            "sgdm",
            {"lr": 0.01, "momentum": 0.9},
            lambda b, dl, lr, s, h: 2 * 0.1 * b * dl / (lr * s * s * h),
        ),
        (
            "adam",
            {"lr": 0.01, "eps": 0.0},
            lambda b, dl, lr, s, h: 2 * math.sqrt(b) * dl / (lr * s * math.sqrt(h)),
        ),
    ],
)
def test_kramers_exponents_are_the_stated_laws(name, hparams, exponent):
    b, dl, s, h = 4.0, 0.3, 0.7, 2.5
    land = BarrierWell(h, dl, 1.0)
    pred = predictions(land, name, hparams, InjectedNoise("gaussian", s, b))
    assert pred["kramers_exponent"] == pytest.approx(exponent(b, dl, hparams["lr"], s, h))


def test_exact_diffusion_time_approaches_kramers_at_high_barriers():
    """For the piecewise-parabolic well, (1/D)∫∫ tends to π/(2P√(HK)) e^{ΔL/T} (SDE time) as
    ΔL/T → ∞, with relative corrections O(T/ΔL); at ΔL/T = 40 they are a few per cent."""
    lr, gain, sd = 0.05, 1.0, 0.2
    temp = lr * gain * sd**2 / 2
    land = BarrierWell(2.0, 40 * temp, 1.0)
    k = land.barrier_curvature
    kramers = math.log(math.pi / (2 * gain * math.sqrt(land.sharpness * k)) / lr) + 40
    assert diffusion_log_tau(land, lr, gain, sd) == pytest.approx(kramers, abs=0.06)


def test_weighted_fit_recovers_a_known_slope_with_honest_coverage():
    rng = np.random.default_rng(0)
    h = np.array([1.0, 1.5, 2.0, 3.0, 4.0])
    x = 1 / h
    sd = np.array([0.05, 0.05, 0.1, 0.1, 0.2])
    covered = 0
    for _ in range(400):
        y = 1.0 + 6.0 * x + rng.normal(0, sd)
        fit = fit_line(x, y, sd)
        covered += fit.low < 6.0 < fit.high
    # nominal 95 %; with 400 replications the binomial sd is 1.1 %, and the χ² inflation only widens
    assert 0.92 < covered / 400 <= 1.0
    exact = fit_line(x, 2.0 - 3.0 * x)
    assert exact.slope == pytest.approx(-3.0) and exact.high - exact.low < 1e-9


def test_fit_line_intervals_use_scipy_stats_own_quantiles():
    """The t and normal quantiles come from scipy.special: the same numbers as scipy.stats'."""
    x = np.array([1.0, 2.0, 3.0, 4.0, 6.0])
    y = np.array([0.1, 2.3, 3.8, 6.4, 9.9])
    cases = [(None, stats.t.ppf(0.975, 3)), (np.full(5, 0.01), stats.t.ppf(0.975, 3))]
    cases.append((np.full(5, 10.0), stats.norm.ppf(0.975)))  # χ²_red < 1: no inflation
    for sd, q in cases:
        fit = fit_line(x, y, sd)
        half = (fit.high - fit.low) / 2
        w = np.ones(5) if sd is None else 1 / sd**2
        xm = np.sum(w * x) / np.sum(w)
        var = 1 / np.sum(w * (x - xm) ** 2)
        resid = y - fit.intercept - fit.slope * x
        chi2_red = np.sum(w * resid**2) / 3
        scale = chi2_red if sd is None or chi2_red > 1 else 1.0
        assert half == pytest.approx(q * np.sqrt(var * scale), rel=1e-9)


def test_fit_sweep_reads_the_theories_slopes_off_their_predictions():
    """On constructed rows whose 'measured' times follow the Kramers exponent exactly, the measured
    slope against 1/H is the exponent's coefficient, and the Lévy slope against log H is −α/2."""
    base = BarrierWell(1.0, 0.25, 1.0)
    noise = InjectedNoise("sas", scale=0.9, alpha=1.5)
    rows = []
    for h in (1.0, 1.5, 2.0, 3.0):
        land = BarrierWell(h, base.height, base.width)
        pred = predictions(land, "sgd", {"lr": 0.1}, noise)
        rows.append(
            {
                "axis": "sharpness",
                "sharpness": h,
                "n_exits": 1000,
                "mean_exit": 7.0 * math.exp(pred["kramers_exponent"]),
                **pred,
            }
        )
    fits = {f["regressor"]: f for f in fit_sweep(rows)}
    coef = 2 * 1.0 * 0.25 / (0.1 * 0.9**2)
    assert fits["inv_h"]["slope"] == pytest.approx(coef)
    assert fits["inv_h"]["slope_kramers"] == pytest.approx(coef)
    assert fits["log_h"]["slope_levy"] == pytest.approx(-0.75)
    # the exact SDE carries the prefactor's H-dependence: close to, not equal to, the leading order
    assert fits["inv_h"]["slope_diffusion"] == pytest.approx(coef, rel=0.3)


def test_sweep_rows_carry_measurements_and_both_predictions():
    rows = escape_sweep(
        "width",
        [1.0, 1.5],
        BarrierWell(2.0, 0.2, 1.0),
        "adai",
        {"lr": 0.1},
        InjectedNoise("sas", scale=0.5, alpha=1.5),
        n_paths=200,
        max_iters=300,
        seed=0,
        dtype=F64,
    )
    assert [r["width"] for r in rows] == [1.0, 1.5]
    for r in rows:
        assert r["n_exits"] > 0 and r["ci_low"] < r["mean_exit"] < r["ci_high"]
        assert math.isfinite(r["log_tau_levy"]) and math.isfinite(r["log_tau_diffusion"])
    fits = fit_sweep(rows)
    assert fits[0]["regressor"] == "log_width"
    assert fits[0]["slope_levy"] == pytest.approx(1.5)  # τ ∝ w^α


def test_escape_from_a_network_minimum_records_first_passages_per_radius():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(256, 10, generator=gen)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(10, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    res = escape_from_minimum(
        model, x, y, "sgd", {"lr": 0.5}, [0.5, 0.05, 1e6], max_iters=300, batch_size=32, seed=1
    )
    np.testing.assert_array_equal(res.radii, [0.05, 0.5, 1e6])
    assert res.exited.tolist() == [True, True, False] and res.times[-1] == 300
    assert len(res.distance) == 300
    for r, t in zip(res.radii[:2], res.times[:2], strict=True):
        assert res.distance[t - 1] > r and (res.distance[: t - 1] <= r).all()
    assert res.times[0] <= res.times[1]


def test_a_checkpointed_state_does_not_bring_back_its_learning_rate():
    """torch's load_state_dict restores the saved lr; escape_from_minimum keeps the one asked for."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(128, 6, generator=gen)
    y = (x[:, 0] > 0).long()
    torch.manual_seed(0)
    model = torch.nn.Linear(6, 2)
    fast = torch.optim.SGD(model.parameters(), lr=5.0, momentum=0.9)
    state = fast.state_dict()  # no moments yet: only the hyperparameters would leak
    res = escape_from_minimum(
        model, x, y, "sgdm", {"lr": 1e-6, "momentum": 0.9}, [1e-2], 50, 32, 0, state
    )
    assert not res.exited[0] and res.distance.max() < 1e-3
