"""Render the comparison figures of one experiment (PNG and/or PDF)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from gradnoise import figures
from gradnoise.io import (
    ESCAPE_SCHEMA,
    FIGURES,
    HISTORY_SCHEMA,
    NOISE_SAMPLES_SCHEMA,
    SHARPNESS_SCHEMA,
    read_parquet,
    read_settings,
    tmp_path,
)
from gradnoise.tails import TAILS_SCHEMA

import _cli  # noqa: F401  (puts this repository's src/ first on the path)

log = logging.getLogger("figures")


def _histogram_input(noise_file: str) -> tuple[np.ndarray, str]:
    """Stored raw-noise coordinates of the largest layer (training split) of a noise file."""
    t = read_parquet(noise_file, schema=NOISE_SAMPLES_SCHEMA).to_pandas()
    t = t[(t.view == "raw") & (t.split == "train")]
    counts = t.coords.map(lambda c: np.isfinite(c).sum())
    layer = counts.groupby(t.layer, observed=True).max().idxmax()
    return np.stack(t[t.layer == layer].coords.to_numpy()).astype(float), str(layer)


def _history(path: str) -> pd.DataFrame:
    """A run's history with its arm and seed (kept in the file's metadata) as columns."""
    run = read_settings(path)["run"]
    table = read_parquet(path, schema=HISTORY_SCHEMA).to_pandas()
    return table.assign(arm=run["arm"], seed=run["seed"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument(
        "--settings", required=True, help="JSON: the figures config section and dataset name"
    )
    p.add_argument("--tails", required=True)
    p.add_argument("--escape", required=True)
    p.add_argument("--histories", nargs="+", required=True)
    p.add_argument("--sharpness", nargs="+", required=True)
    p.add_argument("--noise", required=True, help="noise file for the histogram (final checkpoint)")
    p.add_argument("--outdir", required=True)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO)
    s = json.loads(args.settings)
    style = figures.ArmStyle({arm: tuple(v) for arm, v in s["arms"].items()})
    tails = read_parquet(args.tails, schema=TAILS_SCHEMA).to_pandas()
    escape = read_parquet(args.escape, schema=ESCAPE_SCHEMA).to_pandas()
    history = pd.concat([_history(f) for f in args.histories])
    runs = pd.concat([read_parquet(f, schema=SHARPNESS_SCHEMA).to_pandas() for f in args.sharpness])
    coords, layer = _histogram_input(args.noise)
    noise = read_settings(args.noise)
    mc = tails[
        (tails.arm == noise["run"]["arm"])
        & (tails.seed == noise["run"]["seed"])
        & (tails.step == noise["step"])
        & (tails.layer == layer)
        & (tails.view == "raw")
        & (tails.split == "train")
        & (tails.estimator == "mcculloch")
    ]
    alpha = float(mc.value.iloc[0]) if len(mc) else float("nan")
    fs = s["figures"]
    split = fs["split"]
    made = {
        "alpha_vs_iteration": figures.alpha_vs_iteration(tails, split, s["dataset"], style),
        "noise_histogram": figures.noise_histogram(
            coords, alpha, layer, style.label(noise["run"]["arm"])
        ),
        "covariance_spectra": figures.covariance_spectra(tails, split, style),
        "escape_vs_eps": figures.escape_vs_eps(escape, style),
        "escape_sgd_vs_adam": figures.escape_sgd_vs_adam(escape, style),
        "training_curves": figures.training_curves(history, style),
        "weight_distance": figures.weight_distance(history, style),
        "sharpness_vs_accuracy": figures.sharpness_vs_accuracy(runs, style),
    }
    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    for name in FIGURES:  # the contract the workflow declares as outputs
        fig = made[name]
        for fmt in fs["formats"]:
            path = out / f"{name}.{fmt}"
            tmp = tmp_path(path)
            fig.savefig(
                tmp,
                dpi=fs["dpi"],
                format=fmt,
                metadata={"Creator": "gradnoise"}
                if fmt == "png"
                else {"Creator": "gradnoise", "CreationDate": None},
            )
            tmp.replace(path)
        plt.close(fig)
        log.info("wrote %s", name)


if __name__ == "__main__":
    main()
