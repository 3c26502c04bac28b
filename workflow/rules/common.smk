# The config, validated before any job runs, and the functions that turn it into file lists and job
# settings. No rule file computes its own view of the config. Job settings are named, namespaced
# values (the run's seed and the noise sampler's seed never share a key), never dicts merged with **.

import json
import shlex
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

# The repository this workflow lives in (workflow/rules/ → ../..), wherever the working directory is.
SOURCE = Path(workflow.current_basedir.get_path_or_uri(secret_free=True)).parents[1]


def from_workdir(path):
    """A path of the workflow's own files as jobs see it: relative to the working directory where the
    workflow lives there (as when run from its repository), else absolute (used as a module).
    """
    return path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path


# One copy of the library: validation and the DAG use the workflow's own src/, the copy its stage
# scripts run (scripts/_cli.py), never another gradnoise that happens to be importable.
LIBRARY = SOURCE / "src" / "gradnoise"
sys.path.insert(0, str(LIBRARY.parent))
import gradnoise

if Path(gradnoise.__file__).resolve().parent != LIBRARY.resolve():
    raise WorkflowError(
        f"gradnoise is imported from {Path(gradnoise.__file__).parent}, not from this "
        f"workflow's {LIBRARY} (which its stage scripts run); import it from there only"
    )

from gradnoise.arms import expand_arms
from gradnoise.code_inputs import stage_code
from gradnoise.config import prepare_config
from gradnoise.factories import factories_of, source_file
from gradnoise.studies import FIGURE_SETS, enabled_add_ons, studies_of, study_roles
import snakemake.io as smk_io  # smk_io.report: a line may not start with `report` in a .smk file

config = prepare_config(config, files=workflow.overwrite_configfiles)
RESULTS = config["results"]
EXPERIMENTS = config["experiments"]
ARMS = {name: expand_arms(name, exp) for name, exp in EXPERIMENTS.items()}
ESCAPE = config["escape"]
# Each experiment's studies (gradnoise.studies): its kind's, then the add-ons its config enables.
STUDIES = {
    name: studies_of(exp["study"]["kind"], enabled_add_ons(config, exp))
    for name, exp in EXPERIMENTS.items()
}


wildcard_constraints:
    experiment="[A-Za-z0-9_-]+",
    arm="[A-Za-z0-9_]+",
    seed=r"\d+",
    step=r"\d+",


def script(stage):
    """A stage's script, where the workflow lives."""
    return str(from_workdir(SOURCE / "scripts" / f"{stage}.py"))


def code(stage):
    """The code a stage's script runs, as declared inputs: every file of the library (and sibling
    script) it imports, read from the imports (gradnoise.code_inputs), so that editing one reruns the
    stage (checksums) and no hand-kept list drifts from the imports."""
    files = stage_code(SOURCE / "scripts" / f"{stage}.py", LIBRARY.parent)
    return [str(from_workdir(p)) for p in files[1:]]


def factory_code(stage):
    """The files of an experiment's factories (gradnoise.factories) and the sibling and library
    modules they import, beyond the stage's own code: inputs of the stage's jobs, which call them,
    so that editing one reruns them."""
    own = set(code(stage))

    def files(w):
        found = []
        for role, entry in factories_of(EXPERIMENTS[w.experiment]).items():
            key = f"experiments.{w.experiment}.{role}.factory"
            path = source_file(entry["factory"], key)
            found += [] if path is None else stage_code(path, LIBRARY.parent)
        shown = (str(from_workdir(p)) for p in found)
        return [f for f in dict.fromkeys(shown) if f not in own]

    return files


def loss_setting(exp):
    """A job's `loss` key: only where the experiment names a loss factory, so that the zoo's
    settings (and what they made) stay what they were."""
    return {"loss": exp["loss"]} if "loss" in exp else {}


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
        (arm, seed)
        for arm in ARMS[experiment]
        for seed in EXPERIMENTS[experiment]["seeds"]
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
    return (
        []
        if source is None
        else f"{RESULTS}/{w.experiment}/train/{source}/seed{w.seed}/checkpoints"
    )


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
        | loss_setting(exp)
    )


