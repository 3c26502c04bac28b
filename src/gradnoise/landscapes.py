"""Controlled loss landscapes for the escape stage (DESIGN.md §10c): sharpness, barrier height and
basin width set separately.

BarrierWell, θ ∈ R^d (θ* = 0), escape along θ_0, the other coordinates confined by quadratics:

    f(θ) = u(θ_0) + Σ_{j≥1} h_j θ_j² / 2,
    u(x) = H x² / 2                        for |x| ≤ x_c,
    u(x) = ΔL − K (|x| − w)² / 2           for |x| > x_c,
    x_c = 2 ΔL / (H w),   K = H x_c / (w − x_c),

an inner parabola of curvature H joined C¹ at ±x_c to an inverted parabola whose maxima, of height ΔL,
sit at θ_0 = ±w (the piecewise-parabolic double well of Kramers problems). Value and slope matching at
x_c give exactly these x_c and K. So u''(0) = H (the Hessian eigenvalue along the escape direction),
u(±w) − u(0) = ΔL (barrier height) and w is the distance from the minimum to the barrier (width); the
barrier's curvature −K follows from the other three.

Which combinations are independent: H, ΔL and w can each be changed with the other two fixed as long as
ΔL < H w² / 2 (so that 0 < x_c < w: the inner parabola reaches height ΔL before the barrier). At
ΔL = H w² / 2 the family is the pure quadratic well H θ_0²/2 with exit at |θ_0| = w, where height and
width are tied; the class accepts that limit (x_c = w, no outer part).

Exit (escape) is the first passage past a barrier top, |θ_0| > w. The other coordinates have no
boundary: they matter only through optimizers that couple coordinates (Adai's mean of v̂), which is why
they carry curvatures h_j different from H (with one coordinate Adai's β1 is constant, DESIGN.md §10c).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class BarrierWell:
    sharpness: float  # H = u''(0)
    height: float  # ΔL = u(±w) − u(0)
    width: float  # w: distance from θ* = 0 to the barrier tops at θ_0 = ±w
    other_curvatures: tuple[float, ...] = (1.0,)  # h_1 … h_{d−1}

    def __post_init__(self) -> None:
        h, dl, w = self.sharpness, self.height, self.width
        if min(h, dl, w) <= 0 or any(c <= 0 for c in self.other_curvatures):
            raise ValueError("sharpness, height, width and other curvatures must be positive")
        if dl > h * w * w / 2 * (1 + 1e-12):
            raise ValueError(
                f"height {dl} exceeds sharpness·width²/2 = {h * w * w / 2}: "
                "no barrier of that height fits inside the width"
            )

    @property
    def dim(self) -> int:
        return 1 + len(self.other_curvatures)

    @property
    def joint(self) -> float:
        """x_c = 2ΔL/(H w), where the inner parabola meets the barrier's parabola."""
        return min(2 * self.height / (self.sharpness * self.width), self.width)

    @property
    def barrier_curvature(self) -> float:
        """K = H x_c / (w − x_c) (infinite for the pure quadratic well)."""
        xc, w = self.joint, self.width
        return math.inf if xc >= w else self.sharpness * xc / (w - xc)

    def hessian_at_minimum(self) -> np.ndarray:
        return np.diag([self.sharpness, *self.other_curvatures])

    def profile(self, x: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """u(x) along the escape direction (numpy or torch)."""
        lib = torch if isinstance(x, torch.Tensor) else np
        ax = abs(x)
        inner = self.sharpness * x * x / 2
        if self.joint >= self.width:
            return inner
        outer = self.height - self.barrier_curvature * (ax - self.width) ** 2 / 2
        return lib.where(ax <= self.joint, inner, outer)

    def value(self, theta: torch.Tensor) -> torch.Tensor:
        """f(θ) for θ of shape (paths, d)."""
        h = theta.new_tensor(self.other_curvatures)
        return self.profile(theta[:, 0]) + (h * theta[:, 1:].square()).sum(dim=1) / 2

    def grad(self, theta: torch.Tensor) -> torch.Tensor:
        """∇f(θ) for θ of shape (paths, d): (u'(θ_0), h_1 θ_1, …)."""
        x = theta[:, :1]
        if self.joint < self.width:
            du = _slope(x, self.sharpness, self.joint, self.barrier_curvature, self.width)
        else:
            du = self.sharpness * x
        return torch.cat([du, theta[:, 1:] * theta.new_tensor(self.other_curvatures)], dim=1)

    def exited(self, theta: torch.Tensor) -> torch.Tensor:
        """First passage past a barrier top: |θ_0| > w."""
        return theta[:, 0].abs() > self.width


def _slope(
    x: torch.Tensor,
    sharpness: float | torch.Tensor,
    joint: float | torch.Tensor,
    curvature: float | torch.Tensor,
    width: float | torch.Tensor,
) -> torch.Tensor:
    """u'(x) for x of shape (paths, 1), the parameters numbers or (paths, 1) columns: the same
    arithmetic either way."""
    outer = curvature * (width - x.abs()) * x.sign()
    return torch.where(x.abs() <= joint, sharpness * x, outer)


@dataclass(frozen=True)
class WellRows:
    """Paths on several BarrierWells of one dimension stacked in one θ, each row with its own
    landscape's parameters: ``grad`` and ``exited`` give every path what its BarrierWell gives it,
    bit for bit (a pure quadratic well's joint is +∞ here, so that the inner parabola always
    applies)."""

    params: torch.Tensor  # (paths, 4): H, x_c, K, w
    others: torch.Tensor  # (paths, d − 1): h_1 … h_{d−1}

    @staticmethod
    def of(wells: Sequence[BarrierWell], config: torch.Tensor, dtype: torch.dtype) -> WellRows:
        """Row i on ``wells[config[i]]``."""
        pure = [w.joint >= w.width for w in wells]
        params = torch.tensor(
            [
                [w.sharpness, math.inf, 0.0, w.width]
                if p
                else [w.sharpness, w.joint, w.barrier_curvature, w.width]
                for w, p in zip(wells, pure, strict=True)
            ],
            dtype=dtype,
            device=config.device,
        )
        others = torch.tensor(
            [w.other_curvatures for w in wells], dtype=dtype, device=config.device
        )
        return WellRows(params[config], others[config])

    def select(self, rows: torch.Tensor) -> WellRows:
        return WellRows(self.params[rows], self.others[rows])

    def grad(self, theta: torch.Tensor) -> torch.Tensor:
        p = self.params
        du = _slope(theta[:, :1], p[:, :1], p[:, 1:2], p[:, 2:3], p[:, 3:])
        return torch.cat([du, theta[:, 1:] * self.others], dim=1)

    def exited(self, theta: torch.Tensor) -> torch.Tensor:
        return theta[:, 0].abs() > self.params[:, 3]
