"""Provenance: the checksums of the code a stage runs, and the checks of its inputs' provenance."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gradnoise.errors import InputError
from gradnoise.provenance import PACKAGE_DIR, check_provenance, code_digest, imported_modules


@pytest.fixture
def package(tmp_path) -> Path:
    root = tmp_path / "gradnoise"
    shutil.copytree(PACKAGE_DIR, root, ignore=shutil.ignore_patterns("__pycache__", "data"))
    return root


def test_training_code_is_the_closure_of_its_gradnoise_imports():
    files = imported_modules("train")
    names = {p.relative_to(PACKAGE_DIR).as_posix() for p in files}
    assert {"train/__init__.py", "train/loop.py", "train/finish.py", "io/contracts.py"} <= names
    assert {"optim.py", "models.py", "data.py", "arms.py", "io/files.py"} <= names
    assert "claims.py" not in names
    assert "tails" not in {p.relative_to(PACKAGE_DIR).parts[0] for p in files}


def test_editing_imported_code_changes_the_digest_and_other_code_does_not(package):
    before = code_digest("train", package)
    (package / "claims.py").write_text((package / "claims.py").read_text() + "\n# edit\n")
    assert code_digest("train", package) == before
    (package / "optim.py").write_text((package / "optim.py").read_text() + "\n# edit\n")
    assert code_digest("train", package) != before


def test_a_provenance_mismatch_names_the_file_and_each_differing_key():
    found = {"experiment": "e", "seed": 3, "arm": "adam"}
    check_provenance("f.parquet", found, {"experiment": "e", "seed": 3})
    with pytest.raises(InputError, match=r"f\.parquet.*arm: file has 'adam', expected 'sgd'") as e:
        check_provenance("f.parquet", found, {"arm": "sgd", "seed": 3, "step": 10})
    assert "step: file has '<missing>'" in str(e.value) and "seed" not in str(e.value)
