"""Power iteration and Hutchinson on a model whose Hessian is known in closed form."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gradnoise.sharpness import hutchinson_trace, loss_hvp, top_eigenvalue


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
        model, [(x[:32], y[:32]), (x[32:], y[32:])], loss=lambda out, t: ((out - t) ** 2).mean()
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
    top = top_eigenvalue(
        lambda v: [v[0] * diag], [torch.zeros(2, dtype=torch.float64)], max_iter=3, tol=1e-12
    )
    assert top.iterations == 3 and not top.converged
