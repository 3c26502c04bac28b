"""The streaming noise sampler against the official evaluation loop, at equal model and data.

Reference: the evaluation loop of Zhou et al.'s official code (github salesforce/comparison_SGD_ADAM,
built on umutsimsekli/sgd_tail_index): ``main.py``, function ``eval`` with ``utils.get_grads`` and
``utils.alpha_estimator``. Its arithmetic, reproduced here and nothing more: network in eval mode; for
each consecutive minibatch, zero the gradients, forward, mean cross-entropy, backward, and
``get_grads`` (the flat ``torch.cat`` of every parameter's gradient, ``.cpu()``) appended to a list;
then ``grads = torch.cat(grads).view(-1, M)``, ``mean_grad = grads.sum(0) / P``,
``grads = grads - mean_grad``, K1 = the largest divisor of N = M·P that is ≤ √N (their loop), and
``alpha_estimator(K1, grads.view(-1, 1))``: 1/α̂ = (mean log(|Y|+eps) − mean log(|X|+eps)) / log K1 over
the row-major block sums Y, all in float32 (their default dtype). Left out, since they could only slow
the reference: the loss/accuracy bookkeeping and the three noise norms that ``eval`` also computes, and
the DataLoader's batch copies (slices of in-memory tensors here).

Streaming: ``gradnoise.noise.sample_split`` with the raw view, computing everything it computes in the
pipeline (pooled block sums of the noise and of its Gaussian null, whole network and per layer; P × P
Gram matrices and spectra per layer; per-coordinate variances and robust scales; layer norms; stored
coordinates), in float64 but for the Gram's products (float32). Both sides log the time of their two
phases (gradient pass, statistics): the sampler's gradient pass runs the network channels-last (the
same gradients to float32 rounding), the reference's as the official code does (NCHW).

Model: the reference small CIFAR AlexNet on random CIFAR-shaped inputs. Each measurement runs in a
fresh process with 2 torch threads, once the machine has been idle for 5 s (at most --max-wait s);
the additional peak memory is the peak RSS beyond the RSS after loading data and model. The machine
is shared and noisy (other work slows the reference's intra-op threads far more than the sampler's
single-threaded workers): every measurement is repeated (--repeats), reference and streaming
alternating, all runs are printed with the load average before and after, and the ratios use the
medians (time also the fastest runs). Then the streaming sampler alone on ResNet-18, whose P × D
matrix would not fit here.

    python benchmarks/noise.py [--p 500 1000] [--batch 100] [--repeats 2] [--chunk-mb-per-500 16]
                               [--resnet-batch 4] [--skip-resnet] [--max-wait 300]
"""

from __future__ import annotations

import argparse
import logging
import math
import multiprocessing as mp
import os
import resource
import statistics
import time

import numpy as np
import torch
from torch import nn

from gradnoise.estimators import alpha_from_log_means
from gradnoise.io import ALL
from gradnoise.models import build_model
from gradnoise.noise import NoiseSettings, sample_split

THREADS = 2


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _setup(model_name: str, p: int, batch: int) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = build_model({"name": model_name}, (3, 32, 32), 10)
    x = torch.randn(p * batch, 3, 32, 32)
    y = torch.randint(0, 10, (p * batch,))
    return model, x, y


def official_eval_loop(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int) -> float:
    """The pooled α̂ of the official ``eval`` (see the module docstring), its arithmetic only."""
    crit = nn.CrossEntropyLoss()
    model.eval()
    grads = []
    start = time.perf_counter()
    for k in range(len(y) // batch):
        model.zero_grad()
        loss = crit(model(x[k * batch : (k + 1) * batch]), y[k * batch : (k + 1) * batch])
        loss.backward()
        grads.append(torch.cat([q.grad.view(-1) for q in model.parameters()]).cpu())
    middle = time.perf_counter()
    p, m = len(grads), len(grads[0])
    grads = torch.cat(grads).view(-1, m)
    mean_grad = grads.sum(0) / p
    grads = grads - mean_grad
    n = m * p
    k1 = max(i for i in range(1, 1 + int(math.sqrt(n))) if n % i == 0)
    alpha = float(_alpha_estimator(k1, grads.view(-1, 1)))
    logging.getLogger(__name__).info(
        "P=%d D=%d: gradient pass %.1f s, statistics %.1f s",
        p,
        m,
        middle - start,
        time.perf_counter() - middle,
    )
    return alpha


def _alpha_estimator(m: int, x: torch.Tensor) -> torch.Tensor:
    """utils.alpha_estimator of the official code (Mohammadi et al. 2015, Cor. 2.4), verbatim."""
    n = int(len(x) / m)
    y = torch.sum(x.view(n, m, -1), 1)
    eps = np.spacing(1)
    y_log_norm = torch.log(y.norm(dim=1) + eps).mean()
    x_log_norm = torch.log(x.norm(dim=1) + eps).mean()
    return 1 / ((y_log_norm - x_log_norm) / math.log(m))


def streaming(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int, chunk_mb: float):
    res = sample_split(
        model,
        x,
        y,
        NoiseSettings(batch_size=batch, coords_per_layer=64, chunk_mb=chunk_mb),
        {"raw": None},
        0,
    )
    s = res["views"]["raw"]["pooled"][ALL]
    return alpha_from_log_means(
        s.log_y.sum() / s.n_y.sum(), s.log_x.sum() / (res["P"] * res["D"]), s.k1
    )


def _worker(kind: str, model_name: str, p: int, batch: int, chunk_mb: float, queue) -> None:
    logging.basicConfig(level=logging.INFO, format="      %(message)s")  # the sampler's phases
    torch.set_num_threads(THREADS)
    model, x, y = _setup(model_name, p, batch)
    base = _rss_mib()
    cpu = time.process_time()
    start = time.perf_counter()
    if kind == "reference":
        alpha = official_eval_loop(model, x, y, batch)
    else:
        alpha = streaming(model, x, y, batch, chunk_mb)
    elapsed = time.perf_counter() - start
    queue.put(
        {
            "kind": kind,
            "seconds": elapsed,
            "cpu_seconds": time.process_time() - cpu,
            "extra_mib": _rss_mib() - base,
            "alpha": alpha,
        }
    )


def _idle_fraction(seconds: float) -> float:
    """The fraction of the machine's CPU time spent idle over the next `seconds` (/proc/stat)."""

    def times() -> list[int]:
        with open("/proc/stat") as f:
            return [int(v) for v in f.readline().split()[1:]]

    before = times()
    time.sleep(seconds)
    delta = [b - a for a, b in zip(before, times(), strict=True)]
    return (delta[3] + delta[4]) / max(sum(delta), 1)  # idle + iowait


def wait_for_idle(max_wait: float, threshold: float = 0.95) -> None:
    """Wait (at most `max_wait` s) until the machine has been idle for 5 s: on a shared machine other
    work slows both sides, and intra-op threads far more than single-threaded workers."""
    deadline = time.monotonic() + max_wait
    while _idle_fraction(5.0) < threshold and time.monotonic() < deadline:
        pass


def measure(
    kind: str, model_name: str, p: int, batch: int, chunk_mb: float, max_wait: float
) -> dict:
    """One run of one side in a fresh process, once the machine is idle; with the machine's load
    average before and after the run."""
    wait_for_idle(max_wait)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_worker, args=(kind, model_name, p, batch, chunk_mb, queue))
    load = os.getloadavg()[0]
    proc.start()
    result = queue.get()
    proc.join()
    return result | {"load": (load, os.getloadavg()[0])}


