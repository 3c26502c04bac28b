# The config, validated before any job runs, and the functions that turn it into file lists.
# No rule file computes its own view of the config.

import json

from gradnoise.config import prepare_config
from gradnoise.io import FIGURES

config = prepare_config(config)
RESULTS = config["results"]
EXPERIMENTS = config["experiments"]


wildcard_constraints:
    experiment="[A-Za-z0-9_-]+",
    optimizer="sgd|sgdm|adam|adamw|adai|adaiw",
    seed=r"\d+",
    step=r"\d+",


def code(*names):
    """A stage's code as declared inputs: editing one of these files reruns the stage (checksums)."""
    stage, *modules = names
    return [f"scripts/{stage}.py"] + [
        f"src/gradnoise/{m}.py" for m in (stage, *modules)
    ]


def gpus(w):
    """GPUs a job asks the scheduler for: 1 when the experiment names a CUDA device. With `auto`
    a job uses a GPU if its node has one; the slurm profile asks for one (set-resources).
    """
    return int(EXPERIMENTS[w.experiment]["device"].startswith("cuda"))


def job_resource(stage, key):
    """A GPU stage's memory or runtime request, from its experiment's `resources` (sized to the model)."""
    return lambda w: EXPERIMENTS[w.experiment]["resources"][stage][key]


def as_json(obj):
    return json.dumps(obj, sort_keys=True)


def runs(experiment):
    """(optimizer, seed) pairs of an experiment."""
    exp = EXPERIMENTS[experiment]
    return [(opt, seed) for opt in exp["optimizers"] for seed in exp["seeds"]]


def run_dir(w):
    return f"{RESULTS}/{w.experiment}/train/{w.optimizer}/seed{w.seed}"


def train_settings(w):
    exp = EXPERIMENTS[w.experiment]
    keys = (
        "dataset",
        "model",
        "batch_size",
        "iterations",
        "checkpoints",
        "eval_every",
        "device",
    )
    return as_json(
        {
            "experiment": w.experiment,
            "optimizer": w.optimizer,
            "hparams": exp["optimizers"][w.optimizer],
            "seed": int(w.seed),
            **{k: exp[k] for k in keys},
        }
    )


def noise_settings(w):
    exp = EXPERIMENTS[w.experiment]
    return as_json(
        {
            "experiment": w.experiment,
            "optimizer": w.optimizer,
            "hparams": exp["optimizers"][w.optimizer],
            "seed": int(w.seed),
            "step": int(w.step),
            "dataset": exp["dataset"],
            "model": exp["model"],
            "device": exp["device"],
            **exp["noise"],
        }
    )


def sharpness_settings(w):
    exp = EXPERIMENTS[w.experiment]
    keys = ("dataset", "model", "device", "sharpness")
    return as_json(
        {
            "experiment": w.experiment,
            "optimizer": w.optimizer,
            "seed": int(w.seed),
            **{k: exp[k] for k in keys},
        }
    )


def noise_files(experiment, optimizer=None):
    exp = EXPERIMENTS[experiment]
    return [
        f"{RESULTS}/{experiment}/noise/{opt}/seed{seed}/step{step}.parquet"
        for opt, seed in runs(experiment)
        if optimizer in (None, opt)
        for step in exp["checkpoints"]
    ]


def tails_files(experiment, optimizer=None):
    exp = EXPERIMENTS[experiment]
    return [
        f"{RESULTS}/{experiment}/tails/{opt}/seed{seed}/step{step}.parquet"
        for opt, seed in runs(experiment)
        if optimizer in (None, opt)
        for step in exp["checkpoints"]
    ]


def histories(experiment):
    return [
        f"{RESULTS}/{experiment}/train/{opt}/seed{seed}/history.parquet"
        for opt, seed in runs(experiment)
    ]


def sharpness_files(experiment):
    return [
        f"{RESULTS}/{experiment}/sharpness/{opt}/seed{seed}.parquet"
        for opt, seed in runs(experiment)
    ]


def histogram_noise_file(w):
    """The noise file whose layer histogram is drawn: SGD (else the first optimizer), first seed,
    final checkpoint."""
    exp = EXPERIMENTS[w.experiment]
    opt = next(
        (o for o in ("sgd", "sgdm") if o in exp["optimizers"]),
        next(iter(exp["optimizers"])),
    )
    step = max(exp["checkpoints"])
    return (
        f"{RESULTS}/{w.experiment}/noise/{opt}/seed{exp['seeds'][0]}/step{step}.parquet"
    )


def final_outputs():
    out = []
    for name in EXPERIMENTS:
        out += [
            f"{RESULTS}/{name}/tails.parquet",
            f"{RESULTS}/{name}/simulate/escape.parquet",
            f"{RESULTS}/{name}/claims.md",
        ]
        out += [
            f"{RESULTS}/{name}/figures/{fig}.{fmt}"
            for fig in FIGURES
            for fmt in config["figures"]["formats"]
        ]
    return out
