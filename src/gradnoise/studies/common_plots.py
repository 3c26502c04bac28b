"""The figures every study draws (DESIGN.md §9): α̂ over training, the noise histogram of one layer,
covariance spectra, training curves, distance from the initialization, sharpness against accuracy."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from gradnoise import figures
from gradnoise.io import NOISE_SAMPLES_SCHEMA, read_parquet, read_settings
from gradnoise.tables import Tables

log = logging.getLogger(__name__)


def _histogram_input(noise_files: list[str]) -> tuple[np.ndarray, str, str]:
    """Stored raw-noise coordinates of the largest layer (training split) of the first noise file
    with rows (files of diverged runs have none); the layer and the file."""
    for noise_file in noise_files:
        t = read_parquet(noise_file, schema=NOISE_SAMPLES_SCHEMA).to_pandas()
        t = t[(t.view == "raw") & (t.split == "train")]
        if len(t):
            break
        log.info("%s: no noise (%s); trying the next run", noise_file, _status(noise_file))
    else:
        return np.full((1, 1), np.nan), "", noise_files[0]
    counts = t.coords.map(lambda c: np.isfinite(c).sum())
    layer = counts.groupby(t.layer, observed=True).max().idxmax()
    return np.stack(t[t.layer == layer].coords.to_numpy()).astype(float), str(layer), noise_file


def _status(noise_file: str) -> str:
    return str(read_settings(noise_file).get("status"))


def _mcculloch_alpha(tails: pd.DataFrame, noise: dict, layer: str) -> float:
    """The McCulloch α̂ of the histogram's run, checkpoint and layer (raw view, training split)."""
    mc = tails[
        (tails.arm == noise["run"]["arm"])
        & (tails.seed == noise["run"]["seed"])
        & (tails.step == noise["step"])
        & (tails.layer == layer)
        & (tails.view == "raw")
        & (tails.split == "train")
        & (tails.estimator == "mcculloch")
    ]
    return float(mc.value.iloc[0]) if len(mc) else float("nan")


def draw(tables: Tables, s: dict, style: figures.ArmStyle) -> dict[str, Figure]:
    tails = tables.tails
    history, _ = tables.histories
    coords, layer, noise_file = _histogram_input(tables.files("noise"))
    noise = read_settings(noise_file)
    split = s["figures"]["split"]
    return {
        "alpha_vs_iteration": figures.alpha_vs_iteration(tails, split, s["dataset"], style),
        "noise_histogram": figures.noise_histogram(
            coords, _mcculloch_alpha(tails, noise, layer), layer, style.label(noise["run"]["arm"])
        ),
        "covariance_spectra": figures.covariance_spectra(tails, split, style),
        "training_curves": figures.training_curves(history, style),
        "weight_distance": figures.weight_distance(history, style),
        "sharpness_vs_accuracy": figures.sharpness_vs_accuracy(tables.runs, style),
    }
