"""Training one (experiment, optimizer, seed) run, with checkpoints, history, resume and divergence.

Checkpoints are first written under ``<run>/.resume/`` together with the full training state; a rerun of
a killed job continues from the last one (if its settings are unchanged). Only at the end are the
checkpoints moved to ``<run>/checkpoints/`` and the history written, so the declared outputs appear only
when the run is complete. A run whose loss becomes NaN/inf stops, records ``diverged`` in its history,
and writes marker checkpoints for the iterations it did not reach.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import torch
from tqdm import tqdm

from gradnoise.data import Dataset, load_dataset
from gradnoise.devices import resolve_device
from gradnoise.io import load_checkpoint, save_torch, write_parquet
from gradnoise.models import build_model
from gradnoise.optim import build_optimizer

log = logging.getLogger(__name__)

HISTORY_SCHEMA = pa.schema(
    [
        ("iteration", pa.int64()),
        ("epoch", pa.float64()),
        ("lr", pa.float64()),
        ("batch_loss", pa.float64()),
        ("train_loss", pa.float64()),
        ("train_acc", pa.float64()),
        ("test_loss", pa.float64()),
        ("test_acc", pa.float64()),
        ("weight_distance", pa.float64()),
        ("status", pa.string()),
    ]
)


@dataclass
class RunSettings:
    """The config slice that determines one training run (and nothing else)."""

    experiment: str
    dataset: dict[str, Any]
    model: dict[str, Any]
    optimizer: str
    hparams: dict[str, Any]
    seed: int
    batch_size: int
    iterations: int
    checkpoints: list[int]
    eval_every: int
    device: str = "auto"

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def digest(self) -> str:
        """Hash of everything that shapes the trajectory (not the device: CPU and GPU differ anyway)."""
        d = {k: v for k, v in self.as_dict().items() if k != "device"}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def dataset_from(spec: dict[str, Any]) -> Dataset:
    return load_dataset(
        spec["name"],
        data_root=spec.get("data_root", "data"),
        download=spec.get("download", False),
        train_size=spec.get("train_size"),
        test_size=spec.get("test_size"),
        split_seed=spec.get("split_seed", 0),
    )


def flat_params(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int = 1000
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy (%) in eval mode."""
    was_training = model.training
    model.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(y), chunk):
        out = model(x[i : i + chunk])
        loss += torch.nn.functional.cross_entropy(out, y[i : i + chunk], reduction="sum").item()
        correct += (out.argmax(1) == y[i : i + chunk]).sum().item()
    model.train(was_training)
    return loss / len(y), 100.0 * correct / len(y)


class BatchStream:
    """Epoch-wise seeded permutations cut into full batches (the last partial batch is dropped)."""

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        self.n, self.batch_size = n, batch_size
        self.per_epoch = n // batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.order = torch.empty(0, dtype=torch.int64)
        self.position = 0

    def next(self) -> torch.Tensor:
        if self.position + self.batch_size > len(self.order):
            self.order = torch.randperm(self.n, generator=self.generator)
            self.position = 0
        idx = self.order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return idx

    def state(self) -> dict[str, Any]:
        return {"rng": self.generator.get_state(), "order": self.order, "position": self.position}

    def restore(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["rng"])
        self.order, self.position = state["order"], int(state["position"])


def _checkpoint(model, optimizer, settings: RunSettings, step: int, status: str = "ok") -> dict:
    return {
        "step": step,
        "status": status,
        "settings": json.dumps(settings.as_dict(), sort_keys=True),
        "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
    }


