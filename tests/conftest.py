from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture()
def test_config() -> dict:
    return copy.deepcopy(yaml.safe_load((ROOT / "config" / "test.yaml").read_text()))


def run_script(name: str, *args: str, monkeypatch) -> None:
    """A stage script run in this process, as the workflow would run it (its own sys.path and argv)."""
    import runpy
    import sys

    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    monkeypatch.setattr(sys, "argv", [name, *args])
    runpy.run_path(str(ROOT / "scripts" / f"{name}.py"), run_name="__main__")


# test modules that share the session's pipeline run (``local_run``): one xdist group, so that it runs once
SHARES_THE_PIPELINE_RUN = {"test_workflow.py", "test_slurm.py"}


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which reads the groups into the test ids
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist (`-n 2 --dist loadgroup --no-loadscope-reorder`, the default options) each module is one group, so
    its module-scoped fixtures are made once, and the modules that share the pipeline run are one
    group, so it is made once; that group goes first (it is the longest; the other worker takes the
    rest meanwhile). The SLURM test runs last in it: once SLURM's client tools are installed and the
    cluster is down again, the executor plugin slows every later snakemake start by ~10 s."""

    def shares_the_run(item: pytest.Item) -> bool:
        return item.path.name in SHARES_THE_PIPELINE_RUN

    for item in items:
        group = "pipeline_run" if shares_the_run(item) else item.path.name
        item.add_marker(pytest.mark.xdist_group(group))
    items.sort(
        key=lambda item: (not shares_the_run(item), item.get_closest_marker("slurm") is not None)
    )


TOP_LEVEL_IGNORE = {".git", "results", "logs", ".snakemake", "data", ".pytest_cache", ".ruff_cache"}


def copy_project(dst: Path) -> Path:
    """A copy of the project without outputs, for real snakemake runs that may edit it."""
    import shutil

    anywhere = shutil.ignore_patterns("__pycache__", "*.egg-info")

    def ignore(folder: str, names: list[str]) -> set[str]:
        top = TOP_LEVEL_IGNORE & set(names) if Path(folder) == ROOT else set()
        return top | set(anywhere(folder, names))

    shutil.copytree(ROOT, dst, ignore=ignore)
    return dst


@pytest.fixture(scope="session", autouse=True)
def _no_absent_slurm_controller(tmp_path_factory) -> None:
    """Local snakemake runs must not wait on SLURM. With the SLURM executor plugin installed, every
    snakemake start asks `scontrol show config`, which hangs ~10 s where SLURM's client tools are
    installed but no controller runs (as on CI machines once the SLURM test has installed them).
    Local runs get a `scontrol` that fails at once; the SLURM test uses the real one."""
    shim = tmp_path_factory.mktemp("no-slurm")
    (shim / "scontrol").write_text("#!/bin/sh\nexit 1\n")
    (shim / "scontrol").chmod(0o755)
    LOCAL_ENV["PATH"] = f"{shim}{os.pathsep}{os.environ['PATH']}"


LOCAL_ENV: dict[str, str] = {}


def snakemake(
    cwd: Path,
    *args: str,
    timeout: int = 2400,  # a guard against a hung run, not a speed test (CI is well under it)
    check: bool = True,
    local: bool = True,
    env: dict[str, str] | None = None,
):
    import subprocess
    import sys

    env = {**os.environ, **(LOCAL_ENV if local else {}), **(env or {})}
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    if check and out.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        )
    return out


@pytest.fixture(scope="session")
def local_run(tmp_path_factory) -> Path:
    """The test config run to completion once, locally (shared by the workflow and SLURM tests)."""
    import shutil

    project = copy_project(tmp_path_factory.mktemp("local") / "project")
    snakemake(project, "--cores", "2", "--configfile", "config/test.yaml")
    # a snapshot for comparisons, since later tests rerun parts of this project with other configs
    shutil.copytree(project / "results", project.parent / "pristine_results")
    return project
