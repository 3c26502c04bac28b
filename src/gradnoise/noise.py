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
  It obeys a_k = β a_{k−1} + (1 − β) u_k with a_{−1} = a_{P−1} = c Σ_j β^j g_{P−1−j} − ḡ.

How it streams: one gradient pass writes each g_k (float32) to a scratch file in $TMPDIR while summing
ḡ; a column pass then reads P × c blocks (c columns at a time, within one layer) for the exact P × P
Gram matrices, per-coordinate variances and robust scales; a row pass reads g_k one at a time for the row-major pooled
statistics (the reference estimator's block sums, with the partial block carried across rows), the
Gaussian-null stream, layer norms and the stored coordinates. Memory: a few D-vectors and one P × c
block; the gradients are computed once, as in the reference.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gradnoise.estimators import EPS, IQR_PER_STD, ref_k1
from gradnoise.io import ALL
from gradnoise.optim import momentum_of
from gradnoise.seeds import hash_seed

log = logging.getLogger(__name__)


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
) -> Iterator[torch.Tensor]:
    """g_k, flattened over all parameters (float32, on the model's device), in eval mode."""
    model.eval()
    params = [p for p in model.parameters()]
    for idx in batches:
        idx = idx.to(x.device)
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        grads = torch.autograd.grad(loss, params)
        yield torch.cat([g.reshape(-1) for g in grads]).detach()


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
    """Row-major block sums of the reference estimator, fed one row at a time.

    Stores per row k: Σ log(|x|+eps) over the row, and Σ log(|Y|+eps) and the count of the blocks
    completed in row k (a block straddling rows k−1 and k counts for row k). The pooled estimate and
    any bootstrap over rows follow from these P-vectors.
    """

    def __init__(self, n_rows: int, row_len: int, device: torch.device) -> None:
        self.k1 = ref_k1(n_rows * row_len)
        self.carry = torch.zeros(0, dtype=torch.float64, device=device)
        self.log_x = np.zeros(n_rows)
        self.log_y = np.zeros(n_rows)
        self.n_y = np.zeros(n_rows, dtype=np.int64)

    def push(self, k: int, x: torch.Tensor, log_abs_x_sum: float) -> None:
        self.log_x[k] = log_abs_x_sum
        c, head, log_y, n_y = self.carry.numel(), 0, 0.0, 0
        if c:  # finish the block left open by earlier rows without copying this row
            head = min(self.k1 - c, x.numel())
            if c + head < self.k1:
                self.carry = torch.cat([self.carry, x])
                return
            y0 = self.carry.sum() + x[:head].sum()
            log_y, n_y = float(torch.log(y0.abs() + EPS)), 1
        rest = x[head:]
        full = rest.numel() // self.k1 * self.k1
        if full:
            y = rest[:full].view(-1, self.k1).sum(dim=1)
            log_y += float(torch.log(y.abs() + EPS).sum())
            n_y += y.numel()
        self.log_y[k], self.n_y[k] = log_y, n_y
        self.carry = rest[full:].clone()


def averaging_matrix(p: int, beta: float) -> np.ndarray:
    """A with (A u)_k = the normalized circular β-EMA of rows u (see the module docstring)."""
    c = (1 - beta) / (1 - beta**p)
    w = c * beta ** np.arange(p)
    w /= np.sqrt(np.sum(w**2))
    k = np.arange(p)
    return w[(k[:, None] - k[None, :]) % p]


def _averaging_scale(p: int, beta: float) -> float:
    c = (1 - beta) / (1 - beta**p)
    return 1.0 / math.sqrt(c**2 * np.sum(beta ** (2 * np.arange(p))))


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
    """Stream the noise of one split. `views` maps a view name to its spec: ``None`` (raw),
    ``("preconditioned", w)`` or ``("averaged", beta)``. Returns per-view accumulated statistics."""
    device = next(model.parameters()).device
    layers = layers_of(model)
    d = layers[-1].stop
    batches = minibatches(
        len(y), settings.batch_size, settings.n_batches, settings.mode, split_seed
    )
    p = len(batches)
    if p < 2:
        raise ValueError(f"need at least 2 minibatches, got {p} (split of {len(y)} examples)")
    views = {
        v: spec if spec is None or spec[0] != "preconditioned" else (spec[0], spec[1].to(device))
        for v, spec in views.items()
    }
    betas = {v: spec[1] for v, spec in views.items() if spec and spec[0] == "averaged"}

    with tempfile.TemporaryDirectory(prefix="gradnoise-", dir=scratch_dir) as tmp:
        spill = Path(tmp) / "gradients.f32"
        g_sum = torch.zeros(d, dtype=torch.float64, device=device)
        horner = {v: torch.zeros(d, dtype=torch.float64, device=device) for v in betas}
        with open(spill, "wb") as f:
            for g in minibatch_gradients(model, x, y, batches):
                g64 = g.to(torch.float64)
                g_sum += g64
                for v, beta in betas.items():
                    horner[v].mul_(beta).add_(g64)
                f.write(g.cpu().numpy().tobytes())
        g_bar = g_sum / p
        del g_sum
        coord_idx = stored_coordinates(layers, settings.coords_per_layer, settings.seed)
        stats = _column_pass(spill, p, d, layers, g_bar, views, settings.chunk_mb, device)
        init = {v: (1 - beta) / (1 - beta**p) * horner[v] - g_bar for v, beta in betas.items()}
        del horner
        _row_pass(spill, p, d, layers, g_bar, views, stats, init, coord_idx, split_seed, device)
    return {"P": p, "D": d, "layers": layers, "coord_index": coord_idx, "views": stats}


