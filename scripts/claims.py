"""Decide the claims of an experiment's studies from its measurements: claims.md and claims.parquet.
The studies and their entry points come from the registry (gradnoise.studies): Zhou et al.'s C1–C8,
then A1–A5 where the escape-law stage ran and S1–S3 where the α-stable study did, or a neighbouring
paper's claims."""

from __future__ import annotations

import importlib
from pathlib import Path

import _cli

from gradnoise.claims import ClaimSettings, Row, decide_rows, to_arrow, to_markdown
from gradnoise.io import tmp_path, write_parquet
from gradnoise.studies import Study, by_kind
from gradnoise.tables import Tables, add_arguments


def evaluate(study: Study, tables: Tables, s: dict, cs: ClaimSettings) -> list[Row]:
    """A study's rows, from its registered entry point."""
    module, function = study.claims.split(":")
    return getattr(importlib.import_module(module), function)(tables, s, cs)


def main() -> None:
    p = _cli.parser(__doc__)
    p.add_argument("--experiment", required=True)
    add_arguments(p)
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
