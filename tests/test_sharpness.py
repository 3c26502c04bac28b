"""Lanczos, power iteration and Hutchinson on models whose Hessian is known in closed form, and
Lanczos against power iteration on a small network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gradnoise.sharpness import hutchinson_trace, loss_hvp, power_iteration, top_eigenvalue


def test_top_eigenvalue_and_trace_of_least_squares():
    """Linear model, loss = mean over n·k of (Xw − Y)²: H = (2/(n k)) XᵀX ⊗ I_k."""
    torch.manual_seed(0)
    n, d, k = 64, 6, 3
    x = torch.randn(n, d, dtype=torch.float64) * torch.tensor(
        [3.0, 1, 1, 0.5, 0.2, 0.1], dtype=torch.float64
    )
    y = torch.randn(n, k, dtype=torch.float64)
    model = torch.nn.Linear(d, k, bias=False).double()
    hvp = loss_hvp(
        model,
        [(x[:32], y[:32]), (x[32:], y[32:])],
        loss=lambda net, b: ((net(b[0]) - b[1]) ** 2).mean(),
    )
    xtx = (x.T @ x).numpy()
    params = list(model.parameters())
    top = top_eigenvalue(hvp, params, max_iter=100, tol=1e-6, seed=1)
    assert top.converged
    assert top.value == pytest.approx(2 / (n * k) * np.linalg.eigvalsh(xtx).max(), rel=1e-4)
    trace, se = hutchinson_trace(hvp, params, n_samples=400, seed=2)
    exact = 2 / (n * k) * k * np.trace(xtx)
    assert abs(trace - exact) < 4 * se + 1e-9


def test_power_iteration_stops_at_max_iter_when_not_converged():
    diag = torch.tensor([1.0, 0.9], dtype=torch.float64)  # slow: the error shrinks by 0.81 a step
    top = power_iteration(
        lambda v: [v[0] * diag], [torch.zeros(2, dtype=torch.float64)], max_iter=3, tol=1e-12
    )
    assert top.iterations == 3 and not top.converged


def test_lanczos_stops_at_max_iter_when_not_converged_and_is_exact_on_an_invariant_subspace():
    diag = torch.linspace(1.0, 0.5, 50, dtype=torch.float64)
    shape = [torch.zeros(50, dtype=torch.float64)]
    top = top_eigenvalue(lambda v: [v[0] * diag], shape, max_iter=3, tol=1e-12)
    assert top.iterations == 3 and not top.converged
    two = torch.tensor([1.0, 0.9], dtype=torch.float64)  # 2-D: the Krylov space is everything
    top = top_eigenvalue(lambda v: [v[0] * two], [shape[0][:2]], max_iter=10, tol=1e-12)
    assert top.converged and top.iterations == 2 and top.value == pytest.approx(1.0, rel=1e-12)


def test_lanczos_finds_the_largest_magnitude_eigenvalue_even_when_negative():
    diag = torch.tensor([-3.0, 2.0, 1.0, 0.5, 0.1], dtype=torch.float64)
    top = top_eigenvalue(lambda v: [v[0] * diag], [torch.zeros(5, dtype=torch.float64)], tol=1e-9)
    assert top.converged and top.value == pytest.approx(-3.0, rel=1e-8)


def test_lanczos_matches_power_iteration_on_a_small_network_with_fewer_products():
    """A small tanh MLP on random data (an indefinite Hessian): both methods agree with the
    exact eigenvalue (of the full Hessian), Lanczos within tol, closer and with fewer products."""
    torch.manual_seed(0)
    x, y = torch.randn(256, 10), torch.randint(0, 3, (256,))
    model = torch.nn.Sequential(torch.nn.Linear(10, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(200):  # near a minimum, as the sharpness stage sees it
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    hvp = loss_hvp(model, [(x[:128], y[:128]), (x[128:], y[128:])])
    params = [p for p in model.parameters() if p.requires_grad]
    sizes = [p.numel() for p in params]
    columns = []  # the full Hessian, one product per unit vector (227 parameters)
    for e in torch.eye(sum(sizes)):
        parts = [c.reshape(p.shape) for c, p in zip(e.split(sizes), params, strict=True)]
        columns.append(torch.cat([h.reshape(-1) for h in hvp(parts)]))
    eigenvalues = np.linalg.eigvalsh(torch.stack(columns).double().numpy())
    exact = eigenvalues[np.argmax(np.abs(eigenvalues))]
    power = power_iteration(hvp, params, max_iter=100, tol=1e-3, seed=0)
    lanczos = top_eigenvalue(hvp, params, max_iter=100, tol=1e-3, seed=0)
    assert lanczos.converged
    assert lanczos.value == pytest.approx(exact, rel=1e-3)
    # power iteration's rule (the estimate moved by < tol) stops short of tol on a small gap
    assert abs(lanczos.value - exact) <= abs(power.value - exact)
    assert lanczos.value == pytest.approx(power.value, rel=1e-2)
    assert lanczos.iterations < power.iterations
