"""Config validation before any job runs: the JSON schema (with its defaults filled in, following $ref,
which Snakemake's own `validate` does not) and the cross-field rules a schema cannot express.
Every error names the key and, where there is a closed set, the allowed values."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from gradnoise.arms import expand_arms
from gradnoise.config_file import read_config_file
from gradnoise.errors import ConfigError
from gradnoise.factories import factories_of, is_factory
from gradnoise.studies import STUDIES, study_roles

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def _key(path: Any) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def _with_defaults(
    cls: type[jsonschema.protocols.Validator],
) -> type[jsonschema.protocols.Validator]:
    validate_properties = cls.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema) -> Iterator[Any]:
        if isinstance(instance, dict):
            for name, sub in properties.items():
                resolved = sub
                if "$ref" in sub:
                    resolved = validator._resolver.lookup(sub["$ref"]).contents
                default = sub.get("default", resolved.get("default"))
                if default is not None and name not in instance:
                    instance[name] = copy.deepcopy(default)
        yield from validate_properties(validator, properties, instance, schema)

    # an integer key takes integers only: 3.0 or 32.0 would reach range() and torch as floats
    strict_integers = cls.TYPE_CHECKER.redefine(
        "integer", lambda _, v: isinstance(v, int) and not isinstance(v, bool)
    )
    return jsonschema.validators.extend(
        cls, {"properties": set_defaults}, type_checker=strict_integers
    )


def _describe(err: jsonschema.ValidationError) -> str:
    key = _key(err.absolute_path)
    if err.validator == "enum":
        return f"config key {key}: {err.instance!r} is not allowed; allowed values: {', '.join(map(str, err.validator_value))}"
    if err.validator == "additionalProperties":
        allowed = ", ".join(sorted(err.schema.get("properties", {})))
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        return f"config key {key}: unknown key(s) {', '.join(map(repr, extra))}; allowed keys: {allowed}"
    if err.validator == "propertyNames":
        bad = err.instance
        names = err.validator_value.get("enum")
        allowed = (
            f"; allowed: {', '.join(names)}" if names else f" (must match {err.validator_value})"
        )
        return f"config key {key}: invalid name {bad!r}{allowed}"
    return f"config key {key}: {err.message}"


def load_schema() -> dict[str, Any]:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def prepare_config(config: dict[str, Any], files: Iterable[str | Path] = ()) -> dict[str, Any]:
    """Validate `config` and return a copy with every default filled in; raise ConfigError otherwise.
    `files`: the config files it was read from (``--configfile``), checked on their own first."""
    for path in files:
        read_config_file(path)
    cfg = copy.deepcopy(config)
    _check_finite(cfg, ())
    schema = load_schema()
    validator = _with_defaults(jsonschema.Draft202012Validator)(schema)
    errors = sorted(
        validator.iter_errors(cfg), key=lambda e: (len(e.absolute_path), str(e.absolute_path))
    )
    if errors:
        # the deepest error is the most specific one
        worst = max(errors, key=lambda e: len(e.absolute_path))
        raise ConfigError(_describe(worst))
    # a second pass fills defaults of objects the first pass created (e.g. noise: {} → its keys)
    validator.validate(cfg)
    for name, exp in cfg["experiments"].items():
        _complete_arm_hparams(name, exp, schema, validator)
        _check_experiment(name, exp)
    _check_escape(cfg)
    _check_intervals(cfg)
    _check_shares(cfg["claims"])
    return cfg


def _check_shares(claims: dict[str, Any]) -> None:
    """A share of units is an exact fraction above one half (a majority) and at most 1."""
    for key in ("majority", "law_fraction"):
        share = Fraction(claims[key])
        if not Fraction(1, 2) < share <= 1:
            raise ConfigError(
                f"config key claims.{key}: {claims[key]} is not a majority; allowed: a fraction "
                "p/q with 1/2 < p/q ≤ 1, e.g. 2/3"
            )


def _check_finite(value: Any, path: tuple) -> None:
    """NaN and ±inf are numbers to YAML (.nan, .inf) and to the schema's comparisons (NaN > 0 is
    false, so `exclusiveMinimum` lets it through); no key takes them."""
    if isinstance(value, dict):
        for k, v in value.items():
            _check_finite(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_finite(v, (*path, i))
    elif isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(
            f"config key {_key(path)}: {value} is not allowed; allowed: a finite number"
        )


# (low, high) pairs that must be in increasing order; null in alpha_window means "the last".
_INTERVALS = [("claims", "exit_ratio_band"), ("claims", "alpha_window")]


def _check_intervals(cfg: dict[str, Any]) -> None:
    for path in _INTERVALS:
        value: Any = cfg
        for k in path:
            value = value.get(k) if isinstance(value, dict) else None
        if isinstance(value, list) and len(value) == 2 and None not in value:
            low, high = value
            if not low <= high:
                raise ConfigError(
                    f"config key {_key(path)}: {value} is reversed; allowed: [low, high] with low ≤ high"
                )


# (train, test) examples of the torchvision data sets; train_size/test_size keep the first ones.
_FULL_SIZES = {
    "mnist": (60000, 10000),
    "fashion_mnist": (60000, 10000),
    "cifar10": (50000, 10000),
    "cifar100": (50000, 10000),
}

# The schema definition that validates each optimizer's hyperparameters.
_HPARAM_DEFS = {
    "sgd": "opt_sgd",
    "sgdm": "opt_sgdm",
    "adam": "opt_adam",
    "adamw": "opt_adam",
    "adai": "opt_adai",
    "adaiw": "opt_adai",
}


def _complete_arm_hparams(
    name: str, exp: dict[str, Any], schema: dict[str, Any], validator
) -> None:
    """An arm's hyperparameters are its optimizer's entry in `optimizers` (if any) updated by the
    arm's `hparams`; validate the result as that optimizer's entry, defaults filled in."""
    for arm_name, arm in exp.get("arms", {}).items():
        opt = arm["optimizer"]
        merged = {**exp.get("optimizers", {}).get(opt, {}), **arm["hparams"]}
        sub = type(validator)({**schema["$defs"][_HPARAM_DEFS[opt]], "$defs": schema["$defs"]})
        errors = list(sub.iter_errors(merged))
        if errors:
            worst = max(errors, key=lambda e: len(e.absolute_path))
            worst.path.extendleft(["experiments", name, "arms", arm_name, "hparams"][::-1])
            raise ConfigError(_describe(worst))
        arm["hparams"] = merged


def _check_experiment(name: str, exp: dict[str, Any]) -> None:
    key = f"experiments.{name}"
    if factories_of(exp):
        _check_factories(key, exp)
    its = exp.get("iterations")
    if its is not None and "arms" not in exp:
        late = [c for c in exp["checkpoints"] if c > its]
        if late:
            raise ConfigError(
                f"config key {key}.checkpoints: {late} beyond the run; allowed: 0..{its} (= {key}.iterations)"
            )
        if exp["eval_every"] > its:
            raise ConfigError(
                f"config key {key}.eval_every: {exp['eval_every']} > iterations ({its})"
            )
    arms = expand_arms(name, exp)
    _check_roles(key, exp, arms)
    ds, model = exp["dataset"], exp["model"]
    if is_factory(ds):
        from gradnoise.tasks import split_sizes

        train, test = split_sizes(ds, f"{key}.dataset").values()
    elif ds["name"] == "mnist_embedded":
        test = ds.get("test_size", 1000)
        train = ds.get("train_size", 5000 - test)
        if test >= 5000 or train > 5000 - test:
            raise ConfigError(
                f"config key {key}.dataset: train_size + test_size must be ≤ 5000 (the embedded sample)"
            )
    else:
        full_train, full_test = _FULL_SIZES[ds["name"]]
        train = min(ds.get("train_size") or full_train, full_train)
        test = min(ds.get("test_size") or full_test, full_test)
    noise = exp["noise"]
    smaller = min({"train": train, "test": test}[s] for s in noise["splits"])
    batches = (
        {a.training.batch_size for a in arms.values()}
        if noise["batch_size"] == "training"
        else {noise["batch_size"]}
    )
    if noise["mode"] == "reference" and smaller // max(batches) < 4:
        raise ConfigError(
            f"config key {key}.noise.batch_size: {max(batches)} leaves fewer than 4 minibatches "
            f"in the smaller split ({smaller} examples); use mode: sampled or smaller batches"
        )
    if noise["mode"] == "sampled" and max(batches) >= smaller:
        # every minibatch would be (nearly) the whole split: the "noise" is rounding error
        raise ConfigError(
            f"config key {key}.noise.batch_size: {max(batches)} is not smaller than the smaller split "
            f"({smaller} examples), so sampled minibatches hold the whole split and have no noise; "
            f"allowed: 1 … {smaller - 1}"
        )
    _check_alpha_stable(key, exp, arms, train)
    if factories_of(exp):
        return
    if ds["name"] == "mnist_embedded" and model["name"] in ("vgg11", "vgg16", "alexnet_small"):
        raise ConfigError(
            f"config key {key}.model.name: {model['name']!r} needs 32×32 inputs; use a CIFAR data set "
            "or one of mlp, lenet, fc_ref, resnet18"
        )
    if ds["name"] in ("mnist", "fashion_mnist") and model["name"] in (
        "vgg11",
        "vgg16",
        "alexnet_small",
    ):
        raise ConfigError(
            f"config key {key}.model.name: {model['name']!r} needs 32×32 inputs (CIFAR)"
        )


# What only the zoo's image classification has: config keys (experiment or arm) and what they need.
_ZOO_ONLY = {
    "augment": "image batches",
    "random_labels": "a zoo data set's images and classes",
    "ghost_batch_size": "a zoo model's BatchNorm layers",
}


def _check_factories(key: str, exp: dict[str, Any]) -> None:
    """An experiment with factories: no key that needs the zoo, then every factory called once
    (``gradnoise.tasks.check_task``), before any job."""
    where = [(key, exp)] + [(f"{key}.arms.{a}", arm) for a, arm in exp.get("arms", {}).items()]
    for at, entry in where:
        for option, needs in _ZOO_ONLY.items():
            if entry.get(option):
                raise ConfigError(
                    f"config key {at}.{option}: needs {needs}, and experiment {key} uses "
                    f"{', '.join(sorted(factories_of(exp)))} factories"
                )
    from gradnoise.tasks import check_task

    check_task(key, exp)


def _check_alpha_stable(key: str, exp: dict[str, Any], arms: dict[str, Any], train: int) -> None:
    """The α-stable study is an add-on of study `optimizers`; its pool fits in the training split and
    holds more examples than every batch size (S2's and each arm's training batch size, S3's)."""
    study = exp["alpha_stable"]
    if not study["enabled"]:
        return
    if factories_of(exp):
        raise ConfigError(
            f"config key {key}.alpha_stable.enabled: the α-stable study's per-example pass runs the "
            "zoo's classifiers, and this experiment uses factories; allowed: false"
        )
    if exp["study"]["kind"] != "optimizers":
        raise ConfigError(
            f"config key {key}.alpha_stable.enabled: the α-stable study is an add-on of study "
            f"'optimizers', not of {exp['study']['kind']!r}; allowed: false"
        )
    n = study.get("pool_size", train)
    if n > train:
        raise ConfigError(
            f"config key {key}.alpha_stable.pool_size: {n} > the training split ({train} examples)"
        )
    b = max(study["batch_sizes"])
    if b >= n:
        raise ConfigError(
            f"config key {key}.alpha_stable.batch_sizes: {b} is not smaller than the pool ({n} "
            f"examples); allowed: 1 … {n - 1}"
        )
    for arm in arms.values():
        if arm.training.batch_size >= n:
            raise ConfigError(
                f"config key {key}.alpha_stable.pool_size: {n} examples, not more than arm "
                f"{arm.name!r}'s batch size {arm.training.batch_size} (S3 reads the noise at it)"
            )


def _check_roles(key: str, exp: dict[str, Any], arms: dict[str, Any]) -> None:
    kind = exp["study"]["kind"]
    allowed = STUDIES[kind].roles
    for role in exp["study"].get("roles", {}):
        if role not in allowed:
            raise ConfigError(
                f"config key {key}.study.roles: unknown role {role!r} of study {kind!r}; allowed: "
                f"{', '.join(allowed) or 'none'}"
            )
    for role, arm in study_roles(exp).items():
        if arm not in arms:
            raise ConfigError(
                f"config key {key}.study.roles.{role}: study {kind!r} needs an arm for role {role!r}, "
                f"and {arm!r} is not an arm of this experiment; allowed: {', '.join(arms)}"
            )


# The bound each sweep axis must respect for a barrier of height ΔL to fit inside the width
# (gradnoise.landscapes: ΔL < H w²/2), as a function of the other two.
_ESCAPE_BOUNDS = {
    "sharpness": lambda h, dl, w: f"sharpness > 2·height/width² = {2 * dl / w**2:g}",
    "height": lambda h, dl, w: f"height < sharpness·width²/2 = {h * w**2 / 2:g}",
    "width": lambda h, dl, w: f"width > √(2·height/sharpness) = {(2 * dl / h) ** 0.5:g}",
}


def _check_escape(cfg: dict[str, Any]) -> None:
    """Every landscape of the escape sweeps has a barrier that fits (ΔL < H w²/2); with `enabled`,
    every experiment of study `optimizers` trains an optimizer of `escape.optimizers` and, for a
    `measured` α, an SGD-family arm whose noise gives it."""
    esc = cfg["escape"]
    base = esc["landscape"]
    for axis, values in [("landscape", [None]), *esc["sweeps"].items()]:
        for v in values:
            land = {**base, axis: v} if v is not None else base
            h, dl, w = land["sharpness"], land["height"], land["width"]
            if not dl < h * w * w / 2:
                key = f"escape.sweeps.{axis}" if v is not None else "escape.landscape.height"
                bound = _ESCAPE_BOUNDS["height" if v is None else axis](h, dl, w)
                raise ConfigError(
                    f"config key {key}: {v if v is not None else dl:g} leaves no room for the "
                    f"barrier (height {dl:g} ≥ sharpness·width²/2 = {h * w * w / 2:g}); allowed: {bound}"
                )
    if not esc["enabled"]:
        return
    for name, exp in cfg["experiments"].items():
        if exp["study"]["kind"] != "optimizers":
            continue
        if factories_of(exp):
            raise ConfigError(
                f"config key escape.enabled: the escape from trained minima runs zoo classifiers, "
                f"and experiments.{name} uses factories; allowed: false"
            )
        trained = {a.optimizer for a in expand_arms(name, exp).values()}
        if not trained & set(esc["optimizers"]):
            raise ConfigError(
                f"config key escape.optimizers: none of {', '.join(esc['optimizers'])} is trained "
                f"by experiments.{name}; allowed: {', '.join(sorted(trained))}"
            )
        if esc["noise"]["alpha"] == "measured" and not trained & {"sgd", "sgdm"}:
            raise ConfigError(
                f"config key escape.noise.alpha: `measured` needs an sgd or sgdm arm in "
                f"experiments.{name}; give a number instead"
            )


def load_config_file(path: str | Path) -> dict[str, Any]:
    return prepare_config(read_config_file(path))
