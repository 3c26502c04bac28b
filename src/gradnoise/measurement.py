"""The measurement as a library (DESIGN.md §12): the gradient noise of any model, task and data, as a
per-layer table of α̂ with intervals and Gaussian nulls, the noise norm and the covariance summaries.

``measure`` runs the noise stage's streaming sampler (``noise.sample_noise``: the P × D noise matrix
never exists) and the tails stage's estimators (``tails.analyze``) on a generic loss,
``loss_fn(model, batch)`` → the scalar mean loss of a batch. Its seeds are those the pipeline uses
for the first split it samples (``sampled`` mode), so a zoo model at a pipeline checkpoint, measured
with the pipeline's settings, gives the pipeline's own numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from gradnoise.devices import resolve_device
from gradnoise.io import ALL
from gradnoise.noise import (
    MICRO_BATCH,
    NoiseSettings,
    adam_preconditioner,
    sample_noise,
    to_tables,
)
from gradnoise.seeds import hash_seed
from gradnoise.tails import TailSettings, analyze
from gradnoise.tasks import loss_problem
from gradnoise.views import momentum_of

VIEWS = ("raw", "preconditioned", "averaged")
SPLIT = "train"  # the pipeline's first sampled split: its seeds are measure's
WHOLE_NETWORK = "(network)"  # the `layer` of the whole-network rows
COLUMNS = [
    "layer",
    "view",
    "estimator",
    "alpha",
    "ci_low",
    "ci_high",
    "null",
    "null_ci_low",
    "null_ci_high",
    "verdict",
    "noise_norm",
    "effective_rank",
    "top_share",
    "numel",
    "n_draws",
    "n_effective",
    "note",
]

LossFn = Callable[[nn.Module, Any], torch.Tensor]


class MeasureError(ValueError):
    """An argument of ``measure`` is unusable; the message names it."""


def measure(
    model: nn.Module,
    loss_fn: LossFn,
    data: Any,
    *,
    batch_size: int,
    n_draws: int,
    views: Sequence[str] = ("raw",),
    optimizer: torch.optim.Optimizer | None = None,
    coords_per_layer: int = 32,
    seed: int = 0,
    device: str | torch.device = "auto",
    micro_batch: int | None = None,
    tails: TailSettings | None = None,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """The gradient noise of `model` at its current weights: one row per (layer or whole network,
    view, estimator).

    - `loss_fn(model, batch)` returns the scalar mean loss of `batch` (any task);
    - `data`: a tuple of tensors indexed together along dim 0, a map-style Dataset (``len`` and
      ``[i]``; items collated with torch's default collate), or a callable ``batch(indices)``
      (with the number of examples as its ``len``, or `data` = ``(callable, n)``);
    - P = `n_draws` minibatches of `batch_size` examples, drawn with `seed`; noise u_k = g_k − ḡ;
    - `views`: ``raw``, ``preconditioned`` (Adam/AdamW: u_k/(√v̂ + eps)) and ``averaged`` (the
      optimizer's EMA of the draws); the last two read `optimizer` (its state loaded);
    - `micro_batch`: examples per forward pass, for losses that are means of independent
      per-example terms in eval mode (the zoo's: 50 on the CPU); None takes each batch whole;
    - `tails`: the estimators' settings (bootstrap replicates, CI level, null margin).

    The model is moved to `device` (in place) and measured in eval mode; its training flag is
    restored afterwards.
    Columns: ``alpha`` with ``ci_low``/``ci_high``, its Gaussian ``null`` with its interval,
    ``verdict`` against the null, ``noise_norm`` (mean over draws of the layer's ‖u_k‖),
    ``effective_rank`` and ``top_share`` of the noise covariance, ``numel``, ``n_draws``,
    ``n_effective`` (independent draws) and ``note`` (why an estimate is missing)."""
    dev = _check_arguments(
        model, loss_fn, batch_size, n_draws, views, optimizer, coords_per_layer, micro_batch, device
    )
    batches = as_batches(data, dev)
    if batches.n < batch_size:
        raise MeasureError(
            f"data: {batches.n} examples, fewer than one batch (batch_size = {batch_size})"
        )
    training = model.training
    model.to(dev)
    try:
        model.eval()
        try:
            first = batches(torch.arange(batch_size, device=dev))
        except Exception as err:
            raise MeasureError(f"data: failed to make a batch: {err!r}") from err
        _check_loss(model, loss_fn, first)
        name, hparams = optimizer_name(optimizer) if optimizer is not None else ("none", {})
        specs = _view_specs(views, optimizer, name, hparams, model)

        def loss_on(net: nn.Module, idx: torch.Tensor) -> torch.Tensor:
            return loss_fn(net, batches(idx))

        settings = NoiseSettings(
            mode="sampled",
            batch_size=batch_size,
            n_batches=n_draws,
            coords_per_layer=coords_per_layer,
            seed=seed,
        )
        res = sample_noise(
            model,
            loss_on,
            batches.n,
            settings,
            specs,
            hash_seed(seed, SPLIT, 0),
            micro_batch=micro_batch,
            progress=progress,
        )
    finally:
        model.train(training)
    samples, stats = to_tables({SPLIT: res}, coords_per_layer)
    run = {
        "experiment": "measure",
        "arm": name,
        "optimizer": name,
        "seed": seed,
        "step": 0,
        "status": "ok",
        "hparams": hparams,
    }
    table = analyze(samples, stats, run, tails or TailSettings()).to_pandas()
    return per_layer_table(table, samples.to_pandas(), [lay.name for lay in res["layers"]])


def per_layer_table(tails: pd.DataFrame, samples: pd.DataFrame, layers: list[str]) -> pd.DataFrame:
    """The tails table's α rows, one per (layer, view, estimator), with the layer's noise norm and
    covariance summaries beside them; the whole network first, then the layers in model order."""
    alpha = tails[tails["quantity"] == "alpha"].rename(
        columns={"value": "alpha", "null_value": "null", "n": "n_entries"}
    )
    wide = tails[tails["quantity"].isin(["effective_rank", "top_share"])].pivot_table(
        index=["view", "layer"], columns="quantity", values="value", aggfunc="first"
    )
    norms = samples.groupby(["view", "layer"], observed=True)["norm"].mean().rename("noise_norm")
    p = samples.groupby(["view", "layer"], observed=True)["sample"].count().rename("n_draws")
    out = alpha.join(wide, on=["view", "layer"]).join(norms, on=["view", "layer"])
    out = out.join(p, on=["view", "layer"])
    whole = out["layer"] == ALL
    # the whole network: the norm of the concatenation, its draws those of any layer
    squares = samples.assign(sq=samples["norm"] ** 2).groupby(["view", "sample"], observed=True)
    total = np.sqrt(squares["sq"].sum()).groupby("view", observed=True).mean()
    out.loc[whole, "noise_norm"] = out.loc[whole, "view"].map(total).to_numpy()
    draws = p.groupby("view", observed=True).first()
    out.loc[whole, "n_draws"] = out.loc[whole, "view"].map(draws).to_numpy()
    out["layer"] = out["layer"].where(~whole, WHOLE_NETWORK)
    order = {name: i for i, name in enumerate([WHOLE_NETWORK, *layers])}
    out = out.assign(_order=out["layer"].map(order), _view=out["view"].map(VIEWS.index))
    out = out.sort_values(["_order", "_view"], kind="stable")
    out["numel"] = _numel(out, tails)
    out["n_draws"] = out["n_draws"].astype("int64")
    return out[COLUMNS].reset_index(drop=True)


def _numel(out: pd.DataFrame, tails: pd.DataFrame) -> np.ndarray:
    """Entries of each row's layer (the anisotropy rows' ``n``)."""
    sizes = tails[tails["quantity"] == "top_share"].set_index("layer")["n"].groupby(level=0).first()
    sizes.index = sizes.index.where(sizes.index != ALL, WHOLE_NETWORK)
    return out["layer"].map(sizes).to_numpy()


class Batches:
    """Batches of a data set by example indices, on one device: ``batches(idx)``; ``n`` examples."""

    def __init__(self, get: Callable[[torch.Tensor], Any], n: int) -> None:
        self.get, self.n = get, n

    def __call__(self, idx: torch.Tensor) -> Any:
        return self.get(idx)


def as_batches(data: Any, device: torch.device) -> Batches:
    """`data` as ``Batches``: a tensor or tuple of tensors (moved to `device` once), a map-style
    Dataset (items collated), a callable ``batch(indices)`` with a ``len``, or ``(callable, n)``."""
    if isinstance(data, torch.Tensor):
        data = (data,)
    if (
        isinstance(data, tuple)
        and len(data) == 2
        and callable(data[0])
        and isinstance(data[1], int)
    ):
        fn, n = data
        return Batches(lambda idx: to_device(fn(idx), device), n)
    if isinstance(data, (tuple, list)) and data and all(isinstance(t, torch.Tensor) for t in data):
        sizes = {int(t.shape[0]) if t.dim() else -1 for t in data}
        if len(sizes) != 1 or -1 in sizes:
            raise MeasureError(
                f"data: tensors must share their first dimension, got shapes "
                f"{[tuple(t.shape) for t in data]}"
            )
        tensors = tuple(t.to(device) for t in data)
        return Batches(lambda idx: tuple(t[idx] for t in tensors), sizes.pop())
    mapping = hasattr(data, "__getitem__") and hasattr(data, "__len__")
    if mapping and not isinstance(data, (str, bytes, dict)):
        from torch.utils.data import default_collate

        def collate(idx: torch.Tensor) -> Any:
            return to_device(default_collate([data[i] for i in idx.tolist()]), device)

        return Batches(collate, len(data))
    if callable(data) and hasattr(data, "__len__"):
        return Batches(lambda idx: to_device(data(idx), device), len(data))
    raise MeasureError(
        f"data: expected a tuple of tensors, a map-style Dataset, a callable batch(indices) with a "
        f"len, or (callable, n); got {type(data).__name__}"
    )


def to_device(batch: Any, device: torch.device) -> Any:
    """Every tensor in a (nested) batch moved to `device`."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def optimizer_name(optimizer: torch.optim.Optimizer) -> tuple[str, dict[str, Any]]:
    """The pipeline's name of an optimizer (which sets the averaged view's β) and its hparams."""
    from gradnoise.optim import Adai

    hparams = {k: v for k, v in optimizer.param_groups[0].items() if k != "params"}
    if isinstance(optimizer, torch.optim.AdamW):
        return "adamw", hparams
    if isinstance(optimizer, torch.optim.Adam):
        return "adam", hparams
    if isinstance(optimizer, torch.optim.SGD):
        return ("sgdm" if hparams.get("momentum", 0) > 0 else "sgd"), hparams
    if isinstance(optimizer, Adai):
        return ("adaiw" if hparams.get("decoupled") else "adai"), hparams
    raise MeasureError(
        f"optimizer: {type(optimizer).__name__} is not one whose update the views model "
        "(SGD, Adam, AdamW, gradnoise.optim.Adai)"
    )


def _view_specs(
    views: Iterable[str],
    optimizer: torch.optim.Optimizer | None,
    name: str,
    hparams: dict[str, Any],
    model: nn.Module,
) -> dict[str, Any]:
    """The noise stage's view specs: None (raw), ("preconditioned", w), ("averaged", β)."""
    specs: dict[str, Any] = {}
    for view in views:
        if view == "raw":
            specs[view] = None
            continue
        if optimizer is None:
            raise MeasureError(f"views: {view!r} needs an optimizer (its state loaded)")
        _check_optimizer_params(optimizer, model)
        if view == "preconditioned":
            if name not in ("adam", "adamw"):
                raise MeasureError(f"views: 'preconditioned' needs Adam or AdamW, not {name}")
            w = adam_preconditioner(optimizer.state_dict(), hparams)
            if w is None:
                raise MeasureError("optimizer: no second-moment state yet (take a step first)")
            specs[view] = ("preconditioned", w)
        else:
            beta = momentum_of(name, hparams)
            if not beta:
                raise MeasureError(
                    f"views: 'averaged' needs an optimizer with momentum, not {name}"
                )
            specs[view] = ("averaged", beta)
    return specs


def _check_optimizer_params(optimizer: torch.optim.Optimizer, model: nn.Module) -> None:
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if [id(p) for p in params] != [id(p) for p in model.parameters()]:
        raise MeasureError(
            "optimizer: it must hold the model's parameters, all of them, in model order"
        )


def _check_arguments(
    model, loss_fn, batch_size, n_draws, views, optimizer, coords_per_layer, micro_batch, device
) -> torch.device:
    """Every argument usable, before any work; returns the device."""
    if not isinstance(model, nn.Module):
        raise MeasureError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    params = list(model.named_parameters())
    if not params:
        raise MeasureError("model: it has no parameters")
    frozen = [n for n, p in params if not p.requires_grad]
    if frozen:
        raise MeasureError(f"model: parameters that do not require grad: {', '.join(frozen[:5])}")
    if not callable(loss_fn):
        raise MeasureError(f"loss_fn: expected a callable, got {type(loss_fn).__name__}")
    for arg, value, least in (
        ("batch_size", batch_size, 1),
        ("n_draws", n_draws, 2),
        ("coords_per_layer", coords_per_layer, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise MeasureError(f"{arg}: expected an integer ≥ {least}, got {value!r}")
    if micro_batch is not None and (not isinstance(micro_batch, int) or micro_batch < 1):
        raise MeasureError(f"micro_batch: expected None or an integer ≥ 1, got {micro_batch!r}")
    if isinstance(views, str) or not all(v in VIEWS for v in views) or not views:
        raise MeasureError(f"views: expected a non-empty sequence of {VIEWS}, got {views!r}")
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise MeasureError(f"optimizer: expected a torch optimizer, got {type(optimizer).__name__}")
    try:
        return device if isinstance(device, torch.device) else resolve_device(device)
    except (RuntimeError, ValueError) as err:
        raise MeasureError(f"device: {err}") from err


def _check_loss(model: nn.Module, loss_fn: LossFn, batch: Any) -> None:
    """loss_fn on the first batch: a finite scalar tensor that depends on the parameters."""
    problem = loss_problem(model, loss_fn, batch)
    if problem:
        raise MeasureError(f"loss_fn: on the first batch, {problem}")


__all__ = ["MICRO_BATCH", "MeasureError", "measure", "per_layer_table"]
