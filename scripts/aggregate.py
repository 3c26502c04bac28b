"""Concatenate per-file tables (tails of every checkpoint, optimizer and seed) into one Parquet file."""

from __future__ import annotations

import argparse

import pyarrow as pa

from gradnoise.io import read_parquet, write_parquet

import _cli  # noqa: F401  (puts this repository's src/ first on the path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("inputs", nargs="+")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    tables = [read_parquet(f) for f in args.inputs]
    merged = pa.concat_tables([t.replace_schema_metadata(None) for t in tables])
    write_parquet(merged, args.out, {"inputs": sorted(args.inputs)})


if __name__ == "__main__":
    main()
