"""Gradient noise at a checkpoint, streamed so that the P × D noise matrix never exists in memory.

Reference mode (Zhou et al.'s code): network in eval mode; the split cut into P consecutive minibatches
of size B (no shuffling, last partial batch dropped); g_k the gradient of the mean loss on batch k;
ḡ = mean of the g_k; u_k = g_k − ḡ. Sampled mode draws M minibatches with a seeded generator instead.

Views (DESIGN.md §3):
- ``raw``: u_k;
- ``preconditioned`` (Adam/AdamW): u_k / (√v̂ + eps) with v̂ from the optimizer state of the checkpoint;
- ``averaged`` (SGD-M, Adam/AdamW, Adai/AdaiW): the β-EMA of the sequence of noise draws, taken
  circularly so that every draw is stationary, a_k = c Σ_{j<P} β^j u_{(k−j) mod P} with
  c = (1 − β)/(1 − β^P), then rescaled by 1/√(c² Σ_{j<P} β^{2j}) so that iid noise keeps its variance.
  As a matrix, a = A u with A circulant (``averaging_matrix``); streamed as a circular convolution
  along the samples (FFT), and its Gram matrix is A G Aᵀ of the raw one.

How it streams: one gradient pass writes each g_k (float32, row-major) to a scratch file in $TMPDIR
and does nothing else. One read of that file, in P × c column blocks within a layer (every block
holds all P values of its coordinates, so ḡ, u, variances and order statistics are exact), then gives
every statistic: the P × P Gram matrices (float32 products, summed in float64) per layer and of the
whole network (their diagonals are the layer norms), per-coordinate variances and robust scales, the
stored coordinates, and the row-major pooled statistics of the reference estimator, whose block
structure is known in advance: each block adds, row by row, the pieces of the K1-blocks that cross
it. The Gaussian null is drawn in seeded column tiles, so it is streamed the same way. Memory: a few
D-vectors, a few P × c blocks per worker and the P × P Grams of two layers per worker; the gradients
are computed once, as in the reference, channels-last where that is faster
(``models.fastest_memory_format``), with the heaps keeping a step's memory
(``allocator.reused_step_memory``). Nothing is accumulated during the gradient pass on purpose: work
there contends with the backward passes for the same cores (measured: a statistics thread beside a
2-thread backward slowed it 3×), and every statistic but the sums needs ḡ, hence all P gradients.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import queue
import re
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gradnoise.allocator import reused_step_memory
from gradnoise.estimators import EPS, IQR_PER_STD, ref_k1
from gradnoise.io import ALL, NOISE_SAMPLES_SCHEMA, NOISE_STATS_SCHEMA
from gradnoise.models import fastest_memory_format
from gradnoise.seeds import hash_seed
from gradnoise.views import averaging_matrix, averaging_weights, momentum_of

log = logging.getLogger(__name__)

NULL_TILE = 256  # columns per separately seeded tile of the Gaussian null's draws
GRAM_TILE = 64  # rows per tile of the Gram products
MICRO_BATCH = 50  # most examples per forward/backward of the gradient pass on the CPU
# largest allocation that the gradient pass's heaps serve and keep for the next minibatch
# (``allocator.reused_step_memory``), and the activations' share of what they keep: the small
# AlexNet's at MICRO_BATCH examples
STEP_MEMORY = 16 * 2**20
# layers queued for the column pass's workers beyond the one being finished (more holds more P × P
# Grams and was no faster, measured at P = 1,000)
LAYERS_IN_FLIGHT = 1
CHUNKS_PER_WORKER = 4  # column chunks per worker and layer

# the mean loss of the examples at the given indices, computed with the given model
LossOnIndices = Callable[[nn.Module, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Layer:
    name: str
    start: int
    stop: int

    @property
    def numel(self) -> int:
        return self.stop - self.start


def layers_of(model: nn.Module) -> list[Layer]:
    out, start = [], 0
    for name, p in model.named_parameters():
        out.append(Layer(name, start, start + p.numel()))
        start += p.numel()
    return out


def minibatches(
    n: int, batch_size: int, n_batches: int | None, mode: str, seed: int
) -> list[torch.Tensor]:
    """Index sets of the minibatches: consecutive (reference) or seeded random draws (sampled)."""
    if mode == "reference":
        p = n // batch_size if n_batches is None else min(n_batches, n // batch_size)
        return [torch.arange(k * batch_size, (k + 1) * batch_size) for k in range(p)]
    gen = torch.Generator().manual_seed(seed)
    m = n // batch_size if n_batches is None else n_batches
    return [torch.randperm(n, generator=gen)[:batch_size] for _ in range(m)]


def minibatch_gradients(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batches: list[torch.Tensor]
) -> Iterator[list[torch.Tensor]]:
    """g_k of the classification loss (``classification_loss``): ``batch_gradients`` with
    micro-batches of at most MICRO_BATCH examples on the CPU."""
    micro = MICRO_BATCH if x.device.type == "cpu" else None
    return batch_gradients(model, classification_loss(x, y), batches, micro, x.device)


def batch_gradients(
    model: nn.Module,
    loss_on: LossOnIndices,
    batches: list[torch.Tensor],
    micro_batch: int | None = None,
    device: torch.device | None = None,
) -> Iterator[list[torch.Tensor]]:
    """g_k, in order, as one flat float32 piece per parameter in the parameters' logical order (their
    concatenation is g_k; on the model's device), in eval mode: the reference's per-batch gradient.
    ``loss_on(model, idx)`` is the mean loss of the examples `idx` (any task), called with the model
    this pass runs (a copy in another memory layout, see below), and idx on `device` (default: the
    model's). Pieces, not the flat g_k: a large network's g_k is above the largest allocation glibc
    serves from its heaps (ResNet-18: 45 MB against 32 MiB), so every step would map it and fault it in
    afresh (measured, ResNet-18, B = 4, one thread: 1.43× the time per minibatch). Runs on a copy of
    the model in its fastest memory layout (``models.fastest_memory_format``). On the CPU,
    torch.get_num_threads() single-threaded workers take one minibatch each, side by side. With
    `micro_batch`, each in even micro-batches of at most that many examples: valid only where the loss
    is a mean of independent per-example terms (in eval mode no example's output depends on
    another's), so g_k is the size-weighted sum of its micro-batches' gradients (the same to float32
    rounding). Measured on the small AlexNet, B = 100, 2 cores, with the heaps keeping a step's
    memory (as ``sample_split`` runs it): 1.55 s per 100 minibatches for halves, 1.65 s for quarters,
    1.5 s but +35 MiB more for whole minibatches, and 2.3 s for whole minibatches one at a time on
    both intra-op threads (whose operations are too small to split well). The GPU takes each
    minibatch whole."""
    model.eval()
    device = device or next(model.parameters()).device
    layout = fastest_memory_format(model, device)
    if layout is not torch.contiguous_format:
        model = copy.deepcopy(model).to(memory_format=layout)
    params = list(model.parameters())
    cpu = device.type == "cpu"
    threads = torch.get_num_threads()
    workers = threads if cpu else 1

    def gradient(idx: torch.Tensor) -> list[torch.Tensor]:
        idx = idx.to(device)
        parts = -(-len(idx) // micro_batch) if micro_batch else 1
        total: list[torch.Tensor] = []
        for part in idx.tensor_split(parts):
            loss = loss_on(model, part) * (len(part) / len(idx))
            pieces = [g.reshape(-1) for g in torch.autograd.grad(loss, params)]
            total = [t.add_(g) for t, g in zip(total, pieces, strict=True)] if total else pieces
        return total

    if workers == 1:
        yield from map(gradient, batches)
        return
    try:
        with ThreadPoolExecutor(workers, initializer=torch.set_num_threads, initargs=(1,)) as pool:
            pending: deque[Future] = deque()
            for idx in batches:  # at most one minibatch per worker in flight
                if len(pending) == workers:
                    yield pending.popleft().result()
                pending.append(pool.submit(gradient, idx))
            while pending:
                yield pending.popleft().result()
    finally:
        torch.set_num_threads(threads)


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


class PooledStream:
    """The reference estimator's row-major block sums over a P × L matrix, fed a block of columns (all
    P rows) at a time, so that the matrix never exists whole.

    Entry (k, j) sits at flat position k·L + j; block b sums positions b·K1 … (b+1)·K1 − 1 and counts
    for the row of its last entry. A block of columns adds, for every row, the pieces of the blocks
    that cross it: differences of the row's cumulative sum at the block boundaries. Per row k it
    exposes ``log_x`` Σ log(|x|+eps) over the row, and ``log_y`` Σ log(|Y|+eps) and ``n_y`` the count
    of the blocks completed in row k; the pooled estimate and any bootstrap over rows follow from these.
    """

    def __init__(self, n_rows: int, row_len: int, device: torch.device) -> None:
        self.k1 = ref_k1(n_rows * row_len)
        self.row_len = row_len
        self.y = torch.zeros(n_rows * row_len // self.k1, dtype=torch.float64, device=device)
        self.row_log_x = torch.zeros(n_rows, dtype=torch.float64, device=device)

    def layout(self, p: int, c: int, col: int, device: torch.device) -> tuple[torch.Tensor, ...]:
        """Where the blocks cut each row's piece of columns col … col+c−1, the same for every matrix
        of this shape: the gather index of the cumulative sum at every edge of a piece, whether the
        edge is past the start of the row's piece, and the block of every piece. (Small integer
        arrays: numpy's per-operation overhead is a fraction of torch's.)"""
        start = np.arange(p) * self.row_len + col  # flat position of `col` in every row
        # boundaries inside the piece: the first at (−start) mod K1, the last clamped to c
        cuts = (-start % self.k1)[:, None] + self.k1 * np.arange((c - 1) // self.k1 + 2)
        edges = np.concatenate([np.zeros((p, 1), dtype=np.int64), np.minimum(cuts, c)], axis=1)
        block = np.minimum((start[:, None] + edges[:, :-1]) // self.k1, self.y.numel() - 1)
        return tuple(
            torch.from_numpy(a).to(device)
            for a in (np.maximum(edges - 1, 0), edges > 0, block.reshape(-1))
        )

    def add(
        self, cumsum: torch.Tensor, layout: tuple[torch.Tensor, ...], log_x: torch.Tensor
    ) -> None:
        """A block of columns of every row, given their cumulative sums along the row (P × c), the
        block's `layout` and the per-row Σ log(|x|+eps)."""
        ends, nonempty, block = layout
        prefix = cumsum.gather(1, ends) * nonempty  # Σ_{j < edge} x_j at every edge
        pieces = prefix[:, 1:] - prefix[:, :-1]  # empty pieces are exactly 0
        self.y.index_add_(0, block, pieces.reshape(-1))
        self.row_log_x += log_x

    def _rows(self) -> torch.Tensor:
        """The row in which each block is completed."""
        last = (torch.arange(self.y.numel(), device=self.y.device) + 1) * self.k1 - 1
        return last // self.row_len

    @property
    def log_x(self) -> np.ndarray:
        return self.row_log_x.cpu().numpy()

    @property
    def log_y(self) -> np.ndarray:
        log_y = torch.zeros_like(self.row_log_x)
        return log_y.index_add_(0, self._rows(), self.y.abs().add(EPS).log()).cpu().numpy()

    @property
    def n_y(self) -> np.ndarray:
        return torch.bincount(self._rows(), minlength=self.row_log_x.numel()).cpu().numpy()


