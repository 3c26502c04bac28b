"""Concatenate per-file tables (tails of every checkpoint, arm and seed; escape tables; escapes from
minima) into one Parquet file, after checking each against its stage's contract."""

from __future__ import annotations

import argparse

import _cli  # noqa: F401  (puts this repository's src/ first on the path)

import pyarrow as pa

from gradnoise.io import ESCAPE_MINIMA_SCHEMA, ESCAPE_SCHEMA, read_parquet, write_parquet
from gradnoise.provenance import check_unique_runs
from gradnoise.tails import TAILS_SCHEMA

RUN_KEY = ["experiment", "arm", "seed", "step"]

CONTRACTS = {
    "tails": TAILS_SCHEMA,
    "escape": ESCAPE_SCHEMA,
    "escape_minima": ESCAPE_MINIMA_SCHEMA,
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("inputs", nargs="+")
    p.add_argument("--contract", required=True, choices=sorted(CONTRACTS))
    p.add_argument("--out", required=True)
    args = p.parse_args()
    schema = CONTRACTS[args.contract]
    tables = [read_parquet(f, schema=schema).select(schema.names) for f in args.inputs]
    if args.contract == "tails":  # one file per checkpoint of a run: a copied file counts twice
        check_unique_runs(dict(zip(args.inputs, tables, strict=True)), RUN_KEY)
    merged = pa.concat_tables([t.cast(schema) for t in tables])
    write_parquet(merged, args.out, {"inputs": sorted(args.inputs)})


if __name__ == "__main__":
    main()
