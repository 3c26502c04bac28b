"""The settings of one training run: the config slice that determines it, and its digest (a resume
state of other settings is discarded)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gradnoise.arms import Training


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
