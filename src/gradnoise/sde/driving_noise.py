"""The driving Lévy noise of the SDE: α, independent coordinates or rotationally invariant, and
M = D⁻¹Σ^(1/2)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

NOISE_MODELS = ("independent", "isotropic")


@dataclass(frozen=True)
class Noise:
    """The driving noise: α, the noise model, M = D⁻¹Σ^(1/2) and the drift preconditioner D⁻¹."""

    alpha: float
    model: str
    m: np.ndarray
    precond: np.ndarray = field(default_factory=lambda: np.ones(0))

    def drift_scale(self, dim: int) -> np.ndarray:
        return self.precond if self.precond.size else np.ones(dim)
