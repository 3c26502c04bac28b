"""Optimizers: torch's SGD (with and without momentum), Adam, AdamW, and Adai/AdaiW written here.

Adai (Xie et al., ICML 2022) adapts the *inertia* (β1) per coordinate instead of the step size:
    v ← β2 v + (1 − β2) g²,  v̂ = v / (1 − β2^t),  v̄ = mean of v̂ over all parameters of all groups,
    β1 = clamp(1 − β0 v̂ / v̄, 0, 1 − eps),  Π ← Π β1,
    m ← β1 m + (1 − β1) g,  m̂ = m / (1 − Π),  θ ← θ − lr m̂.
Weight decay is added to g (L2, Adai) or applied as θ ← θ (1 − lr wd) (decoupled, AdaiW).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

OPTIMIZERS = ("sgd", "sgdm", "adam", "adamw", "adai", "adaiw")


class Adai(torch.optim.Optimizer):
    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float,
        betas: tuple[float, float] = (0.1, 0.99),
        eps: float = 1e-3,
        weight_decay: float = 0.0,
        decoupled: bool = False,
    ) -> None:
        if lr < 0 or weight_decay < 0 or eps < 0:
            raise ValueError("lr, eps and weight_decay must be non-negative")
        if not 0 <= betas[0] < 1 or not 0 <= betas[1] < 1:
            raise ValueError(f"betas must lie in [0, 1), got {betas}")
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "decoupled": decoupled,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        live = [(g, p) for g in self.param_groups for p in g["params"] if p.grad is not None]
        grads: dict[torch.Tensor, torch.Tensor] = {}
        v_hat_sum = torch.zeros((), dtype=torch.float64, device=live[0][1].device) if live else 0
        numel = 0
        for group, p in live:
            state = self.state[p]
            if not state:
                state["step"] = 0
                state["exp_avg"] = torch.zeros_like(p)
                state["exp_avg_sq"] = torch.zeros_like(p)
                state["beta1_prod"] = torch.ones_like(p)
            state["step"] += 1
            grad = p.grad
            if group["weight_decay"] and not group["decoupled"]:
                grad = grad.add(p, alpha=group["weight_decay"])
            grads[p] = grad
            beta2 = group["betas"][1]
            state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            v_hat_sum = v_hat_sum + state["exp_avg_sq"].sum() / (1 - beta2 ** state["step"])
            numel += p.numel()
        if not live:
            return loss
        v_bar = (v_hat_sum / numel).to(live[0][1].dtype)
        for group, p in live:
            state = self.state[p]
            beta0, beta2 = group["betas"]
            v_hat = state["exp_avg_sq"] / (1 - beta2 ** state["step"])
            beta1 = (1.0 - beta0 * v_hat / v_bar).clamp(0.0, 1.0 - group["eps"])
            state["beta1_prod"].mul_(beta1)
            state["exp_avg"].mul_(beta1).add_((1 - beta1) * grads[p])
            m_hat = state["exp_avg"] / (1 - state["beta1_prod"])
            if group["weight_decay"] and group["decoupled"]:
                p.mul_(1 - group["lr"] * group["weight_decay"])
            p.add_(m_hat, alpha=-group["lr"])
        return loss


def optimizer_settings(name: str, hparams: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments ``build_optimizer`` gives the optimizer's class: `hparams` (the
    optimizer's config entry) with the project's defaults. Reading them builds no optimizer, so it
    does not import torch._dynamo (torch's optimizers do on their first construction)."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; allowed: {', '.join(OPTIMIZERS)}")
    hp = dict(hparams)
    common = {"lr": hp["lr"]}
    if name == "sgd":
        return {**common, "momentum": 0.0, "weight_decay": hp.get("weight_decay", 0.0)}
    if name == "sgdm":
        return {
            **common,
            "momentum": hp.get("momentum", 0.9),
            "nesterov": hp.get("nesterov", False),
            "weight_decay": hp.get("weight_decay", 0.0),
        }
    if name in ("adam", "adamw"):
        return {
            **common,
            "betas": tuple(hp.get("betas", (0.9, 0.999))),
            "eps": hp.get("eps", 1e-8),
            "weight_decay": hp.get("weight_decay", 0.0 if name == "adam" else 0.01),
        }
    return {
        **common,
        "betas": tuple(hp.get("betas", (0.1, 0.99))),
        "eps": hp.get("eps", 1e-3),
        "weight_decay": hp.get("weight_decay", 0.0),
        "decoupled": name == "adaiw",
    }


_CLASSES: dict[str, type[torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD,
    "sgdm": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "adai": Adai,
    "adaiw": Adai,
}


def build_optimizer(
    name: str, params: Iterable[torch.Tensor], hparams: dict[str, Any]
) -> torch.optim.Optimizer:
    """`hparams` is the optimizer's config entry (lr and the optimizer's own settings)."""
    settings = optimizer_settings(name, hparams)  # first: it names an unknown optimizer
    return _CLASSES[name](params, **settings)
