"""The distance ‖w_t − w_0‖ a run's history records: the weights as one flat vector, and the
log-spaced iterations at which it is recorded besides evaluations."""

from __future__ import annotations

import numpy as np
import torch

DISTANCE_POINTS = 60  # log-spaced iterations at which ‖w_t − w_0‖ is recorded besides evaluations


def flat_params(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def distance_iterations(iterations: int, points: int = DISTANCE_POINTS) -> set[int]:
    """Log-spaced iterations in [1, iterations], for fits of ‖w_t − w_0‖ against log t."""
    grid = np.unique(np.round(np.geomspace(1, max(iterations, 1), points)).astype(int))
    return set(grid.tolist())
