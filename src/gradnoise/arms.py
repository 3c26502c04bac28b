"""The arms of an experiment (DESIGN.md §10): the runs it trains, each an optimizer with its
hyperparameters and training overrides, expanded and checked once, here, for the config checks and the
workflow's rules alike.

An experiment without ``arms`` has one arm per optimizer, named after it, with the experiment's training
settings (the original layout). With ``arms``, each arm names its optimizer; its hyperparameters are the
experiment's ``optimizers`` entry for that optimizer (if any) updated by the arm's ``hparams``; every
training setting not given by the arm comes from the experiment. Derived settings follow Hoffer et al.
(2017), official code eladhoffer/bigBatch ``main_gbn.py``, relative to the arm's ``reference``:

- ``lr_scaling: sqrt``: lr = lr_ref · √(B / B_ref) (their ``--lr_bb_fix``); ``linear``: · B / B_ref;
- ``regime_adaptation``: epochs = epochs_ref · ⌈B / B_ref⌉ (their ``--regime_bb_fix``), so the arm makes
  as many updates as its reference; learning-rate drops are fractions of the run, so they move with it.

Lengths: ``epochs`` (then iterations = ⌊epochs · ⌊n / B⌋⌋, n the training examples the arm sees) or
``iterations``. Checkpoints: the experiment's checkpoints inside the run, plus its last iteration.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from gradnoise.errors import ConfigError

# Models with BatchNorm layers (Ghost Batch Normalization replaces them).
BATCHNORM_MODELS = ("vgg11", "vgg16", "resnet18")
# Training-split sizes of the torchvision data sets (the embedded sample: 5,000 minus its test split).
TRAIN_SIZES = {"mnist": 60000, "fashion_mnist": 60000, "cifar10": 50000, "cifar100": 50000}
# Training settings an arm may override; the experiment's value is the default.
INHERITED = ("batch_size", "iterations", "epochs", "lr_schedule", "clip_grad_norm", "augment")


@dataclass(frozen=True)
class Training:
    """What one arm's training runs depend on (a change here reruns them, a change of label does not)."""

    optimizer: str
    hparams: dict[str, Any]
    batch_size: int
    iterations: int
    checkpoints: list[int]
    lr_milestones: list[int] = field(default_factory=list)
    lr_gamma: float = 1.0
    ghost_batch_size: int | None = None
    clip_grad_norm: float | None = None
    init_from: str | None = None
    random_labels: dict[str, Any] | None = None
    until_train_acc: float | None = None
    augment: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Arm:
    name: str
    label: str
    training: Training

    @property
    def optimizer(self) -> str:
        return self.training.optimizer

    @property
    def checkpoints(self) -> list[int]:
        return self.training.checkpoints

    @property
    def final_step(self) -> int:
        return self.training.checkpoints[-1]


def train_size(dataset: dict[str, Any]) -> int:
    """Examples in the training split the config selects (a dataset factory's: it is called)."""
    if "factory" in dataset:
        from gradnoise.tasks import split_sizes

        return split_sizes(dataset, "dataset")["train"]
    if dataset["name"] == "mnist_embedded":
        full = 5000 - dataset.get("test_size", 1000)
    else:
        full = TRAIN_SIZES[dataset["name"]]
    return min(dataset.get("train_size", full), full)


def has_batchnorm(model: dict[str, Any]) -> bool:
    return model.get("name") in BATCHNORM_MODELS or (
        model.get("name") == "mlp" and model.get("batchnorm", False)
    )


