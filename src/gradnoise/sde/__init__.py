"""Lévy-driven SDEs and their first exit times from basins (DESIGN.md §5, §5a).

    dθ = −D⁻¹∇f(θ) dt + ε M dL_t,   M = D⁻¹Σ^(1/2),   θ_0 = θ* = 0,

integrated by Euler–Maruyama (an increment of L over dt is dt^(1/α) ξ with ξ unit SαS, independent
coordinates or rotationally invariant) or by a jump-adapted scheme (simulate_exits_jump: the big
jumps as events, the exact Ornstein–Uhlenbeck law between them), whose cost per exit does not grow
as ε → 0. Prediction (Imkeller & Pavlyukevich 2006 and its d-D form): E σ ≈ 1 / (ε^α m(G)),
m(G) = ν({y : θ* + M y ∉ G}).

Simulation is vectorized over paths in torch (CPU or GPU), and the jump scheme also over the ε of
one basin and noise: finished paths are dropped as they finish, and every configuration draws from
its own seeded generator, batched or not. A non-finite state stops the simulation
(FloatingPointError); it never counts as an exit. Mean exit times use censoring at t_max and the
exponential MLE Σ min(σ_i, t_max) / #exits.

One idea per module:

- ``basins``: the basins G (``Basin``, ``make_basin``);
- ``driving_noise``: the driving Lévy noise (``Noise``);
- ``predictions``: the small-ε law, m(G) and the predicted mean exit times;
- ``exits``: what a simulation returns, and the checks both integrators share;
- ``euler``: Euler–Maruyama;
- ``noise_split``: the noise split into big jumps and a Brownian part (jump-adapted scheme);
- ``ou_steps``: the exact Ornstein–Uhlenbeck steps between jumps and their crossing probability;
- ``streams``: one random stream per configuration of a batch simulated in one loop;
- ``jump_scheme``: the jump-adapted scheme, one configuration or several ε at once;
- ``simulation``: either integrator by name, and the 1-D mean exit time;
- ``estimates``: the censored mean exit time and the log-log slope.
"""

from gradnoise.sde.basins import BASINS, Basin, make_basin
from gradnoise.sde.driving_noise import NOISE_MODELS, Noise
from gradnoise.sde.estimates import exponential_mle, loglog_slope
from gradnoise.sde.exits import Exits
from gradnoise.sde.jump_scheme import (
    JUMP_THRESHOLD,
    MISSED_CROSSING,
    simulate_exits_jump,
    simulate_exits_jump_batch,
)
from gradnoise.sde.predictions import predicted_exit_time, predicted_exit_time_1d, radon_measure
from gradnoise.sde.simulation import (
    SCHEMES,
    mean_exit_time_1d,
    simulate_exits,
    simulate_exits_batch,
)

__all__ = [
    "BASINS",
    "JUMP_THRESHOLD",
    "MISSED_CROSSING",
    "NOISE_MODELS",
    "SCHEMES",
    "Basin",
    "Exits",
    "Noise",
    "exponential_mle",
    "loglog_slope",
    "make_basin",
    "mean_exit_time_1d",
    "predicted_exit_time",
    "predicted_exit_time_1d",
    "radon_measure",
    "simulate_exits",
    "simulate_exits_batch",
    "simulate_exits_jump",
    "simulate_exits_jump_batch",
]
