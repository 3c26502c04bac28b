"""Per-example gradients (torch.func, chunked) against one loss.backward() per example, same process.

Both keep only what the generalized-CLT study needs (the noise stage's stored coordinates and the
per-layer norms), on the default config's model and training split. The loop runs on the first
`--loop` examples (its time per example is flat in N); the chunked version on all of them. Peak extra
memory is the growth of the process's high-water RSS during the chunked pass (run first, after the data
and model are loaded), against the estimate chunk × D × 4 bytes of its per-example gradients.

python benchmarks/per_example.py [--config config/config.yaml] [--loop 400] [--chunk-mb 64]
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from gradnoise.data import load_dataset
from gradnoise.models import build_model
from gradnoise.noise import layers_of, stored_coordinates
from gradnoise.per_example import chunk_for, per_example_gradients, per_example_loop


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # KiB on Linux


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--loop", type=int, default=400)
    ap.add_argument("--chunk-mb", type=float, default=64.0)
    args = ap.parse_args()
    cfg = yaml.safe_load(Path(args.config).read_text())
    exp = next(iter(cfg["experiments"].values()))
    data = load_dataset(exp["dataset"]["name"], test_size=exp["dataset"].get("test_size"))
    x, y = data.split("train")
    torch.manual_seed(0)
    model = build_model(exp["model"], data.input_shape, data.n_classes)
    layers = layers_of(model)
    d = layers[-1].stop
    coord_index = stored_coordinates(layers, exp["noise"]["coords_per_layer"], 0)
    chunk = chunk_for(d, args.chunk_mb)
    print(
        f"{exp['model']['name']}: D = {d:,}, {len(layers)} layers, N = {len(y):,}, "
        f"{coord_index.size} stored coordinates, {torch.get_num_threads()} threads, chunk {chunk}"
    )
    per_example_gradients(model, x[:chunk], y[:chunk], coord_index, chunk)  # warm-up
    before = rss_mib()
    start = time.perf_counter()
    fast = per_example_gradients(model, x, y, coord_index, chunk)
    t_fast = time.perf_counter() - start
    extra = peak_rss_mib() - before
    n = min(args.loop, len(y))
    start = time.perf_counter()
    slow = per_example_loop(model, x[:n], y[:n], coord_index)
    t_slow = (time.perf_counter() - start) * len(y) / n
    live = ~np.isnan(slow.coords)
    print(f"chunked torch.func: {t_fast:7.2f} s for {len(y):,} examples")
    print(f"per-example loop:   {t_slow:7.2f} s (extrapolated from {n} examples)")
    print(f"speed-up: {t_slow / t_fast:.1f}×")
    print(
        f"peak extra memory: {extra:.0f} MiB (per-example gradients of one chunk: "
        f"{chunk * d * 4 / 2**20:.0f} MiB; kept: {fast.coords.nbytes / 2**20:.1f} MiB coordinates, "
        f"{fast.norms.nbytes / 2**20:.2f} MiB norms)"
    )
    print(
        "max |difference| on the loop's examples: coordinates "
        f"{np.abs(fast.coords[:n][live] - slow.coords[live]).max():.1e}, norms "
        f"{np.abs(fast.norms[:n] - slow.norms).max():.1e}"
    )


if __name__ == "__main__":
    main()
