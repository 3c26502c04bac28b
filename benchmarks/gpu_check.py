"""Every CUDA path of the pipeline on a tiny config, against the CPU: agreement within stated
tolerances, and the GPU's throughput as a ratio to the CPU's. One command, a few minutes on one GPU.

    python benchmarks/gpu_check.py [--device cuda] [--quick] [--out report.json]

Paths: training with each optimizer (an MLP; LeNet, channels-last on a GPU, for SGD-M and Adam),
batch augmentation on the device, the noise sampler (gradient pass and statistics pass, raw,
averaged and preconditioned views), the SαS samplers (independent and isotropic), the exit-time SDE
kernels (Euler and jump-adapted), and the escape-from-minima stage. With ``--device cpu`` both sides run on the CPU: a dry run of the
harness (the test suite runs it, ``--quick``), in which every deterministic path agrees exactly.

Tolerances (why):
- training, noise, escape run the same seeded arithmetic on both devices; they differ by float32
  rounding (cuDNN/cuBLAS sum in other orders), which the steps compound: relative L2 difference of
  the final weights ≤ 1e-3, of the noise norms / stored coordinates / covariance spectrum ≤ 1e-3,
  statuses equal; escape exit iterations, a chaotic trajectory's first passage, within 25 % or 3
  iterations, the same radii censored.
- augmentation draws its shifts from the device's generator: each augmented image must be one of
  the allowed shifts of its input, exactly.
- the SαS samplers and the SDE kernels draw from per-device generator streams (CPU and CUDA Philox
  differ), so their laws are compared: quantiles of |X| and mean exit times within 5 standard errors
  of the difference (a false alarm about once in 10⁶ comparisons).
Exit status 1 when any check disagrees.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from gradnoise.arms import Training  # noqa: E402
from gradnoise.data import dataset_from  # noqa: E402
from gradnoise.escape_tables import minimum_table  # noqa: E402
from gradnoise.io import load_checkpoint  # noqa: E402
from gradnoise.levy import sample_isotropic_torch, sample_sas_torch  # noqa: E402
from gradnoise.models import build_model  # noqa: E402
from gradnoise.noise import NoiseSettings, sample_split, to_tables, views_for  # noqa: E402
from gradnoise.sde import Noise, make_basin, simulate_exits  # noqa: E402
from gradnoise.train import RunSettings, train_run  # noqa: E402

OPTIMIZERS = {
    "sgd": {"lr": 0.05},
    "sgdm": {"lr": 0.05, "momentum": 0.9},
    "adam": {"lr": 0.002},
    "adamw": {"lr": 0.002, "weight_decay": 0.01},
    "adai": {"lr": 0.2},
    "adaiw": {"lr": 0.2, "weight_decay": 0.01},
}
WEIGHT_TOL = 1e-3  # relative L2 difference of final weights / noise statistics
ESCAPE_REL, ESCAPE_ABS = 0.25, 3  # exit iterations
Z_TOL = 5.0  # standard errors, for the laws of the random kernels
THREADS = max(1, torch.get_num_threads())  # the CPU side uses every core torch would


@dataclass
class Check:
    path: str
    agree: bool
    measured: float  # the discrepancy, in the unit of `tolerance`
    tolerance: float
    cpu_s: float
    device_s: float
    detail: str = ""

    @property
    def ratio(self) -> float:
        """The device's throughput as a multiple of the CPU's (same work on both)."""
        return self.cpu_s / self.device_s if self.device_s > 0 else math.nan


def timed(fn: Callable[[], Any], device: torch.device) -> tuple[Any, float]:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return out, time.perf_counter() - t0


def rel_diff(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    a = torch.as_tensor(np.asarray(a, dtype=np.float64))
    b = torch.as_tensor(np.asarray(b, dtype=np.float64))
    return float((a - b).norm() / max(float(b.norm()), 1e-30))


def _settings(opt: str, model: dict, device: str, size: dict) -> RunSettings:
    return RunSettings(
        run={"experiment": "gpu_check", "arm": opt, "optimizer": opt, "seed": 0},
        training=Training(
            optimizer=opt,
            hparams=OPTIMIZERS[opt],
            batch_size=size["batch"],
            iterations=size["iterations"],
            checkpoints=[size["iterations"]],
        ),
        dataset={"name": "mnist_embedded", "train_size": size["train"], "test_size": 500},
        model=model,
        eval_every=size["iterations"],
        device=device,
    )


def check_training(device: torch.device, size: dict, root: Path) -> list[Check]:
    checks = []
    models = [("mlp", {"name": "mlp", "hidden": [64]}), ("lenet", {"name": "lenet"})]
    for opt in OPTIMIZERS:
        for label, model in models:
            if label == "lenet" and opt not in ("sgdm", "adam"):
                continue  # the conv path once per optimizer family is enough
            runs = {}
            seconds = {}
            for side, dev in (("cpu", "cpu"), ("device", str(device))):
                run_dir = root / f"train-{opt}-{label}-{side}"
                settings = _settings(opt, model, dev, size)
                status, seconds[side] = timed(
                    lambda s=settings, r=run_dir: train_run(s, r, threads=THREADS), device
                )
                ckpt = load_checkpoint(run_dir / "checkpoints" / f"step{size['iterations']}.pt")
                runs[side] = (status, ckpt)
            (s_cpu, c_cpu), (s_dev, c_dev) = runs["cpu"], runs["device"]
            diff = max(rel_diff(c_dev["model"][k], v) for k, v in c_cpu["model"].items())
            checks.append(
                Check(
                    f"train {opt} {label}",
                    s_cpu == s_dev == "ok" and diff <= WEIGHT_TOL,
                    diff,
                    WEIGHT_TOL,
                    seconds["cpu"],
                    seconds["device"],
                    f"status {s_cpu}/{s_dev}",
                )
            )
    return checks


def check_augment(device: torch.device) -> list[Check]:
    """Each image augmented on the device is exactly one of the 25 shifts (±2 pixels) of its input,
    padded with the data set's background, computed on the CPU."""
    from gradnoise.augment import augment_batch
    from gradnoise.data import background

    s, n = 2, 64
    x = torch.rand((n, 1, 28, 28), generator=torch.Generator().manual_seed(0))
    bg = background("mnist_embedded")
    gen = torch.Generator(device=device).manual_seed(0)
    out, t_dev = timed(
        lambda: augment_batch(x.to(device), {"shift": s}, bg.to(device), gen), device
    )
    cpu_gen = torch.Generator().manual_seed(0)
    _, t_cpu = timed(lambda: augment_batch(x, {"shift": s}, bg, cpu_gen), device)
    padded = bg.expand(n, 1, 28 + 2 * s, 28 + 2 * s).clone()
    padded[:, :, s : s + 28, s : s + 28] = x
    shifts = torch.stack(
        [
            padded[:, :, dy : dy + 28, dx : dx + 28]
            for dy in range(2 * s + 1)
            for dx in range(2 * s + 1)
        ]
    )
    matched = (shifts == out.cpu()[None]).flatten(2).all(2).any(0)
    miss = float((~matched).float().mean())
    return [Check("augment shift ±2", miss == 0.0, miss, 0.0, t_cpu, t_dev, "share not a shift")]


