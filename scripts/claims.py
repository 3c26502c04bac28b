"""Decide each claim of Zhou et al. (2020) from the measurements: claims.md and claims.parquet."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa

from gradnoise.claims import ClaimSettings, evaluate_claims
from gradnoise.io import ESCAPE_SCHEMA, SHARPNESS_SCHEMA, read_parquet, tmp_path, write_parquet
from gradnoise.stats import to_markdown
from gradnoise.tails import TAILS_SCHEMA

import _cli


def main() -> None:
    p = _cli.parser(__doc__)
    p.add_argument("--experiment", required=True)
    p.add_argument("--tails", required=True)
    p.add_argument("--escape", required=True)
    p.add_argument("--sharpness", nargs="+", required=True)
    p.add_argument("--out-md", required=True)
    p.add_argument("--out-parquet", required=True)
    args = p.parse_args()
    _cli.setup_logging()
    s = _cli.settings(args.settings)
    runs = pd.concat(
        [read_parquet(f, schema=SHARPNESS_SCHEMA).to_pandas() for f in args.sharpness],
        ignore_index=True,
    )
    claims = evaluate_claims(
        read_parquet(args.tails, schema=TAILS_SCHEMA).to_pandas(),
        read_parquet(args.escape, schema=ESCAPE_SCHEMA).to_pandas(),
        runs,
        ClaimSettings(**s["claims"]),
    )
    write_parquet(pa.Table.from_pylist(claims.to_dict("records")), args.out_parquet, s)
    text = to_markdown(claims, f"Claims of Zhou et al. (2020) — experiment `{args.experiment}`")
    tmp = tmp_path(Path(args.out_md))
    tmp.write_text(text)
    tmp.replace(args.out_md)
    print(text)


if __name__ == "__main__":
    main()