class GaussianColumns:
    """Columns of a P × D standard-normal matrix, drawn in tiles of NULL_TILE columns, each from its own
    generator seeded by (seed, tile): any block of columns gets the same draws however the columns are
    chunked, and the matrix is never held whole. The last tile drawn is kept for the next block."""

    def __init__(self, p: int, seed: int, device: torch.device) -> None:
        self.p, self.seed, self.device = p, seed, device
        self._tile: tuple[int, torch.Tensor | None] = (-1, None)

    def _draw(self, t: int) -> torch.Tensor:
        if self._tile[0] != t:
            gen = torch.Generator(device=self.device).manual_seed(hash_seed(self.seed, t))
            z = torch.randn(self.p, NULL_TILE, generator=gen, device=self.device)
            self._tile = (t, z)
        return self._tile[1]

    def columns(self, start: int, stop: int) -> torch.Tensor:
        parts = [
            self._draw(t)[:, max(start - t * NULL_TILE, 0) : min(stop - t * NULL_TILE, NULL_TILE)]
            for t in range(start // NULL_TILE, (stop - 1) // NULL_TILE + 1)
        ]
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)


def _circular_ema(u: torch.Tensor, w_hat: torch.Tensor) -> torch.Tensor:
    """A u along the rows, as the circular convolution with A's first column w (ŵ = rfft(w)):
    O(P log P) per column instead of the P² of the product with A."""
    return torch.fft.irfft(torch.fft.rfft(u, dim=0) * w_hat[:, None], n=u.shape[0], dim=0)


