"""Real snakemake on a copy of the test config: outputs, report, and what reruns after each change."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from gradnoise.studies import FIGURE_SETS

from conftest import copy_project, snakemake

pytestmark = pytest.mark.workflow
CONFIG = ["--configfile", "config/test.yaml"]


def planned(project: Path, *args: str) -> dict[str, int]:
    """Jobs a dry run would execute, by rule (empty when there is nothing to do)."""
    return job_stats(dry_run(project, *args))


def dry_run(project: Path, *args: str) -> str:
    out = snakemake(project, "-n", "--cores", "2", *args)
    return out.stdout + out.stderr


def job_stats(text: str) -> dict[str, int]:
    if "Nothing to be done" in text:
        return {}
    table = text.split("Job stats:")[1].split("total")[0]
    return {m[0]: int(m[1]) for m in re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.M)}


def with_config(project: Path, name: str, edit) -> list[str]:
    cfg = yaml.safe_load((project / "config" / "test.yaml").read_text())
    edit(cfg)
    # in the config's order: the order of arms is the user's (first SGD arm, colours)
    (project / "config" / name).write_text(yaml.safe_dump(cfg, sort_keys=False))
    return ["--configfile", f"config/{name}"]


def test_every_output_of_the_test_config_is_written(local_run):
    res = local_run / "results" / "test"
    exp = yaml.safe_load((local_run / "config" / "test.yaml").read_text())["experiments"]["test"]
    for opt in exp["optimizers"]:
        for seed in exp["seeds"]:
            run = f"{opt}/seed{seed}"
            assert (res / "train" / run / "history.parquet").exists()
            for step in exp["checkpoints"]:
                assert (res / "train" / run / "checkpoints" / f"step{step}.pt").exists()
                assert (res / "noise" / run / f"step{step}.parquet").exists()
                assert (res / "noise" / run / f"step{step}.stats.parquet").exists()
                assert (res / "tails" / run / f"step{step}.parquet").exists()
    for f in ("tails.parquet", "simulate/escape.parquet", "claims.md", "claims.parquet"):
        assert (res / f).stat().st_size > 0
    for fig in (
        f
        for s in ("figures", "escape_figures", "escape_law_figures", "alpha_stable_figures")
        for f in FIGURE_SETS[s].figures
    ):
        png = res / "figures" / f"{fig}.png"
        assert png.stat().st_size > 5000 and png.read_bytes()[:4] == b"\x89PNG"
    claims = (res / "claims.md").read_text()
    assert all(f"| C{i} |" in claims for i in range(1, 9))
    assert all(f"| A{i} |" in claims for i in range(1, 6))  # the escape-law stage's claims
    assert all(f"| S{i} |" in claims for i in range(1, 4))  # the α-stable study's
    for opt in exp["optimizers"]:
        for seed in exp["seeds"]:
            assert (res / "alpha_stable" / opt / f"seed{seed}.parquet").stat().st_size > 0
    studies = {"test_lb": [f"H{i}" for i in range(1, 7)], "test_rl": [f"R{i}" for i in range(1, 5)]}
    for experiment, ids in studies.items():
        table = (local_run / "results" / experiment / "claims.md").read_text()
        assert all(f"| {i} |" in table for i in ids), experiment
    assert all(f"| A{i} |" in claims for i in range(1, 6))  # the escape-law stage
    assert (local_run / "logs" / "test" / "train" / "sgd" / "seed3.log").exists()
    assert (
        local_run / "logs" / "test" / "noise" / "sgd" / "seed7" / "step30.benchmark.tsv"
    ).exists()


def test_every_table_carries_the_run_seed_of_the_config(local_run):
    """The run's seed (not the noise sampler's, which is 0) in every table and file's metadata."""
    import json

    import pyarrow.parquet as pq

    res = local_run / "results" / "test"
    seeds = set(
        yaml.safe_load((local_run / "config" / "test.yaml").read_text())["experiments"]["test"][
            "seeds"
        ]
    )
    assert 0 not in seeds
    for table in ("tails.parquet", *(f"sharpness/sgdm/seed{s}.parquet" for s in seeds)):
        assert set(pq.read_table(res / table).column("seed").to_pylist()) <= seeds, table
    assert set(pq.read_table(res / "tails.parquet").column("seed").to_pylist()) == seeds
    for seed in seeds:
        for f in (
            f"noise/adam/seed{seed}/step30.stats.parquet",
            f"tails/adam/seed{seed}/step30.parquet",
            f"train/adam/seed{seed}/history.parquet",
        ):
            meta = json.loads(pq.read_schema(res / f).metadata[b"gradnoise.settings"])
            run = meta.get("run") or meta["noise"]["run"]
            assert run["seed"] == seed, f
        tails = pq.read_table(res / f"tails/adam/seed{seed}/step30.parquet")
        assert set(tails.column("seed").to_pylist()) == {seed}


