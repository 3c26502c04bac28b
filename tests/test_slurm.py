"""The test config through a real single-node SLURM (../shared/tools/slurm-up.sh) with the slurm
profile; every Parquet output must be byte-identical to the local run. CI runs it as root; elsewhere it
skips, saying why, when SLURM cannot be started."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, copy_project, snakemake

pytestmark = pytest.mark.slurm
TOOLS = ROOT.parent / "shared" / "tools"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _skip_or_fail(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"SLURM could not be started in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def slurm_cluster():
    if os.geteuid() != 0:
        _skip_or_fail("needs root to start a local SLURM (slurm-up.sh installs Debian packages)")
    if not (TOOLS / "slurm-up.sh").exists():
        _skip_or_fail(f"{TOOLS / 'slurm-up.sh'} not found")
    if shutil.which("apt-get") is None:
        _skip_or_fail("not a Debian machine (no apt-get)")
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        _skip_or_fail(
            'snakemake-executor-plugin-slurm is not installed (pip install -e ".[cluster]")'
        )
    # one stand-in GPU per core; accounting (slurmdbd) so that the plugin can always fall back to
    # sacct — without it, a status query that misses squeue's window leaves snakemake waiting forever
    env = {**os.environ, "SLURM_UP_FAKE_GPUS": "2"}
    # a cluster left by an interrupted earlier run keeps its jobs in its saved state, and a job whose
    # processes are gone holds its cores until its time limit: start from a clean state
    subprocess.run(
        ["bash", str(TOOLS / "slurm-down.sh"), "--purge"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    up = subprocess.run(
        ["bash", str(TOOLS / "slurm-up.sh"), "--accounting"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    if up.returncode != 0:
        _skip_or_fail(f"slurm-up.sh failed: {up.stderr[-2000:]}")
    yield
    subprocess.run(
        ["bash", str(TOOLS / "slurm-down.sh")], capture_output=True, text=True, timeout=300
    )


def _parquet_files(base: Path) -> dict[str, bytes]:
    return {str(p.relative_to(base)): p.read_bytes() for p in sorted(base.rglob("*.parquet"))}


def test_a_slice_of_the_test_config_through_slurm_matches_the_local_run(
    slurm_cluster, local_run, tmp_path
):
    """Two arms and one seed of the test experiment through the SLURM profile (its groups, stand-in
    GPUs, squeue polling): every per-run file is byte-identical to the local run's."""
    project = copy_project(tmp_path / "slurm")
    cfg = yaml.safe_load((project / "config" / "test.yaml").read_text())
    exp = cfg["experiments"]["test"]
    exp["seeds"] = exp["seeds"][:1]
    exp["optimizers"] = {k: exp["optimizers"][k] for k in ("sgd", "adam")}
    cfg["experiments"] = {"test": exp}
    cfg["escape"]["enabled"] = False
    exp["alpha_stable"]["enabled"] = False
    (project / "config" / "slurm.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    start = time.perf_counter()
    out = snakemake(
        project, "--profile", "profiles/slurm", "--configfile", "config/slurm.yaml", timeout=1800
    )
    elapsed = time.perf_counter() - start
    print(f"SLURM run of the slice: {elapsed:.0f} s")
    text = out.stdout + out.stderr
    assert "steps (100%) done" in text
    submitted = set(re.findall(r"submitted with SLURM jobid (\d+)", text))
    # the profile's groups: 2 train+sharpness, 4 noise+tails, aggregate, calibration, 2 matched
    # simulations, escape table+its figures+claims, and the other figures (not linked to the table)
    assert len(submitted) == 12
    jobs = subprocess.run(
        ["squeue", "--all", "-h", "-t", "all", "-o", "%i"], capture_output=True, text=True
    )
    assert submitted <= set(jobs.stdout.split())  # SLURM really ran them (MinJobAge keeps them)
    # per run, or independent of the runs: a matched simulation pools all seeds of its arm, so the
    # slice's (one seed) differs from the local run's by design
    per_run = ("/train/", "/noise/", "/tails/", "/sharpness/", "calibration")
    slurm = {
        name: data
        for name, data in _parquet_files(project / "results").items()
        if any(part in f"/{name}" for part in per_run)
    }
    local = _parquet_files(local_run.parent / "pristine_results")
    assert len(slurm) == 17 and set(slurm) <= set(local)
    different = [name for name, data in slurm.items() if local[name] != data]
    assert not different, f"differ between SLURM and local runs: {different[:10]}"
