"""pyproject.toml and the conda files must declare the same runtime packages, and a clean clone
must carry every file the package needs."""

from __future__ import annotations

import re
import subprocess
import tomllib

import pytest
import yaml

CONDA_NAMES = {"torch": "pytorch"}


def _name(spec: str) -> str:
    return re.split(r"[<>=!~ \[]", spec, maxsplit=1)[0].strip().lower()


def _pyproject(root) -> set[str]:
    deps = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    return {CONDA_NAMES.get(_name(d), _name(d)) for d in deps}


def _conda(path) -> set[str]:
    deps = yaml.safe_load(path.read_text())["dependencies"]
    return {_name(d) for d in deps if isinstance(d, str)} - {"python", "pip"}


def test_environment_yml_lists_the_runtime_dependencies_of_pyproject(root):
    assert _conda(root / "environment.yml") == _pyproject(root)


def test_rule_environment_lists_the_runtime_dependencies_except_snakemake(root):
    assert _conda(root / "workflow" / "envs" / "gradnoise.yaml") == _pyproject(root) - {"snakemake"}


def test_conda_env_installs_this_package(root):
    pip = [
        d
        for d in yaml.safe_load((root / "environment.yml").read_text())["dependencies"]
        if isinstance(d, dict)
    ]
    assert pip == [{"pip": ["-e ."]}]


def test_no_file_of_the_package_is_ignored_by_git(root):
    """A package file that git ignores exists here but not in a clean clone (CI once failed so)."""
    if subprocess.run(["git", "rev-parse"], cwd=root, capture_output=True).returncode != 0:
        pytest.skip("not a git checkout")
    files = [
        str(p.relative_to(root))
        for p in (root / "src" / "gradnoise").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    ]
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *files], cwd=root, capture_output=True, text=True
    )
    assert ignored.stdout.split() == []


def test_license_file_matches_the_license_pyproject_declares(root):
    declared = tomllib.loads((root / "pyproject.toml").read_text())["project"]["license"]["text"]
    text = (root / "LICENSE").read_text()
    assert declared == "MIT" and text.startswith("MIT License")
    assert "Copyright (c) the gradnoise authors" in text


def test_catalog_layout_entry_point_and_usage(root):
    """The Snakemake workflow catalog's layout: workflow/Snakefile (found by `snakemake` itself from the
    repository root) and the usage file, whose conda claim needs every rule to declare its env."""
    assert (root / "workflow" / "Snakefile").is_file() and not (root / "Snakefile").exists()
    usage = yaml.safe_load((root / ".snakemake-workflow-catalog.yml").read_text())["usage"]
    assert usage["software-stack-deployment"]["conda"] is True and usage["report"] is True
    for rules in (root / "workflow" / "rules").glob("*.smk"):
        text = rules.read_text()
        # a rule is `rule name:` or, defined in a loop (the figure sets), an indented `rule:`
        assert len(re.findall(r"^\s*rule\b", text, re.M)) == text.count(
            '"../envs/gradnoise.yaml"'
        ), rules
