"""The noise sampler: one gradient pass that spills every g_k to a scratch file, then one column
pass over that file for every statistic; per split and per checkpoint."""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gradnoise.allocator import reused_step_memory
from gradnoise.noise.column_pass import _column_pass
from gradnoise.noise.gradients import (
    MICRO_BATCH,
    LossOnIndices,
    batch_gradients,
    classification_loss,
    minibatches,
)
from gradnoise.noise.layers import layers_of, stored_coordinates
from gradnoise.noise.parquet import empty_tables, to_tables
from gradnoise.noise.scratch import _scratch_prefix, scratch_dir
from gradnoise.noise.update_views import views_for
from gradnoise.seeds import hash_seed

log = logging.getLogger(__name__)


# largest allocation that the gradient pass's heaps serve and keep for the next minibatch
# (``allocator.reused_step_memory``), and the activations' share of what they keep: the small
# AlexNet's at MICRO_BATCH examples
STEP_MEMORY = 16 * 2**20


@dataclass(frozen=True)
class NoiseSettings:
    mode: str = "reference"
    batch_size: int = 100
    n_batches: int | None = None
    coords_per_layer: int = 64
    seed: int = 0
    chunk_mb: float = 64.0


def sample_split(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    settings: NoiseSettings,
    views: dict[str, Any],
    split_seed: int,
    scratch_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Stream the noise of one split of a classification task (``sample_noise`` with the mean cross
    entropy of ``model(x[idx])`` against ``y[idx]``, in micro-batches on the CPU)."""
    micro = MICRO_BATCH if x.device.type == "cpu" else None
    return sample_noise(
        model,
        classification_loss(x, y),
        len(y),
        settings,
        views,
        split_seed,
        scratch_dir,
        micro_batch=micro,
    )


def sample_noise(
    model: nn.Module,
    loss_on: LossOnIndices,
    n: int,
    settings: NoiseSettings,
    views: dict[str, Any],
    split_seed: int,
    scratch_dir: str | Path | None = None,
    *,
    micro_batch: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Stream the noise of any loss over n examples (``loss_on(model, idx)``: the mean loss of the
    examples idx; see ``batch_gradients``). `views` maps a view name to its spec: ``None`` (raw),
    ``("preconditioned", w)`` or ``("averaged", beta)``. `progress(k)` is called after every
    minibatch gradient. Returns per-view accumulated statistics."""
    device = next(model.parameters()).device
    layers = layers_of(model)
    d = layers[-1].stop
    batches = minibatches(n, settings.batch_size, settings.n_batches, settings.mode, split_seed)
    p = len(batches)
    if p < 2:
        raise ValueError(f"need at least 2 minibatches, got {p} (split of {n} examples)")
    views = {
        v: spec if spec is None or spec[0] != "preconditioned" else (spec[0], spec[1].to(device))
        for v, spec in views.items()
    }
    coord_idx = stored_coordinates(layers, settings.coords_per_layer, settings.seed)
    with tempfile.TemporaryDirectory(prefix=_scratch_prefix(), dir=scratch_dir) as tmp:
        spill = Path(tmp) / "gradients.f32"
        start = time.perf_counter()
        # a step's working set: its activations and its gradients (a micro-batch's and their sum)
        finite = torch.ones((), dtype=torch.bool, device=device)
        grads = batch_gradients(model, loss_on, batches, micro_batch, device)
        with reused_step_memory(STEP_MEMORY, STEP_MEMORY + 2 * 4 * d), open(spill, "wb") as f:
            for k, pieces in enumerate(grads):
                for piece in pieces:
                    finite &= torch.isfinite(piece).all()
                    # contiguous: the gradient of p.sum() is an expanded (stride-0) tensor
                    f.write(piece.contiguous().cpu().numpy())
                if progress is not None:
                    progress(k + 1)
        if not bool(finite):
            raise NonFiniteNoise(f"non-finite minibatch gradients (P={p}, D={d})")
        middle = time.perf_counter()
        stats = _column_pass(
            spill, p, d, layers, views, settings.chunk_mb, coord_idx, split_seed, device
        )
    log.info(
        "P=%d D=%d: gradient pass %.1f s, statistics %.1f s",
        p,
        d,
        middle - start,
        time.perf_counter() - middle,
    )
    return {"P": p, "D": d, "layers": layers, "coord_index": coord_idx, "views": stats}


class NonFiniteNoise(ArithmeticError):
    """The weights are finite but so large that a minibatch gradient overflows: the run diverged."""


def checkpoint_noise(
    checkpoint: dict[str, Any],
    run: dict[str, Any],
    settings: NoiseSettings,
    splits: list[str],
    task: Any,
) -> tuple[Any, Any, str]:
    """``sample_checkpoint`` and the status the noise files carry: the checkpoint's, or
    ``diverged`` when its gradients overflow (empty tables then, as for a diverged run)."""
    try:
        samples, stats = sample_checkpoint(checkpoint, run, settings, splits, task)
    except NonFiniteNoise as err:
        log.warning("step %s: %s; recorded as diverged", checkpoint.get("step"), err)
        return (*empty_tables(settings.coords_per_layer), "diverged")
    return samples, stats, checkpoint["status"]


def sample_checkpoint(
    checkpoint: dict[str, Any],
    run: dict[str, Any],
    settings: NoiseSettings,
    splits: list[str],
    task: Any,
) -> tuple[Any, Any]:
    """Noise tables of one checkpoint; `run` is the training settings (optimizer, hparams), `task`
    the data (on the device), model and loss (``gradnoise.tasks.Task``): a zoo classifier's
    gradients in micro-batches on the CPU, a factory loss's whole.
    Raises NonFiniteNoise when a minibatch gradient is not finite (weights blown up)."""
    if checkpoint.get("status") != "ok":
        return empty_tables(settings.coords_per_layer)
    data = task.data
    device = data.x_train.device
    torch.manual_seed(0)
    model = task.new_model().to(device)
    model.load_state_dict(checkpoint["model"])
    views = views_for(run["optimizer"], run["hparams"], checkpoint["optimizer"])
    micro = MICRO_BATCH if device.type == "cpu" and task.zoo else None
    results = {}
    for i, split in enumerate(splits):
        x, y = data.split(split)
        seed = hash_seed(settings.seed, split, i)
        results[split] = sample_noise(
            model,
            task.loss_on(x, y),
            len(y),
            settings,
            views,
            seed,
            scratch_dir(),
            micro_batch=micro,
        )
        log.info(
            "%s: P=%d D=%d views=%s", split, results[split]["P"], results[split]["D"], list(views)
        )
    return to_tables(results, settings.coords_per_layer)
