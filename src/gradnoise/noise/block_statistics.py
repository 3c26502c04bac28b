"""Statistics of one P × c block of columns that holds all P values of its coordinates: robust
scales from order statistics, Gram products and their spectra, and the averaged view's circular
EMA."""

from __future__ import annotations

import math

import numpy as np
import torch

from gradnoise.estimators import IQR_PER_STD

GRAM_TILE = 64  # rows per tile of the Gram products


def _circular_ema(u: torch.Tensor, w_hat: torch.Tensor) -> torch.Tensor:
    """A u along the rows, as the circular convolution with A's first column w (ŵ = rfft(w)):
    O(P log P) per column instead of the P² of the product with A."""
    return torch.fft.irfft(torch.fft.rfft(u, dim=0) * w_hat[:, None], n=u.shape[0], dim=0)


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


def _spectrum(gram: torch.Tensor, p: int) -> np.ndarray:
    """Eigenvalues of the sample covariance (nonzero part): those of G/(P−1), descending."""
    ev = torch.linalg.eigvalsh(gram / (p - 1)).cpu().numpy()[::-1]
    return np.clip(ev, 0.0, None).copy()