def _print_run(r: dict) -> None:
    print(
        f"    {r['kind']:9s}: {r['seconds']:6.1f} s (CPU {r['cpu_seconds']:6.1f} s), additional peak memory "
        f"{r['extra_mib']:7.0f} MiB, pooled α̂ = {r['alpha']:.7f}; load {r['load'][0]:.1f} → "
        f"{r['load'][1]:.1f}"
    )


def compare(p: int, batch: int, repeats: int, chunk_mb: float, max_wait: float) -> None:
    d = sum(q.numel() for q in build_model({"name": "alexnet_small"}, (3, 32, 32), 10).parameters())
    print(
        f"small AlexNet: D = {d:,}, P = {p}, B = {batch}; P × D float32 = "
        f"{p * d * 4 / 2**30:.2f} GiB; {THREADS} torch threads; sampler chunk_mb = {chunk_mb:g}"
    )
    runs = {"reference": [], "streaming": []}
    for _ in range(repeats):
        for kind in runs:
            r = measure(kind, "alexnet_small", p, batch, chunk_mb, max_wait)
            _print_run(r)
            runs[kind].append(r)
    ref, new = (
        {
            key: statistics.median(r[key] for r in runs[kind])
            for key in ("seconds", "extra_mib", "alpha")
        }
        for kind in ("reference", "streaming")
    )
    each = [n["seconds"] / r["seconds"] for r, n in zip(*runs.values(), strict=True)]
    fastest = min(r["seconds"] for r in runs["streaming"]) / min(
        r["seconds"] for r in runs["reference"]
    )
    print(
        f"  time streaming / reference = {new['seconds'] / ref['seconds']:.2f} (medians; fastest "
        f"runs {fastest:.2f}; run by run {', '.join(f'{t:.2f}' for t in each)})"
    )
    print(
        f"  additional memory streaming / reference = "
        f"1/{ref['extra_mib'] / max(new['extra_mib'], 1e-9):.0f}"
    )
    print(
        f"  |Δα̂| / α̂ = {abs(ref['alpha'] - new['alpha']) / ref['alpha']:.1e} "
        "(the reference accumulates in float32)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--p", type=int, nargs="+", default=[500, 1000])
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument(
        "--chunk-mb-per-500",
        type=float,
        default=16.0,
        help="the sampler's column-pass memory budget (NoiseSettings.chunk_mb) per 500 minibatches: "
        "it grows with P, as the reference's memory does",
    )
    ap.add_argument("--resnet-batch", type=int, default=4)
    ap.add_argument("--skip-resnet", action="store_true")
    ap.add_argument(
        "--max-wait", type=float, default=300, help="s to wait for an idle machine before a run"
    )
    args = ap.parse_args()
    for p in args.p:
        compare(p, args.batch, args.repeats, args.chunk_mb_per_500 * p / 500, args.max_wait)
    if args.skip_resnet:
        return
    p = args.p[0]
    d = sum(q.numel() for q in build_model({"name": "resnet18"}, (3, 32, 32), 10).parameters())
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    print(
        f"ResNet-18: D = {d:,}, P = {p}: the reference's P × D float32 alone is "
        f"{p * d * 4 / 2**30:.1f} GiB (it holds two at once); this machine has {total:.1f} GiB"
    )
    chunk_mb = args.chunk_mb_per_500 * p / 500
    r = measure("streaming", "resnet18", p, args.resnet_batch, chunk_mb, args.max_wait)
    print(f"  streaming, B = {args.resnet_batch}:")
    _print_run(r)


if __name__ == "__main__":
    main()
