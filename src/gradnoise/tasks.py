"""What a stage trains and measures: the data, a fresh model and the loss, from an experiment's
`dataset`, `model` and `loss` entries (DESIGN.md §12). Each is the zoo's (``name: …``) or a user's
factory (``factory: "pkg.mod:fn"``, ``kwargs``; ``gradnoise.factories``), with these contracts:

- a dataset factory returns ``{"train": (x, y), "test": (x, y)}``, tensors of each pair sharing
  their first dimension (the examples), and optionally ``"provenance"``: a JSON mapping recorded
  with every output (e.g. a corpus's checksum);
- a model factory returns a ``torch.nn.Module`` with trainable parameters;
- a loss factory returns ``loss_fn(model, (x, y))`` → the scalar mean loss of the batch; without
  one, the loss is ``cross_entropy()``, which reads classes in the last dimension.

A zoo task (every entry the zoo's) runs the stages' original classification code; any factory
makes a generic task: the loss is ``loss_fn``, minibatch gradients are taken whole (a user loss need
not be a mean of independent per-example terms) and the accuracy is counted where the model's
output for (x, y) has shape ``y.shape + (classes,)`` with integer y (else NaN). Validation
(``check_task``) calls every factory once, and the loss on two training examples, before any job.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from gradnoise.data import SHAPES, Dataset, dataset_from
from gradnoise.errors import ConfigError
from gradnoise.factories import call, factories_of, is_factory, provenance
from gradnoise.models import build_model

Batch = tuple[torch.Tensor, torch.Tensor]
LossFn = Callable[[nn.Module, Batch], torch.Tensor]
EVAL_CHUNK = 1000  # examples per forward pass of an evaluation


def cross_entropy(label_smoothing: float = 0.0) -> LossFn:
    """A loss factory: the mean cross entropy of the model's scores, classes in the last dimension,
    against integer targets of the leading shape ((N, C) against (N,), (N, T, V) against (N, T))."""

    def loss(model: nn.Module, batch: Batch) -> torch.Tensor:
        x, y = batch
        out = model(x)
        return nn.functional.cross_entropy(
            out.reshape(-1, out.shape[-1]), y.reshape(-1), label_smoothing=label_smoothing
        )

    return loss


def _zoo_loss(model: nn.Module, batch: Batch) -> torch.Tensor:
    """The zoo's loss, as the stages always computed it."""
    x, y = batch
    return nn.functional.cross_entropy(model(x), y)


