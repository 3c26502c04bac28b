"""Data loaders: the embedded MNIST sample and torchvision's on-disk formats, written here."""

from __future__ import annotations

import hashlib
import pickle
import struct

import numpy as np
import pytest
import torch
import torchvision

from gradnoise.data import DataNotFoundError, load_dataset


def test_embedded_mnist_is_permuted_split_and_normalized():
    ds = load_dataset("mnist_embedded", test_size=1000)
    assert ds.x_train.shape == (4000, 1, 28, 28) and ds.x_test.shape == (1000, 1, 28, 28)
    assert ds.x_train.dtype == torch.float32 and ds.n_classes == 10
    # the package's sample is sorted by label: consecutive reference-mode batches must mix classes
    assert len(torch.unique(ds.y_train[:100])) == 10
    assert abs(float(ds.x_train.mean())) < 0.1 and 0.8 < float(ds.x_train.std()) < 1.2
    again = load_dataset("mnist_embedded", test_size=1000)
    assert torch.equal(ds.y_train, again.y_train)


def test_embedded_split_seed_changes_the_split():
    a = load_dataset("mnist_embedded", test_size=1000, split_seed=0)
    b = load_dataset("mnist_embedded", test_size=1000, split_seed=1)
    assert not torch.equal(a.y_train, b.y_train)


def _write_idx(path, array: np.ndarray) -> None:
    code = {1: 0x0801, 3: 0x0803}[array.ndim]
    with open(path, "wb") as f:
        f.write(struct.pack(">I", code))
        f.write(struct.pack(">" + "I" * array.ndim, *array.shape))
        f.write(array.astype(np.uint8).tobytes())


@pytest.mark.parametrize(
    ("name", "folder"), [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")]
)
def test_torchvision_idx_files_are_read(tmp_path, name, folder):
    rng = np.random.default_rng(0)
    raw = tmp_path / folder / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", 60), ("t10k", 20)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n))
    ds = load_dataset(name, data_root=tmp_path)
    assert ds.x_train.shape == (60, 1, 28, 28) and ds.x_test.shape == (20, 1, 28, 28)
    labels = np.frombuffer((raw / "train-labels-idx1-ubyte").read_bytes()[8:], dtype=np.uint8)
    assert ds.y_train.tolist() == labels.tolist()


def test_torchvision_cifar_pickled_batches_are_read(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    images = {}
    for n in names:
        data = rng.integers(0, 256, (8, 3072), dtype=np.uint8)
        images[n] = data
        with open(base / n, "wb") as f:
            pickle.dump({"data": data, "labels": rng.integers(0, 10, 8).tolist()}, f)
    with open(base / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [str(i) for i in range(10)]}, f)
    md5 = {n: hashlib.md5((base / n).read_bytes()).hexdigest() for n in [*names, "batches.meta"]}
    # torchvision checks the md5 of the real release; point it at the files written here
    cls = torchvision.datasets.CIFAR10
    monkeypatch.setattr(cls, "train_list", [[n, md5[n]] for n in names[:5]])
    monkeypatch.setattr(cls, "test_list", [["test_batch", md5["test_batch"]]])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": md5["batches.meta"]})
    ds = load_dataset("cifar10", data_root=tmp_path)
    assert ds.x_train.shape == (40, 3, 32, 32) and ds.x_test.shape == (8, 3, 32, 32)
    # first image, channel 0 (red), first row: the first 32 bytes of the pickled row, normalized
    expected = (images["data_batch_1"][0, :32] / 255.0 - 0.491) / 0.247
    assert np.allclose(ds.x_train[0, 0, 0].numpy(), expected, atol=1e-6)


def test_missing_dataset_says_where_it_looked_and_how_to_get_it(tmp_path):
    with pytest.raises(DataNotFoundError) as err:
        load_dataset("cifar10", data_root=tmp_path / "nowhere")
    msg = str(err.value)
    assert str((tmp_path / "nowhere").resolve()) in msg and "download: true" in msg
