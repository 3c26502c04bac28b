"""``gradnoise.measure`` on a ~10-million-parameter model against a naive loop that stacks the P
gradients, in the same process: time and additional peak memory, and their ratios.

Model: the causal character transformer of ``gradnoise.char_lm`` (d_model 256, 12 layers, 8 heads:
9.5 M parameters), sequences of 16 characters of ``pydoc_data.topics`` (short, so that a draw's
gradient is cheap and the run takes about a minute), batch B, P draws (the same seeded random
minibatches on both sides).

Naive: for every minibatch, the loss, ``torch.autograd.grad`` and the flat gradient appended to a
list; then ``torch.stack`` (P × D, float32), the noise U = G − ḡ, the P × P Gram U Uᵀ and the
reference's pooled α̂ on U (Mohammadi's estimator over all P·D entries, row-major, in float64
a chunk at a time, so that nothing but G and U is P × D): a fraction of what ``measure`` computes (no null, no per-layer
statistics, no stored coordinates, no bootstrap), so its time is a lower bound.

Measure: ``gradnoise.measure`` with the raw view (streamed gradients, every statistic and every
estimator with ``--bootstrap`` replicates).

Both sides run in this process, one after the other, with the same torch threads. A side's additional
peak memory is its peak RSS (VmHWM, reset before it through /proc/self/clear_refs, Linux ≥ 4.0)
beyond its RSS at its start. Wall times are single runs; on a shared machine rerun before quoting
small differences.

    PYTHONPATH=src python benchmarks/measure.py --draws 24 --batch-size 4 --threads 2
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import gradnoise
from gradnoise import char_lm
from gradnoise.estimators import EPS, alpha_from_log_means, ref_k1
from gradnoise.measurement import WHOLE_NETWORK
from gradnoise.noise import minibatches
from gradnoise.seeds import hash_seed
from gradnoise.tails import TailSettings

SEQ_LEN = 16


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _peak_of(side: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """`side()`'s result with its wall time and its peak RSS beyond the RSS it started from."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(
        0
    )  # what the last side freed goes back before the baseline
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    base = _status_mib("VmRSS")
    start = time.perf_counter()
    result = side()
    seconds = time.perf_counter() - start
    return {**result, "seconds": seconds, "extra_peak_mib": _status_mib("VmHWM") - base}


def pooled_alpha(u: torch.Tensor, rows: int = 1024) -> float:
    """The reference pooled α̂ (``estimators.alpha_pooled_reference``: Mohammadi's estimator on the
    P × D noise flattened row-major, K1 = ref_k1(P·D)) on the in-memory noise, in float64 a chunk
    of K1-blocks at a time: no copy of the P × D matrix."""
    x = u.reshape(-1)
    k1 = ref_k1(x.numel())
    log_y, log_x = 0.0, 0.0
    for chunk in x.reshape(-1, k1).split(rows):
        c = chunk.double()
        log_y += float(torch.log(c.sum(dim=1).abs() + EPS).sum())
        log_x += float(torch.log(c.abs() + EPS).sum())
    return alpha_from_log_means(log_y / (x.numel() // k1), log_x / x.numel(), k1)


def naive(model: torch.nn.Module, data: tuple[torch.Tensor, ...], args: argparse.Namespace) -> dict:
    model.eval()
    params = list(model.parameters())
    x, y = data
    idx = minibatches(len(x), args.batch_size, args.draws, "sampled", hash_seed(0, "train", 0))
    grads = []
    for i in idx:
        loss = char_lm.loss(model, (x[i], y[i]))
        grads.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)]))
    g = torch.stack(grads)
    del grads
    u = g - g.mean(dim=0)
    del g
    gram = u @ u.T
    return {"alpha_pooled": pooled_alpha(u), "gram_trace": float(gram.trace())}


def measured(
    model: torch.nn.Module, data: tuple[torch.Tensor, ...], args: argparse.Namespace
) -> dict:
    table = gradnoise.measure(
        model,
        char_lm.loss,
        data,
        batch_size=args.batch_size,
        n_draws=args.draws,
        device="cpu",
        tails=TailSettings(bootstrap=args.bootstrap),
    )
    whole = table[(table["layer"] == WHOLE_NETWORK) & (table["estimator"] == "pooled")]
    return {"alpha_pooled": float(whole["alpha"].iloc[0]), "rows": len(table)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--draws", type=int, default=24)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--bootstrap", type=int, default=20)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = char_lm.model(seq_len=SEQ_LEN, d_model=256, n_heads=8, n_layers=12)
    data = char_lm.train_data(seq_len=SEQ_LEN)
    d = sum(q.numel() for q in model.parameters())
    m = _peak_of(lambda: measured(model, data, args))
    print("measure", m, flush=True)
    n = _peak_of(lambda: naive(model, data, args))
    print("naive", n, flush=True)
    print(
        f"D = {d:,}, P = {args.draws}, B = {args.batch_size} × {SEQ_LEN} characters, "
        f"{args.threads} threads: measure {m['seconds']:.1f} s, +{m['extra_peak_mib']:.0f} MiB; "
        f"naive {n['seconds']:.1f} s, +{n['extra_peak_mib']:.0f} MiB (P × D float32: "
        f"{args.draws * d * 4 / 2**20:.0f} MiB); time ratio measure/naive "
        f"{m['seconds'] / n['seconds']:.2f}, extra-memory ratio "
        f"{m['extra_peak_mib'] / n['extra_peak_mib']:.3f}; pooled α̂ "
        f"{m['alpha_pooled']:.4f} vs {n['alpha_pooled']:.4f}"
    )
    assert math.isclose(m["alpha_pooled"], n["alpha_pooled"], rel_tol=1e-3), "different draws?"


if __name__ == "__main__":
    main()