def train_run(settings: RunSettings, run_dir: str | Path, threads: int = 1) -> str:
    """Train and write ``history.parquet`` and ``checkpoints/step{k}.pt``; returns the run's status."""
    torch.set_num_threads(max(1, threads))
    run_dir = Path(run_dir)
    resume_dir = run_dir / ".resume"
    device = resolve_device(settings.device)
    data = dataset_from(settings.dataset).to(device)
    torch.manual_seed(settings.seed)
    model = build_model(settings.model, data.input_shape, data.n_classes).to(device)
    optimizer = build_optimizer(settings.optimizer, model.parameters(), settings.hparams)
    batches = BatchStream(len(data.y_train), settings.batch_size, settings.seed)
    w0 = flat_params(model)
    history: list[dict[str, Any]] = []
    start = 0

    state_file = resume_dir / "state.pt"
    if state_file.exists():
        state = load_checkpoint(state_file)
        if state.get("digest") == settings.digest():
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            batches.restore(state["batches"])
            torch.set_rng_state(state["torch_rng"])
            w0, history, start = state["w0"].to(device), state["history"], int(state["iteration"])
            log.info("resuming from iteration %d (%s)", start, state_file)
        else:
            log.info("discarding resume state of other settings (%s)", state_file)
            shutil.rmtree(resume_dir)

    def record(it: int, batch_loss: float, status: str) -> None:
        tr = evaluate(model, data.x_train, data.y_train) if status == "ok" else (math.nan, math.nan)
        te = evaluate(model, data.x_test, data.y_test) if status == "ok" else (math.nan, math.nan)
        history.append(
            {
                "iteration": it,
                "epoch": it / batches.per_epoch,
                "lr": float(optimizer.param_groups[0]["lr"]),
                "batch_loss": batch_loss,
                "train_loss": tr[0],
                "train_acc": tr[1],
                "test_loss": te[0],
                "test_acc": te[1],
                "weight_distance": float((flat_params(model) - w0).norm()),
                "status": status,
            }
        )

    def save_resume(it: int) -> None:
        save_torch(_checkpoint(model, optimizer, settings, it), resume_dir / f"step{it}.pt")
        save_torch(
            {
                "digest": settings.digest(),
                "iteration": it,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "batches": batches.state(),
                "torch_rng": torch.get_rng_state(),
                "w0": w0.cpu(),
                "history": history,
            },
            state_file,
        )

    checkpoints = set(settings.checkpoints)
    status, diverged_at = "ok", None
    if start == 0:
        record(0, math.nan, "ok")
        if 0 in checkpoints:
            save_resume(0)
    model.train()
    log_every = max(1, settings.iterations // 20)
    t0, it_done = time.perf_counter(), start
    bar = tqdm(
        total=settings.iterations,
        initial=start,
        disable=not sys.stderr.isatty(),
        desc=settings.optimizer,
    )
    for it in range(start + 1, settings.iterations + 1):
        idx = batches.next().to(device)
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
        if not torch.isfinite(loss):
            status, diverged_at = "diverged", it
            record(it, float(loss.item()), "diverged")
            log.warning("loss became %s at iteration %d: run recorded as diverged", loss.item(), it)
            break
        loss.backward()
        optimizer.step()
        bar.update(1)
        if it % settings.eval_every == 0 or it == settings.iterations:
            record(it, float(loss.item()), "ok")
        if it in checkpoints:
            save_resume(it)
        if it % log_every == 0:
            rate = (it - it_done) / (time.perf_counter() - t0)
            log.info(
                "iteration %d/%d  loss %.4f  %.1f it/s", it, settings.iterations, loss.item(), rate
            )
    bar.close()
    _finish(settings, run_dir, resume_dir, history, status, diverged_at)
    return status


def _finish(settings, run_dir: Path, resume_dir: Path, history, status: str, diverged_at) -> None:
    """Move checkpoints into place (markers for those a diverged run never reached), then history."""
    ckpt_dir = run_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    for step in settings.checkpoints:
        src = resume_dir / f"step{step}.pt"
        if src.exists():
            os.replace(src, ckpt_dir / f"step{step}.pt")
        else:
            save_torch(
                {
                    "step": step,
                    "status": "diverged",
                    "diverged_at": diverged_at,
                    "settings": json.dumps(settings.as_dict(), sort_keys=True),
                },
                ckpt_dir / f"step{step}.pt",
            )
    table = pa.Table.from_pylist(history, schema=HISTORY_SCHEMA)
    meta = {**settings.as_dict(), "status": status, "diverged_at": diverged_at}
    write_parquet(table, run_dir / "history.parquet", meta)
    shutil.rmtree(resume_dir, ignore_errors=True)
