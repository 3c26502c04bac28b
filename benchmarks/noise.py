"""Streaming noise sampler vs a reference-style sampler (materialize the P × D matrix, then estimate).

Both produce the same statistics — the pooled reference α̂, the P × P Gram spectrum of the whole network
and of every layer, per-coordinate variances — on the reference small CIFAR AlexNet with random
CIFAR-shaped inputs. Each runs in a fresh process; the additional peak memory is the peak RSS beyond the
RSS after loading data and model. Prints ratios (this machine is noisy: ratios hold, absolute times do
not). Then the streaming sampler alone on ResNet-18 at the same P, whose P × D matrix would not fit here.

    python benchmarks/noise.py [--p 500] [--batch 100] [--resnet-batch 4] [--skip-resnet]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time

import numpy as np
import torch

from gradnoise.estimators import alpha_pooled_reference
from gradnoise.models import build_model
from gradnoise.noise import NoiseSettings, layers_of, minibatch_gradients, minibatches, sample_split


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _setup(model_name: str, p: int, batch: int):
    torch.manual_seed(0)
    model = build_model({"name": model_name}, (3, 32, 32), 10)
    x = torch.randn(p * batch, 3, 32, 32)
    y = torch.randint(0, 10, (p * batch,))
    return model, x, y


def reference_style(model, x, y, batch: int) -> dict:
    """Materialize U (P × D), then every statistic from it."""
    batches = minibatches(len(y), batch, None, "reference", 0)
    d = sum(q.numel() for q in model.parameters())
    g = torch.empty(len(batches), d)
    for k, row in enumerate(minibatch_gradients(model, x, y, batches)):
        g[k] = row
    u = (g.double() - g.double().mean(0)).numpy()
    del g
    out = {"alpha": alpha_pooled_reference(u), "var": u.var(axis=0, ddof=1)}
    out["spectra"] = {
        lay.name: np.linalg.eigvalsh(u[:, lay.start : lay.stop] @ u[:, lay.start : lay.stop].T)
        for lay in layers_of(model)
    }
    out["all"] = np.linalg.eigvalsh(u @ u.T)
    return out


def streaming(model, x, y, batch: int) -> dict:
    return sample_split(
        model,
        x,
        y,
        NoiseSettings(batch_size=batch, coords_per_layer=64, chunk_mb=16),
        {"raw": None},
        0,
    )


def _worker(kind: str, model_name: str, p: int, batch: int, queue) -> None:
    torch.set_num_threads(2)
    model, x, y = _setup(model_name, p, batch)
    base = _rss_mb()
    start = time.perf_counter()
    res = (reference_style if kind == "reference" else streaming)(model, x, y, batch)
    elapsed = time.perf_counter() - start
    if kind == "reference":
        alpha = res["alpha"]
    else:
        s = res["views"]["raw"]["pooled"]["__all__"]
        alpha = 1 / (
            (s.log_y.sum() / s.n_y.sum() - s.log_x.sum() / (res["P"] * res["D"])) / np.log(s.k1)
        )
    queue.put({"kind": kind, "seconds": elapsed, "extra_mb": _rss_mb() - base, "alpha": alpha})


def run(kind: str, model_name: str, p: int, batch: int) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_worker, args=(kind, model_name, p, batch, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--p", type=int, default=500)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--resnet-batch", type=int, default=4)
    ap.add_argument("--skip-resnet", action="store_true")
    args = ap.parse_args()
    d = sum(q.numel() for q in build_model({"name": "alexnet_small"}, (3, 32, 32), 10).parameters())
    print(
        f"small AlexNet: D = {d:,}, P = {args.p}, B = {args.batch}; P × D float32 = {args.p * d * 4 / 2**30:.2f} GiB"
    )
    ref = run("reference", "alexnet_small", args.p, args.batch)
    new = run("streaming", "alexnet_small", args.p, args.batch)
    for r in (ref, new):
        print(
            f"  {r['kind']:9s}: {r['seconds']:7.1f} s, additional peak memory {r['extra_mb']:8.1f} MiB, pooled α̂ = {r['alpha']:.10f}"
        )
    print(
        f"  memory ratio streaming/reference = 1/{ref['extra_mb'] / max(new['extra_mb'], 1e-9):.0f}"
    )
    print(f"  speed ratio reference time / streaming time = {ref['seconds'] / new['seconds']:.2f}")
    print(f"  |Δα̂| / α̂ = {abs(ref['alpha'] - new['alpha']) / ref['alpha']:.2e}")
    if args.skip_resnet:
        return
    d = sum(q.numel() for q in build_model({"name": "resnet18"}, (3, 32, 32), 10).parameters())
    import os

    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    print(
        f"ResNet-18: D = {d:,}, P = {args.p}: the reference's P × D float32 alone is {args.p * d * 4 / 2**30:.1f} GiB "
        f"(float64 for the estimate: {args.p * d * 8 / 2**30:.1f} GiB); this machine has {total:.1f} GiB"
    )
    r = run("streaming", "resnet18", args.p, args.resnet_batch)
    print(
        f"  streaming (B = {args.resnet_batch}): {r['seconds']:.1f} s, additional peak memory {r['extra_mb']:.0f} MiB, pooled α̂ = {r['alpha']:.4f}"
    )


if __name__ == "__main__":
    main()
