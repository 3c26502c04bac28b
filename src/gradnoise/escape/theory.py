"""The two theories' predictions, in iterations, for escape along θ_0 from the minimum of a
BarrierWell (profile u, barrier tops at ±w). Each optimizer enters through its gain P along θ_0, the factor between an injected
gradient perturbation and the displacement it causes (per unit lr) once the momentum has acted:
P = 1 (SGD), 1/(1 − μ) (torch's SGD-M, which adds g without the (1 − μ) factor; Nesterov alike to
leading order), 1 (Adai/AdaiW: m is an EMA, so its gain is 1 whatever β1), 1/(√v̂ + eps) with
√v̂ = σ_0 (Adam/AdamW: v̂ ≈ E g² ≈ σ_0² at the minimum). Weight decay is left out of the predictions.
- Diffusion (Xie et al.): the discrete rule read as the SDE dθ = −P u'(θ) dt + √(2D) dW, dt = η,
  D = η P² σ_0² / 2, temperature T = D/P = η P σ_0² / 2. ``log_tau_diffusion`` is its exact mean
  first-passage time from 0 to ±w, (1/(ηD)) ∫_0^w e^{u(y)/T} ∫_0^y e^{−u(z)/T} dz dy (quadrature);
  ``kramers_exponent`` is its leading order ΔL/T:
      SGD, Adai: 2BΔL/(η s² H);  SGD-M (torch lr η, momentum μ): 2(1 − μ)BΔL/(η s² H);
      Adam (eps ≪ σ_0): 2√B ΔL/(η s √H).
  Which statement this is, and how far it was checked: the theorem texts of Xie, Sato & Sugiyama
  (ICLR 2021, arXiv 2002.03495) and Xie et al. (ICML 2022, arXiv 2006.15815) could not be read here (the
  stored copies give their abstracts only). The abstracts confirm the qualitative content: SGD favours
  flat minima exponentially (white noise only polynomially), escape needs exponentially many iterations
  in B/η, the adaptive learning rate "cannot select flat minima as SGD does", momentum "almost does not
  affect flat minima selection", Adai selects flat minima "as well as SGD". The exponents above are
  derived from the SDE those papers use (noise covariance ηH/(2B) per unit time; Adam's preconditioner
  1/√v̂ with v̂ ≈ H/B); they agree with DESIGN.md §10c's restatement, including its (1 − μ) for torch's
  momentum, and with a later paper's restatement of the framework (a note on FedAdamom, CVPR 2026:
  O(2BΔf/(ηH)), O(2(1 − β)BΔf/(ηH)) for momentum without the (1 − β) on g, O(2√BΔf/(η√H)) for Adam,
  SGD's order for Adai-style adaptive momentum). As recalled, not verified: the ICLR 2021 theorem writes SGD's time as
  (2π/|H_b|) exp[(2BΔL/η)(s_p/H_a + (1 − s_p)/|H_b|)] with a path parameter s_p, because SGD's own noise
  changes along the path; injected noise of fixed covariance Σ does not, so here the exponent is ΔL/T
  with the temperature at the minimum. Fits test the leading order in 1/H (or 1/√H), as §10c says; the
  exact-SDE column also carries the prefactor's dependence on H and w (on the width axis the leading
  order is 0 but the exact SDE is not: the barrier's curvature K changes with w).
- Lévy (Zhou et al.; Imkeller & Pavlyukevich 2006, ``gradnoise.sde.predicted_exit_time_1d``): escape by
  one jump past ±w, E σ ≈ α/(c_α ε^α (a^−α + b^−α)) in SDE time with dt = η and ε = η^(1−1/α) P c
  (DESIGN.md §5: a step's noise η P c ξ is ε dt^(1/α) ξ), so τ ≈ α w^α / (2 c_α (η P c)^α) iterations:
  a power law in the width (exponent α), blind to the height and, through c ∝ √H, ∝ H^(−α/2). For Adam
  v̂ has no finite mean under SαS noise; its prediction takes √v̂ = σ_0 and is therefore right up to a
  constant factor only (``levy_absolute`` False), which leaves its slopes intact."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.special import logsumexp

from gradnoise.escape.injected_noise import InjectedNoise
from gradnoise.escape.update_rules import update_rule
from gradnoise.landscapes import BarrierWell
from gradnoise.sde import predicted_exit_time_1d


def diffusion_log_tau(landscape: BarrierWell, lr: float, gain: float, noise_sd: float) -> float:
    """log of the exact mean first-passage time (iterations) of dθ = −P u' dt + √(2D) dW from 0 to ±w,
    dt = η = lr, D = η P² σ_0² / 2 (module docstring), by quadrature in log space."""
    big_d = lr * gain**2 * noise_sd**2 / 2
    temp = big_d / gain
    y = np.linspace(0.0, landscape.width, 20001)
    u = np.asarray(landscape.profile(y)) / temp
    dy = y[1] - y[0]
    inner = np.concatenate([[0.0], np.cumsum((np.exp(-u[1:]) + np.exp(-u[:-1])) * dy / 2)])
    with np.errstate(divide="ignore"):
        log_f = u + np.log(inner)
    weights = np.full(len(y), dy)
    weights[[0, -1]] = dy / 2
    return float(logsumexp(log_f, b=weights) - math.log(big_d) - math.log(lr))


def predictions(
    landscape: BarrierWell, optimizer: str, hparams: dict[str, Any], noise: InjectedNoise
) -> dict[str, Any]:
    """Both theories' predictions for one configuration (module docstring): ``log_tau_diffusion``,
    ``kramers_exponent`` (both from Σ, whatever the noise's kind: what the diffusion picture would
    predict at this scale), ``log_tau_levy`` (SαS with α < 2 only, else NaN) and ``levy_absolute``."""
    rule = update_rule(optimizer, hparams)
    lr = rule.group["lr"]
    sd = noise.escape_sd(landscape)
    p = rule.gain(sd)
    levy = math.nan
    if noise.kind == "sas" and noise.alpha < 2:
        eps = lr ** (1 - 1 / noise.alpha) * p * sd / math.sqrt(2)
        w = landscape.width
        levy = math.log(predicted_exit_time_1d(noise.alpha, eps, w, w) / lr)
    return {
        "gain": p,
        "log_tau_diffusion": diffusion_log_tau(landscape, lr, p, sd),
        "kramers_exponent": 2 * landscape.height / (lr * p * sd**2),
        "log_tau_levy": levy,
        "levy_absolute": rule.name not in ("adam", "adamw"),
    }
