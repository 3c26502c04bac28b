from __future__ import annotations

import copy
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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the SLURM test last: once SLURM's client tools are installed and the cluster is down again,
    the executor plugin slows every later snakemake start by ~10 s."""
    items.sort(key=lambda item: item.get_closest_marker("slurm") is not None)
