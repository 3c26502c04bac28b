"""The workflow used from another project (Snakemake's `module` directive), and the one copy of the
library that its validation and its stage scripts share."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from conftest import copy_project, snakemake

pytestmark = pytest.mark.workflow


def _outer_project(where: Path, workflow: Path, config: dict, preamble: str = "") -> Path:
    """A project of its own that uses the workflow at `workflow` as a module, with `config`."""
    where.mkdir(parents=True)
    (where / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (where / "Snakefile").write_text(
        f"{preamble}"
        'configfile: "config.yaml"\n\n\n'
        "module gradnoise:\n"
        f"    snakefile:\n        {str(workflow / 'workflow' / 'Snakefile')!r}\n"
        "    config:\n        config\n\n\n"
        "use rule * from gradnoise\n"
    )
    return where


def _one_small_run(test_config: dict) -> dict:
    """The test config's first experiment with one optimizer and one seed."""
    exp = test_config["experiments"]["test"]
    exp.update(optimizers={"sgd": exp["optimizers"]["sgd"]}, seeds=[3])
    return {**test_config, "experiments": {"test": exp}}


def test_a_project_runs_the_workflow_as_a_module_from_its_own_directory(tmp_path, test_config):
    """Scripts, library, schema and captions are found where the workflow lives; outputs and logs go
    to the project that uses it."""
    workflow = copy_project(tmp_path / "gradnoise")
    outer = _outer_project(tmp_path / "analysis", workflow, _one_small_run(test_config))
    target = "results/test/tails/sgd/seed3/step30.parquet"  # train → noise → tails
    snakemake(outer, "--cores", "2", target)
    assert (outer / target).stat().st_size > 0
    assert (outer / "logs" / "test" / "noise" / "sgd" / "seed3" / "step30.log").exists()
    assert not (workflow / "results").exists() and not (workflow / "logs").exists()
    # the declared code is the module's own (absolute paths): editing its library reruns the stage
    module = workflow / "src" / "gradnoise" / "anisotropy.py"  # imported by tails, not noise/train
    module.write_text(module.read_text() + "\n# an edit\n")
    out = snakemake(outer, "-n", "--cores", "2", target)
    planned = out.stdout + out.stderr
    assert "rule tails:" in planned
    assert "rule noise:" not in planned and "rule train:" not in planned


def _stale_gradnoise(where: Path) -> Path:
    """Another importable gradnoise that must never be the one the workflow validates with."""
    (where / "gradnoise").mkdir(parents=True)
    (where / "gradnoise" / "__init__.py").write_text(
        'raise ImportError("the stale gradnoise on PYTHONPATH was imported")\n'
    )
    return where


def test_validation_uses_the_workflows_own_library_not_one_earlier_on_the_path(root, tmp_path):
    stale = _stale_gradnoise(tmp_path / "stale")
    env = {"PYTHONPATH": f"{stale}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = snakemake(root, "-n", "--cores", "1", "--configfile", "config/test.yaml", env=env)
    assert "stale" not in out.stdout + out.stderr


def test_a_gradnoise_imported_before_the_workflow_is_refused_with_a_clear_message(
    root, tmp_path, test_config
):
    stale = tmp_path / "stale"
    (stale / "gradnoise").mkdir(parents=True)
    (stale / "gradnoise" / "__init__.py").write_text("")
    preamble = f"import sys\nsys.path.insert(0, {str(stale)!r})\nimport gradnoise\n\n"
    outer = _outer_project(tmp_path / "analysis", root, test_config, preamble)
    out = snakemake(outer, "-n", "--cores", "1", check=False)
    assert out.returncode != 0
    assert f"gradnoise is imported from {stale / 'gradnoise'}" in out.stdout + out.stderr