def _noise_tables(ckpt: dict, opt: str, device: torch.device, size: dict):
    data = dataset_from({"name": "mnist_embedded", "train_size": size["train"], "test_size": 500})
    data = data.to(device)
    torch.manual_seed(0)
    model = build_model({"name": "lenet"}, data.input_shape, data.n_classes).to(device)
    model.load_state_dict(ckpt["model"])
    views = views_for(opt, OPTIMIZERS[opt], ckpt["optimizer"])
    ns = NoiseSettings(
        mode="sampled", batch_size=32, n_batches=size["noise_batches"], coords_per_layer=16
    )
    res = sample_split(model, data.x_train, data.y_train, ns, views, 0)
    return to_tables({"train": res}, 16)


def check_noise(device: torch.device, size: dict, root: Path) -> list[Check]:
    checks = []
    for opt in ("sgdm", "adam"):  # raw + averaged; raw + preconditioned
        ckpt = load_checkpoint(
            root / f"train-{opt}-lenet-cpu" / "checkpoints" / f"step{size['iterations']}.pt"
        )
        cpu, t_cpu = timed(
            lambda c=ckpt, o=opt: _noise_tables(c, o, torch.device("cpu"), size), device
        )
        dev, t_dev = timed(lambda c=ckpt, o=opt: _noise_tables(c, o, device, size), device)
        (s_cpu, st_cpu), (s_dev, st_dev) = cpu, dev
        coords = [
            np.concatenate(s["coords"].to_numpy(zero_copy_only=False)) for s in (s_cpu, s_dev)
        ]
        same_padding = np.array_equal(np.isnan(coords[0]), np.isnan(coords[1]))
        parts = {
            "norm": rel_diff(s_dev["norm"].to_numpy(), s_cpu["norm"].to_numpy()),
            "coords": rel_diff(np.nan_to_num(coords[1]), np.nan_to_num(coords[0])),
            "spectrum": rel_diff(
                np.concatenate([np.asarray(e) for e in st_dev["eigenvalues"].to_pylist()]),
                np.concatenate([np.asarray(e) for e in st_cpu["eigenvalues"].to_pylist()]),
            ),
        }
        worst = max(parts.values())
        views = sorted(set(s_cpu["view"].to_pylist()))
        checks.append(
            Check(
                f"noise {opt} ({', '.join(views)})",
                worst <= WEIGHT_TOL and s_cpu.num_rows == s_dev.num_rows and same_padding,
                worst,
                WEIGHT_TOL,
                t_cpu,
                t_dev,
                ", ".join(f"{k} {v:.1e}" for k, v in parts.items()),
            )
        )
    return checks


