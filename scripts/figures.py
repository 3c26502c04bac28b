"""Render one set of figures of an experiment (PNG and/or PDF): the common ones, the escape-time ones,
the escape-law stage's, the α-stable study's, or a study's (the sets are listed in
gradnoise.studies.FIGURE_SETS)."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from pathlib import Path

import _cli  # noqa: F401  (puts this repository's src/ first on the path)

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from gradnoise import figures
from gradnoise.io import (
    ESCAPE_MINIMA_SCHEMA,
    ESCAPE_SCHEMA,
    ESCAPE_SWEEP_SCHEMA,
    NOISE_SAMPLES_SCHEMA,
    SHARPNESS_SCHEMA,
    read_histories,
    read_parquet,
    read_settings,
    tmp_path,
)
from gradnoise.studies import FIGURE_SETS
from gradnoise.tails import TAILS_SCHEMA

log = logging.getLogger("figures")


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


def _runs(paths: list[str]) -> pd.DataFrame:
    return pd.concat([read_parquet(f, schema=SHARPNESS_SCHEMA).to_pandas() for f in paths])


def common(args, s: dict, style: figures.ArmStyle) -> dict[str, Figure]:
    tails = read_parquet(args.tails, schema=TAILS_SCHEMA).to_pandas()
    history, _ = read_histories(args.histories)
    runs = _runs(args.sharpness)
    coords, layer, noise_file = _histogram_input(args.noise)
    noise = read_settings(noise_file)
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
    split = s["figures"]["split"]
    return {
        "alpha_vs_iteration": figures.alpha_vs_iteration(tails, split, s["dataset"], style),
        "noise_histogram": figures.noise_histogram(
            coords, alpha, layer, style.label(noise["run"]["arm"])
        ),
        "covariance_spectra": figures.covariance_spectra(tails, split, style),
        "training_curves": figures.training_curves(history, style),
        "weight_distance": figures.weight_distance(history, style),
        "sharpness_vs_accuracy": figures.sharpness_vs_accuracy(runs, style),
    }


def escape(args, s: dict, style: figures.ArmStyle) -> dict[str, Figure]:
    table = read_parquet(args.escape, schema=ESCAPE_SCHEMA).to_pandas()
    return {
        "escape_vs_eps": figures.escape_vs_eps(table, style),
        "escape_sgd_vs_adam": figures.escape_sgd_vs_adam(table, style),
    }


def large_batch(args, s: dict, style: figures.ArmStyle) -> dict[str, Figure]:
    from gradnoise.studies.large_batch import plots

    tails = read_parquet(args.tails, schema=TAILS_SCHEMA).to_pandas()
    history, settings = read_histories(args.histories)
    runs = _runs(args.sharpness).merge(settings[["arm", "seed", "batch_size"]], on=["arm", "seed"])
    fits = read_parquet(args.fits).to_pandas()
    return {
        "accuracy_per_arm": plots.accuracy_per_arm(runs, s["roles"], s["dataset"], style),
        "distance_vs_log_t": plots.distance_vs_log_t(history, fits, settings, style),
        "accuracy_vs_updates": plots.accuracy_vs_updates(history, style),
        "alpha_vs_batch_size": plots.alpha_vs_batch_size(tails, runs, style),
    }


def random_labels(args, s: dict, style: figures.ArmStyle) -> dict[str, Figure]:
    from gradnoise.studies.random_labels import plots

    tails = read_parquet(args.tails, schema=TAILS_SCHEMA).to_pandas()
    history, settings = read_histories(args.histories)
    runs = _runs(args.sharpness)
    return {
        "accuracy_per_regime": plots.accuracy_per_regime(runs, s["roles"], style),
        "training_curves_both_phases": plots.training_curves_both_phases(
            history, s["roles"], style
        ),
        "bad_vs_good_minima": plots.bad_vs_good_minima(runs, tails, s["roles"], style),
    }


def escape_law(args, s: dict, style: figures.ArmStyle) -> dict[str, Figure]:
    from gradnoise.studies.escape_law import plots as escape_plots

    sweeps = pd.concat(
        [read_parquet(f, schema=ESCAPE_SWEEP_SCHEMA).to_pandas() for f in args.sweeps],
        ignore_index=True,
    )
    minima = read_parquet(args.minima, schema=ESCAPE_MINIMA_SCHEMA).to_pandas()
    return {
        "escape_vs_sharpness": escape_plots.escape_vs_sharpness(sweeps),
        "escape_vs_width_height": escape_plots.escape_vs_width_height(sweeps),
        "escape_from_minima": escape_plots.escape_from_minima(minima, style),
    }


def alpha_stable(args, s: dict, style: figures.ArmStyle) -> dict[str, Figure]:
    from gradnoise.clt.table import SCHEMA
    from gradnoise.studies.alpha_stable import plots as clt_plots

    table = pd.concat(
        [read_parquet(f, schema=SCHEMA).to_pandas() for f in args.alpha_stable], ignore_index=True
    )
    return {
        "clt_alpha_vs_batch_size": clt_plots.alpha_vs_batch_size(table, style),
        "clt_hill_plot": clt_plots.hill_plot(table, style),
        "clt_per_example_ccdf": clt_plots.per_example_ccdf(table, style),
    }


SETS: dict[str, Callable] = {
    "figures": common,
    "escape_figures": escape,
    "large_batch_figures": large_batch,
    "random_labels_figures": random_labels,
    "escape_law_figures": escape_law,
    "alpha_stable_figures": alpha_stable,
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("set", choices=sorted(SETS), help="which figures")
    p.add_argument("--settings", required=True, help="JSON: figures config, data set, arms, roles")
    p.add_argument("--tails")
    p.add_argument("--escape")
    p.add_argument("--histories", nargs="*", default=[])
    p.add_argument("--sharpness", nargs="*", default=[])
    p.add_argument(
        "--noise",
        nargs="*",
        default=[],
        help="noise files for the histogram (final checkpoints), in order of preference",
    )
    p.add_argument("--fits", help="distance fits (large-batch study)")
    p.add_argument("--sweeps", nargs="*", default=[], help="escape-law landscape sweeps")
    p.add_argument("--minima", help="escapes from the trained minima (escape-law stage)")
    p.add_argument("--alpha_stable", nargs="*", default=[], help="the α-stable study's tables")
    p.add_argument("--outdir", required=True)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO)
    s = json.loads(args.settings)
    style = figures.ArmStyle({arm: tuple(v) for arm, v in s["arms"].items()})
    made = SETS[args.set](args, s, style)
    fs = s["figures"]
    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    for name in FIGURE_SETS[args.set]:  # the contract the workflow declares as outputs
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
