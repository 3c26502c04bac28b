"""The jump-adapted scheme between jumps: the exact Ornstein–Uhlenbeck transition of each
coordinate, and the bridge probability that the Gaussian part left G during a step."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from gradnoise.sde.basins import Basin
from gradnoise.sde.streams import Streams


def _ou_factors(a: torch.Tensor, tau: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """e^(−aτ) and g = ∫₀^τ e^(−2as) ds = (1 − e^(−2aτ))/(2a): the OU mean factor and variance per
    unit q, stable for aτ → 0 and aτ → ∞."""
    return torch.exp(-a * tau), -torch.expm1(-2 * a * tau) / (2 * a)


def _bridge_hit(
    d0: torch.Tensor, d1: torch.Tensor, decay: torch.Tensor, var: torch.Tensor
) -> torch.Tensor:
    """P(an OU bridge hits a level | distances d0, d1 > 0 to it at the ends), by the time change
    X_t e^(at) = x0 + W(q(e^(2at) − 1)/(2a)): exp(−2 d0 d1 e^(−aτ)/(q g)) (var = q g). Exact for
    the level 0 (the mean); for a level b ≠ 0 it replaces the curved boundary b e^(at) by its chord,
    exact as aτ → 0 (the Brownian bridge exp(−2 d0 d1/(qτ))). 1 where an end is on the far side."""
    apart = (d0 > 0) & (d1 > 0)
    return torch.where(apart, torch.exp(-2 * d0 * d1 * decay / var), 1.0)


def _skew_ou_step(
    x0: torch.Tensor,
    x1: torch.Tensor,
    tau: torch.Tensor,
    decay: torch.Tensor,
    var: torch.Tensor,
    a_pos: torch.Tensor,
    a_neg: torch.Tensor,
    q: torch.Tensor,
    streams: Streams,
) -> torch.Tensor:
    """dX = −a(X) X dt + √q dB with a = a₊ on X > 0 and a₋ on X < 0 (the valley's coordinate),
    given the endpoint x1 of the one-sided OU of x0's side. Until X first hits 0 it is that OU, so
    x1 is exact unless the bridge hit 0 (_bridge_hit). Then the hitting time has W-time x0²/Z² with
    |Z| > |x0|/√v (v = q g e^(2aτ)), and the rest s = τ − T starts at 0: side + with probability
    w₊/(w₊ + w₋), w± = √((1 − e^(−2a± s))/(2a±)), and |N(0, q w±²)| on that side. That law is exact
    for a₊ = a₋ and for s ≫ 1/a (the stationary law ∝ exp(−a± x²/q)); in between it keeps the
    density continuous at 0, as the true one is (measured for a₋/a₊ = 16 against a fine Euler run:
    P(X > 0) too high by up to 0.05 for 1/a₋ < s < 1/a₊)."""
    cols, dtype = x0.shape[1:], x0.dtype
    hit = streams.uniform(cols, dtype) < _bridge_hit(x0.abs(), x1 * x0.sign(), decay, var)
    z0 = x0.abs() * decay / var.sqrt()
    z = -torch.special.ndtri(streams.uniform(cols, dtype) * torch.special.ndtr(-z0))
    a = torch.where(x0 > 0, a_pos, a_neg)
    t_hit = torch.log1p(2 * a * x0.square() / (q * z.square())) / (2 * a)
    s = (tau[:, None] - t_hit).clamp(min=0)
    w_pos, w_neg = (_ou_factors(ak, s)[1].sqrt() for ak in (a_pos, a_neg))
    plus = streams.uniform(cols, dtype) * (w_pos + w_neg) < w_pos
    restart = streams.normal(cols, dtype).abs() * q.sqrt()
    restart = torch.where(plus, restart * w_pos, -restart * w_neg)
    return torch.where(hit, restart, x1)


def _crossing_probability(
    basin: Basin,
    x0: torch.Tensor,
    x1: torch.Tensor,
    tau: torch.Tensor,
    a: torch.Tensor,
    decay: torch.Tensor,
    var: torch.Tensor,
    lo: torch.Tensor,
    up: torch.Tensor,
    q: torch.Tensor,
) -> torch.Tensor:
    """P(the Gaussian part left G between the ends x0, x1 of a step): one bridge per face of a box
    (independent coordinates); for the ellipsoid, the radial coordinate ‖x/upper‖ as a 1-D OU with
    the variance and rate of the mean normal direction."""
    if basin.kind == "ellipsoid":
        y0, y1 = x0 / up, x1 / up
        normal = torch.nn.functional.normalize(y0 + y1, dim=1)
        a_r = torch.maximum((normal.square() * a).sum(dim=1), a.min(dim=1).values)
        q_r = (normal.square() * q / up.square()).sum(dim=1)
        decay_r, g_r = _ou_factors(a_r, tau)
        return _bridge_hit(1 - y0.norm(dim=1), 1 - y1.norm(dim=1), decay_r, q_r * g_r)
    stay = (1 - _bridge_hit(up - x0, up - x1, decay, var)) * (
        1 - _bridge_hit(lo + x0, lo + x1, decay, var)
    )
    return 1 - stay.prod(dim=1)


def _diffusion_step(
    x: torch.Tensor,
    tau: torch.Tensor,
    a_pos: torch.Tensor,
    a_neg: torch.Tensor,
    skew: torch.Tensor,
    q: torch.Tensor,
    corr_chol: Sequence[torch.Tensor] | None,
    streams: Streams,
) -> tuple[torch.Tensor, ...]:
    """The exact OU transition of each coordinate over τ (curvature of x's side, the valley's
    coordinates by _skew_ou_step); q is each path's variance rate per coordinate and corr_chol each
    configuration's Cholesky factor of the correlation (None: uncorrelated). Also returns each
    coordinate's curvature, e^(−aτ) and variance."""
    d = x.shape[1]
    a = torch.where(x > 0, a_pos, a_neg)
    decay, g = _ou_factors(a, tau[:, None])
    var = q * g
    if corr_chol is None:
        z = streams.normal((d,), x.dtype)
    else:
        z = streams.each(
            lambda k, gen, n: (
                torch.randn((n, d), generator=gen, device=x.device, dtype=x.dtype) @ corr_chol[k].T
            )
        )
    x1 = decay * x + var.sqrt() * z
    if skew.numel():
        x1[:, skew] = _skew_ou_step(
            x[:, skew],
            x1[:, skew],
            tau,
            decay[:, skew],
            var[:, skew],
            a_pos[skew],
            a_neg[skew],
            q[:, skew],
            streams,
        )
    return x1, a, decay, var