def _quantile_z(a: np.ndarray, b: np.ndarray, qs=(0.5, 0.75, 0.9, 0.95, 0.99)) -> float:
    """The largest |difference| of the quantiles of |a| and |b| in standard errors of the difference
    (asymptotic: se(q̂) = √(q(1 − q)/n) / f(x_q), the density from neighbouring quantiles)."""
    worst = 0.0
    for q in qs:
        h = min(0.005, (1 - q) / 2)
        se2 = 0.0
        for x in (np.abs(a), np.abs(b)):
            lo, hi = np.quantile(x, [q - h, q + h])
            density = 2 * h / max(hi - lo, 1e-300)
            se2 += q * (1 - q) / len(x) / density**2
        diff = abs(np.quantile(np.abs(a), q) - np.quantile(np.abs(b), q))
        worst = max(worst, diff / math.sqrt(se2))
    return worst


def check_levy(device: torch.device, size: dict) -> list[Check]:
    n, checks = size["levy_samples"], []
    samplers = {
        "SαS α=1.5": lambda dev, g: sample_sas_torch(1.5, (n,), g, dev),
        "isotropic SαS α=1.2, d=4": lambda dev, g: sample_isotropic_torch(1.2, n // 4, 4, g, dev)[
            :, 0
        ],
    }
    for name, draw in samplers.items():
        out = {}
        for side, dev, seed in (("cpu", torch.device("cpu"), 1), ("device", device, 2)):
            gen = torch.Generator(device=dev).manual_seed(seed)
            out[side] = timed(lambda d=dev, g=gen, f=draw: f(d, g).cpu().numpy(), device)
        z = _quantile_z(out["cpu"][0], out["device"][0])
        finite = all(np.isfinite(v[0]).all() for v in out.values())
        checks.append(
            Check(f"levy {name}", finite and z <= Z_TOL, z, Z_TOL, out["cpu"][1], out["device"][1])
        )
    return checks


def check_sde(device: torch.device, size: dict) -> list[Check]:
    checks = []
    basin = make_basin("box", 2, 1.0, 1.0)
    noise = Noise(alpha=1.5, model="independent", m=np.eye(2))
    for scheme in ("euler", "jump"):
        out = {}
        for side, dev, seed in (("cpu", "cpu", 1), ("device", str(device), 2)):
            out[side] = timed(
                lambda d=dev, s=seed, k=scheme: simulate_exits(
                    basin,
                    noise,
                    size["eps"],
                    n_paths=size["paths"],
                    dt=0.01,
                    t_max=1e4,
                    seed=s,
                    device=d,
                    scheme=k,
                ),
                device,
            )
        (e_cpu, t_cpu), (e_dev, t_dev) = out["cpu"], out["device"]
        means = [e.times.mean() for e in (e_cpu, e_dev)]
        se = math.sqrt(sum(e.times.var() / len(e.times) for e in (e_cpu, e_dev)))
        z = abs(means[0] - means[1]) / se if se > 0 else 0.0
        checks.append(
            Check(
                f"sde {scheme}",
                z <= Z_TOL and e_cpu.exited.all() and e_dev.exited.all(),
                z,
                Z_TOL,
                t_cpu,
                t_dev,
                f"mean exit {means[0]:.2f} / {means[1]:.2f}",
            )
        )
    return checks


