"""Does pinning the CPU kernels make a training run byte-identical across kernel paths, and what does
it cost? One default-config training run (LeNet-5, Adam, 1,000 iterations), repeated under each pin
in fresh processes; prints the SHA-256 of its final weights and its time against the unpinned run.

python benchmarks/kernels.py [--iterations 1000] [--repeats 2]

Why: CPU training is byte-identical on one machine but not across machines (issue "one burden of
proof"): ATen, oneDNN and MKL each pick kernels by the CPU's instruction set (and MKL by vendor), so
another machine sums in another order. Each pin fixes one of those choices:
- ATEN_CPU_CAPABILITY: ATen's vectorized kernels (default = no SIMD, avx2, avx512);
- ONEDNN_MAX_CPU_ISA: the most oneDNN (convolutions) may use;
- MKL_CBWR: MKL's conditional numerical reproducibility branch.
On one machine the script can show only that a pin changes the bytes (the kernel path matters) and
what it costs; that two machines agree under a pin needs both machines (run it on each, compare the
hashes).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PINS: dict[str, dict[str, str]] = {
    "native": {},
    "aten_default": {"ATEN_CPU_CAPABILITY": "default"},
    "aten_avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "all_avx2": {
        "ATEN_CPU_CAPABILITY": "avx2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "MKL_CBWR": "AVX2,STRICT",
    },
    "all_compatible": {
        "ATEN_CPU_CAPABILITY": "default",
        "ONEDNN_MAX_CPU_ISA": "SSE41",
        "MKL_CBWR": "COMPATIBLE",
    },
}


def settings(iterations: int) -> dict:
    return {
        "dataset": {"data_root": "data", "download": False, "name": "mnist_embedded",
                    "split_seed": 0, "test_size": 1000},
        "device": "cpu",
        "eval_every": iterations,
        "model": {"name": "lenet"},
        "run": {"arm": "adam", "experiment": "kernels", "optimizer": "adam", "seed": 0},
        "training": {
            "augment": None, "batch_size": 64, "checkpoints": [iterations],
            "clip_grad_norm": None, "ghost_batch_size": None,
            "hparams": {"betas": [0.9, 0.999], "eps": 1e-08, "lr": 0.001, "weight_decay": 0.0},
            "init_from": None, "iterations": iterations, "lr_gamma": 1.0, "lr_milestones": [],
            "optimizer": "adam", "random_labels": None, "until_train_acc": None,
        },
    }  # fmt: skip


def train(pin: dict[str, str], iterations: int, folder: Path) -> tuple[float, str]:
    """Seconds of one training run in a fresh process under `pin`, and its final weights' hash."""
    pinned = {k for p in PINS.values() for k in p}  # what a pin sets, unset for the others
    env = {k: v for k, v in os.environ.items() if k not in pinned} | pin
    run_dir = folder / "run"
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), "--settings",
         json.dumps(settings(iterations)), "--run-dir", str(run_dir), "--init=", "--threads", "1"],
        check=True, env=env, cwd=ROOT, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    import torch

    state = torch.load(run_dir / "checkpoints" / f"step{iterations}.pt", weights_only=True)
    digest = hashlib.sha256()
    for name, tensor in sorted(state["model"].items()):
        digest.update(name.encode() + tensor.numpy().tobytes())
    return seconds, digest.hexdigest()[:16]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--iterations", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    times: dict[str, list[float]] = {name: [] for name in PINS}
    hashes: dict[str, set[str]] = {name: set() for name in PINS}
    for _ in range(args.repeats):  # alternate the pins, so load drifts touch each alike
        for name, pin in PINS.items():
            with tempfile.TemporaryDirectory() as folder:
                seconds, digest = train(pin, args.iterations, Path(folder))
            times[name].append(seconds)
            hashes[name].add(digest)
    base = min(times["native"])
    print(f"{'pin':16s} {'weights sha256':18s} {'best s':>7s} {'× native':>9s}")
    for name in PINS:
        print(
            f"{name:16s} {','.join(sorted(hashes[name])):18s} {min(times[name]):7.1f} "
            f"{min(times[name]) / base:9.2f}"
        )


if __name__ == "__main__":
    main()