def test_aggregated_tails_cover_every_variant_view_and_split(local_run):
    import pyarrow.parquet as pq

    t = pq.read_table(local_run / "results" / "test" / "tails.parquet").to_pandas()
    alpha = t[t.quantity == "alpha"]
    assert set(alpha.estimator) == {
        "pooled",
        "pooled_standardized",
        "per_coordinate",
        "mcculloch",
        "hill",
    }
    assert set(t[t.status == "ok"].split) == {"train"}  # the test config samples the training split
    assert set(t[t.arm == "adam"].view) == {"raw", "preconditioned", "averaged"}
    assert set(t[t.arm == "sgd"].view) == {"raw"}
    assert alpha.verdict.notna().all()
    # the test config has enough draws for every estimator and view (P = 400; averaged ≈ 21 effective)
    whole = alpha[(alpha.layer == "__all__") & (alpha.estimator != "pooled")]
    assert np.isfinite(whole.value).all() and np.isfinite(whole.null_value).all()
    assert {"top_share", "effective_rank", "var_spread"} <= set(t.quantity)


DIVERGED = "adamw"  # config/test.yaml: lr 1e3, diverges at its second step


def test_a_diverged_arm_is_carried_by_every_stage_to_every_claims_row(local_run):
    """The whole pipeline finishes with a diverged arm (its figures: test_every_output_...): each
    stage records it (no noise, a status row in the tails, no matched SDE, no escape from its
    minimum, no sharpness), and every claims row that compares it names its runs as left out."""
    import pandas as pd

    from gradnoise.stats import INCONCLUSIVE

    res = local_run.parent / "pristine_results" / "test"
    seeds = yaml.safe_load((local_run / "config" / "test.yaml").read_text())["experiments"]["test"][
        "seeds"
    ]
    for seed in seeds:
        history = pd.read_parquet(res / "train" / DIVERGED / f"seed{seed}" / "history.parquet")
        assert history.status.iloc[-1] == "diverged", seed
        sharpness = pd.read_parquet(res / "sharpness" / DIVERGED / f"seed{seed}.parquet")
        assert sharpness.status.tolist() == ["diverged"] and sharpness.top_eigenvalue.isna().all()
    tails = pd.read_parquet(res / "tails.parquet")
    assert set(tails[tails.status != "ok"].arm) == {DIVERGED}
    assert set(tails[tails.arm == DIVERGED].quantity) == {"status"}
    escape = pd.read_parquet(res / "simulate" / "escape.parquet")
    assert escape[escape.arm == DIVERGED].status.tolist() == ["diverged"]
    minima = pd.read_parquet(res / "escape" / "minima.parquet")
    assert set(minima[minima.arm == DIVERGED].status) == {"diverged"}
    assert (minima[minima.arm != DIVERGED].status == "ok").all()

    claims = pd.read_parquet(res / "claims.parquet")
    compares = claims.pair.str.contains(rf"\b{DIVERGED}\b")
    mine = claims[compares]
    # every claim about arms: C5 is the simulator's, A2, A3, A5 the landscapes' (no trained arm)
    assert set(mine.claim) == {
        "C1",
        "C2",
        "C3",
        "C4",
        "C6",
        "C7",
        "C8",
        "A1",
        "A4",
        "S1",
        "S2",
        "S3",
    }
    all_runs = ", ".join(f"{DIVERGED}/seed{s}" for s in seeds)
    first_run = f"{DIVERGED}/seed{seeds[0]}"  # the escape stage's minima: escape.minima.seeds = 1
    for row in mine.itertuples():
        names = first_run if row.claim == "A4" else all_runs
        assert row.measured.endswith(f"; diverged (left out): {names}"), (row.claim, row.pair)
        assert row.verdict == INCONCLUSIVE, (row.claim, row.pair)
    c6 = mine[mine.claim == "C6"]
    assert (c6.reason == f"no common configuration: {DIVERGED} not simulated (diverged)").all()
    assert not claims[~compares].measured.str.contains("diverged").any()
    assert "left out" in (res / "claims.md").read_text()


def test_report_builds(local_run):
    snakemake(local_run, "--cores", "1", *CONFIG, "--report", "results/report.html")
    html = (local_run / "results" / "report.html").read_text(errors="replace")
    assert len(html) > 100_000 and "alpha_vs_iteration" in html and "claims" in html