def arm_specs(exp: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The arms as written (an experiment without `arms`: one per optimizer, with its entry of
    `optimizers` as hyperparameters; with `arms`, `gradnoise.config` has completed their hparams)."""
    if "arms" in exp:
        return exp["arms"]
    return {opt: {"optimizer": opt, "hparams": hp} for opt, hp in exp["optimizers"].items()}


def expand_arms(name: str, exp: dict[str, Any]) -> dict[str, Arm]:
    """Resolve every arm of experiment `name` (config already schema-checked, hparams complete);
    raise ConfigError naming the key of the first inconsistency."""
    specs = arm_specs(exp)
    key = f"experiments.{name}"
    order = _dependency_order(specs, key)
    n_train = train_size(exp["dataset"])
    out: dict[str, Arm] = {}
    for arm_name in order:
        arm_key = f"{key}.arms.{arm_name}" if "arms" in exp else key
        out[arm_name] = _resolve(arm_name, specs[arm_name], exp, out, n_train, arm_key)
    return {a: out[a] for a in specs}  # the config's order


def _dependency_order(specs: dict[str, dict[str, Any]], key: str) -> list[str]:
    """Arms sorted so that every `reference` and `init_from` comes first; cycles are errors."""
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(arm: str, path: list[str]) -> None:
        if state.get(arm) == "done":
            return
        if state.get(arm) == "visiting":
            cycle = " → ".join([*path[path.index(arm) :], arm])
            raise ConfigError(
                f"config key {key}.arms.{arm}: arms depend on each other in a cycle ({cycle})"
            )
        state[arm] = "visiting"
        for dep_key in ("reference", "init_from"):
            dep = specs[arm].get(dep_key)
            if dep is None:
                continue
            if dep not in specs:
                raise ConfigError(
                    f"config key {key}.arms.{arm}.{dep_key}: {dep!r} is not an arm of this "
                    f"experiment; allowed: {', '.join(specs)}"
                )
            visit(dep, [*path, arm])
        state[arm] = "done"
        order.append(arm)

    for arm in specs:
        visit(arm, [])
    return order


def _resolve(
    arm_name: str,
    spec: dict[str, Any],
    exp: dict[str, Any],
    done: dict[str, Arm],
    n_train: int,
    key: str,
) -> Arm:
    get = {k: spec.get(k, exp.get(k)) for k in INHERITED}
    if "iterations" in spec:
        get["epochs"] = None
    elif "epochs" in spec:
        get["iterations"] = None
    batch = get["batch_size"]
    labels = spec.get("random_labels")
    n_seen = n_train * (labels["copies"] if labels else 1)
    if batch is None:
        raise ConfigError(f"config key {key}.batch_size: required (here or in the experiment)")
    if batch > n_seen:
        raise ConfigError(
            f"config key {key}.batch_size: {batch} is larger than the training split "
            f"({n_seen} examples)"
        )
    per_epoch = n_seen // batch
    if per_epoch < 2:
        raise ConfigError(
            f"config key {key}.batch_size: {batch} leaves {per_epoch} update(s) per epoch of "
            f"{n_seen} examples; at least 2 are needed"
        )
    ref = done[spec["reference"]].training if spec.get("reference") else None
    hparams = dict(spec["hparams"])
    scaling = spec.get("lr_scaling", "none")
    if (scaling != "none" or spec.get("regime_adaptation")) and ref is None:
        what = "regime_adaptation" if spec.get("regime_adaptation") else "lr_scaling"
        raise ConfigError(
            f"config key {key}.{what}: needs a small-batch `reference` arm to scale from"
        )
    if scaling != "none":
        ratio = batch / ref.batch_size
        hparams["lr"] = ref.hparams["lr"] * (math.sqrt(ratio) if scaling == "sqrt" else ratio)
    if spec.get("regime_adaptation"):
        if ref.random_labels or labels:
            raise ConfigError(f"config key {key}.regime_adaptation: not defined with random labels")
        ref_epochs = ref.iterations / (n_train // ref.batch_size)
        iterations = round(ref_epochs * math.ceil(batch / ref.batch_size) * per_epoch)
    elif get["epochs"] is not None:
        iterations = math.floor(get["epochs"] * per_epoch)
    elif get["iterations"] is not None:
        iterations = get["iterations"]
    else:
        raise ConfigError(
            f"config key {key}: give `iterations` or `epochs` (here or in the experiment)"
        )
    if iterations < 1:
        raise ConfigError(
            f"config key {key}: the run would make no update ({get['epochs']} epochs)"
        )
    ghost = spec.get("ghost_batch_size")
    if ghost is not None:
        if ghost > batch:
            raise ConfigError(
                f"config key {key}.ghost_batch_size: {ghost} is larger than the arm's batch_size "
                f"({batch})"
            )
        if batch % ghost == 1:
            raise ConfigError(
                f"config key {key}.ghost_batch_size: {ghost} leaves a ghost batch of 1 example "
                f"(batch_size {batch} = {batch // ghost} × {ghost} + 1), whose BatchNorm statistics "
                f"do not exist; allowed: sizes g ≤ {batch} with {batch} mod g ≠ 1 (e.g. divisors of "
                f"{batch})"
            )
        if not has_batchnorm(exp["model"]):
            raise ConfigError(
                f"config key {key}.ghost_batch_size: model {exp['model']['name']!r} has no BatchNorm "
                f"layer; Ghost Batch Normalization needs one of: {', '.join(BATCHNORM_MODELS)}, or "
                "mlp with batchnorm: true"
            )
    schedule = get["lr_schedule"] or {}
    milestones = sorted({round(f * iterations) for f in schedule.get("milestones", [])} - {0})
    checkpoints = sorted({c for c in exp["checkpoints"] if c < iterations} | {iterations})
    training = Training(
        optimizer=spec["optimizer"],
        hparams=hparams,
        batch_size=batch,
        iterations=iterations,
        checkpoints=checkpoints,
        lr_milestones=milestones,
        lr_gamma=schedule.get("gamma", 1.0),
        ghost_batch_size=ghost,
        clip_grad_norm=get["clip_grad_norm"],
        init_from=spec.get("init_from"),
        random_labels=labels,
        until_train_acc=spec.get("until_train_acc"),
        augment=get["augment"],
    )
    return Arm(arm_name, spec.get("label", arm_name), training)
