"""The code a stage declares is read from its imports: every kind of import that runs counts, nothing
else does."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gradnoise.code_inputs import stage_code


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """A package `pkg` under src/ and scripts beside it, each import of a different kind."""
    _write(
        tmp_path,
        {
            "scripts/_cli.py": "import sys\n",
            "scripts/stage.py": """
                import _cli
                import numpy as np
                from pkg import absolute_from
                from pkg.sub.deep import name_not_a_module
                import pkg.dotted

                def main():
                    from pkg.lazy import f  # lazy imports run too
                    return f
            """,
            "scripts/other.py": "import _cli\nfrom pkg.unrelated import g\n",
            "src/pkg/__init__.py": '"""The package."""\n',
            "src/pkg/absolute_from.py": "from . import relative_sibling\n",
            "src/pkg/relative_sibling.py": "from .sub import from_parent_package\n",
            "src/pkg/sub/__init__.py": "",
            "src/pkg/sub/deep.py": "from ..transitive import x\nname_not_a_module = 1\n",
            "src/pkg/sub/from_parent_package.py": "",
            "src/pkg/transitive.py": "import os\nx = 1\n",
            "src/pkg/dotted.py": """
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    from pkg import typing_only
            """,
            "src/pkg/typing_only.py": "",
            "src/pkg/lazy.py": """
                import importlib
                REGISTRY = {"entry": "pkg.registered:run"}
                def f():
                    return importlib.import_module("pkg.by_name")
                def table():
                    return open("data/table.csv")
            """,
            "src/pkg/registered.py": "def run(): ...\n",
            "src/pkg/by_name.py": "",
            "src/pkg/data/table.csv": "a,b\n",
            "src/pkg/unrelated.py": "g = 1\n",
        },
    )
    return tmp_path


def _names(project: Path, script: str) -> list[str]:
    code = stage_code(project / "scripts" / script, project / "src", package="pkg")
    return [str(p.relative_to(project.resolve())) for p in code]


def test_a_stage_declares_its_script_its_sibling_scripts_and_the_closure_of_its_imports(project):
    assert _names(project, "stage.py") == [
        "scripts/stage.py",
        "scripts/_cli.py",
        "src/pkg/__init__.py",  # runs before any module of the package
        "src/pkg/absolute_from.py",  # from pkg import absolute_from
        "src/pkg/by_name.py",  # importlib.import_module("pkg.by_name")
        "src/pkg/data/table.csv",  # a data file the package reads
        "src/pkg/dotted.py",  # import pkg.dotted
        "src/pkg/lazy.py",  # imported inside a function
        "src/pkg/registered.py",  # a registry's "pkg.registered:run"
        "src/pkg/relative_sibling.py",  # from . import relative_sibling
        "src/pkg/sub/__init__.py",  # the parent package of sub.deep
        "src/pkg/sub/deep.py",  # from pkg.sub.deep import a name (not a module)
        "src/pkg/sub/from_parent_package.py",  # from .sub import …, in a sibling
        "src/pkg/transitive.py",  # from ..transitive import x, two levels down
    ]


def test_modules_only_a_type_checker_or_another_stage_imports_are_not_declared(project):
    names = _names(project, "stage.py")
    assert "src/pkg/typing_only.py" not in names
    assert "src/pkg/unrelated.py" not in names
    assert _names(project, "other.py") == [
        "scripts/other.py",
        "scripts/_cli.py",
        "src/pkg/__init__.py",
        "src/pkg/unrelated.py",
    ]


def test_every_stage_script_of_the_repository_declares_the_modules_it_runs(root):
    """The noise stage's hand-kept list missed allocator, io, seeds, train and devices (its data,
    model and loss now come from tasks, which reads the factories, not from train)."""
    files = stage_code(root / "scripts" / "noise.py", root / "src")
    code = {p.name for p in files}
    assert {"noise.py", "_cli.py", "allocator.py", "contracts.py", "files.py", "seeds.py"} <= code
    assert {"tasks.py"} <= code
    assert {"devices.py", "estimators.py", "views.py", "models.py", "data.py"} <= code
    assert {"factories.py"} <= code
    assert not {"config.py", "code_inputs.py", "claims.py", "figures.py"} & code
    assert not [p for p in files if root / "src" / "gradnoise" / "train" in p.parents]


def test_a_packages_lazy_attributes_are_not_part_of_importing_it(tmp_path: Path):
    # PEP 562: `pkg.api` is loaded when asked for by name, not when `pkg.sub` is imported
    _write(
        tmp_path,
        {
            "scripts/stage.py": "from pkg import sub\n",
            "src/pkg/__init__.py": """
                def __getattr__(name):
                    from pkg.api import api
                    return api
            """,
            "src/pkg/sub.py": "X = 1\n",
            "src/pkg/api.py": "def api(): ...\n",
        },
    )
    names = {p.name for p in stage_code(tmp_path / "scripts" / "stage.py", tmp_path / "src", "pkg")}
    assert names == {"stage.py", "__init__.py", "sub.py"}
