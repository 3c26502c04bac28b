"""Escape times of Lévy-driven SDEs: the calibration scenario, or one optimizer's matched SDE."""

from __future__ import annotations

import _cli

import pyarrow as pa
import torch

from gradnoise.devices import resolve_device
from gradnoise.io import read_parquet, write_parquet
from gradnoise.simulate import SimSettings, calibration, matched
from gradnoise.tails import TAILS_SCHEMA


def main() -> None:
    p = _cli.parser(__doc__)
    p.add_argument("--experiment", required=True)
    p.add_argument("--arm", help="simulate this arm's matched SDE (default: calibration)")
    p.add_argument("--tails", nargs="*", default=[], help="the arm's tails Parquet files")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    _cli.setup_logging()
    torch.set_num_threads(max(1, args.threads))
    s = _cli.settings(args.settings)
    ss = SimSettings(**{**s, "device": str(resolve_device(s.get("device", "auto")))})
    if args.arm:
        tails = pa.concat_tables(
            [read_parquet(f, schema=TAILS_SCHEMA).replace_schema_metadata(None) for f in args.tails]
        )
        table = matched(args.experiment, args.arm, tails, ss)
    else:
        table = calibration(args.experiment, ss)
    write_parquet(table, args.out, {"simulate": s, "experiment": args.experiment, "arm": args.arm})


if __name__ == "__main__":
    main()