@dataclass(frozen=True)
class Task:
    """One experiment's data, model and loss, as the stages use them (module docstring)."""

    data: Dataset
    new_model: Callable[[], nn.Module]  # a fresh model (seed torch first for its initialization)
    loss: LossFn
    zoo: bool
    provenance: dict[str, Any] = field(default_factory=dict)  # role → factory provenance

    def loss_on(self, x: torch.Tensor, y: torch.Tensor) -> Callable[[nn.Module, torch.Tensor], Any]:
        """The mean loss of the examples at given indices (the noise sampler's form)."""
        return lambda net, idx: self.loss(net, (x[idx], y[idx]))

    def evaluate(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        """Mean loss and accuracy (%) in eval mode."""
        if self.zoo:
            return evaluate_classifier(model, x, y)
        return evaluate_any(model, self.loss, x, y)

    def with_data(self, data: Dataset) -> Task:
        return Task(data, self.new_model, self.loss, self.zoo, self.provenance)


def task_from(spec: Mapping[str, Any], key: str = "experiment") -> Task:
    """The task of a job's settings (its `dataset`, `model` and optional `loss` entries); `key` is
    the experiment's config key, for errors."""
    ds, model = spec["dataset"], spec["model"]
    found = factories_of(spec)
    if not found:
        return zoo_task(dataset_from(ds), model)
    prov = {role: provenance(entry, f"{key}.{role}") for role, entry in found.items()}
    if is_factory(ds):
        splits = load_splits(ds, f"{key}.dataset")
        data = Dataset(ds["factory"], *splits["train"], *splits["test"], n_classes=None)
        if "provenance" in splits:
            prov["dataset"]["data"] = splits["provenance"]
    else:
        data = dataset_from(ds)
    build = functools.partial(new_model, model, data, f"{key}.model")
    return Task(data, build, make_loss(spec.get("loss"), f"{key}.loss"), False, prov)


def zoo_task(data: Dataset, model: Mapping[str, Any]) -> Task:
    """A zoo classifier (`model`: its config entry) on a zoo data set."""
    return Task(data, functools.partial(new_model, model, data, "model"), _zoo_loss, zoo=True)


def new_model(entry: Mapping[str, Any], data: Dataset, key: str) -> nn.Module:
    """A fresh model of a `model` entry: the zoo's for `data`'s shape and classes, or the factory's
    product, checked (ConfigError naming `key`)."""
    if not is_factory(entry):
        return build_model(dict(entry), data.input_shape, data.n_classes)
    model = call(entry, key)
    if not isinstance(model, nn.Module):
        raise ConfigError(
            f"config key {key}.factory: {entry['factory']} returned a {type(model).__name__}; "
            "allowed: a torch.nn.Module"
        )
    if not any(p.requires_grad for p in model.parameters()):
        raise ConfigError(f"config key {key}.factory: {entry['factory']}'s model has no parameters")
    return model


def make_loss(entry: Mapping[str, Any] | None, key: str) -> LossFn:
    """The loss of a `loss` entry (None: ``cross_entropy()``), checked to be callable."""
    if entry is None:
        return cross_entropy()
    loss = call(entry, key)
    if not callable(loss):
        raise ConfigError(
            f"config key {key}.factory: {entry['factory']} returned a {type(loss).__name__}; "
            "allowed: a function loss_fn(model, (x, y)) -> the scalar mean loss (a loss factory "
            "returns the loss function; it is not the loss function itself)"
        )
    return loss


def load_splits(entry: Mapping[str, Any], key: str) -> dict[str, Any]:
    """A dataset factory's product, checked against the contract (module docstring)."""
    out = call(entry, key)
    where = f"config key {key}.factory: {entry['factory']} returned"
    if not isinstance(out, Mapping) or not {"train", "test"} <= set(out):
        raise ConfigError(
            f"{where} {type(out).__name__}; allowed: a mapping with 'train' and 'test', each "
            "(x, y) tensors"
        )
    for split in ("train", "test"):
        pair = out[split]
        if not (
            isinstance(pair, (tuple, list))
            and len(pair) == 2
            and all(isinstance(t, torch.Tensor) and t.dim() >= 1 for t in pair)
        ):
            raise ConfigError(f"{where} a {split!r} split that is not a pair (x, y) of tensors")
        if pair[0].shape[0] != pair[1].shape[0] or pair[0].shape[0] == 0:
            raise ConfigError(
                f"{where} a {split!r} split with {pair[0].shape[0]} inputs and "
                f"{pair[1].shape[0]} targets; allowed: as many of each, at least one"
            )
    if "provenance" in out:
        try:
            json.dumps(out["provenance"])
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{where} a 'provenance' that is not JSON ({err})") from None
    return dict(out)


# dataset entry (JSON) → (training examples, test examples, two training examples): the validation
# and the arms' sizes call a dataset factory once per process (the Snakemake process)
_PROBES: dict[str, tuple[int, int, Batch]] = {}


def _probe(entry: Mapping[str, Any], key: str) -> tuple[int, int, Batch]:
    text = json.dumps(entry, sort_keys=True)
    if text not in _PROBES:
        splits = load_splits(entry, key)
        (x, y), (_, y_test) = splits["train"], splits["test"]
        _PROBES[text] = (len(y), len(y_test), (x[:2].clone(), y[:2].clone()))
    return _PROBES[text]


def split_sizes(entry: Mapping[str, Any], key: str) -> dict[str, int]:
    """Examples in each split of a dataset factory."""
    n_train, n_test, _ = _probe(entry, key)
    return {"train": n_train, "test": n_test}


def check_task(key: str, exp: Mapping[str, Any]) -> None:
    """An experiment with factories, checked before any job: every factory imports, is callable and
    returns what its contract says, and the loss of the model on two training examples is a finite
    scalar that depends on the parameters. ConfigError naming the key otherwise."""
    ds, model = exp["dataset"], exp["model"]
    if is_factory(ds) and not is_factory(model):
        raise ConfigError(
            f"config key {key}.model.name: zoo model {model['name']!r} needs a zoo data set; "
            f"with {key}.dataset.factory, give {key}.model.factory"
        )
    if is_factory(ds):
        batch = _probe(ds, f"{key}.dataset")[2]
        data = None
    else:  # two examples of the zoo data set's shape, without loading it (it may not exist yet)
        shape, classes = SHAPES[ds["name"]]
        batch = (torch.zeros(2, *shape), torch.zeros(2, dtype=torch.long))
        data = Dataset(ds["name"], *batch, *batch, n_classes=classes)
    net = new_model(model, data, f"{key}.model")
    loss_fn = make_loss(exp.get("loss"), f"{key}.loss")
    problem = loss_problem(net, loss_fn, batch)
    if problem:
        raise ConfigError(f"config key {key}.loss: on two training examples, {problem}")


def loss_problem(model: nn.Module, loss_fn: LossFn, batch: Any) -> str | None:
    """Why `loss_fn` on `batch` is not a usable mean loss (None when it is): it must return a
    finite scalar tensor that depends on the model's parameters."""
    try:
        loss = loss_fn(model, batch)
    except Exception as err:
        return f"the loss failed: {err!r}"
    if not isinstance(loss, torch.Tensor):
        return f"the loss must be a scalar tensor, got {type(loss).__name__}"
    if loss.dim() > 0:
        return f"the loss must be the scalar mean loss of the batch, got shape {tuple(loss.shape)}"
    if not torch.isfinite(loss).item():
        return f"the loss is not finite ({loss.item()})"
    if not loss.requires_grad:
        return "the loss does not depend on the model's parameters"
    return None


@torch.inference_mode()
def evaluate_classifier(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int = EVAL_CHUNK
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy (%) of a zoo classifier in eval mode (inference mode: no
    version counters or views tracked, the same values; the zoo's models keep no tensors from it)."""
    was_training = model.training
    model.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(y), chunk):
        out = model(x[i : i + chunk])
        loss += nn.functional.cross_entropy(out, y[i : i + chunk], reduction="sum").item()
        correct += (out.argmax(1) == y[i : i + chunk]).sum().item()
    model.train(was_training)
    return loss / len(y), 100.0 * correct / len(y)


@torch.no_grad()  # not inference mode: a factory model may cache tensors it later trains with
def evaluate_any(
    model: nn.Module, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor, chunk: int = EVAL_CHUNK
) -> tuple[float, float]:
    """Mean loss (the chunks' mean losses weighted by their examples) and accuracy (%) of the
    outputs the loss saw: where the model was called once per chunk and returned scores of shape
    ``y.shape + (classes,)`` with integer y, the share of targets its top score hits; else NaN."""
    was_training = model.training
    model.eval()
    outputs: list[Any] = []
    hook = model.register_forward_hook(lambda _m, _i, out: outputs.append(out))
    loss, correct, counted = 0.0, 0, not y.is_floating_point()
    try:
        for i in range(0, len(y), chunk):
            outputs.clear()
            yb = y[i : i + chunk]
            loss += float(loss_fn(model, (x[i : i + chunk], yb))) * len(yb)
            out = outputs[0] if len(outputs) == 1 else None
            counted = counted and isinstance(out, torch.Tensor) and out.shape[:-1] == yb.shape
            if counted:
                correct += int((out.argmax(-1) == yb).sum())
    finally:
        hook.remove()
        model.train(was_training)
    return loss / len(y), 100.0 * correct / y.numel() if counted else math.nan