def test_second_run_does_nothing_and_is_quick(local_run):
    start = time.perf_counter()
    out = snakemake(local_run, "--cores", "2", *CONFIG)
    elapsed = time.perf_counter() - start
    assert "Nothing to be done" in out.stdout + out.stderr
    print(f"no-op rerun: {elapsed:.2f} s")
    assert elapsed <= 5.0


def test_learning_rate_change_reruns_exactly_that_optimizers_chain(local_run):
    args = with_config(
        local_run,
        "lr.yaml",
        lambda c: c["experiments"]["test"]["optimizers"]["adam"].update(lr=0.003),
    )
    jobs = planned(local_run, *args)
    print("lr change:", jobs)
    assert jobs == {
        "train": 2,
        "noise": 4,
        "tails": 4,
        "sharpness": 2,
        "aggregate_tails": 1,
        "simulate_arm": 1,
        "escape_table": 1,
        "figures": 1,
        "escape_figures": 1,
        # the escape-law stage: adam's minimum only (the sweeps take their own lr and the SGD arms' α)
        "escape_minimum": 1,
        "escape_minima": 1,
        "escape_law_figures": 1,
        "alpha_stable": 2,  # adam's per-example pools, both seeds
        "alpha_stable_figures": 1,
        "claims": 1,
        "all": 1,
    }


def test_simulation_setting_change_reruns_only_simulate_and_after(local_run):
    args = with_config(local_run, "sim.yaml", lambda c: c["simulate"].update(n_paths=301))
    jobs = planned(local_run, *args)
    print("simulate change:", jobs)
    assert jobs == {
        "simulate_calibration": 1,
        "simulate_arm": 5,
        "escape_table": 1,
        "escape_figures": 1,
        "claims": 1,
        "all": 1,
    }


def test_figure_setting_change_reruns_only_figures(local_run):
    args = with_config(local_run, "fig.yaml", lambda c: c["figures"].update(dpi=61))
    assert planned(local_run, *args) == {
        "figures": 3,  # one per experiment, and each experiment's own figures
        "escape_figures": 1,
        "escape_law_figures": 1,
        "alpha_stable_figures": 1,
        "large_batch_figures": 1,
        "random_labels_figures": 1,
        "all": 1,
    }


def test_editing_a_stage_module_reruns_that_stage_and_after_but_the_readme_nothing(local_run):
    module = local_run / "src" / "gradnoise" / "tails" / "table.py"
    readme = local_run / "README.md"
    original, original_readme = module.read_text(), readme.read_text()
    try:
        module.write_text(original + "\n# an edit\n")
        jobs = planned(local_run, *CONFIG)
        print("tails/table.py edit:", jobs)
        # every stage that imports gradnoise.tails (the scripts that read its table contract, the
        # simulations that fit with it, the escape stage through escape_tables), and what follows them
        assert jobs == {
            "tails": 32,  # every noise file of the three experiments
            "aggregate_tails": 3,
            "simulate_calibration": 1,
            "simulate_arm": 5,
            "escape_table": 1,
            "escape_figures": 1,
            "figures": 3,
            "large_batch_figures": 1,
            "random_labels_figures": 1,
            "escape_sweep": 6,
            "escape_slopes": 1,
            "escape_minimum": 5,
            "escape_minima": 1,
            "escape_law_figures": 1,
            "alpha_stable": 10,  # its robust scale and per-coordinate estimator
            "alpha_stable_figures": 1,
            # a module of gradnoise.studies imports the registry, which names every study's figure
            # entry point, and those read the tails table: a conservative rerun of a 1-second job
            "distance_fits": 1,
            "claims": 3,
            "all": 1,
        }
        module.write_text(original)
        readme.write_text(original_readme + "\nmore words\n")
        assert planned(local_run, *CONFIG) == {}
    finally:
        module.write_text(original)
        readme.write_text(original_readme)


def _edited(project: Path, relative: str, *args: str) -> dict[str, int]:
    """The jobs a dry run plans after a comment is appended to one file of the project (then undone,
    its modification time too, so that the next test starts from an up-to-date project)."""
    path = project / relative
    original = path.read_text() if path.exists() else None
    times = path.stat() if path.exists() else None
    try:
        path.write_text((original or "") + "\n# an edit\n")
        return planned(project, *args)
    finally:
        if original is None:
            path.unlink()
        else:
            path.write_text(original)
            os.utime(path, ns=(times.st_atime_ns, times.st_mtime_ns))


