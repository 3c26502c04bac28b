"""Which views of the noise drive an optimizer's update (DESIGN.md §3): the raw noise, Adam's
preconditioned one, and the momentum average."""

from __future__ import annotations

from typing import Any

import torch

from gradnoise.views import momentum_of


def adam_preconditioner(
    optimizer_state: dict[str, Any], hparams: dict[str, Any]
) -> torch.Tensor | None:
    """1/(√v̂ + eps) flattened in parameter order; None when the state holds no v yet (iteration 0)."""
    state = optimizer_state.get("state", {})
    if not state:
        return None
    beta2, eps = hparams.get("betas", (0.9, 0.999))[1], hparams.get("eps", 1e-8)
    parts = []
    for i in sorted(state):
        s = state[i]
        step = float(s["step"])
        v_hat = s["exp_avg_sq"].to(torch.float64) / (1 - beta2**step)
        parts.append((1.0 / (v_hat.sqrt() + eps)).reshape(-1))
    return torch.cat(parts)


def views_for(
    optimizer: str, hparams: dict[str, Any], optimizer_state: dict[str, Any]
) -> dict[str, Any]:
    """The views that drive this optimizer's update (DESIGN.md §3)."""
    views: dict[str, Any] = {"raw": None}
    if optimizer in ("adam", "adamw"):
        w = adam_preconditioner(optimizer_state, hparams)
        if w is not None:
            views["preconditioned"] = ("preconditioned", w)
    beta = momentum_of(optimizer, hparams)
    if beta is not None and beta > 0:
        views["averaged"] = ("averaged", beta)
    return views
