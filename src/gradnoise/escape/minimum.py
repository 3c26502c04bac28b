"""Escape from a trained network's minimum (Nguyen, Şimşekli et al. 2019): the optimizer continued
from the trained weights, and the first iteration past each radius around them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from gradnoise.optim import build_optimizer
from gradnoise.train import BatchStream, flat_params


@dataclass(frozen=True)
class MinimumEscape:
    radii: np.ndarray
    times: np.ndarray  # first iteration with ‖w_t − w*‖ > radius (max_iters where censored)
    exited: np.ndarray
    max_iters: int
    distance: np.ndarray  # ‖w_t − w*‖ after each iteration run


def escape_from_minimum(
    model: torch.nn.Module,
    data_x: torch.Tensor,
    data_y: torch.Tensor,
    optimizer: str,
    hparams: dict[str, Any],
    radii: Sequence[float],
    max_iters: int,
    batch_size: int,
    seed: int,
    optimizer_state: dict[str, Any] | None = None,
) -> MinimumEscape:
    """Continue ``optimizer`` (``build_optimizer`` with ``hparams``; its checkpointed state if given)
    from the model's current weights w* with seeded random minibatches of the data (training mode,
    cross-entropy, as in training) and record, for each radius, the first iteration at which
    ‖w_t − w*‖ > radius; stops once every radius is passed. A non-finite loss raises
    FloatingPointError. The checkpointed state brings its moments (momentum buffer, v, …) but not its
    hyperparameters: torch's ``load_state_dict`` restores the run's lr with them, which ``hparams``
    replace again."""
    radii_arr = np.asarray(sorted(radii), dtype=float)
    w_star = flat_params(model).clone()
    opt = build_optimizer(optimizer, model.parameters(), hparams)
    if optimizer_state is not None:
        settings = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
        opt.load_state_dict(optimizer_state)
        for group, hp in zip(opt.param_groups, settings, strict=True):
            group.update(hp)
    batches = BatchStream(len(data_y), batch_size, seed)
    times = np.full(len(radii_arr), max_iters, dtype=np.int64)
    exited = np.zeros(len(radii_arr), dtype=bool)
    distance = []
    model.train()
    for it in range(1, max_iters + 1):
        idx = batches.next().to(data_x.device)
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(data_x[idx]), data_y[idx])
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{optimizer}: loss {loss.item()} at iteration {it}")
        loss.backward()
        opt.step()
        dist = float((flat_params(model) - w_star).norm())
        distance.append(dist)
        newly = ~exited & (dist > radii_arr)
        times[newly] = it
        exited |= newly
        if exited.all():
            break
    return MinimumEscape(radii_arr, times, exited, max_iters, np.asarray(distance))
