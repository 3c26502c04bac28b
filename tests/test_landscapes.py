"""The BarrierWell's sharpness, barrier height and width are what its parameters say."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gradnoise.landscapes import BarrierWell

F64 = torch.float64


def _point(x0: float, rest: tuple[float, ...] = (0.0, 0.0)) -> torch.Tensor:
    return torch.tensor([[x0, *rest]], dtype=F64)


@pytest.mark.parametrize(("h", "dl", "w"), [(2.0, 0.3, 1.0), (0.8, 0.1, 0.7), (5.0, 2.4, 1.0)])
def test_sharpness_height_and_width_are_the_parameters(h, dl, w):
    land = BarrierWell(h, dl, w, other_curvatures=(0.5, 3.0))
    # Hessian at the minimum by central differences of the gradient
    step = 1e-5
    hess = np.stack(
        [
            (
                (land.grad(torch.eye(3, dtype=F64)[i : i + 1] * step))
                - land.grad(-torch.eye(3, dtype=F64)[i : i + 1] * step)
            )[0].numpy()
            / (2 * step)
            for i in range(3)
        ]
    )
    np.testing.assert_allclose(hess, land.hessian_at_minimum(), rtol=1e-8, atol=1e-10)
    f0 = land.value(_point(0.0)).item()
    for side in (-1, 1):
        top = _point(side * w)
        assert land.value(top).item() - f0 == pytest.approx(dl, rel=1e-12)
        assert land.grad(top)[0, 0].item() == pytest.approx(0.0, abs=1e-12)  # the barrier's top
        # the profile rises on the way out and falls beyond the top
        inside, beyond = _point(side * 0.99 * w), _point(side * 1.01 * w)
        assert land.grad(inside)[0, 0].item() * side > 0
        assert land.grad(beyond)[0, 0].item() * side < 0
        assert land.value(beyond).item() < land.value(top).item()
    assert bool(land.exited(_point(1.001 * w))) and not bool(land.exited(_point(0.999 * w)))


def test_gradient_is_the_derivative_of_the_value_and_continuous_at_the_joint():
    land = BarrierWell(3.0, 0.4, 1.2, other_curvatures=(0.2,))
    theta = (torch.rand(500, 2, dtype=F64, generator=torch.Generator().manual_seed(0)) - 0.5) * 4
    theta.requires_grad_(True)
    (auto,) = torch.autograd.grad(land.value(theta).sum(), theta)
    np.testing.assert_allclose(land.grad(theta.detach()).numpy(), auto.numpy(), rtol=1e-12)
    xc = land.joint
    left, right = (
        land.grad(_point(xc * (1 - 1e-9), (0.0,))),
        land.grad(_point(xc * (1 + 1e-9), (0.0,))),
    )
    assert left[0, 0].item() == pytest.approx(right[0, 0].item(), rel=1e-6)


def test_each_parameter_changes_alone_and_the_quadratic_limit_ties_them():
    base = BarrierWell(2.0, 0.25, 1.0)
    for land in (
        BarrierWell(4.0, 0.25, 1.0),
        BarrierWell(2.0, 0.5, 1.0),
        BarrierWell(2.0, 0.25, 1.5),
    ):
        x = torch.linspace(-1, 1, 5, dtype=F64)[:, None] * land.width
        pts = torch.cat([x, torch.zeros_like(x)], dim=1)
        assert land.hessian_at_minimum()[0, 0] == land.sharpness
        assert (land.value(pts[-1:]) - land.value(pts[2:3])).item() == pytest.approx(land.height)
    assert base.barrier_curvature == pytest.approx(2.0 * 0.25 / (1.0 - 0.25))
    quad = BarrierWell(2.0, 1.0, 1.0)  # ΔL = H w²/2: the pure quadratic well
    x = torch.tensor([[0.3, 0.0], [1.5, 0.0]], dtype=F64)
    np.testing.assert_allclose(quad.grad(x)[:, 0].numpy(), [0.6, 3.0])
    with pytest.raises(ValueError, match="exceeds"):
        BarrierWell(2.0, 1.01, 1.0)