def stored_coordinates(layers: list[Layer], per_layer: int, seed: int) -> np.ndarray:
    """Flat indices of the stored coordinates, `per_layer` per layer (−1 pads layers that are smaller)."""
    rng = np.random.default_rng(seed)
    out = np.full((len(layers), per_layer), -1, dtype=np.int64)
    for i, layer in enumerate(layers):
        take = min(per_layer, layer.numel)
        out[i, :take] = layer.start + np.sort(rng.choice(layer.numel, take, replace=False))
    return out


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


def classification_loss(x: torch.Tensor, y: torch.Tensor) -> LossOnIndices:
    """The mean cross entropy of the examples at the given indices: the zoo's loss."""

    def loss_on(net: nn.Module, idx: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(net(x[idx]), y[idx])

    return loss_on


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


def _read_block(fd: int, p: int, d: int, start: int, stop: int) -> torch.Tensor:
    """Rows 0..P−1, columns start..stop of the row-major float32 spill file (one pread per row)."""
    out = np.empty((p, stop - start), dtype=np.float32)
    for k in range(p):
        os.preadv(fd, [out[k]], (k * d + start) * 4)
    return torch.from_numpy(out)


def iqr_scale(v: torch.Tensor) -> torch.Tensor:
    """Per-column IQR/1.349 (quartiles interpolated linearly between order statistics, as numpy's
    default): the std of a Gaussian with that IQR. The Gaussian null is matched on this scale (the std
    where the IQR is 0), not on the std: for heavy-tailed noise the sample std of each coordinate is set
    by its few largest draws, so a std-matched null would itself be scale-mixed and read as heavy-tailed."""
    p = v.shape[0]
    h = [(p - 1) * q for q in (0.25, 0.75)]
    lo = [math.floor(x) for x in h]
    s = _order_statistics(v, [lo[0], min(lo[0] + 1, p - 1), lo[1], min(lo[1] + 1, p - 1)])
    s = s.to(torch.float64)
    q25 = s[0] + (h[0] - lo[0]) * (s[1] - s[0])
    q75 = s[2] + (h[1] - lo[1]) * (s[3] - s[2])
    return (q75 - q25) / IQR_PER_STD


def _order_statistics(v: torch.Tensor, ranks: list[int]) -> torch.Tensor:
    """Rows `ranks` of v sorted along dim 0. On the CPU, numpy's vectorized sort of contiguous rows (of
    the transposed block) is far faster than torch.sort along dim 0."""
    if v.device.type == "cpu":
        s = np.sort(v.T.contiguous().numpy(), axis=1)
        return torch.from_numpy(np.ascontiguousarray(s[:, ranks].T))
    return torch.sort(v, dim=0).values[ranks]


def _gram_add(acc: torch.Tensor, x: torch.Tensor) -> None:
    """acc += x xᵀ: the products in float32 (the gradients' own precision; twice the speed of
    float64, and the Gram is the column pass's largest cost), each block's sum added to the float64
    accumulator, so rounding does not grow with D: |Δ(x xᵀ)_ij| ≲ 1e-6 ‖x_i‖‖x_j‖ for a block
    (checked against the float64 product in the tests). On the CPU only the tiles on and below the
    diagonal, GRAM_TILE rows at a time: the product is symmetric, so this is about half the flops of
    x @ x.T (see _symmetric_sum)."""
    x = x.float()
    if x.device.type != "cpu":
        acc += x @ x.T
        return
    for i in range(0, x.shape[0], GRAM_TILE):
        j = i + GRAM_TILE
        acc[i:j, :j] += x[i:j] @ x[:j].T


def _symmetric_sum(lowers: list[torch.Tensor]) -> torch.Tensor:
    """The symmetric matrix whose lower triangle is the sum of `lowers` (in place, in the first)."""
    out = lowers[0]
    for other in lowers[1:]:
        out += other
    out.tril_()
    return out.add_(out.tril(-1).T)


def _push(streams: dict[str, PooledStream], layouts: dict[str, tuple], x: torch.Tensor) -> None:
    """A block of columns of one layer into the whole-network and the layer's pooled streams (sums
    in float64 whatever the dtype of x)."""
    log_x = _log_abs_row_sums(x)
    cumsum = x.cumsum(dim=1, dtype=torch.float64)
    for name, layout in layouts.items():
        streams[name].add(cumsum, layout, log_x)


def _log_abs_row_sums(x: torch.Tensor) -> torch.Tensor:
    """Σ_j log(|x_kj| + eps) for every row k: the logs in the dtype of x, their sums in float64. On
    the CPU through numpy, whose vectorized log is about twice as fast as torch's."""
    if x.device.type != "cpu":
        return x.abs().add_(EPS).log_().sum(dim=1, dtype=torch.float64)
    a = np.abs(x.numpy())
    log_a = np.log(np.add(a, a.dtype.type(EPS), out=a), out=a)
    return torch.from_numpy(log_a.sum(axis=1, dtype=np.float64))


def _streams(p: int, d: int, layers: list[Layer], device: torch.device) -> dict[str, PooledStream]:
    return {ALL: PooledStream(p, d, device)} | {
        lay.name: PooledStream(p, lay.numel, device) for lay in layers
    }


class _Scanner:
    """One worker's share of the column pass: every statistic of the column ranges it is given, read
    from the spill file in P × c blocks. Per-coordinate results go straight into the shared outputs
    (each worker writes its own columns); the pooled streams are the worker's own and are summed over
    workers at the end; the Gram matrices are the worker's own per layer, summed over workers when
    the layer is finished."""

    def __init__(self, fd, p, d, layers, views, out, widths, coord_idx, split_seed, device) -> None:
        self.fd, self.p, self.d, self.views, self.out = fd, p, d, views, out
        self.slab, self.width = widths
        self.flat = coord_idx.reshape(-1)
        self.kind = {v: "raw" if spec is None else spec[0] for v, spec in views.items()}
        self.w_hat = {
            v: torch.fft.rfft(torch.from_numpy(averaging_weights(p, spec[1])).to(device))
            for v, spec in views.items()
            if self.kind[v] == "averaged"
        }
        self.gram_keys = [v for v in views if self.kind[v] == "preconditioned"]
        if any(k != "preconditioned" for k in self.kind.values()):
            self.gram_keys.append(None)  # the raw Gram, also that of the averaged views
        self.pooled = {v: _streams(p, d, layers, device) for v in views}
        self.null = {v: _streams(p, d, layers, device) for v in views}
        self.draws = {v: GaussianColumns(p, hash_seed(split_seed, v), device) for v in views}
        self.device = device
        self.grams: dict[str, dict[str | None, torch.Tensor]] = {}

    def scan(self, layer: Layer, start: int, stop: int) -> None:
        """Columns start … stop−1 of `layer`: read in slabs (one pread per row), processed in blocks;
        the Gram matrices add up in ``grams[layer.name]`` (taken by whoever finishes the layer)."""
        grams = self.grams.get(layer.name)
        if grams is None:
            grams = {
                k: torch.zeros(self.p, self.p, dtype=torch.float64, device=self.device)
                for k in self.gram_keys
            }
            self.grams[layer.name] = grams
        for a in range(start, stop, self.slab):
            b = min(a + self.slab, stop)
            slab = _read_block(self.fd, self.p, self.d, a, b).to(self.device)
            for s in range(a, b, self.width):
                e = min(s + self.width, b)
                self._block(layer, s, e, slab[:, s - a : e - a], grams)

    def _block(
        self, layer: Layer, s: int, e: int, g: torch.Tensor, grams: dict[str | None, torch.Tensor]
    ) -> None:
        p = self.p
        u = g.to(torch.float64)
        u -= u.sum(dim=0) / p
        var_u = u.square().sum(dim=0) / (p - 1)
        iqr_u = iqr_scale(g)  # u = g − ḡ has the order statistics of g, shifted
        if None in grams:
            _gram_add(grams[None], u)
        some = self.pooled[next(iter(self.views))]  # every stream of a name has the same layout
        layouts = {
            ALL: some[ALL].layout(p, e - s, s, self.device),
            layer.name: some[layer.name].layout(p, e - s, s - layer.start, self.device),
        }
        sel = np.flatnonzero((self.flat >= s) & (self.flat < e))
        cols = torch.from_numpy(self.flat[sel] - s).to(self.device)
        for v, spec in self.views.items():
            if self.kind[v] == "raw":
                x, var, iqr = u, var_u, iqr_u
            elif self.kind[v] == "preconditioned":
                w = spec[1][s:e]
                x, var, iqr = u * w, var_u * w.square(), iqr_u * w  # IQR(u·w) = w·IQR(u)
                _gram_add(grams[v], x)
            else:
                x = _circular_ema(u, self.w_hat[v])
                var, iqr = x.square().sum(dim=0) / (p - 1), iqr_scale(x)
            out = self.out[v]
            out["var"][s:e] = var
            out["null_scale"][s:e] = torch.where(iqr > 0, iqr, var.sqrt())
            _push(self.pooled[v], layouts, x)
            # the null: float32 draws times the scale as stored (float32, like the gradients; ample
            # for a surrogate, and its logs cost a third of float64 ones)
            z = self.draws[v].columns(s, e) * out["null_scale"][s:e]
            _push(self.null[v], layouts, z)
            out["coords"][:, sel] = x[:, cols].float().cpu().numpy()


def _column_pass(
    spill, p, d, layers, views, chunk_mb, coord_idx, split_seed, device
) -> dict[str, dict[str, Any]]:
    """Every statistic of every view from one read of the spill file, in P × c blocks within one layer:
    the P × P Gram matrices (per layer and whole network), per-coordinate variances and robust
    scales, the row-major pooled block sums of the noise and of its Gaussian null, the layer norms
    (square roots of the Gram diagonals) and the stored coordinates. The averaged view's Gram is
    A G Aᵀ of the raw one, exactly.

    On the CPU, torch.get_num_threads() single-threaded workers (the main thread one of them) take
    chunks of columns from one queue and run their operations side by side (sorts, logs, BLAS
    tiles): operations this small scale poorly over intra-op threads, which meet at every
    operation's barrier. Each worker sums the Gram matrices of the chunks it took, per layer; the
    main thread finishes the layers in order (sums the workers' Grams, takes the spectra) while the
    queue holds the next LAYERS_IN_FLIGHT layers, so nobody waits at a layer's end and only that
    many more layers' Grams are held."""
    workers = torch.get_num_threads() if device.type == "cpu" else 1
    # per worker: a third of its share for the float32 slab, the rest for a block's working set (u,
    # and per view its values and those of its null with their logs and cumulative sums, float64)
    share = chunk_mb * 2**20 / workers
    slab = max(1, int(share / 3 / (4 * p)))
    widths = (slab, min(slab, max(1, int(share * 2 / 3 / (p * (8 + 32 * len(views)))))))
    amats = {
        v: torch.from_numpy(averaging_matrix(p, spec[1])).to(device)
        for v, spec in views.items()
        if spec and spec[0] == "averaged"
    }
    n_coords = coord_idx.size
    out = {
        v: {
            "var": torch.empty(d, dtype=torch.float32, device=device),
            "null_scale": torch.empty(d, dtype=torch.float32, device=device),
            "gram_all": torch.zeros(p, p, dtype=torch.float64, device=device),
            "spectra": {},
            "norms": np.zeros((p, len(layers))),
            "coords": np.full((p, n_coords), np.nan, dtype=np.float32),
        }
        for v in views
    }

    def finish_layer(i: int, layer: Layer) -> None:
        parts = [sc.grams.pop(layer.name) for sc in scanners if layer.name in sc.grams]
        grams = {k: _symmetric_sum([part[k] for part in parts]) for k in parts[0]}
        for v, spec in views.items():
            if spec is None:
                gram = grams[None]
            elif spec[0] == "preconditioned":
                gram = grams[v]
            else:
                gram = amats[v] @ grams[None] @ amats[v].T
            st = out[v]
            st["spectra"][layer.name] = _spectrum(gram, p)
            st["norms"][:, i] = gram.diagonal().sqrt().cpu().numpy()
            st["gram_all"] += gram

    # the slab is a block's largest allocation; a worker's blocks are a few slabs' worth
    with (
        reused_step_memory(4 * p * slab, 4 * p * slab),
        _one_torch_thread(),
        open(spill, "rb", buffering=0) as f,
    ):
        scanners = [
            _Scanner(f.fileno(), p, d, layers, views, out, widths, coord_idx, split_seed, device)
            for _ in range(workers)
        ]
        with _ChunkQueue(scanners) as work:
            for layer in layers[:LAYERS_IN_FLIGHT]:
                work.submit(layer, _chunks(layer, workers, slab))
            for i, layer in enumerate(layers):
                if i + LAYERS_IN_FLIGHT < len(layers):
                    ahead = layers[i + LAYERS_IN_FLIGHT]
                    work.submit(ahead, _chunks(ahead, workers, slab))
                work.wait(layer)
                finish_layer(i, layer)
        for st in out.values():
            st["spectra"][ALL] = _spectrum(st["gram_all"], p)
            st["gram_all"] = (st["gram_all"] / (p - 1)).cpu().numpy()
    for v, st in out.items():
        st["pooled"] = _merged([sc.pooled[v] for sc in scanners])
        st["null"] = _merged([sc.null[v] for sc in scanners])
    return out


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """The calling thread's torch operations on one thread, restored on exit."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class _ChunkQueue:
    """The column pass's work: chunks of columns on one queue, scanned by one thread per scanner but
    the first, and by the main thread with the first scanner while it waits for a layer. (The main
    thread works rather than waits: it reuses the memory the gradient pass freed, where another
    thread would grow an arena of its own; glibc keeps one per thread.) A context manager: on exit,
    ``close``."""

    def __init__(self, scanners: list[_Scanner]) -> None:
        self.tasks: queue.SimpleQueue = queue.SimpleQueue()
        self.left: dict[str, int] = {}
        self.done: dict[str, threading.Event] = {}
        self.lock = threading.Lock()
        self.error: BaseException | None = None
        self.main = scanners[0]
        self.threads = [threading.Thread(target=self._work, args=(sc,)) for sc in scanners[1:]]
        for t in self.threads:
            t.start()

    def __enter__(self) -> _ChunkQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def submit(self, layer: Layer, chunks: list[tuple[int, int]]) -> None:
        self.left[layer.name] = len(chunks)
        self.done[layer.name] = threading.Event()
        for a, b in chunks:
            self.tasks.put((layer, a, b))

    def wait(self, layer: Layer) -> None:
        """Until every chunk of `layer` is scanned, scanning queued chunks (of any layer) meanwhile;
        a worker's error is raised here."""
        done = self.done[layer.name]
        while not done.is_set() and self.error is None:
            try:
                task = self.tasks.get_nowait()
            except queue.Empty:
                done.wait()
                break
            self._run(self.main, task)
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        """Drop the chunks not started (after an error) and end the worker threads."""
        with contextlib.suppress(queue.Empty):
            while True:
                self.tasks.get_nowait()
        for _ in self.threads:
            self.tasks.put(None)
        for t in self.threads:
            t.join()

    def _work(self, scanner: _Scanner) -> None:
        torch.set_num_threads(1)
        while (task := self.tasks.get()) is not None:
            self._run(scanner, task)

    def _run(self, scanner: _Scanner, task: tuple[Layer, int, int]) -> None:
        layer, a, b = task
        try:
            scanner.scan(layer, a, b)
        except BaseException as err:  # handed to the main thread, which raises it
            self.error = self.error or err
            for event in list(self.done.values()):
                event.set()
            return
        with self.lock:
            self.left[layer.name] -= 1
            if self.left[layer.name] == 0:
                self.done[layer.name].set()


def _chunks(layer: Layer, workers: int, slab: int) -> list[tuple[int, int]]:
    """A layer's columns in CHUNKS_PER_WORKER pieces per worker, none narrower than a slab, so that
    the workers' loads even out."""
    n = max(1, min(CHUNKS_PER_WORKER * workers, layer.numel // slab))
    bounds = np.linspace(layer.start, layer.stop, n + 1).astype(int).tolist()
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _merged(parts: list[dict[str, PooledStream]]) -> dict[str, PooledStream]:
    """The workers' streams summed (each holds the block pieces and row sums of its own columns)."""
    for other in parts[1:]:
        for name, stream in parts[0].items():
            stream.y += other[name].y
            stream.row_log_x += other[name].row_log_x
    return parts[0]


def _spectrum(gram: torch.Tensor, p: int) -> np.ndarray:
    """Eigenvalues of the sample covariance (nonzero part): those of G/(P−1), descending."""
    ev = torch.linalg.eigvalsh(gram / (p - 1)).cpu().numpy()[::-1]
    return np.clip(ev, 0.0, None).copy()


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


def scratch_dir() -> str | None:
    """Where the gradient spill file goes: $GRADNOISE_SCRATCH, else $TMPDIR (SLURM sets a local one)."""
    return os.environ.get("GRADNOISE_SCRATCH") or None


def _scratch_prefix() -> str:
    """Scratch folders are named by host and process, so that a later run can tell a dead job's."""
    return f"gradnoise-{socket.gethostname()}-{os.getpid()}-"


_SCRATCH_NAME = re.compile(r"gradnoise-(?P<host>.+)-(?P<pid>\d+)-[a-z0-9_]+")


def remove_stale_scratch(folder: str | Path | None = None) -> list[Path]:
    """Remove the scratch folders that jobs on this host left behind when they were killed (their
    process no longer exists); returns them."""
    folder = Path(folder or scratch_dir() or tempfile.gettempdir())
    host, removed = socket.gethostname(), []
    for entry in folder.glob("gradnoise-*"):
        m = _SCRATCH_NAME.fullmatch(entry.name)
        if not entry.is_dir() or not m or m["host"] != host or _alive(int(m["pid"])):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        log.info("removed the scratch folder of a killed job: %s", entry)
        removed.append(entry)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


@contextlib.contextmanager
def scratch_cleanup() -> Iterator[None]:
    """Remove killed jobs' scratch folders, and turn SIGTERM into SystemExit while the body runs, so
    that the scratch folder (up to gigabytes) is removed on the way out as on SIGINT (Ctrl-C)."""
    remove_stale_scratch()

    def terminate(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def to_tables(splits: dict[str, dict[str, Any]], per_layer: int) -> tuple[Any, Any]:
    """The samples table and the stats table of the Parquet contract (see ``gradnoise.io``)."""
    import pyarrow as pa

    dict_str = pa.dictionary(pa.int32(), pa.string())
    samples, stats = [], []
    for split, res in splits.items():
        p, d, layers = res["P"], res["D"], res["layers"]
        coord_index = res["coord_index"]
        for view, st in res["views"].items():
            n_layers = len(layers)
            samples.append(
                pa.table(
                    {
                        "split": pa.array([split] * (p * n_layers)).cast(dict_str),
                        "view": pa.array([view] * (p * n_layers)).cast(dict_str),
                        "layer": pa.array([lay.name for lay in layers] * p).cast(dict_str),
                        "sample": pa.array(np.repeat(np.arange(p, dtype=np.int32), n_layers)),
                        "norm": pa.array(st["norms"].reshape(-1)),
                        "coords": pa.FixedSizeListArray.from_arrays(
                            pa.array(st["coords"].reshape(-1), pa.float32()), per_layer
                        ),
                    }
                )
            )
            var = st["var"].cpu().numpy()
            for name, numel, cidx, sl in [(ALL, d, coord_index.reshape(-1), slice(0, d))] + [
                (lay.name, lay.numel, coord_index[i], slice(lay.start, lay.stop))
                for i, lay in enumerate(layers)
            ]:
                pooled, null = st["pooled"][name], st["null"][name]
                live = var[sl][
                    var[sl] > 0
                ]  # coordinates with no noise at all (dead inputs) excluded
                q01, q50, q99 = np.quantile(live, [0.01, 0.5, 0.99]) if live.size else (0.0,) * 3
                stats.append(
                    {
                        "split": split,
                        "view": view,
                        "layer": name,
                        "P": p,
                        "numel": numel,
                        "k1": pooled.k1,
                        "row_log_x": pooled.log_x.tolist(),
                        "row_log_y": pooled.log_y.tolist(),
                        "row_n_y": pooled.n_y.tolist(),
                        "null_row_log_x": null.log_x.tolist(),
                        "null_row_log_y": null.log_y.tolist(),
                        "eigenvalues": st["spectra"][name].tolist(),
                        "gram": st["gram_all"].reshape(-1).tolist() if name == ALL else None,
                        "coord_index": cidx.tolist(),
                        "var_q01": float(q01),
                        "var_q50": float(q50),
                        "var_q99": float(q99),
                        "var_mean": float(var[sl].mean()),
                        "var_zero_fraction": float(np.mean(var[sl] == 0)),
                    }
                )
    if not samples:
        return empty_tables(per_layer)
    stats_table = pa.Table.from_pylist(stats, schema=NOISE_STATS_SCHEMA)
    return pa.concat_tables(samples), stats_table


def empty_tables(per_layer: int) -> tuple[Any, Any]:
    """Tables with no rows (a diverged run): the file exists and says why in its metadata."""
    import pyarrow as pa

    coords = NOISE_SAMPLES_SCHEMA.get_field_index("coords")
    schema = NOISE_SAMPLES_SCHEMA.set(coords, pa.field("coords", pa.list_(pa.float32(), per_layer)))
    return schema.empty_table(), NOISE_STATS_SCHEMA.empty_table()


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
