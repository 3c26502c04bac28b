"""The escape stage (DESIGN.md §10c): which escape-time law do the real optimizers follow?

The real update rules (SGD, SGD-M, Adam, AdamW, Adai, AdaiW with the hyperparameters of
``gradnoise.optim.build_optimizer``) run on controlled landscapes (``gradnoise.landscapes``) with
injected gradient noise, many independent paths at once; and from trained networks' minima on the real
data (Nguyen, Şimşekli et al. 2019). One idea per module:

- ``update_rules``: the optimizers' updates, vectorized over paths;
- ``injected_noise``: Gaussian and SαS noise with covariance ∝ Hessian / batch size;
- ``exit_times``: escape times of many paths on a landscape (or on several at once), and their
  censored mean;
- ``theory``: the diffusion (Xie et al.) and Lévy (Zhou et al.) predictions;
- ``sweeps``: sweeps of one landscape axis and the fits of log τ against it;
- ``minimum``: escape from a trained network's minimum.
"""

from gradnoise.escape.exit_times import EscapeTimes, escape_times, escape_times_batch
from gradnoise.escape.injected_noise import NOISE_KINDS, SAS_MODELS, InjectedNoise
from gradnoise.escape.minimum import MinimumEscape, escape_from_minimum
from gradnoise.escape.sweeps import (
    AXES,
    REGRESSORS,
    LineFit,
    escape_sweep,
    fit_line,
    fit_sweep,
    sweep,
)
from gradnoise.escape.theory import diffusion_log_tau, predictions
from gradnoise.escape.update_rules import UpdateRule, default_warmup, select_state, update_rule

__all__ = [
    "AXES",
    "NOISE_KINDS",
    "REGRESSORS",
    "SAS_MODELS",
    "EscapeTimes",
    "InjectedNoise",
    "LineFit",
    "MinimumEscape",
    "UpdateRule",
    "default_warmup",
    "diffusion_log_tau",
    "escape_from_minimum",
    "escape_sweep",
    "escape_times",
    "escape_times_batch",
    "fit_line",
    "fit_sweep",
    "predictions",
    "select_state",
    "sweep",
    "update_rule",
]
