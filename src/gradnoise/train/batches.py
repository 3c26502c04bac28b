"""What a run trains on: its examples (random-label copies for a pretraining arm) and the seeded
stream of minibatches over them, whose state a resumed run restores."""

from __future__ import annotations

import hashlib
from typing import Any

import torch

from gradnoise.arms import Training
from gradnoise.data import Dataset, random_label_copies


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