def _read_block(f, p: int, d: int, start: int, stop: int) -> np.ndarray:
    """Rows 0..P−1, columns start..stop of the row-major float32 spill file."""
    out = np.empty((p, stop - start), dtype=np.float32)
    for k in range(p):
        f.seek((k * d + start) * 4)
        f.readinto(memoryview(out[k]).cast("B"))
    return out


def _view_block(u: torch.Tensor, spec: Any, cols: slice, amat: torch.Tensor | None) -> torch.Tensor:
    if spec is None:
        return u
    if spec[0] == "preconditioned":
        return u * spec[1][cols]
    return amat @ u


def _column_pass(spill, p, d, layers, g_bar, views, chunk_mb, device) -> dict[str, dict[str, Any]]:
    """Per view: exact P × P Gram spectra (per layer and whole network), per-coordinate variances and
    robust scales. Each P × c block of the spill file is read once for all views."""
    # working set per column: the float32 block, u, one float64 copy per view, quantile's sort buffers
    cols_per_chunk = max(1, int(chunk_mb * 2**20 / (p * (4 + 8 * (3 + len(views))))))
    amats = {
        v: torch.from_numpy(averaging_matrix(p, spec[1])).to(device)
        for v, spec in views.items()
        if spec and spec[0] == "averaged"
    }
    out = {
        v: {
            "var": torch.empty(d, dtype=torch.float32, device=device),
            "null_scale": torch.empty(d, dtype=torch.float32, device=device),
            "gram_all": torch.zeros(p, p, dtype=torch.float64, device=device),
            "spectra": {},
        }
        for v in views
    }
    with open(spill, "rb") as f:
        for layer in layers:
            grams = {v: torch.zeros(p, p, dtype=torch.float64, device=device) for v in views}
            for start in range(layer.start, layer.stop, cols_per_chunk):
                stop = min(start + cols_per_chunk, layer.stop)
                block = torch.from_numpy(_read_block(f, p, d, start, stop)).to(device)
                u = block.to(torch.float64).sub_(g_bar[start:stop])
                u_iqr = None  # shared by raw and preconditioned: IQR(u·w) = w·IQR(u) for w > 0
                for v, spec in views.items():
                    x = _view_block(u, spec, slice(start, stop), amats.get(v))
                    grams[v] += x @ x.T
                    var = torch.linalg.vector_norm(x, dim=0).square_() / (p - 1)
                    if spec is None or spec[0] == "preconditioned":
                        u_iqr = iqr_scale(u) if u_iqr is None else u_iqr
                        iqr = u_iqr if spec is None else u_iqr * spec[1][start:stop]
                    else:
                        iqr = iqr_scale(x)
                    out[v]["var"][start:stop] = var
                    out[v]["null_scale"][start:stop] = torch.where(iqr > 0, iqr, var.sqrt())
            for v in views:
                out[v]["gram_all"] += grams[v]
                out[v]["spectra"][layer.name] = _spectrum(grams[v], p)
    for st in out.values():
        st["spectra"][ALL] = _spectrum(st["gram_all"], p)
        st["gram_all"] = (st["gram_all"] / (p - 1)).cpu().numpy()
    return out


def iqr_scale(v: torch.Tensor) -> torch.Tensor:
    """Per-column IQR/1.349: the std of a Gaussian with that IQR. The Gaussian null is matched on this
    scale (the std where the IQR is 0), not on the std: for heavy-tailed noise the sample std of each
    coordinate is set by its few largest draws, so a std-matched null would itself be scale-mixed and
    read as heavy-tailed."""
    q = torch.quantile(v, torch.tensor([0.25, 0.75], dtype=v.dtype, device=v.device), dim=0)
    return (q[1] - q[0]) / IQR_PER_STD


def _spectrum(gram: torch.Tensor, p: int) -> np.ndarray:
    """Eigenvalues of the sample covariance (nonzero part): those of G/(P−1), descending."""
    ev = torch.linalg.eigvalsh(gram / (p - 1)).cpu().numpy()[::-1]
    return np.clip(ev, 0.0, None).copy()