def test_editing_a_module_only_some_stages_import_reruns_those_stages_and_after(local_run):
    """gradnoise.stats is imported by the claims, figures and distance-fit scripts (the figure rules'
    hand-kept lists once missed it): their jobs rerun, and what depends on them."""
    jobs = _edited(local_run, "src/gradnoise/stats.py", *CONFIG)
    print("stats.py edit:", jobs)
    assert jobs == {
        "claims": 3,
        "figures": 3,
        "escape_figures": 1,
        "escape_law_figures": 1,
        "alpha_stable_figures": 1,
        "large_batch_figures": 1,
        "random_labels_figures": 1,
        "distance_fits": 1,
        "all": 1,
    }


def test_editing_the_table_contracts_reruns_every_stage(local_run):
    """Every stage script reads or writes through gradnoise.io (the noise stage's hand-kept list
    missed it, so a change to the Parquet contract left its outputs stale)."""
    every_job = planned(local_run, *CONFIG, "--forceall")
    assert planned(local_run, *CONFIG) == {}
    assert _edited(local_run, "src/gradnoise/io/contracts.py", *CONFIG) == every_job
    allocator = _edited(local_run, "src/gradnoise/allocator.py", *CONFIG)  # the training loops'
    for rule in ("train", "noise", "sharpness", "escape_minimum"):
        assert allocator[rule] == every_job[rule], rule


def test_editing_a_module_no_stage_imports_reruns_nothing(local_run):
    for unused in (
        "src/gradnoise/config.py",
        "src/gradnoise/code_inputs.py",
        "src/gradnoise/new.py",
    ):
        assert _edited(local_run, unused, *CONFIG) == {}, unused


def test_changing_an_arm_reruns_that_arm_the_arms_derived_from_it_and_what_aggregates_them(
    local_run,
):
    """test_lb: the small-batch arm's lr is what the three √B-scaled arms' lr derives from; LB keeps
    its own lr, so it and the other experiments stay untouched."""
    args = with_config(
        local_run,
        "lb_lr.yaml",
        lambda c: (
            c["experiments"]["test_lb"]["optimizers"]["sgdm"].update(lr=0.06)
            or c["experiments"]["test_lb"]["arms"]["lb"].setdefault("hparams", {}).update(lr=0.05)
        ),
    )
    jobs = planned(local_run, *args)
    print("sb lr change:", jobs)
    # sb, lb_lr, lb_lr_gbn, lb_lr_gbn_ra (one seed); noise at 12 for all, and at the end of sb and RA
    assert jobs == {
        "train": 4,
        "noise": 6,
        "tails": 6,
        "sharpness": 4,
        "aggregate_tails": 1,
        "distance_fits": 1,
        "figures": 1,
        "large_batch_figures": 1,
        "claims": 1,
        "all": 1,
    }
    label = with_config(
        local_run,
        "lb_label.yaml",
        lambda c: c["experiments"]["test_lb"]["arms"]["sb"].update(label="SB"),
    )
    assert planned(local_run, *label) == {
        "figures": 1,
        "large_batch_figures": 1,
        "claims": 1,
        "all": 1,
    }


def test_a_change_to_the_pretraining_reruns_the_arms_that_start_from_it(local_run):
    args = with_config(
        local_run,
        "rl_pre.yaml",
        lambda c: c["experiments"]["test_rl"]["arms"]["pretrain"]["random_labels"].update(seed=1),
    )
    jobs = planned(local_run, *args)
    print("pretraining change:", jobs)
    # pretrain, adversarial_vanilla, adversarial_all (one seed); the random-init arms stay
    assert jobs == {
        "train": 3,
        "noise": 3,
        "tails": 3,
        "sharpness": 3,
        "aggregate_tails": 1,
        "figures": 1,
        "random_labels_figures": 1,
        "claims": 1,
        "all": 1,
    }


def test_rerun_after_a_change_runs_and_leaves_others_untouched(local_run):
    res = local_run / "results" / "test"
    sgd_noise = res / "noise" / "sgd" / "seed3" / "step30.parquet"
    before = sgd_noise.stat().st_mtime_ns, sgd_noise.read_bytes()
    adam_noise = (res / "noise" / "adam" / "seed3" / "step30.parquet").read_bytes()
    args = with_config(
        local_run,
        "lr2.yaml",
        lambda c: c["experiments"]["test"]["optimizers"]["adam"].update(lr=0.004),
    )
    snakemake(local_run, "--cores", "2", *args)
    assert (sgd_noise.stat().st_mtime_ns, sgd_noise.read_bytes()) == before
    assert (res / "noise" / "adam" / "seed3" / "step30.parquet").read_bytes() != adam_noise
    assert planned(local_run, *args) == {}


