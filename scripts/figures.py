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
from gradnoise.io import FIGURES, read_parquet, read_settings, tmp_path

import _cli  # noqa: F401  (puts this repository's src/ first on the path)

log = logging.getLogger("figures")


def _histogram_input(noise_file: str) -> tuple[np.ndarray, str]:
    """Stored raw-noise coordinates of the largest layer (training split) of a noise file."""
    t = read_parquet(noise_file).to_pandas()
    t = t[(t.view == "raw") & (t.split == "train")]
    counts = t.coords.map(lambda c: np.isfinite(c).sum())
    layer = counts.groupby(t.layer, observed=True).max().idxmax()
    return np.stack(t[t.layer == layer].coords.to_numpy()).astype(float), str(layer)


def _history(path: str) -> pd.DataFrame:
    """A run's history with its optimizer and seed (kept in the file's metadata) as columns."""
    run = read_settings(path)
    return read_parquet(path).to_pandas().assign(optimizer=run["optimizer"], seed=run["seed"])


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
    tails = read_parquet(args.tails).to_pandas()
    escape = read_parquet(args.escape).to_pandas()
    history = pd.concat([_history(f) for f in args.histories])
    runs = pd.concat([read_parquet(f).to_pandas() for f in args.sharpness])
    coords, layer = _histogram_input(args.noise)
    noise_run = read_settings(args.noise)
    mc = tails[
        (tails.optimizer == noise_run["optimizer"])
        & (tails.seed == noise_run["seed"])
        & (tails.step == noise_run["step"])
        & (tails.layer == layer)
        & (tails.view == "raw")
        & (tails.split == "train")
        & (tails.estimator == "mcculloch")
    ]
    alpha = float(mc.value.iloc[0]) if len(mc) else float("nan")
    split = s["split"]
    made = {
        "alpha_vs_iteration": figures.alpha_vs_iteration(tails, split, s["dataset"]),
        "noise_histogram": figures.noise_histogram(coords, alpha, layer, noise_run["optimizer"]),
        "covariance_spectra": figures.covariance_spectra(tails, split),
        "escape_vs_eps": figures.escape_vs_eps(escape),
        "escape_sgd_vs_adam": figures.escape_sgd_vs_adam(escape),
        "training_curves": figures.training_curves(history),
        "weight_distance": figures.weight_distance(history),
        "sharpness_vs_accuracy": figures.sharpness_vs_accuracy(runs),
    }
    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    for name in FIGURES:  # the contract the workflow declares as outputs
        fig = made[name]
        for fmt in s["formats"]:
            path = out / f"{name}.{fmt}"
            tmp = tmp_path(path)
            fig.savefig(
                tmp,
                dpi=s["dpi"],
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
