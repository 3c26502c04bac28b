"""The claims tables the README quotes are the pipeline's own files under docs/results/, as produced,
with the machine and code that made them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from gradnoise.claims import SCHEMA, claim_summary

ROOT = Path(__file__).resolve().parents[1]
RESULTS = sorted((ROOT / "docs" / "results").glob("*/claims.parquet"))


def _quoted(readme: str, experiment: str) -> list[str]:
    block = re.search(
        rf"<!-- claims: {re.escape(experiment)} -->\n(.*?)\n<!-- /claims -->", readme, re.S
    )
    assert block, f"README.md quotes no claims table of {experiment}"
    return block.group(1).splitlines()


def test_the_default_run_is_kept():
    assert (ROOT / "docs" / "results" / "mnist_lenet" / "claims.parquet") in RESULTS


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: p.parent.name)
def test_readme_quotes_the_kept_claims_table(path):
    table = pq.read_table(path)
    assert table.schema.names == SCHEMA.names
    readme = (ROOT / "README.md").read_text()
    assert _quoted(readme, path.parent.name) == claim_summary(table.to_pandas())


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: p.parent.name)
def test_a_kept_table_says_where_it_was_made(path):
    made = json.loads((path.parent / "machine.json").read_text())
    assert {"cpu", "cores", "torch", "revision", "wall_time"} <= set(made)
    assert (path.parent / "claims.md").read_text().startswith("# Claims of")
