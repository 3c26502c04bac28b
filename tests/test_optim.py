"""Adai/AdaiW against an independent step-by-step numpy computation of DESIGN.md §7."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gradnoise.optim import Adai, build_optimizer, optimizer_settings
from gradnoise.views import momentum_of


def numpy_adai(params, grads_seq, lr, beta0, beta2, eps, wd, decoupled):
    """Reference: the definition written out with plain arrays; mean of v̂ over all parameters."""
    theta = [p.copy() for p in params]
    v = [np.zeros_like(p) for p in params]
    m = [np.zeros_like(p) for p in params]
    prod = [np.ones_like(p) for p in params]
    for t, grads_fn in enumerate(grads_seq, start=1):
        grads = grads_fn(theta)
        g_used = [
            g + wd * th if (wd and not decoupled) else g for g, th in zip(grads, theta, strict=True)
        ]
        for i, g in enumerate(g_used):
            v[i] = beta2 * v[i] + (1 - beta2) * g * g
        v_hat = [vi / (1 - beta2**t) for vi in v]
        v_bar = sum(vh.sum() for vh in v_hat) / sum(vh.size for vh in v_hat)
        for i, g in enumerate(g_used):
            b1 = np.clip(1 - beta0 * v_hat[i] / v_bar, 0.0, 1 - eps)
            prod[i] = prod[i] * b1
            m[i] = b1 * m[i] + (1 - b1) * g
            m_hat = m[i] / (1 - prod[i])
            if decoupled and wd:
                theta[i] = theta[i] * (1 - lr * wd)
            theta[i] = theta[i] - lr * m_hat
    return theta


@pytest.mark.parametrize(("wd", "decoupled"), [(0.0, False), (0.01, False), (0.01, True)])
def test_adai_matches_independent_computation_over_several_steps(wd, decoupled):
    rng = np.random.default_rng(0)
    shapes = [(3, 4), (4,), (2, 2)]
    init = [rng.standard_normal(s) for s in shapes]
    targets = [rng.standard_normal(s) for s in shapes]
    scales = [1.0, 10.0, 0.1]  # gradients of different magnitudes give different β1 per coordinate

    def grads_of(
        theta,
    ):  # gradient of Σ_i scale_i ‖θ_i − target_i‖³ (non-quadratic, coordinate-coupled)
        return [
            3 * s * (th - tg) * np.abs(th - tg)
            for th, tg, s in zip(theta, targets, scales, strict=True)
        ]

    steps = 6
    ref = numpy_adai(init, [grads_of] * steps, 0.05, 0.1, 0.99, 1e-3, wd, decoupled)
    params = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in init]
    # two parameter groups: the mean of v̂ must still run over all parameters
    opt = Adai(
        [{"params": params[:2]}, {"params": params[2:]}],
        lr=0.05,
        weight_decay=wd,
        decoupled=decoupled,
    )
    for _ in range(steps):
        opt.zero_grad()
        loss = sum(
            s * ((p - torch.tensor(t)).abs() ** 3).sum()
            for p, t, s in zip(params, targets, scales, strict=True)
        )
        loss.backward()
        opt.step()
    for p, r in zip(params, ref, strict=True):
        np.testing.assert_allclose(p.detach().numpy(), r, rtol=1e-10, atol=1e-12)


def test_adaiw_is_adai_with_decoupled_weight_decay():
    p = torch.nn.Parameter(torch.ones(3))
    opt = build_optimizer("adaiw", [p], {"lr": 0.1, "weight_decay": 0.5})
    assert isinstance(opt, Adai) and opt.param_groups[0]["decoupled"] is True


def test_adai_rejects_bad_hyperparameters():
    with pytest.raises(ValueError):
        Adai([torch.nn.Parameter(torch.ones(1))], lr=-1.0)


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("sgd", torch.optim.SGD),
        ("sgdm", torch.optim.SGD),
        ("adam", torch.optim.Adam),
        ("adamw", torch.optim.AdamW),
    ],
)
def test_torch_optimizers_are_built_with_their_settings(name, cls):
    p = torch.nn.Parameter(torch.ones(2))
    opt = build_optimizer(
        name, [p], {"lr": 0.01, "momentum": 0.8} if name == "sgdm" else {"lr": 0.01}
    )
    assert isinstance(opt, cls)
    assert opt.param_groups[0].get("momentum", 0.0) == (
        0.8 if name == "sgdm" else 0.0
    ) or name.startswith("adam")


@pytest.mark.parametrize("name", ["sgd", "sgdm", "adam", "adamw", "adai", "adaiw"])
def test_optimizer_settings_are_what_the_built_optimizer_holds(name):
    """``optimizer_settings`` (read without building an optimizer) is the built param group's."""
    hp = {"lr": 0.01, "momentum": 0.8, "betas": (0.5, 0.9), "eps": 1e-4, "weight_decay": 0.1}
    for hparams in ({"lr": 0.01}, hp):
        settings = optimizer_settings(name, hparams)
        group = build_optimizer(name, [torch.nn.Parameter(torch.ones(2))], hparams).param_groups[0]
        assert settings == {k: group[k] for k in settings}
    with pytest.raises(ValueError, match="unknown optimizer"):
        optimizer_settings("lamb", {"lr": 0.1})


def test_momentum_of_each_optimizer():
    assert momentum_of("sgd", {}) is None
    assert momentum_of("sgdm", {"momentum": 0.8}) == 0.8
    assert momentum_of("adam", {"betas": [0.85, 0.99]}) == 0.85
    assert momentum_of("adai", {"betas": [0.1, 0.99]}) == pytest.approx(0.9)
