"""The basins G around θ* = 0 whose first exit times the SDEs are simulated for, and the distance
a jump may go and stay inside."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

BASINS = ("box", "ellipsoid", "valley")


@dataclass(frozen=True)
class Basin:
    """G around θ* = 0. box/valley: Π_i (−lower_i, upper_i); ellipsoid: Σ (θ_i/upper_i)² < 1.
    f = Σ h_i θ_i²/2 (valley: curvature h_lower on the negative side)."""

    kind: str
    lower: np.ndarray
    upper: np.ndarray
    h_upper: np.ndarray
    h_lower: np.ndarray

    @property
    def dim(self) -> int:
        return len(self.upper)

    def inside(self, x: torch.Tensor, lo: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        if self.kind == "ellipsoid":
            return (x / up).square().sum(dim=1) < 1
        return ((x < up) & (x > -lo)).all(dim=1)

    def exit_distance(self, directions: np.ndarray) -> np.ndarray:
        """r(v) = sup{r : r v ∈ G} for each row v (how far a jump along v may go and stay inside)."""
        v = np.atleast_2d(directions)
        if self.kind == "ellipsoid":
            return 1.0 / np.sqrt(np.sum((v / self.upper) ** 2, axis=1))
        with np.errstate(divide="ignore"):
            bound = np.where(v > 0, self.upper / v, np.where(v < 0, -self.lower / v, np.inf))
        return bound.min(axis=1)

    def min_exit_distance(self, m: np.ndarray) -> float:
        """inf over unit w of r(M w): the shortest jump of L that can leave G (box: the row norms
        of M against the nearest bounds; ellipsoid: 1/‖diag(1/upper) M‖₂)."""
        if self.kind == "ellipsoid":
            return 1.0 / np.linalg.norm(m / self.upper[:, None], 2)
        with np.errstate(divide="ignore"):
            return float(np.min(np.minimum(self.lower, self.upper) / np.linalg.norm(m, axis=1)))


def make_basin(kind: str, dim: int, width: float, ratio: float) -> Basin:
    """The project's basins: half-width `width` in every direction; the valley is asymmetric in
    θ_1, whose negative side is `ratio` times narrower and steeper."""
    if kind not in BASINS:
        raise ValueError(f"unknown basin {kind!r}; allowed: {', '.join(BASINS)}")
    up = np.full(dim, width)
    lo = up.copy()
    h_lo = np.ones(dim)
    if kind == "valley":
        lo[0] = width / ratio
        h_lo[0] = ratio**2
    return Basin(kind, lo, up, np.ones(dim), h_lo)
