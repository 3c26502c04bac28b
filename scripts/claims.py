"""Decide the claims of an experiment's studies from its measurements: claims.md and claims.parquet.
The studies and their entry points come from the registry (gradnoise.studies): Zhou et al.'s C1–C8,
then A1–A5 where the escape-law stage ran and S1–S3 where the α-stable study did, or a neighbouring
paper's claims."""

from __future__ import annotations

import importlib
from functools import cached_property
from pathlib import Path

import _cli

import pandas as pd

from gradnoise.claims import ClaimSettings, Row, decide_rows, to_arrow, to_markdown
from gradnoise.clt.table import SCHEMA as ALPHA_STABLE_SCHEMA
from gradnoise.io import (
    ESCAPE_MINIMA_SCHEMA,
    ESCAPE_SCHEMA,
    ESCAPE_SLOPES_SCHEMA,
    ESCAPE_SWEEP_SCHEMA,
    SHARPNESS_SCHEMA,
    read_histories,
    read_parquet,
    tmp_path,
    write_parquet,
)
from gradnoise.provenance import check_unique_runs
from gradnoise.studies import Study, by_kind
from gradnoise.tails import TAILS_SCHEMA


class Tables:
    """The tables the command line names, each read once when a study first asks for it."""

    def __init__(self, args) -> None:
        self.args = args

    def _concat(self, paths: list[str], schema) -> pd.DataFrame:
        return pd.concat(
            [read_parquet(f, schema=schema).to_pandas() for f in paths], ignore_index=True
        )

    @cached_property
    def runs(self) -> pd.DataFrame:
        """One row per (arm, seed): the sharpness tables, each run held by one file only."""
        sharpness = {f: read_parquet(f, schema=SHARPNESS_SCHEMA) for f in self.args.sharpness}
        check_unique_runs(sharpness, ["experiment", "arm", "seed"])
        return pd.concat([t.to_pandas() for t in sharpness.values()], ignore_index=True)

    @cached_property
    def tails(self) -> pd.DataFrame:
        return read_parquet(self.args.tails, schema=TAILS_SCHEMA).to_pandas()

    @cached_property
    def escape(self) -> pd.DataFrame:
        return read_parquet(self.args.escape, schema=ESCAPE_SCHEMA).to_pandas()

    @cached_property
    def histories(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        return read_histories(self.args.histories)

    @cached_property
    def fits(self) -> pd.DataFrame:
        return read_parquet(self.args.fits).to_pandas()

    @cached_property
    def escape_sweeps(self) -> pd.DataFrame:
        return self._concat(self.args.escape_sweeps, ESCAPE_SWEEP_SCHEMA)

    @cached_property
    def escape_slopes(self) -> pd.DataFrame:
        return self._concat([self.args.escape_slopes], ESCAPE_SLOPES_SCHEMA)

    @cached_property
    def escape_minima(self) -> pd.DataFrame:
        return self._concat([self.args.escape_minima], ESCAPE_MINIMA_SCHEMA)

    @cached_property
    def alpha_stable(self) -> pd.DataFrame:
        """The alpha_stable stage's tables, one per run, each run held by one file only."""
        tables = {f: read_parquet(f, schema=ALPHA_STABLE_SCHEMA) for f in self.args.alpha_stable}
        check_unique_runs(tables, ["experiment", "arm", "seed", "step"])
        return pd.concat([t.to_pandas() for t in tables.values()], ignore_index=True)


def evaluate(study: Study, tables: Tables, s: dict, cs: ClaimSettings) -> list[Row]:
    """A study's rows, from its registered entry point."""
    module, function = study.claims.split(":")
    return getattr(importlib.import_module(module), function)(tables, s, cs)


def main() -> None:
    p = _cli.parser(__doc__)
    p.add_argument("--experiment", required=True)
    p.add_argument("--tails", required=True)
    p.add_argument("--sharpness", nargs="+", required=True)
    p.add_argument("--escape", help="escape table (study optimizers)")
    p.add_argument("--histories", nargs="*", default=[], help="training histories (studies)")
    p.add_argument("--fits", help="distance fits (study large_batch)")
    p.add_argument("--escape_sweeps", nargs="*", default=[], help="escape-law sharpness sweeps")
    p.add_argument("--escape_slopes", help="escape-law fits (then A1–A5 follow C1–C8)")
    p.add_argument("--escape_minima", help="escapes from the trained minima")
    p.add_argument("--alpha_stable", nargs="*", default=[], help="the α-stable study's tables")
    p.add_argument("--out-md", required=True)
    p.add_argument("--out-parquet", required=True)
    args = p.parse_args()
    _cli.setup_logging()
    s = _cli.settings(args.settings)
    cs = ClaimSettings(**{k: v for k, v in s["claims"].items() if not isinstance(v, dict)})
    studies = [by_kind(k) for k in s["studies"]]
    tables = Tables(args)
    claims = decide_rows([r for st in studies for r in evaluate(st, tables, s, cs)], cs)
    write_parquet(to_arrow(claims), args.out_parquet, s)
    text = to_markdown(claims, f"{studies[0].title} — experiment `{args.experiment}`")
    tmp = tmp_path(Path(args.out_md))
    tmp.write_text(text)
    tmp.replace(args.out_md)
    print(text)


if __name__ == "__main__":
    main()