def check_escape(device: torch.device, size: dict, root: Path) -> list[Check]:
    run_dir = root / "train-sgdm-lenet-cpu"
    ckpt = load_checkpoint(run_dir / "checkpoints" / f"step{size['iterations']}.pt")
    settings = _settings("sgdm", {"name": "lenet"}, "cpu", size)
    s = {
        "run": settings.run,
        "training": settings.training.as_dict(),
        "dataset": settings.dataset,
        "model": settings.model,
        "minima": {
            "radii": [0.05, 0.2, 0.8],
            "max_iters": size["escape_iters"],
            "lr_scales": [2.0],
            "batch_size": "training",
        },
        "seed": 0,
    }
    cpu, t_cpu = timed(lambda: minimum_table(s, ckpt, torch.device("cpu")).to_pandas(), device)
    dev, t_dev = timed(lambda: minimum_table(s, ckpt, device).to_pandas(), device)
    gaps = [
        abs(a - b) / max(ESCAPE_ABS / ESCAPE_REL, max(a, b))
        for a, b in zip(cpu.exit_iteration, dev.exit_iteration, strict=True)
    ]
    same_censoring = (cpu.censored.to_numpy() == dev.censored.to_numpy()).all()
    worst = max(gaps)
    return [
        Check(
            "escape from minima",
            bool(same_censoring) and worst <= ESCAPE_REL and (cpu.status == dev.status).all(),
            worst,
            ESCAPE_REL,
            t_cpu,
            t_dev,
            f"exit iterations {cpu.exit_iteration.tolist()} / {dev.exit_iteration.tolist()}",
        )
    ]


SIZES = {
    "quick": {
        "train": 400,
        "batch": 32,
        "iterations": 12,
        "noise_batches": 40,
        "levy_samples": 20_000,
        "paths": 100,
        "eps": 0.5,
        "escape_iters": 30,
    },
    "full": {
        "train": 4000,
        "batch": 128,
        "iterations": 300,
        "noise_batches": 400,
        "levy_samples": 2_000_000,
        "paths": 20_000,
        "eps": 0.2,
        "escape_iters": 300,
    },
}


def run_checks(device: torch.device, quick: bool) -> list[Check]:
    size = SIZES["quick" if quick else "full"]
    torch.set_num_threads(THREADS)
    dataset_from({"name": "mnist_embedded"})  # the data cache is built before anything is timed
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as tmp:
        root = Path(tmp)
        checks = check_training(device, size, root)
        checks += check_augment(device)
        checks += check_noise(device, size, root)
        checks += check_levy(device, size)
        checks += check_sde(device, size)
        checks += check_escape(device, size, root)
    return checks


def report(checks: list[Check], device: torch.device) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (dry run)"
    lines = [
        f"device: {name}; CPU threads: {torch.get_num_threads()}",
        f"{'path':34} {'agree':5} {'measured':>10} {'tolerance':>9} {'cpu s':>7} "
        f"{'dev s':>7} {'speed-up':>8}  detail",
    ]
    for c in checks:
        lines.append(
            f"{c.path:34} {'yes' if c.agree else 'NO':5} {c.measured:10.3g} {c.tolerance:9.3g} "
            f"{c.cpu_s:7.2f} {c.device_s:7.2f} {c.ratio:8.2f}  {c.detail}"
        )
    return "\n".join(lines)


def _plain(value: Any) -> Any:
    """numpy scalars (bool_, float64) as Python values, for JSON."""
    return value.item()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", default="cuda", help="cuda[:k], or cpu for a dry run of the harness")
    p.add_argument("--quick", action="store_true", help="the smallest sizes (seconds)")
    p.add_argument("--out", help="write the checks as JSON here")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: run with --device cpu for a dry run", file=sys.stderr)
        return 2
    checks = run_checks(device, args.quick)
    print(report(checks, device))
    if args.out:
        Path(args.out).write_text(
            json.dumps([{**asdict(c), "ratio": c.ratio} for c in checks], indent=1, default=_plain)
        )
    return 0 if all(c.agree for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
