"""``gradnoise.measure`` on a ~10-million-parameter model against a naive loop that stacks the P
gradients: time and additional peak memory.

Model: the causal character transformer of ``gradnoise.char_lm`` (d_model 256, 12 layers: 9.6 M
parameters), sequences of 64 characters of ``pydoc_data.topics``, batch B, P draws (seeded random
minibatches, the same for both sides).

Naive: for every minibatch, the loss, ``torch.autograd.grad`` and the flat gradient appended to a
list; then ``torch.stack`` (P × D, float32), the noise U = G − ḡ, the P × P Gram U Uᵀ and the
reference's pooled α̂ on U (float64 logs over all P·D entries): a fraction of what ``measure`` computes
(no null, no per-layer statistics, no stored coordinates, no bootstrap), so its time is a lower bound.

Measure: ``gradnoise.measure`` with the raw view (streamed gradients, every statistic and every
estimator with ``--bootstrap`` replicates).

Each side runs in a fresh process with the same torch threads; its additional peak memory is the peak
RSS beyond the RSS after loading the data and building the model (``ru_maxrss``). The machine is
shared: the wall times are single runs; rerun on an idle machine before quoting small differences.

    PYTHONPATH=src python benchmarks/measure.py --draws 40 --batch-size 8 --threads 2
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from gradnoise import char_lm
from gradnoise.estimators import alpha_pooled_reference
from gradnoise.noise import minibatches
from gradnoise.seeds import hash_seed
from gradnoise.tails import TailSettings

SEQ_LEN = 64


def _rss_mib() -> float:
    """The current RSS (from /proc), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _setup(args: argparse.Namespace) -> tuple[torch.nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = char_lm.model(seq_len=SEQ_LEN, d_model=256, n_heads=8, n_layers=12)
    return model, char_lm.train_data(seq_len=SEQ_LEN)


def run_side(args: argparse.Namespace) -> dict[str, float]:
    model, data = _setup(args)
    base = _rss_mib()
    start = time.perf_counter()
    if args.side == "naive":
        model.eval()
        params = list(model.parameters())
        idx = minibatches(
            len(data[0]), args.batch_size, args.draws, "sampled", hash_seed(0, "train", 0)
        )
        grads = []
        for i in idx:
            loss = char_lm.loss(model, (data[0][i], data[1][i]))
            grads.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)]))
        g = torch.stack(grads)
        del grads
        u = g - g.mean(dim=0)
        del g
        gram = u @ u.T
        alpha = alpha_pooled_reference(u.numpy())
        result = {"alpha_pooled": alpha, "gram_trace": float(gram.trace())}
    else:
        import gradnoise

        table = gradnoise.measure(
            model,
            char_lm.loss,
            data,
            batch_size=args.batch_size,
            n_draws=args.draws,
            device="cpu",
            tails=TailSettings(bootstrap=args.bootstrap),
        )
        whole = table[(table["layer"] == "(network)") & (table["estimator"] == "pooled")]
        result = {"alpha_pooled": float(whole["alpha"].iloc[0]), "rows": len(table)}
    return {
        **result,
        "seconds": time.perf_counter() - start,
        "extra_peak_mib": _peak_mib() - base,
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--draws", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--bootstrap", type=int, default=50)
    p.add_argument("--side", choices=["naive", "measure"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.side:
        print(json.dumps(run_side(args)))
        return
    results = {}
    for side in ("measure", "naive"):
        out = subprocess.run(
            [sys.executable, __file__, *sys.argv[1:], "--side", side],
            capture_output=True,
            text=True,
            check=True,
        )
        results[side] = json.loads(out.stdout.strip().splitlines()[-1])
        print(side, results[side], flush=True)
    m, n = results["measure"], results["naive"]
    print(
        f"D = {m['parameters']:,}, P = {args.draws}, B = {args.batch_size}, "
        f"{args.threads} threads: measure {m['seconds']:.1f} s, +{m['extra_peak_mib']:.0f} MiB; "
        f"naive {n['seconds']:.1f} s, +{n['extra_peak_mib']:.0f} MiB (P × D float32: "
        f"{args.draws * m['parameters'] * 4 / 2**20:.0f} MiB); time ratio measure/naive "
        f"{m['seconds'] / n['seconds']:.2f}, extra-memory ratio "
        f"{m['extra_peak_mib'] / n['extra_peak_mib']:.3f}; pooled α̂ "
        f"{m['alpha_pooled']:.4f} vs {n['alpha_pooled']:.4f}"
    )


if __name__ == "__main__":
    main()
