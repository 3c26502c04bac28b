"""The gradient pass: the minibatches of a split and their mean-loss gradients g_k, in order,
computed once (DESIGN.md §3, reference and sampled modes)."""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import torch
from torch import nn

from gradnoise.models import fastest_memory_format

MICRO_BATCH = 50  # most examples per forward/backward of the gradient pass on the CPU


# the mean loss of the examples at the given indices, computed with the given model
LossOnIndices = Callable[[nn.Module, torch.Tensor], torch.Tensor]


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
    afresh (timed in benchmarks/README.md). Runs on a copy of the model in its fastest memory layout
    (``models.fastest_memory_format``). On the CPU, torch.get_num_threads() single-threaded workers
    take one minibatch each, side by side. With `micro_batch`, each in even micro-batches of at most
    that many examples: valid only where the loss is a mean of independent per-example terms (in
    eval mode no example's output depends on another's), so g_k is the size-weighted sum of its
    micro-batches' gradients (the same to float32 rounding). Halves of a minibatch are about as
    fast as whole ones with less memory, and one minibatch at a time on all intra-op threads is
    slower (its operations are too small to split well; timed in benchmarks/README.md). The GPU
    takes each minibatch whole."""
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


def classification_loss(x: torch.Tensor, y: torch.Tensor) -> LossOnIndices:
    """The mean cross entropy of the examples at the given indices: the zoo's loss."""

    def loss_on(net: nn.Module, idx: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(net(x[idx]), y[idx])

    return loss_on
