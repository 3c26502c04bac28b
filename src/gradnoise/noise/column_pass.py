"""The column pass: every statistic of every view from one read of the gradients' spill file, in
P × c blocks of columns within one layer, by workers that each scan their own chunks."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from gradnoise.allocator import reused_step_memory
from gradnoise.io import ALL
from gradnoise.noise.block_statistics import (
    _circular_ema,
    _gram_add,
    _spectrum,
    _symmetric_sum,
    iqr_scale,
)
from gradnoise.noise.layers import Layer
from gradnoise.noise.scheduling import _ChunkQueue, _chunks, _one_torch_thread
from gradnoise.noise.streams import GaussianColumns, _merged, _push, _streams
from gradnoise.seeds import hash_seed
from gradnoise.views import averaging_matrix, averaging_weights

# layers queued for the column pass's workers beyond the one being finished (more holds more P × P
# Grams and was no faster: benchmarks/README.md)
LAYERS_IN_FLIGHT = 1


def _read_block(fd: int, p: int, d: int, start: int, stop: int) -> torch.Tensor:
    """Rows 0..P−1, columns start..stop of the row-major float32 spill file (one pread per row)."""
    out = np.empty((p, stop - start), dtype=np.float32)
    for k in range(p):
        os.preadv(fd, [out[k]], (k * d + start) * 4)
    return torch.from_numpy(out)


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
