"""The measured tables the claims and figure stages read, by the names the study registry uses
(``gradnoise.studies``: ``Study.tables``, ``FigureSet.tables``). The workflow passes each as a
command-line option ``--<name> FILE…``; a study asks for a table and it is read once, with the schema
its stage writes."""

from __future__ import annotations

import argparse
from functools import cached_property

import pandas as pd

from gradnoise.clt.table import SCHEMA as ALPHA_STABLE_SCHEMA
from gradnoise.io import (
    ESCAPE_MINIMA_SCHEMA,
    ESCAPE_SCHEMA,
    ESCAPE_SLOPES_SCHEMA,
    ESCAPE_SWEEP_SCHEMA,
    SHARPNESS_SCHEMA,
    read_histories,
    read_parquet,
)
from gradnoise.provenance import check_unique_runs
from gradnoise.tails import TAILS_SCHEMA

# name → what its files hold (the option's help); every option takes one or more files.
TABLES: dict[str, str] = {
    "tails": "the experiment's tails table",
    "sharpness": "one sharpness table per run (one row per arm and seed)",
    "histories": "training histories",
    "noise": "noise files for the layer histogram (final checkpoints), in order of preference",
    "escape": "the simulate stage's escape table",
    "fits": "distance fits (large-batch study)",
    "escape_sweeps": "escape-law landscape sweeps",
    "escape_slopes": "escape-law fits",
    "escape_minima": "escapes from the trained minima",
    "alpha_stable": "the α-stable study's tables, one per run",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for name, help_text in TABLES.items():
        parser.add_argument(f"--{name}", nargs="+", default=[], help=help_text)


class Tables:
    """The tables a command line names, each read once when a study first asks for it."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args

    def files(self, name: str) -> list[str]:
        files = getattr(self.args, name)
        if not files:
            raise ValueError(f"this job was given no {name} files (--{name})")
        return files

    def _concat(self, name: str, schema) -> pd.DataFrame:
        return pd.concat(
            [read_parquet(f, schema=schema).to_pandas() for f in self.files(name)],
            ignore_index=True,
        )

    def _per_run(self, name: str, schema, keys: list[str]) -> pd.DataFrame:
        """One file per run, concatenated; a run held by two files (a copy) is refused."""
        tables = {f: read_parquet(f, schema=schema) for f in self.files(name)}
        check_unique_runs(tables, keys)
        return pd.concat([t.to_pandas() for t in tables.values()], ignore_index=True)

    @cached_property
    def runs(self) -> pd.DataFrame:
        """One row per (arm, seed): the sharpness tables."""
        return self._per_run("sharpness", SHARPNESS_SCHEMA, ["experiment", "arm", "seed"])

    @cached_property
    def tails(self) -> pd.DataFrame:
        return self._concat("tails", TAILS_SCHEMA)

    @cached_property
    def escape(self) -> pd.DataFrame:
        return self._concat("escape", ESCAPE_SCHEMA)

    @cached_property
    def histories(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(history rows, one row of settings per run)."""
        return read_histories(self.files("histories"))

    @cached_property
    def fits(self) -> pd.DataFrame:
        return self._concat("fits", None)

    @cached_property
    def escape_sweeps(self) -> pd.DataFrame:
        return self._concat("escape_sweeps", ESCAPE_SWEEP_SCHEMA)

    @cached_property
    def escape_slopes(self) -> pd.DataFrame:
        return self._concat("escape_slopes", ESCAPE_SLOPES_SCHEMA)

    @cached_property
    def escape_minima(self) -> pd.DataFrame:
        return self._concat("escape_minima", ESCAPE_MINIMA_SCHEMA)

    @cached_property
    def alpha_stable(self) -> pd.DataFrame:
        """The α-stable stage's tables, one per run."""
        return self._per_run(
            "alpha_stable", ALPHA_STABLE_SCHEMA, ["experiment", "arm", "seed", "step"]
        )
