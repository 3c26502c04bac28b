"""Training one (experiment, arm, seed) run, with checkpoints, history, resume and divergence.

Checkpoints are first written under ``<run>/.resume/`` together with the full training state; a rerun of
a killed job continues from the last one (if its settings and the code training imports are unchanged).
Only at the end are the checkpoints linked into ``<run>/checkpoints/`` and the history (written last)
put in place, and only then is the resume state removed: a kill at any point of finishing reruns to the
same outputs. A run whose loss becomes non-finite or far above its initial loss (``DIVERGENCE_FACTOR``),
or whose weights become non-finite, stops, records ``diverged`` in its history, and writes marker
checkpoints for the iterations it did not reach. A run with a training-accuracy
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
from gradnoise.data import Dataset, background, random_label_copies
from gradnoise.devices import resolve_device
from gradnoise.errors import InputError
from gradnoise.io import HISTORY_SCHEMA, load_checkpoint, save_torch, tmp_path, write_parquet
from gradnoise.models import fastest_memory_format, with_ghost_batchnorm
from gradnoise.optim import build_optimizer
from gradnoise.provenance import code_digest
from gradnoise.seeds import hash_seed
from gradnoise.tasks import Task, task_from

log = logging.getLogger(__name__)

DISTANCE_POINTS = 60  # log-spaced iterations at which ‖w_t − w_0‖ is recorded besides evaluations
# A run diverged when its batch (or evaluated training) loss exceeds this many times the larger of its
# initial training loss and ln C (config/README.md, "Divergence").
DIVERGENCE_FACTOR = 100.0


@dataclass
class RunSettings:
    """The config slice that determines one training run (and nothing else)."""

    run: dict[str, Any]  # experiment, arm, optimizer, seed: what names the run in every table
    training: Training
    dataset: dict[str, Any]
    model: dict[str, Any]
    eval_every: int
    device: str = "auto"
    loss: dict[str, Any] | None = None  # a loss factory (gradnoise.tasks); None: the default loss

    @classmethod
    def from_json(cls, s: dict[str, Any]) -> RunSettings:
        return cls(
            run=s["run"],
            training=Training(**s["training"]),
            dataset=s["dataset"],
            model=s["model"],
            eval_every=s["eval_every"],
            device=s.get("device", "auto"),
            loss=s.get("loss"),
        )

    @property
    def seed(self) -> int:
        return int(self.run["seed"])

    def as_dict(self) -> dict[str, Any]:
        """The settings as the workflow passes them (`loss` only where the experiment has one)."""
        return {
            "run": self.run,
            "training": self.training.as_dict(),
            "dataset": self.dataset,
            "model": self.model,
            "eval_every": self.eval_every,
            "device": self.device,
        } | ({"loss": self.loss} if self.loss is not None else {})

    def digest(self, init: str = "") -> str:
        """Hash of everything that shapes the trajectory (not the device: CPU and GPU differ anyway),
        including the content of the checkpoint it starts from."""
        d = {k: v for k, v in self.as_dict().items() if k != "device"}
        h = hashlib.sha256(json.dumps(d, sort_keys=True).encode())
        if init:
            h.update(Path(init).read_bytes())
        return h.hexdigest()[:16]


def flat_params(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


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


def _loss(task: Task, model, x, y, ghost: int | None) -> torch.Tensor:
    """Mean loss; with ghost batches (zoo classifiers), the mean over ghost batches of their mean
    losses."""
    if not ghost or len(y) <= ghost:
        return task.loss(model, (x, y))
    out = model(x)
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


def divergence_limit(initial_loss: float, n_classes: int | None) -> float:
    """The batch loss above which a run counts as diverged: DIVERGENCE_FACTOR times the larger of
    the initial training loss and the chance-level loss ln C (a run that starts from trained
    weights, with a tiny initial loss, may still rise to chance without diverging); a task with
    no classes (a factory's) has the initial loss alone."""
    chance = math.log(n_classes) if n_classes else -math.inf
    return DIVERGENCE_FACTOR * max(initial_loss, chance)


def diverged(loss: float, limit: float) -> bool:
    """Divergence as users mean it: a non-finite loss, or one far above where the run started."""
    return not math.isfinite(loss) or loss > limit


class _Run:
    """A training run in progress: the model, its optimizer, the data streams and the history."""

    def __init__(self, settings: RunSettings, init: str) -> None:
        tr = settings.training
        self.settings, self.tr = settings, tr
        self.device = device = resolve_device(settings.device)
        self.task = task_from(settings.as_dict(), f"experiments.{settings.run['experiment']}")
        self.data = data = self.task.data.to(device)
        self.x_train, self.y_train, self.data_meta = training_data(data, tr)
        torch.manual_seed(settings.seed)
        model = self.task.new_model().to(device)
        self.init_meta: dict[str, Any] = {}
        if init:
            source = load_init(init, settings)
            model.load_state_dict(source["model"])
            self.init_meta = {"checkpoint": init, "target_reached": source.get("target_reached")}
        if tr.ghost_batch_size:
            with_ghost_batchnorm(model, tr.ghost_batch_size)
        model.to(memory_format=fastest_memory_format(model, device))
        self.model = model
        self.optimizer = build_optimizer(tr.optimizer, model.parameters(), tr.hparams)
        self.batches = BatchStream(len(self.y_train), tr.batch_size, settings.seed)
        self.aug_gen = torch.Generator(device=device).manual_seed(
            hash_seed(settings.seed, "augment")
        )
        self.bg = background(data.name).to(device) if tr.augment else None
        self.first = next(model.parameters())
        self.w0, self.w0_first = flat_params(model), self.first.detach().clone()
        self.history: list[dict[str, Any]] = []
        self.stopped_at: int | None = None  # the iteration the accuracy target was reached

    def state(self, iteration: int) -> dict[str, Any]:
        """Everything a resumed run needs to continue bit-identically."""
        return {
            "iteration": iteration,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "batches": self.batches.state(),
            "torch_rng": torch.get_rng_state(),
            "augment_rng": self.aug_gen.get_state(),
            "w0": self.w0.cpu(),
            "w0_first": self.w0_first.cpu(),
            "history": self.history,
            "stopped_at": self.stopped_at,
        }

    def restore(self, state: dict[str, Any]) -> int:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.batches.restore(state["batches"])
        torch.set_rng_state(state["torch_rng"])
        self.aug_gen.set_state(state["augment_rng"])
        self.w0 = state["w0"].to(self.device)
        self.w0_first = state["w0_first"].to(self.device)
        self.history = state["history"]
        self.stopped_at = state.get("stopped_at")
        return int(state["iteration"])

    def record(self, it: int, batch_loss: float, status: str, evaluated: bool) -> dict[str, Any]:
        nan2 = (math.nan, math.nan)
        data, model = self.data, self.model
        trn = self.task.evaluate(model, self.x_train, self.y_train) if evaluated else nan2
        tst = self.task.evaluate(model, data.x_test, data.y_test) if evaluated else nan2
        row = {
            "iteration": it,
            "epoch": it / self.batches.per_epoch,
            "lr": float(self.optimizer.param_groups[0]["lr"]),
            "batch_loss": batch_loss,
            "evaluated": evaluated,
            "train_loss": trn[0],
            "train_acc": trn[1],
            "test_loss": tst[0],
            "test_acc": tst[1],
            "weight_distance": float((flat_params(model) - self.w0).norm()),
            "first_layer_distance": float((self.first.detach() - self.w0_first).norm()),
            "status": status,
        }
        self.history.append(row)
        return row

    def batch(self, it: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The minibatch of iteration `it` (augmented if the arm says so), after any lr drop."""
        tr = self.tr
        if it - 1 in tr.lr_milestones:  # the drop takes effect from the step after the milestone
            for group in self.optimizer.param_groups:
                group["lr"] *= tr.lr_gamma
        idx = self.batches.next().to(self.device)
        x = self.x_train[idx]
        if tr.augment:
            x = augment_batch(x, tr.augment, self.bg, self.aug_gen)
        return x, self.y_train[idx]

    def step(self, loss: torch.Tensor, params: list[torch.Tensor]) -> bool:
        """One optimizer step on `loss`; False when it leaves a weight non-finite."""
        loss.backward()
        if self.tr.clip_grad_norm:
            torch.nn.utils.clip_grad_norm_(params, self.tr.clip_grad_norm)
        self.optimizer.step()
        return all(bool(torch.isfinite(p).all()) for p in params)

    def train(self, start: int, resume: _Resume) -> dict[str, Any]:
        """Iterations start+1 … T (or until divergence or the accuracy target); the outcome."""
        tr = self.tr
        if self.stopped_at is not None:  # resumed after reaching the target: nothing left to do
            return {"status": "ok", "diverged_at": None, "stopped_at": self.stopped_at}
        if not self.history:  # a fresh start (a state saved at iteration 0 holds its row)
            self.record(0, math.nan, "ok", True)
            if 0 in tr.checkpoints:
                resume.save(self, 0)
        limit = divergence_limit(self.history[0]["train_loss"], self.data.n_classes)
        self.model.train()
        with tqdm(
            total=tr.iterations, initial=start, disable=not sys.stderr.isatty(), desc=tr.optimizer
        ) as bar:
            return self._iterate(start, limit, resume, bar)

    def _iterate(self, start: int, limit: float, resume: _Resume, bar: tqdm) -> dict[str, Any]:
        tr, settings = self.tr, self.settings
        checkpoints, distances = set(tr.checkpoints), distance_iterations(tr.iterations)
        params = list(self.model.parameters())
        outcome: dict[str, Any] = {"status": "ok", "diverged_at": None, "stopped_at": None}
        log_every = max(1, tr.iterations // 20)
        t0 = time.perf_counter()
        for it in range(start + 1, tr.iterations + 1):
            x, y = self.batch(it)
            self.optimizer.zero_grad(set_to_none=True)
            loss = _loss(self.task, self.model, x, y, tr.ghost_batch_size)
            value = float(loss.item())
            if diverged(value, limit):
                why = f"batch loss {value:.4g} (limit {limit:.4g})"
                return self._diverge(outcome, it, self.record(it, value, "diverged", False), why)
            finite = self.step(loss, params)
            bar.update(1)
            if not finite:
                row = self.record(it, value, "diverged", False)
                return self._diverge(outcome, it, row, "non-finite weights after the step")
            evaluated = it % settings.eval_every == 0 or it == tr.iterations
            if evaluated or it in distances:
                row = self.record(it, value, "ok", evaluated)
                if evaluated and diverged(row["train_loss"], limit):
                    why = f"training loss {row['train_loss']:.4g} (limit {limit:.4g})"
                    return self._diverge(outcome, it, row, why)
                if evaluated and tr.until_train_acc and row["train_acc"] >= tr.until_train_acc:
                    outcome["stopped_at"] = self.stopped_at = it
                    log.info(
                        "training accuracy %.2f %% reached at iteration %d", row["train_acc"], it
                    )
            if it in checkpoints or outcome["stopped_at"]:
                resume.save(self, it)
            if it % log_every == 0:
                rate = (it - start) / (time.perf_counter() - t0)
                log.info("iteration %d/%d  loss %.4f  %.1f it/s", it, tr.iterations, value, rate)
            if outcome["stopped_at"]:
                break
        return outcome

    @staticmethod
    def _diverge(outcome: dict[str, Any], it: int, row: dict[str, Any], why: str) -> dict[str, Any]:
        row["status"] = "diverged"
        log.warning("%s at iteration %d: run recorded as diverged", why, it)
        return {**outcome, "status": "diverged", "diverged_at": it}


class _Resume:
    """The resume state under ``<run>/.resume/``: checkpoints reached so far and ``state.pt``, which
    records what made it (the settings' digest and the checksums of the code training imports) and
    is discarded when either differs."""

    def __init__(self, folder: Path, digest: str, code: str) -> None:
        self.dir, self.digest, self.code = folder, digest, code
        self.state_file = folder / "state.pt"

    def load(self, run: _Run) -> int:
        """The iteration to continue from (0 without a usable state)."""
        if not self.state_file.exists():
            if self.dir.exists():  # a state removed half-way: what is left is not a resume state
                shutil.rmtree(self.dir)
            return 0
        state = load_checkpoint(self.state_file)
        if state.get("digest") != self.digest:
            log.info("discarding resume state of other settings (%s)", self.state_file)
        elif state.get("code") != self.code:
            log.info("discarding resume state made by other code (%s)", self.state_file)
        else:
            start = run.restore(state)
            log.info("resuming from iteration %d (%s)", start, self.state_file)
            return start
        shutil.rmtree(self.dir)
        return 0

    def save(self, run: _Run, it: int) -> None:
        save_torch(
            _checkpoint(run.model, run.optimizer, run.settings, it), self.dir / f"step{it}.pt"
        )
        save_torch({"digest": self.digest, "code": self.code, **run.state(it)}, self.state_file)

    def remove(self) -> None:
        """Remove the state file first: a folder without it is never resumed from."""
        self.state_file.unlink(missing_ok=True)
        shutil.rmtree(self.dir, ignore_errors=True)


@training_step_memory()
def train_run(settings: RunSettings, run_dir: str | Path, threads: int = 1, init: str = "") -> str:
    """Train and write ``history.parquet`` and ``checkpoints/step{k}.pt``; returns the run's status.
    `init`: the checkpoint whose weights start this run (an arm's ``init_from``)."""
    torch.set_num_threads(max(1, threads))
    tr = settings.training
    if bool(init) != bool(tr.init_from):
        raise InputError(f"{run_dir}: arm init_from={tr.init_from!r} but init checkpoint {init!r}")
    run_dir = Path(run_dir)
    run = _Run(settings, init)
    code = code_digest() + "".join(f["sha256"] or "" for f in run.task.provenance.values())
    resume = _Resume(run_dir / ".resume", settings.digest(init), code)
    outcome = run.train(resume.load(run), resume)
    meta = {
        **outcome,
        "target_reached": None if not tr.until_train_acc else outcome["stopped_at"] is not None,
        "random_labels": run.data_meta,
        "init": run.init_meta,
    }
    _finish(settings, run_dir, resume, run.history, meta, run.task.provenance)
    return meta["status"]


def _finish(
    settings: RunSettings, run_dir: Path, resume: _Resume, history, meta, factories
) -> None:
    """Put the checkpoints in place, then write the history, then remove the resume state.

    Atomic as a whole: the resume state stays complete until the history (the run's manifest,
    written last) is in place, so a job killed at any point of finishing reruns to the same outputs.
    Checkpoints are linked (or copied), never moved out of the resume state. Checkpoints a run did
    not reach are markers (diverged) or, for a run stopped at its accuracy target, copies of the
    last weights; one it reached but whose file is missing is an error, never a marker."""
    ckpt_dir = run_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    stopped, diverged_at = meta["stopped_at"], meta["diverged_at"]
    for step in settings.training.checkpoints:
        src, dst = resume.dir / f"step{step}.pt", ckpt_dir / f"step{step}.pt"
        if src.exists() and meta["target_reached"] is None:
            _place(src, dst)
        elif src.exists():
            ckpt = load_checkpoint(src)
            ckpt["target_reached"] = meta["target_reached"]
            save_torch(ckpt, dst)
        elif stopped is not None:
            ckpt = load_checkpoint(resume.dir / f"step{stopped}.pt")
            ckpt.update(step=step, stopped_at=stopped, target_reached=meta["target_reached"])
            save_torch(ckpt, dst)
        elif diverged_at is not None and step >= diverged_at:
            save_torch(
                {
                    "step": step,
                    "status": "diverged",
                    "diverged_at": diverged_at,
                    "settings": json.dumps(settings.as_dict(), sort_keys=True),
                },
                dst,
            )
        else:
            raise InputError(f"{src}: checkpoint of a reached iteration is missing; rerun from 0")
    table = pa.Table.from_pylist(history, schema=HISTORY_SCHEMA)
    written = settings.as_dict()
    written["outcome"] = meta
    if factories:  # what made the user's data, model and loss (gradnoise.factories.provenance)
        written["factories"] = factories
    write_parquet(table, run_dir / "history.parquet", written)
    resume.remove()


def _place(src: Path, dst: Path) -> None:
    """Put a copy of `src` at `dst` atomically, leaving `src` in place: a hard link where the file
    system allows it (no bytes copied), else a copy."""
    tmp = tmp_path(dst)
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