def test_cpu_outputs_are_byte_identical_across_runs(local_run, tmp_path):
    project = copy_project(tmp_path / "again")
    targets = [f"results/test/noise/sgdm/seed7/step{s}.parquet" for s in (10, 30)]
    pool = "results/test/alpha_stable/sgdm/seed7.parquet"
    snakemake(project, "--cores", "2", *targets, pool, *CONFIG)
    for t in targets:
        for f in (t, t.replace(".parquet", ".stats.parquet")):
            assert (project / f).read_bytes() == (local_run / f).read_bytes(), f
    assert (project / pool).read_bytes() == (local_run / pool).read_bytes()


def _descendants(root: int, marker: str) -> list[int]:
    """The processes started (directly or not) by process `root` whose command line holds `marker`:
    the job's shell and the Python process it runs, so that killing them all kills the job."""
    parent = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(stat.parent.name)] = int(fields[1])
    found = []
    for pid in parent:
        up = pid
        while up in parent and up != root:
            up = parent[up]
        if up == root and pid != root:
            try:
                if marker in (Path("/proc") / str(pid) / "cmdline").read_text():
                    found.append(pid)
            except OSError:
                continue
    return found


def test_a_job_killed_mid_way_leaves_nothing_complete_and_the_rerun_resumes(tmp_path):
    project = copy_project(tmp_path / "kill")

    def longer(c):
        exp = c["experiments"]["test"]
        # LeNet: ≈ 100 iterations a second, time to kill it between two checkpoints
        exp.update(iterations=1500, checkpoints=[0, 100, 1500], eval_every=100, seeds=[0])
        exp["model"] = {"name": "lenet"}
        exp["optimizers"] = {"sgd": {"lr": 0.05}}

    args = with_config(project, "kill.yaml", longer)
    target = "results/test/train/sgd/seed0/history.parquet"
    proc = subprocess.Popen(
        [sys.executable, "-m", "snakemake", "--cores", "1", target, *args],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    state = project / "results/test/train/sgd/seed0/.resume/state.pt"
    deadline = time.time() + 120
    while not (
        state.exists() and (project / "results/test/train/sgd/seed0/.resume/step100.pt").exists()
    ):
        assert time.time() < deadline, "training never reached its first checkpoint"
        time.sleep(0.2)
    # kill the training job this test's Snakemake started (found by parent pid, never by name)
    jobs = _descendants(proc.pid, "scripts/train.py")
    assert jobs, "the training job is not running"
    for job in jobs:  # the shell Snakemake started and the training process under it
        os.kill(job, signal.SIGKILL)
    proc.wait(timeout=60)
    assert not (project / target).exists()
    out = snakemake(project, "--cores", "1", target, *args)
    assert (project / target).exists()
    log = (project / "logs/test/train/sgd/seed0.log").read_text()
    assert "resuming from iteration" in log, out.stdout[-2000:]


def test_paper_config_lists_its_full_dag_without_data(root):
    text = dry_run(root, "--configfile", "config/paper.yaml")
    jobs = job_stats(text)
    # 2 experiments × 6 optimizers × 3 seeds = 36 runs, 21 checkpoints each; the large-batch study's
    # 5 arms × 3 seeds (checkpoints 100, 500, 1000 inside every run but LB's 1200 iterations, and each
    # run's last); the random-label study's 11 arms × 3 seeds, each at its last iteration
    assert jobs["train"] == 36 + 15 + 33 and jobs["sharpness"] == 36 + 15 + 33
    assert jobs["noise"] == jobs["tails"] == 36 * 21 + (2 * 4 + 3 * 4) * 3 + 33
    assert jobs["figures"] == jobs["claims"] == 4
    assert jobs["alpha_stable"] == 36 and jobs["alpha_stable_figures"] == 2  # one job per run
    assert (
        jobs["large_batch_figures"] == jobs["random_labels_figures"] == jobs["distance_fits"] == 1
    )
    # the GPU jobs ask for the experiment's `resources`, not the 4 GB / 2 h defaults
    asked: dict[str, set] = {}
    for rule, block in re.findall(r"^rule (\w+):\n(.*?)(?=^rule |\Z)", text, re.M | re.S):
        found = re.findall(r"^    resources: .*?mem_mb=(\d+).*?runtime=(\d+)", block, re.M)
        asked.setdefault(rule, set()).update(found)
    assert asked["train"] == {("16000", "720"), ("32000", "2880")}  # the studies' runs are longer
    assert asked["noise"] == {("16000", "240")}
    assert asked["sharpness"] == {("8000", "120")}