def _row_pass(
    spill, p, d, layers, g_bar, views, stats, init, coord_idx, split_seed, device
) -> None:
    flat_idx = torch.from_numpy(coord_idx.reshape(-1).clip(min=0)).to(device)
    pad = torch.from_numpy(coord_idx.reshape(-1) < 0).to(device)
    for v in views:
        st = stats[v]
        st["pooled"] = {ALL: PooledStream(p, d, device)} | {
            lay.name: PooledStream(p, lay.numel, device) for lay in layers
        }
        st["null"] = {ALL: PooledStream(p, d, device)} | {
            lay.name: PooledStream(p, lay.numel, device) for lay in layers
        }
        st["norms"] = np.zeros((p, len(layers)))
        st["coords"] = np.zeros((p, coord_idx.size), dtype=np.float32)
        st["sigma"] = st["null_scale"].to(torch.float64)
        st["gen"] = torch.Generator(device=device).manual_seed(hash_seed(split_seed, v))
    state = dict(init)
    scale = {
        v: _averaging_scale(p, spec[1])
        for v, spec in views.items()
        if spec and spec[0] == "averaged"
    }
    row = np.empty(d, dtype=np.float32)
    with open(spill, "rb") as f:
        for k in range(p):
            f.readinto(memoryview(row).cast("B"))
            u = torch.from_numpy(row).to(device, torch.float64).sub_(g_bar)
            for v, spec in views.items():
                if spec is None:
                    x = u
                elif spec[0] == "preconditioned":
                    x = u * spec[1]
                else:
                    beta = spec[1]
                    state[v].mul_(beta).add_(u, alpha=1 - beta)
                    x = state[v] * scale[v]
                st = stats[v]
                # float32 draws: 6× faster than float64 on the CPU, ample for a null surrogate
                z = (
                    torch.randn(d, generator=st["gen"], device=device, dtype=torch.float32)
                    .to(torch.float64)
                    .mul_(st["sigma"])
                )
                _push_row(st["pooled"], layers, k, x)
                _push_row(st["null"], layers, k, z)
                st["norms"][k] = [
                    float(torch.linalg.vector_norm(x[lay.start : lay.stop])) for lay in layers
                ]
                c = x[flat_idx].to(torch.float32)
                c[pad] = float("nan")
                st["coords"][k] = c.cpu().numpy()


def _push_row(
    streams: dict[str, PooledStream], layers: list[Layer], k: int, x: torch.Tensor
) -> None:
    logx = x.abs().add_(EPS).log_()
    per_layer = [float(logx[lay.start : lay.stop].sum()) for lay in layers]
    streams[ALL].push(k, x, math.fsum(per_layer))
    for layer, s in zip(layers, per_layer, strict=True):
        streams[layer.name].push(k, x[layer.start : layer.stop], s)


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
    stats_table = pa.Table.from_pylist(stats, schema=STATS_SCHEMA)
    return pa.concat_tables(samples), stats_table


def _stats_schema() -> Any:
    import pyarrow as pa

    dict_str = pa.dictionary(pa.int32(), pa.string())
    f64s = pa.list_(pa.float64())
    return pa.schema(
        [
            ("split", dict_str),
            ("view", dict_str),
            ("layer", dict_str),
            ("P", pa.int64()),
            ("numel", pa.int64()),
            ("k1", pa.int64()),
            ("row_log_x", f64s),
            ("row_log_y", f64s),
            ("row_n_y", pa.list_(pa.int64())),
            ("null_row_log_x", f64s),
            ("null_row_log_y", f64s),
            ("eigenvalues", f64s),
            ("gram", f64s),
            ("coord_index", pa.list_(pa.int64())),
            ("var_q01", pa.float64()),
            ("var_q50", pa.float64()),
            ("var_q99", pa.float64()),
            ("var_mean", pa.float64()),
            ("var_zero_fraction", pa.float64()),
        ]
    )


STATS_SCHEMA = _stats_schema()


def empty_tables(per_layer: int) -> tuple[Any, Any]:
    """Tables with no rows (a diverged run): the file exists and says why in its metadata."""
    import pyarrow as pa

    dict_str = pa.dictionary(pa.int32(), pa.string())
    schema = pa.schema(
        [
            ("split", dict_str),
            ("view", dict_str),
            ("layer", dict_str),
            ("sample", pa.int32()),
            ("norm", pa.float64()),
            ("coords", pa.list_(pa.float32(), per_layer)),
        ]
    )
    return schema.empty_table(), STATS_SCHEMA.empty_table()


def sample_checkpoint(
    checkpoint: dict[str, Any],
    run: dict[str, Any],
    settings: NoiseSettings,
    splits: list[str],
    data: Any,
) -> tuple[Any, Any]:
    """Noise tables of one checkpoint; `run` is the training settings (model, optimizer, hparams)."""
    from gradnoise.models import build_model

    if checkpoint.get("status") != "ok":
        return empty_tables(settings.coords_per_layer)
    device = data.x_train.device
    torch.manual_seed(0)
    model = build_model(run["model"], data.input_shape, data.n_classes).to(device)
    model.load_state_dict(checkpoint["model"])
    views = views_for(run["optimizer"], run["hparams"], checkpoint["optimizer"])
    results = {}
    for i, split in enumerate(splits):
        x, y = data.split(split)
        results[split] = sample_split(
            model, x, y, settings, views, hash_seed(settings.seed, split, i), scratch_dir()
        )
        log.info(
            "%s: P=%d D=%d views=%s", split, results[split]["P"], results[split]["D"], list(views)
        )
    return to_tables(results, settings.coords_per_layer)
