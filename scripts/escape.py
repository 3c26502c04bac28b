"""The escape-law stage: one landscape sweep (every optimizer × learning-rate scale), the fits of an
experiment's sweeps, or the escapes from one run's final minimum."""

from __future__ import annotations

import _cli

import pyarrow as pa
import torch

from gradnoise.devices import resolve_device
from gradnoise.escape_tables import measured_alpha, minimum_table, slopes_table, sweep_table
from gradnoise.io import (
    ESCAPE_SWEEP_SCHEMA,
    load_checkpoint,
    read_parquet,
    write_parquet,
)
from gradnoise.tails import TAILS_SCHEMA


def main() -> None:
    p = _cli.parser(__doc__)
    p.add_argument("what", choices=("sweep", "slopes", "minimum"))
    p.add_argument(
        "--tails",
        nargs="*",
        default=[],
        help="sweep with a measured α: the SGD-family arms' tails files at their final checkpoint",
    )
    p.add_argument("--sweeps", nargs="*", default=[], help="slopes: the experiment's sweep files")
    p.add_argument("--checkpoint", help="minimum: the run's final checkpoint")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    _cli.setup_logging()
    torch.set_num_threads(max(1, args.threads))
    s = _cli.settings(args.settings)
    if args.what == "sweep":
        measured, source = None, "fixed"
        if s["noise"].get("alpha") == "measured":
            tails = pa.concat_tables(
                [
                    read_parquet(f, schema=TAILS_SCHEMA)
                    .select(TAILS_SCHEMA.names)
                    .replace_schema_metadata(None)
                    for f in args.tails
                ]
            )
            measured, source = measured_alpha(tails.to_pandas())
        s["device"] = str(resolve_device(s["device"]))
        table = sweep_table(s, measured, source)
    elif args.what == "slopes":
        import pandas as pd  # here only: the sweep and minimum jobs need no pandas

        sweeps = pd.concat(
            [read_parquet(f, schema=ESCAPE_SWEEP_SCHEMA).to_pandas() for f in args.sweeps],
            ignore_index=True,
        )
        table = slopes_table(sweeps, s["level"])
    else:
        table = minimum_table(s, load_checkpoint(args.checkpoint), resolve_device(s["device"]))
    write_parquet(table, args.out, s)


if __name__ == "__main__":
    main()
