# The config, validated before any job runs, and the functions that turn it into file lists and job
# settings. No rule file computes its own view of the config. Job settings are named, namespaced
# values (the run's seed and the noise sampler's seed never share a key), never dicts merged with **.

import json

from gradnoise.arms import expand_arms
from gradnoise.config import prepare_config
from gradnoise.io import FIGURES

config = prepare_config(config)
RESULTS = config["results"]
EXPERIMENTS = config["experiments"]
ARMS = {name: expand_arms(name, exp) for name, exp in EXPERIMENTS.items()}


wildcard_constraints:
    experiment="[A-Za-z0-9_-]+",
    arm="[A-Za-z0-9_]+",
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


def arm_of(w):
    return ARMS[w.experiment][w.arm]


def runs(experiment):
    """(arm, seed) pairs of an experiment."""
    return [
        (arm, seed) for arm in ARMS[experiment] for seed in EXPERIMENTS[experiment]["seeds"]
    ]


def run_dir(w):
    return f"{RESULTS}/{w.experiment}/train/{w.arm}/seed{w.seed}"


def run_key(w):
    """What names a run in every table: experiment, arm, its optimizer and the run's seed."""
    return {
        "experiment": w.experiment,
        "arm": w.arm,
        "optimizer": arm_of(w).optimizer,
        "seed": int(w.seed),
    }


def init_checkpoints(w):
    """The checkpoints (same seed) of the arm this arm starts from: an input, so that a change to
    that arm reruns this one."""
    source = arm_of(w).training.init_from
    return [] if source is None else f"{RESULTS}/{w.experiment}/train/{source}/seed{w.seed}/checkpoints"


def init_checkpoint(w):
    """The final checkpoint of the arm this arm starts from ('' when it starts from scratch)."""
    source = arm_of(w).training.init_from
    if source is None:
        return ""
    return f"{init_checkpoints(w)}/step{ARMS[w.experiment][source].final_step}.pt"


def train_settings(w):
    exp = EXPERIMENTS[w.experiment]
    return as_json(
        {
            "run": run_key(w),
            "training": arm_of(w).training.as_dict(),
            "dataset": exp["dataset"],
            "model": exp["model"],
            "eval_every": exp["eval_every"],
            "device": exp["device"],
        }
    )


def noise_settings(w):
    exp = EXPERIMENTS[w.experiment]
    return as_json(
        {
            "run": run_key(w),
            "step": int(w.step),
            "hparams": arm_of(w).training.hparams,
            "dataset": exp["dataset"],
            "model": exp["model"],
            "device": exp["device"],
            "noise": exp["noise"],
        }
    )


def sharpness_settings(w):
    exp = EXPERIMENTS[w.experiment]
    return as_json(
        {
            "run": run_key(w),
            "dataset": exp["dataset"],
            "model": exp["model"],
            "device": exp["device"],
            "sharpness": exp["sharpness"],
        }
    )


def final_checkpoint(w):
    return f"{run_dir(w)}/checkpoints/step{arm_of(w).final_step}.pt"


def noise_files(experiment, arm=None):
    return [
        f"{RESULTS}/{experiment}/noise/{a}/seed{seed}/step{step}.parquet"
        for a, seed in runs(experiment)
        if arm in (None, a)
        for step in ARMS[experiment][a].checkpoints
    ]


def tails_files(experiment, arm=None):
    return [
        f"{RESULTS}/{experiment}/tails/{a}/seed{seed}/step{step}.parquet"
        for a, seed in runs(experiment)
        if arm in (None, a)
        for step in ARMS[experiment][a].checkpoints
    ]


def histories(experiment):
    return [
        f"{RESULTS}/{experiment}/train/{arm}/seed{seed}/history.parquet"
        for arm, seed in runs(experiment)
    ]


def sharpness_files(experiment):
    return [
        f"{RESULTS}/{experiment}/sharpness/{arm}/seed{seed}.parquet"
        for arm, seed in runs(experiment)
    ]


def histogram_noise_file(w):
    """The noise file whose layer histogram is drawn: the first SGD arm (else the first arm), first
    seed, final checkpoint."""
    arms = ARMS[w.experiment]
    arm = next(
        (a for a in arms.values() if a.optimizer in ("sgd", "sgdm")),
        next(iter(arms.values())),
    )
    seed = EXPERIMENTS[w.experiment]["seeds"][0]
    return f"{RESULTS}/{w.experiment}/noise/{arm.name}/seed{seed}/step{arm.final_step}.parquet"


def arm_labels(experiment):
    """Arm name → (label, optimizer), for tables and figures."""
    return {a.name: [a.label, a.optimizer] for a in ARMS[experiment].values()}


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
