"""Training one (experiment, arm, seed) run, with checkpoints, history, resume and divergence.

Checkpoints are first written under ``<run>/.resume/`` together with the full training state; a rerun of
a killed job continues from the last one (if its settings are unchanged). Only at the end are the
checkpoints moved to ``<run>/checkpoints/`` and the history written, so the declared outputs appear only
when the run is complete. A run whose loss or weights become NaN/inf stops, records ``diverged`` in its
history, and writes marker checkpoints for the iterations it did not reach. A run with a training-accuracy
target stops when it reaches it; later checkpoints then hold the weights it stopped with.

What an arm adds (``gradnoise.arms.Training``): a learning-rate schedule (drops at fixed iterations),
gradient-norm clipping, Ghost Batch Normalization (the loss is the mean over ghost batches of their
mean losses, as in Hoffer et al.'s code), an initialization from another arm's final weights,
random-label training copies, and per-batch augmentation. The history records ‖w_t − w_0‖ for the
whole network and its first layer at log-spaced iterations as well as at every evaluation.
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

import numpy as np
import pyarrow as pa
import torch
from tqdm import tqdm

from gradnoise.allocator import training_step_memory
from gradnoise.arms import Training
from gradnoise.augment import augment_batch
from gradnoise.data import Dataset, background, load_dataset, random_label_copies
from gradnoise.devices import resolve_device
from gradnoise.errors import InputError
from gradnoise.io import HISTORY_SCHEMA, load_checkpoint, save_torch, write_parquet
from gradnoise.models import build_model, fastest_memory_format, with_ghost_batchnorm
from gradnoise.optim import build_optimizer
from gradnoise.seeds import hash_seed

log = logging.getLogger(__name__)

DISTANCE_POINTS = 60  # log-spaced iterations at which ‖w_t − w_0‖ is recorded besides evaluations


@dataclass
class RunSettings:
    """The config slice that determines one training run (and nothing else)."""

    run: dict[str, Any]  # experiment, arm, optimizer, seed: what names the run in every table
    training: Training
    dataset: dict[str, Any]
    model: dict[str, Any]
    eval_every: int
    device: str = "auto"

    @classmethod
    def from_json(cls, s: dict[str, Any]) -> RunSettings:
        return cls(
            run=s["run"],
            training=Training(**s["training"]),
            dataset=s["dataset"],
            model=s["model"],
            eval_every=s["eval_every"],
            device=s.get("device", "auto"),
        )

    @property
    def seed(self) -> int:
        return int(self.run["seed"])

    def as_dict(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "training": self.training.as_dict(),
            "dataset": self.dataset,
            "model": self.model,
            "eval_every": self.eval_every,
            "device": self.device,
        }

    def digest(self, init: str = "") -> str:
        """Hash of everything that shapes the trajectory (not the device: CPU and GPU differ anyway),
        including the content of the checkpoint it starts from."""
        d = {k: v for k, v in self.as_dict().items() if k != "device"}
        h = hashlib.sha256(json.dumps(d, sort_keys=True).encode())
        if init:
            h.update(Path(init).read_bytes())
        return h.hexdigest()[:16]


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


def distance_iterations(iterations: int, points: int = DISTANCE_POINTS) -> set[int]:
    """Log-spaced iterations in [1, iterations], for fits of ‖w_t − w_0‖ against log t."""
    grid = np.unique(np.round(np.geomspace(1, max(iterations, 1), points)).astype(int))
    return set(grid.tolist())


def training_data(
    data: Dataset, training: Training
) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """The examples the run trains on (random-label copies for a pretraining arm), and what to record
    about them."""
    spec = training.random_labels
    if not spec:
        return data.x_train, data.y_train, {}
    x, y = random_label_copies(data, spec["copies"], spec["zero_fraction"], spec["seed"])
    digest = hashlib.sha256(y.cpu().numpy().tobytes()).hexdigest()[:16]
    return x, y, {"n_examples": len(y), "labels_sha256": digest}


def _loss(model, x, y, ghost: int | None) -> torch.Tensor:
    """Mean loss; with ghost batches, the mean over ghost batches of their mean losses."""
    out = model(x)
    if not ghost or len(y) <= ghost:
        return torch.nn.functional.cross_entropy(out, y)
    parts = [
        torch.nn.functional.cross_entropy(o, t)
        for o, t in zip(out.split(ghost), y.split(ghost), strict=True)
    ]
    return torch.stack(parts).mean()


def _checkpoint(model, optimizer, settings: RunSettings, step: int, status: str = "ok") -> dict:
    return {
        "step": step,
        "status": status,
        "settings": json.dumps(settings.as_dict(), sort_keys=True),
        "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
    }


def load_init(path: str, settings: RunSettings) -> dict[str, Any]:
    """The checkpoint an arm starts from; it must exist, be complete and come from the same
    experiment, seed and model (never a silent start from scratch)."""
    ckpt = load_checkpoint(path)
    source = json.loads(ckpt.get("settings", "{}"))
    want = {"experiment": settings.run["experiment"], "seed": settings.seed}
    got = {k: source.get("run", {}).get(k) for k in want}
    if got != want or source.get("model") != settings.model:
        raise InputError(
            f"{path}: checkpoint of another run (run {got}, model {source.get('model')}); "
            f"this arm starts from run {want}, model {settings.model}"
        )
    if ckpt.get("status") != "ok" or "model" not in ckpt:
        raise InputError(f"{path}: the run it comes from ended {ckpt.get('status')!r}")
    return ckpt


@training_step_memory()
def train_run(settings: RunSettings, run_dir: str | Path, threads: int = 1, init: str = "") -> str:
    """Train and write ``history.parquet`` and ``checkpoints/step{k}.pt``; returns the run's status.
    `init`: the checkpoint whose weights start this run (an arm's ``init_from``)."""
    torch.set_num_threads(max(1, threads))
    tr = settings.training
    if bool(init) != bool(tr.init_from):
        raise InputError(f"{run_dir}: arm init_from={tr.init_from!r} but init checkpoint {init!r}")
    run_dir = Path(run_dir)
    resume_dir = run_dir / ".resume"
    device = resolve_device(settings.device)
    data = dataset_from(settings.dataset).to(device)
    x_train, y_train, data_meta = training_data(data, tr)
    torch.manual_seed(settings.seed)
    model = build_model(settings.model, data.input_shape, data.n_classes).to(device)
    init_meta: dict[str, Any] = {}
    if init:
        source = load_init(init, settings)
        model.load_state_dict(source["model"])
        init_meta = {"checkpoint": init, "target_reached": source.get("target_reached")}
    if tr.ghost_batch_size:
        with_ghost_batchnorm(model, tr.ghost_batch_size)
    model.to(memory_format=fastest_memory_format(model, device))
    optimizer = build_optimizer(tr.optimizer, model.parameters(), tr.hparams)
    batches = BatchStream(len(y_train), tr.batch_size, settings.seed)
    aug_gen = torch.Generator(device=device).manual_seed(hash_seed(settings.seed, "augment"))
    bg = background(data.name).to(device)
    first = next(model.parameters())
    w0, w0_first = flat_params(model), first.detach().clone()
    history: list[dict[str, Any]] = []
    start, stopped_at = 0, None
    digest = settings.digest(init)

    state_file = resume_dir / "state.pt"
    if state_file.exists():
        state = load_checkpoint(state_file)
        if state.get("digest") == digest:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            batches.restore(state["batches"])
            torch.set_rng_state(state["torch_rng"])
            aug_gen.set_state(state["augment_rng"])
            w0, w0_first = state["w0"].to(device), state["w0_first"].to(device)
            history, start = state["history"], int(state["iteration"])
            log.info("resuming from iteration %d (%s)", start, state_file)
        else:
            log.info("discarding resume state of other settings (%s)", state_file)
            shutil.rmtree(resume_dir)

    def record(it: int, batch_loss: float, status: str, evaluated: bool) -> dict[str, Any]:
        nan2 = (math.nan, math.nan)
        trn = evaluate(model, x_train, y_train) if evaluated else nan2
        tst = evaluate(model, data.x_test, data.y_test) if evaluated else nan2
        row = {
            "iteration": it,
            "epoch": it / batches.per_epoch,
            "lr": float(optimizer.param_groups[0]["lr"]),
            "batch_loss": batch_loss,
            "evaluated": evaluated,
            "train_loss": trn[0],
            "train_acc": trn[1],
            "test_loss": tst[0],
            "test_acc": tst[1],
            "weight_distance": float((flat_params(model) - w0).norm()),
            "first_layer_distance": float((first.detach() - w0_first).norm()),
            "status": status,
        }
        history.append(row)
        return row

    def save_resume(it: int) -> None:
        save_torch(_checkpoint(model, optimizer, settings, it), resume_dir / f"step{it}.pt")
        save_torch(
            {
                "digest": digest,
                "iteration": it,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "batches": batches.state(),
                "torch_rng": torch.get_rng_state(),
                "augment_rng": aug_gen.get_state(),
                "w0": w0.cpu(),
                "w0_first": w0_first.cpu(),
                "history": history,
            },
            state_file,
        )

    checkpoints = set(tr.checkpoints)
    distances = distance_iterations(tr.iterations)
    drops = set(tr.lr_milestones)
    status, diverged_at = "ok", None
    if start == 0:
        record(0, math.nan, "ok", True)
        if 0 in checkpoints:
            save_resume(0)
    model.train()
    params = list(model.parameters())
    log_every = max(1, tr.iterations // 20)
    t0, it_done = time.perf_counter(), start
    bar = tqdm(
        total=tr.iterations, initial=start, disable=not sys.stderr.isatty(), desc=tr.optimizer
    )
    for it in range(start + 1, tr.iterations + 1):
        if it - 1 in drops:  # the drop takes effect from the step after the milestone
            for group in optimizer.param_groups:
                group["lr"] *= tr.lr_gamma
        idx = batches.next().to(device)
        x = x_train[idx]
        if tr.augment:
            x = augment_batch(x, tr.augment, bg, aug_gen)
        optimizer.zero_grad(set_to_none=True)
        loss = _loss(model, x, y_train[idx], tr.ghost_batch_size)
        if not torch.isfinite(loss):
            status, diverged_at = "diverged", it
            record(it, float(loss.item()), "diverged", False)
            log.warning("loss became %s at iteration %d: run recorded as diverged", loss.item(), it)
            break
        loss.backward()
        if tr.clip_grad_norm:
            torch.nn.utils.clip_grad_norm_(params, tr.clip_grad_norm)
        optimizer.step()
        bar.update(1)
        if not all(bool(torch.isfinite(p).all()) for p in params):
            status, diverged_at = "diverged", it
            record(it, float(loss.item()), "diverged", False)
            log.warning("weights became non-finite at iteration %d: run recorded as diverged", it)
            break
        evaluated = it % settings.eval_every == 0 or it == tr.iterations
        if evaluated or it in distances:
            row = record(it, float(loss.item()), "ok", evaluated)
            if evaluated and tr.until_train_acc and row["train_acc"] >= tr.until_train_acc:
                stopped_at = it
                log.info("training accuracy %.2f %% reached at iteration %d", row["train_acc"], it)
        if it in checkpoints or stopped_at:
            save_resume(it)
        if it % log_every == 0:
            rate = (it - it_done) / (time.perf_counter() - t0)
            log.info("iteration %d/%d  loss %.4f  %.1f it/s", it, tr.iterations, loss.item(), rate)
        if stopped_at:
            break
    bar.close()
    meta = {
        "status": status,
        "diverged_at": diverged_at,
        "stopped_at": stopped_at,
        "target_reached": None if not tr.until_train_acc else stopped_at is not None,
        "random_labels": data_meta,
        "init": init_meta,
    }
    _finish(settings, run_dir, resume_dir, history, meta)
    return status


def _finish(settings: RunSettings, run_dir: Path, resume_dir: Path, history, meta) -> None:
    """Move checkpoints into place, then write the history. Checkpoints a run did not reach are
    markers (diverged) or, for a run stopped at its accuracy target, copies of the last weights."""
    ckpt_dir = run_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    stopped = meta["stopped_at"]
    for step in settings.training.checkpoints:
        src = resume_dir / f"step{step}.pt"
        if src.exists() and meta["target_reached"] is None:
            os.replace(src, ckpt_dir / f"step{step}.pt")
        elif src.exists():
            ckpt = load_checkpoint(src)
            ckpt["target_reached"] = meta["target_reached"]
            save_torch(ckpt, ckpt_dir / f"step{step}.pt")
        elif stopped is not None:
            ckpt = load_checkpoint(resume_dir / f"step{stopped}.pt")
            ckpt.update(step=step, stopped_at=stopped, target_reached=meta["target_reached"])
            save_torch(ckpt, ckpt_dir / f"step{step}.pt")
        else:
            save_torch(
                {
                    "step": step,
                    "status": "diverged",
                    "diverged_at": meta["diverged_at"],
                    "settings": json.dumps(settings.as_dict(), sort_keys=True),
                },
                ckpt_dir / f"step{step}.pt",
            )
    table = pa.Table.from_pylist(history, schema=HISTORY_SCHEMA)
    written = settings.as_dict()
    written["outcome"] = meta
    write_parquet(table, run_dir / "history.parquet", written)
    shutil.rmtree(resume_dir, ignore_errors=True)
