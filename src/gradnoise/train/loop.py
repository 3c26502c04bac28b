"""A training run in progress: its model, optimizer, data streams and history, and the iterations
up to the end, the accuracy target or a divergence."""

from __future__ import annotations

import logging
import math
import sys
import time
from typing import TYPE_CHECKING, Any

import torch
from tqdm import tqdm

from gradnoise.augment import augment_batch
from gradnoise.data import background
from gradnoise.devices import resolve_device
from gradnoise.models import fastest_memory_format, with_ghost_batchnorm
from gradnoise.optim import build_optimizer
from gradnoise.seeds import hash_seed
from gradnoise.tasks import Task, task_from
from gradnoise.train.batches import BatchStream, training_data
from gradnoise.train.distances import distance_iterations, flat_params
from gradnoise.train.divergence import diverged, divergence_limit
from gradnoise.train.init_from import load_init
from gradnoise.train.settings import RunSettings

if TYPE_CHECKING:
    from gradnoise.train.resume import _Resume

log = logging.getLogger(__name__)


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
