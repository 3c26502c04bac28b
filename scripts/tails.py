"""Estimate α (every variant, with CIs and Gaussian nulls) and anisotropy from one noise file."""

from __future__ import annotations

import _cli

from gradnoise.io import (
    NOISE_SAMPLES_SCHEMA,
    NOISE_STATS_SCHEMA,
    read_parquet,
    read_settings,
    write_parquet,
)
from gradnoise.provenance import check_noise_tables, check_provenance
from gradnoise.tails import TailSettings, analyze


def main() -> None:
    p = _cli.parser(__doc__)
    p.add_argument("--samples", required=True, help="noise samples Parquet file")
    p.add_argument("--stats", required=True, help="noise stats Parquet file")
    p.add_argument("--out", required=True)
    p.add_argument(
        "--expect",
        default="",
        help="JSON object: the run and step the noise files must come from (experiment, arm, "
        "optimizer, seed, step)",
    )
    args = p.parse_args()
    _cli.setup_logging()
    ts = TailSettings(**_cli.settings(args.settings))
    samples = read_parquet(args.samples, schema=NOISE_SAMPLES_SCHEMA)
    stats = read_parquet(args.stats, schema=NOISE_STATS_SCHEMA)
    noise = read_settings(args.stats)
    made = {**noise["run"], "step": noise["step"]}
    if args.expect:
        check_provenance(args.stats, made, _cli.settings(args.expect))
    sample_settings = read_settings(args.samples)
    check_provenance(
        args.samples, {**sample_settings["run"], "step": sample_settings["step"]}, made
    )
    check_noise_tables(args.samples, samples, stats)
    run = {
        "experiment": noise["run"]["experiment"],
        "arm": noise["run"]["arm"],
        "optimizer": noise["run"]["optimizer"],
        "seed": noise["run"]["seed"],
        "step": noise["step"],
        "status": noise["status"],
        "hparams": noise["hparams"],
    }
    table = analyze(samples, stats, run, ts, source=args.samples)
    write_parquet(table, args.out, {"tails": ts.__dict__, "noise": noise})


if __name__ == "__main__":
    main()