def noise_settings(w):
    exp = EXPERIMENTS[w.experiment]
    noise = dict(exp["noise"])
    if noise["batch_size"] == "training":  # the noise of the arm's own minibatches
        noise["batch_size"] = arm_of(w).training.batch_size
    return as_json(
        {
            "run": run_key(w),
            "step": int(w.step),
            "hparams": arm_of(w).training.hparams,
            "dataset": exp["dataset"],
            "model": exp["model"],
            "device": exp["device"],
            "noise": noise,
        }
        | loss_setting(exp)
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
        | loss_setting(exp)
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


def histogram_noise_files(experiment):
    """The noise files whose layer histogram may be drawn, in order of preference: SGD arms first,
    then the others, each seed, final checkpoint; the figure draws the first run that did not
    diverge."""
    arms = sorted(
        ARMS[experiment].values(), key=lambda a: a.optimizer not in ("sgd", "sgdm")
    )
    return [
        f"{RESULTS}/{experiment}/noise/{arm.name}/seed{seed}/step{arm.final_step}.parquet"
        for arm in arms
        for seed in EXPERIMENTS[experiment]["seeds"]
    ]


def arm_labels(experiment):
    """Arm name → (label, optimizer), for tables and figures."""
    return {a.name: [a.label, a.optimizer] for a in ARMS[experiment].values()}


def figure_outputs(figure_set):
    """The files a figure set's job writes, as report items."""
    return [
        smk_io.report(
            f"{RESULTS}/{{experiment}}/figures/{name}.{fmt}",
            caption=f"../report/{name}.rst",
            category="{experiment}",
            subcategory="Figures",
        )
        for name in FIGURE_SETS[figure_set].figures
        for fmt in config["figures"]["formats"]
    ]


def figure_settings(w):
    exp = EXPERIMENTS[w.experiment]
    return as_json(
        {
            "figures": config["figures"],
            "dataset": exp["dataset"].get("name", exp["dataset"].get("factory")),
            "arms": arm_labels(w.experiment),
            "roles": study_roles(exp),
        }
    )


def table_files(experiment, table):
    """The files behind a table name of the registry (gradnoise.tables.TABLES)."""
    exp_dir = f"{RESULTS}/{experiment}"
    return {
        "tails": lambda: f"{exp_dir}/tails.parquet",
        "sharpness": lambda: sharpness_files(experiment),
        "histories": lambda: histories(experiment),
        "noise": lambda: histogram_noise_files(experiment),
        "escape": lambda: f"{exp_dir}/simulate/escape.parquet",
        "fits": lambda: f"{exp_dir}/large_batch/distance_fits.parquet",
        "escape_sweeps": lambda: escape_sweep_files(experiment),
        "escape_slopes": lambda: f"{exp_dir}/escape/slopes.parquet",
        "escape_minima": lambda: f"{exp_dir}/escape/minima.parquet",
        "alpha_stable": lambda: alpha_stable_files(experiment),
    }[table]()


def claims_inputs(w):
    """What the claims of the experiment's studies are decided from (the registry's tables)."""
    tables = ("tails", "sharpness") + tuple(
        t for st in STUDIES[w.experiment] for t in st.tables
    )
    return {"script": script("claims"), "code": code("claims")} | {
        table: table_files(w.experiment, table) for table in tables
    }


def figure_inputs(figure_set):
    """An input function: what a figure set is drawn from (the registry's tables)."""

    def inputs(w):
        return {"script": script("figures"), "code": code("figures")} | {
            table: table_files(w.experiment, table)
            for table in FIGURE_SETS[figure_set].tables
        }

    return inputs


def input_arguments(wildcards, input):
    """The named data inputs of a job as command-line options (--name file …)."""
    return " ".join(
        f"--{name} "
        + " ".join(
            shlex.quote(f) for f in ([files] if isinstance(files, str) else files)
        )
        for name, files in input.items()
        if name not in ("script", "code", "study")
    )


def claims_settings(w):
    exp = EXPERIMENTS[w.experiment]
    return as_json(
        {
            "claims": config["claims"],
            "studies": [study.kind for study in STUDIES[w.experiment]],
            "roles": study_roles(exp),
            "arms": arm_labels(w.experiment),
            "hparams": final_hparams(w.experiment),
        }
    )


def final_hparams(experiment):
    """Arm → its learning rate after every drop and its momentum (C7's stability edge)."""
    return {
        a.name: {
            "lr": a.training.hparams["lr"]
            * a.training.lr_gamma ** len(a.training.lr_milestones),
            "momentum": a.training.hparams.get("momentum", 0.0),
        }
        for a in ARMS[experiment].values()
    }


def has_escape(experiment):
    """Whether the experiment gets the escape-law stage (config/README.md, `escape`)."""
    return any("escape_minima" in study.tables for study in STUDIES[experiment])


def escape_optimizers(experiment):
    """The optimizers of `escape.optimizers` the experiment trains, each with the experiment's
    hyperparameters and its landscape learning rate."""
    exp = EXPERIMENTS[experiment]
    trained = {arm.optimizer for arm in ARMS[experiment].values()}
    hparams = {  # without the training learning rate, which the landscapes do not use
        opt: {
            k: v for k, v in exp.get("optimizers", {}).get(opt, {}).items() if k != "lr"
        }
        for opt in trained
    }
    return {
        opt: {"hparams": hparams[opt], "lr": lr}
        for opt, lr in ESCAPE["optimizers"].items()
        if opt in trained
    }


def escape_sweep_files(experiment):
    return [
        f"{RESULTS}/{experiment}/escape/sweep_{axis}_{noise}.parquet"
        for axis in ("sharpness", "height", "width")
        for noise in ("gaussian", "sas")
    ]


def escape_alpha_tails(w):
    """The tails files a measured α comes from (SαS sweeps only): the final checkpoints of the
    SGD-family arms, every seed."""
    if w.noise != "sas" or ESCAPE["noise"]["alpha"] != "measured":
        return []
    return [
        f"{RESULTS}/{w.experiment}/tails/{arm.name}/seed{seed}/step{arm.final_step}.parquet"
        for arm in ARMS[w.experiment].values()
        if arm.optimizer in ("sgd", "sgdm")
        for seed in EXPERIMENTS[w.experiment]["seeds"]
    ]


def escape_sweep_settings(w):
    """One sweep's settings: the Gaussian sweeps do not read α, a fixed α does not read alpha_max."""
    noise = {"kind": w.noise} | {k: ESCAPE["noise"][k] for k in ("scale", "batch_size")}
    if w.noise == "sas":
        noise.update(alpha=ESCAPE["noise"]["alpha"], model=ESCAPE["noise"]["model"])
        if noise["alpha"] == "measured":
            noise["alpha_max"] = ESCAPE["noise"]["alpha_max"]
    return as_json(
        {
            "experiment": w.experiment,
            "axis": w.axis,
            "values": ESCAPE["sweeps"][w.axis],
            "noise": noise,
            "landscape": ESCAPE["landscape"],
            "optimizers": escape_optimizers(w.experiment),
            "lr_scales": ESCAPE["lr_scales"],
            "seed": ESCAPE["seed"],
            "device": ESCAPE["device"],
            "n_paths": ESCAPE["n_paths"],
            "max_iters": ESCAPE["max_iters"],
        }
    )


def escape_gpus(w):
    return int(ESCAPE["device"].startswith("cuda"))


def escape_minimum_files(experiment):
    """One file per (arm, seed) of the first `minima.seeds` seeds."""
    seeds = EXPERIMENTS[experiment]["seeds"][: ESCAPE["minima"]["seeds"]]
    return [
        f"{RESULTS}/{experiment}/escape/minima/{arm}/seed{seed}.parquet"
        for arm in ARMS[experiment]
        for seed in seeds
    ]


def escape_minimum_settings(w):
    exp = EXPERIMENTS[w.experiment]
    return as_json(
        {
            "run": run_key(w),
            "training": arm_of(w).training.as_dict(),
            "dataset": exp["dataset"],
            "model": exp["model"],
            "device": exp["device"],
            "minima": {k: v for k, v in ESCAPE["minima"].items() if k != "seeds"},
            "seed": ESCAPE["seed"],
        }
    )


def alpha_stable_files(experiment):
    return [
        f"{RESULTS}/{experiment}/alpha_stable/{arm}/seed{seed}.parquet"
        for arm, seed in runs(experiment)
    ]


def alpha_stable_settings(w):
    """One run's settings: the checkpoints it reads, its training batch size (S3), the noise stage's
    stored coordinates, and the study's own settings (config/README.md, `alpha_stable`).
    """
    exp, arm = EXPERIMENTS[w.experiment], arm_of(w)
    study = exp["alpha_stable"]
    return as_json(
        {
            "run": run_key(w),
            "steps": (
                [arm.final_step]
                if study["checkpoints"] == "final"
                else list(arm.checkpoints)
            ),
            "training_batch_size": arm.training.batch_size,
            "dataset": exp["dataset"],
            "model": exp["model"],
            "device": exp["device"],
            "coordinates": {
                "per_layer": exp["noise"]["coords_per_layer"],
                "seed": exp["noise"]["seed"],
            },
            "alpha_stable": {
                k: v for k, v in study.items() if k not in ("enabled", "checkpoints")
            },
        }
    )


def figure_sets(experiment):
    """The figure rules that serve an experiment: its studies' figure sets."""
    return list(
        dict.fromkeys(f for study in STUDIES[experiment] for f in study.figure_sets)
    )


def final_outputs():
    out = []
    for name in EXPERIMENTS:
        # the claims table needs every table its studies read
        out += [f"{RESULTS}/{name}/tails.parquet", f"{RESULTS}/{name}/claims.md"]
        out += [
            f"{RESULTS}/{name}/figures/{fig}.{fmt}"
            for figure_set in figure_sets(name)
            for fig in FIGURE_SETS[figure_set].figures
            for fmt in config["figures"]["formats"]
        ]
    return out
