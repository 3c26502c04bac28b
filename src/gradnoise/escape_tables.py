"""The escape-law stage's tables (DESIGN.md §10c), built from the library in ``gradnoise.escape``: one
landscape sweep for every optimizer × learning-rate scale, the fits of each sweep, and the escapes from
a trained network's final minimum. Contracts: ``gradnoise.io.ESCAPE_*_SCHEMA``.

- Sweeps: each optimizer runs at (its landscape learning rate) × (each ``lr_scales`` entry), with the
  other hyperparameters of the experiment's ``optimizers`` entry; each scale draws from its own
  streams (the base seed hashed with the scale, then with the configuration by ``escape_sweep``), so
  that errors are not coherent across learning rates (DESIGN.md §5a). Computed in float64.
- Measured α (``measured_alpha``): the mean over the SGD-family arms' runs of the per-coordinate α of
  the raw noise (training split, whole network) at each arm's final checkpoint, capped at
  ``alpha_max`` (α = 2 is Gaussian; the rows keep the measured value).
- Minima (Nguyen, Şimşekli et al. 2019): from the run's final checkpoint, its optimizer continues with
  its checkpointed state at the learning rate the run ended with × each ``lr_scales`` entry, on the
  run's training data, and each radius gets the first iteration at which ‖w_t − w*‖ exceeds it.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import torch

from gradnoise.allocator import training_step_memory
from gradnoise.arms import Training
from gradnoise.data import dataset_from
from gradnoise.escape import (
    InjectedNoise,
    MinimumEscape,
    escape_from_minimum,
    escape_sweep,
    fit_sweep,
)
from gradnoise.io import ALL, ESCAPE_MINIMA_SCHEMA, ESCAPE_SLOPES_SCHEMA, ESCAPE_SWEEP_SCHEMA
from gradnoise.landscapes import BarrierWell
from gradnoise.models import build_model, fastest_memory_format, with_ghost_batchnorm
from gradnoise.seeds import hash_seed
from gradnoise.train import training_data

if TYPE_CHECKING:
    import pandas as pd  # the sweep and minimum jobs need no pandas

log = logging.getLogger(__name__)

SGD_FAMILY = ("sgd", "sgdm")
SLOPE_KEYS = ["axis", "noise", "optimizer", "lr_scale"]


def measured_alpha(tails: pd.DataFrame) -> tuple[float, str]:
    """Mean per-coordinate α of the SGD-family arms' raw noise at each arm's final checkpoint, and
    what it was taken from. Raises ValueError when there is no finite estimate."""
    ok = tails[
        (tails.status == "ok")
        & tails.optimizer.isin(SGD_FAMILY)
        & (tails.quantity == "alpha")
        & (tails.estimator == "per_coordinate")
        & (tails.view == "raw")
        & (tails.split == "train")
        & (tails.layer == ALL)
    ]
    final = ok.groupby("arm").step.transform("max")
    values = ok[ok.step == final]
    values = values[np.isfinite(values.value)]
    if values.empty:
        raise ValueError(
            "no finite per-coordinate α of an sgd/sgdm arm at its final checkpoint: "
            "give config key escape.noise.alpha a number instead of `measured`"
        )
    arms = ", ".join(sorted(set(values.arm)))
    return float(values.value.mean()), f"per-coordinate raw α of {arms} ({len(values)} runs)"


def injected_noise(spec: dict[str, Any], alpha_measured: float | None) -> InjectedNoise:
    """The noise of a sweep job (``spec``: kind, scale, batch_size, and for SαS alpha, alpha_max,
    model); ``alpha_measured`` replaces ``measured``, capped at alpha_max."""
    if spec["kind"] == "gaussian":
        return InjectedNoise("gaussian", spec["scale"], spec["batch_size"])
    alpha = spec["alpha"]
    if alpha == "measured":
        alpha = min(alpha_measured, spec["alpha_max"])
    return InjectedNoise("sas", spec["scale"], spec["batch_size"], alpha, spec["model"])


def sweep_table(
    s: dict[str, Any], alpha_measured: float | None = None, alpha_source: str = "fixed"
) -> pa.Table:
    """Every optimizer × lr scale over the values of one axis (settings ``s``: see the workflow's
    ``escape_sweep_settings``)."""
    noise = injected_noise(s["noise"], alpha_measured)
    land = s["landscape"]
    base = BarrierWell(
        land["sharpness"], land["height"], land["width"], tuple(land["other_curvatures"])
    )
    extra = {
        "experiment": s["experiment"],
        "alpha_measured": alpha_measured if alpha_measured is not None else math.nan,
        "alpha_source": alpha_source if noise.kind == "sas" else "gaussian",
    }
    rows = []
    for opt, spec in s["optimizers"].items():
        for scale in s["lr_scales"]:
            # the landscape learning rate replaces the training one, on purpose
            hp = {**spec["hparams"], "lr": spec["lr"] * scale}
            for r in escape_sweep(
                s["axis"],
                s["values"],
                base,
                opt,
                hp,
                noise,
                n_paths=s["n_paths"],
                max_iters=s["max_iters"],
                seed=hash_seed(s["seed"], scale),
                device=s["device"],
                dtype=torch.float64,
            ):
                rows.append({**r, **extra, "lr_scale": scale})
                log.info(
                    "%s %s lr×%g %s=%g: τ = %.4g (%d/%d exits)",
                    noise.kind,
                    opt,
                    scale,
                    s["axis"],
                    r[s["axis"]],
                    r["mean_exit"],
                    r["n_exits"],
                    r["n_paths"],
                )
    return pa.Table.from_pylist(rows, schema=ESCAPE_SWEEP_SCHEMA)


def slopes_table(sweeps: pd.DataFrame, level: float = 0.95) -> pa.Table:
    """``fit_sweep`` per (axis, noise, optimizer, lr scale) of the sweep rows."""
    rows = []
    for key, g in sweeps.groupby(SLOPE_KEYS, sort=True):
        meta = dict(zip(SLOPE_KEYS, key, strict=True))
        first = g.iloc[0]
        for f in fit_sweep(g.sort_values(meta["axis"]).to_dict("records"), level):
            rows.append(
                {
                    **f,
                    **meta,
                    "experiment": first.experiment,
                    "lr": float(first.lr),
                    "alpha": float(first.alpha),
                }
            )
    return pa.Table.from_pylist(rows, schema=ESCAPE_SLOPES_SCHEMA)


@training_step_memory()
def minimum_table(s: dict[str, Any], checkpoint: dict[str, Any], device: torch.device) -> pa.Table:
    """Escape from one run's final checkpoint (settings ``s``: the run, its training settings, data
    set, model, the ``minima`` settings and the base seed): one row per (lr scale, radius). A
    checkpoint of a diverged run gives rows with its status and no escape; a continuation whose loss
    becomes non-finite gives rows with status ``escape diverged``."""
    run, ms = s["run"], s["minima"]
    training = Training(**s["training"])
    batch = training.batch_size if ms["batch_size"] == "training" else ms["batch_size"]
    key = {**run, "step": int(checkpoint["step"]), "status": checkpoint["status"]}
    if checkpoint["status"] != "ok":
        rows = [_radius_rows(key, ms, batch, scale, math.nan, None) for scale in ms["lr_scales"]]
        return pa.Table.from_pylist(sum(rows, []), schema=ESCAPE_MINIMA_SCHEMA)
    data = dataset_from(s["dataset"]).to(device)
    x, y, _ = training_data(data, training)
    final_lr = float(checkpoint["optimizer"]["param_groups"][0]["lr"])
    rows = []
    for scale in ms["lr_scales"]:
        model = build_model(s["model"], data.input_shape, data.n_classes).to(device)
        if training.ghost_batch_size:
            with_ghost_batchnorm(model, training.ghost_batch_size)
        model.load_state_dict(checkpoint["model"])
        model.to(memory_format=fastest_memory_format(model, device))  # as in training
        hp = {**training.hparams, "lr": final_lr * scale}
        try:
            res = escape_from_minimum(
                model,
                x,
                y,
                training.optimizer,
                hp,
                ms["radii"],
                ms["max_iters"],
                batch,
                seed=hash_seed(s["seed"], run["seed"], scale),
                optimizer_state=checkpoint["optimizer"],
            )
        except FloatingPointError as err:
            log.warning("lr×%g: %s", scale, err)
            rows += _radius_rows(
                {**key, "status": "escape diverged"}, ms, batch, scale, hp["lr"], None
            )
            continue
        log.info(
            "lr×%g: exit iterations %s (exited %s)", scale, res.times.tolist(), res.exited.tolist()
        )
        rows += _radius_rows(key, ms, batch, scale, hp["lr"], res)
    return pa.Table.from_pylist(rows, schema=ESCAPE_MINIMA_SCHEMA)


def _radius_rows(
    key: dict[str, Any],
    ms: dict[str, Any],
    batch: int,
    scale: float,
    lr: float,
    res: MinimumEscape | None,
) -> list[dict[str, Any]]:
    """One row per radius (ascending); without a result, censored at iteration 0."""
    ran = res is not None
    return [
        {
            **key,
            "lr_scale": scale,
            "lr": lr,
            "batch_size": batch,
            "radius": float(r),
            "exit_iteration": int(res.times[i]) if ran else 0,
            "censored": not bool(res.exited[i]) if ran else True,
            "max_iters": ms["max_iters"],
            "max_distance": float(res.distance.max()) if ran and len(res.distance) else math.nan,
        }
        for i, r in enumerate(sorted(ms["radii"]))
    ]
