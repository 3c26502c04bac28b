"""Statistics accumulated over blocks of columns of a P × L matrix that never exists whole: the
reference estimator's row-major block sums (``PooledStream``) and the seeded Gaussian null's
columns (``GaussianColumns``)."""

from __future__ import annotations

import numpy as np
import torch

from gradnoise.estimators import EPS, ref_k1
from gradnoise.io import ALL
from gradnoise.noise.layers import Layer
from gradnoise.seeds import hash_seed

NULL_TILE = 256  # columns per separately seeded tile of the Gaussian null's draws


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


def _merged(parts: list[dict[str, PooledStream]]) -> dict[str, PooledStream]:
    """The workers' streams summed (each holds the block pieces and row sums of its own columns)."""
    for other in parts[1:]:
        for name, stream in parts[0].items():
            stream.y += other[name].y
            stream.row_log_x += other[name].row_log_x
    return parts[0]
