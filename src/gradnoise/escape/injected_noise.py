"""Injected noise, g = ∇f(θ) + u, with Σ = s² H(θ*) / B (s: ``scale``, B: ``batch_size``):
- Gaussian: u ~ N(0, Σ), the diffusion theory's assumption (noise covariance ∝ Hessian / batch size);
- SαS: u = Σ^(1/2) ξ / √2 with ξ unit SαS(α) (``gradnoise.levy``: characteristic function
  exp(−|t|^α), iid coordinates or rotationally invariant). The 1/√2 makes α = 2 the Gaussian case
  exactly (unit S2S is N(0, 2)); along the escape axis u_0 has SαS scale c = σ_0/√2, σ_0² = s²H/B."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from gradnoise.landscapes import BarrierWell
from gradnoise.levy import sample_isotropic_torch, sample_sas_torch

NOISE_KINDS = ("gaussian", "sas")
SAS_MODELS = ("independent", "isotropic")


@dataclass(frozen=True)
class InjectedNoise:
    kind: str  # "gaussian" or "sas"
    scale: float = 1.0  # s
    batch_size: float = 1.0  # B
    alpha: float = 2.0  # SαS only
    model: str = "independent"  # SαS only: iid coordinates or rotationally invariant

    def __post_init__(self) -> None:
        if self.kind not in NOISE_KINDS:
            raise ValueError(f"unknown noise {self.kind!r}; allowed: {', '.join(NOISE_KINDS)}")
        if self.model not in SAS_MODELS:
            raise ValueError(f"unknown SαS model {self.model!r}; allowed: {', '.join(SAS_MODELS)}")
        if self.kind == "sas" and not 0 < self.alpha <= 2:
            raise ValueError(f"α must lie in (0, 2], got {self.alpha}")

    def scale_matrix(self, hessian: np.ndarray) -> np.ndarray:
        """Σ^(1/2) = s (H(θ*)/B)^(1/2) (symmetric square root)."""
        lam, vec = np.linalg.eigh(np.asarray(hessian, dtype=np.float64))
        if lam.min() < 0:
            raise ValueError("the Hessian at the minimum must be positive semi-definite")
        return self.scale * (vec * np.sqrt(lam / self.batch_size)) @ vec.T

    def escape_sd(self, landscape: BarrierWell) -> float:
        """σ_0 = s √(H/B), the noise's standard deviation (Gaussian) or Σ^(1/2) scale along θ_0."""
        return self.scale * math.sqrt(landscape.sharpness / self.batch_size)

    def sampler(
        self,
        hessian: np.ndarray,
        generator: torch.Generator,
        device: torch.device,
        dtype: torch.dtype,
    ) -> Callable[[int], torch.Tensor]:
        """A function n ↦ n draws of u, shape (n, d)."""
        m = torch.as_tensor(self.scale_matrix(hessian), dtype=dtype, device=device)
        d = m.shape[0]
        diagonal = bool(torch.equal(m, torch.diag(torch.diagonal(m))))
        mix = torch.diagonal(m) if diagonal else m.T

        def draw(n: int) -> torch.Tensor:
            if self.kind == "gaussian":
                z = torch.randn((n, d), generator=generator, device=device, dtype=dtype)
            elif self.model == "isotropic":
                z = sample_isotropic_torch(self.alpha, n, d, generator, device, dtype) / math.sqrt(
                    2
                )
            else:
                z = sample_sas_torch(self.alpha, (n, d), generator, device, dtype) / math.sqrt(2)
            return z * mix if diagonal else z @ mix

        return draw
