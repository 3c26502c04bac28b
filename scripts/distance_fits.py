"""Fit ‖w_t − w_0‖ against log t, a power of t and √t over each run's high-learning-rate phase (the
large-batch study, gradnoise.studies.large_batch): one table of every fit's parameters and R²."""

from __future__ import annotations

import argparse

import _cli  # noqa: F401  (puts this repository's src/ first on the path)

import pyarrow as pa

from gradnoise.io import read_histories, write_parquet
from gradnoise.studies.large_batch.distance import distance_fits


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--histories", nargs="+", required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    history, runs = read_histories(args.histories)
    phase_end = runs.groupby("arm").phase_end.first().to_dict()
    fits = distance_fits(history, phase_end)
    write_parquet(
        pa.Table.from_pandas(fits, preserve_index=False),
        args.out,
        {"inputs": sorted(args.histories)},
    )


if __name__ == "__main__":
    main()
