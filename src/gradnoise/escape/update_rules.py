"""The real optimizers' update rules, vectorized: paths are rows, parameters columns, so that many
independent paths run at once with the hyperparameters (and defaults) of ``build_optimizer``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from gradnoise.optim import optimizer_settings


@dataclass(frozen=True)
class UpdateRule:
    """One optimizer's update applied to θ of shape (paths, d), each row an independent parameter
    vector. ``group`` holds the settings that ``build_optimizer`` gives the optimizer's class for
    the same hparams (``optimizer_settings``), so the defaults and the meaning of every key are the
    project's."""

    name: str
    group: dict[str, Any]

    def init(self, theta: torch.Tensor) -> dict[str, Any]:
        z = torch.zeros_like
        state: dict[str, Any] = {"t": 0}
        if self.name in ("sgd", "sgdm"):
            state["buf"] = None
        elif self.name in ("adam", "adamw"):
            state.update(m=z(theta), v=z(theta))
        else:
            state.update(m=z(theta), v=z(theta), prod=torch.ones_like(theta))
        return state

    def step(self, theta: torch.Tensor, g: torch.Tensor, state: dict[str, Any]) -> torch.Tensor:
        """θ after one step with gradients g (same shape); updates ``state`` in place."""
        gr = self.group
        lr, wd = gr["lr"], gr["weight_decay"]
        state["t"] += 1
        t = state["t"]
        if self.name in ("sgd", "sgdm"):
            d = g + wd * theta if wd else g
            mu = gr["momentum"]
            if mu:
                buf = state["buf"]
                state["buf"] = d.clone() if buf is None else mu * buf + d
                d = d + mu * state["buf"] if gr["nesterov"] else state["buf"]
            return theta - lr * d
        if self.name in ("adam", "adamw"):
            beta1, beta2 = gr["betas"]
            decoupled = self.name == "adamw"
            if wd and decoupled:
                theta = theta * (1 - lr * wd)
            elif wd:
                g = g + wd * theta
            state["m"] = state["m"] + (1 - beta1) * (g - state["m"])
            state["v"] = beta2 * state["v"] + (1 - beta2) * g * g
            denom = state["v"].sqrt() / math.sqrt(1 - beta2**t) + gr["eps"]
            return theta - lr / (1 - beta1**t) * state["m"] / denom
        # Adai: v̄ is the mean of v̂ over the d parameters of one path (paths stay independent)
        beta0, beta2 = gr["betas"]
        if wd and not gr["decoupled"]:
            g = g + wd * theta
        state["v"] = beta2 * state["v"] + (1 - beta2) * g * g
        v_hat = state["v"] / (1 - beta2**t)
        v_bar = v_hat.mean(dim=1, keepdim=True)
        beta1 = (1.0 - beta0 * v_hat / v_bar).clamp(0.0, 1.0 - gr["eps"])
        state["prod"] = state["prod"] * beta1
        state["m"] = beta1 * state["m"] + (1 - beta1) * g
        if wd and gr["decoupled"]:
            theta = theta * (1 - lr * wd)
        return theta - lr * state["m"] / (1 - state["prod"])

    def gain(self, noise_sd: float) -> float:
        """P along a coordinate whose gradient noise has standard deviation ``noise_sd`` (the gain of
        ``gradnoise.escape.theory``'s docstring)."""
        if self.name == "sgdm":
            return 1.0 / (1.0 - self.group["momentum"])
        if self.name in ("adam", "adamw"):
            return 1.0 / (noise_sd + self.group["eps"])
        return 1.0


def update_rule(name: str, hparams: dict[str, Any]) -> UpdateRule:
    """The vectorized twin of ``build_optimizer(name, ..., hparams)``."""
    return UpdateRule(name, optimizer_settings(name, hparams))


def select_state(state: dict[str, Any], keep: torch.Tensor) -> dict[str, Any]:
    """The state of the paths in ``keep`` (rows)."""
    return {k: v[keep] if isinstance(v, torch.Tensor) else v for k, v in state.items()}


def default_warmup(rule: UpdateRule) -> int:
    """Iterations that settle the optimizer's statistics before the clock starts: three time
    constants of its slowest average (1/(1 − μ) for SGD-M, 1/(1 − β2) for Adam and Adai)."""
    if rule.name == "sgdm":
        return math.ceil(3 / (1 - rule.group["momentum"]))
    if rule.name == "sgd":
        return 0
    return math.ceil(3 / (1 - rule.group["betas"][1]))
