"""What a simulation of exits returns, and the checks and bookkeeping both integrators share: a
non-finite state is a numerical failure, never an exit."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gradnoise.sde.basins import Basin
from gradnoise.sde.driving_noise import Noise


@dataclass(frozen=True)
class Exits:
    times: np.ndarray  # first exit time of each path (t_max where censored)
    exited: np.ndarray  # False where censored at t_max
    face: np.ndarray  # signed 1-based index of the coordinate whose bound was crossed (0: censored)
    t_max: float
    path_steps: int  # work: Σ over the scheme's steps of the paths still running


def _describe(basin: Basin, noise: Noise, eps: float, seed: int, scheme: str) -> str:
    return (
        f"{scheme} scheme, {basin.kind} basin (d = {basin.dim}), {noise.model} noise "
        f"(α = {noise.alpha}), ε = {eps}, seed {seed}"
    )


def _faces(xs: torch.Tensor, lo: torch.Tensor, up: torch.Tensor) -> np.ndarray:
    """Signed 1-based index of the coordinate nearest its bound (relative to the half-width)."""
    over = torch.maximum(xs / up, -xs / lo)
    k = over.argmax(dim=1)
    sign = torch.where(xs.gather(1, k[:, None])[:, 0] > 0, 1, -1)
    return ((k + 1) * sign).cpu().numpy()


def _check_finite(xs: torch.Tensor, what: str) -> None:
    """A non-finite state is a numerical failure, never an exit (NaN fails every bound check)."""
    if not bool(torch.isfinite(xs).all()):
        raise FloatingPointError(f"non-finite state in the exit simulation ({what})")
