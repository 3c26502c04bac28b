"""Distance from the initialization (Hoffer et al.'s Fig. 2): per run, ‖w_t − w_0‖ (whole network and
first layer) over the high-learning-rate phase (iterations 1 up to the first learning-rate drop) fitted by
three two-parameter laws on the raw scale — a + b·log t, c·t^γ (nonlinear least squares started from the
log-log line) and a + b·√t — compared by R² (equal parameter counts, so R² orders them as AIC does)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy.optimize import curve_fit

FIT_MODELS = ("log", "power", "sqrt")
DISTANCES = {"whole": "weight_distance", "first_layer": "first_layer_distance"}
MIN_FIT_POINTS = 5


def fit_distance(t: np.ndarray, d: np.ndarray) -> dict[str, tuple[float, float, float]]:
    """(first parameter, second parameter, R²) of each law: log (a, b), power (c, γ), sqrt (a, b)."""
    t, d = np.asarray(t, float), np.asarray(d, float)
    tss = float(np.sum((d - d.mean()) ** 2))

    def r2(pred: np.ndarray) -> float:
        return 1 - float(np.sum((d - pred) ** 2)) / tss if tss > 0 else math.nan

    out = {}
    for name, x in (("log", np.log(t)), ("sqrt", np.sqrt(t))):
        b, a = np.polyfit(x, d, 1)
        out[name] = (float(a), float(b), r2(a + b * x))
    pos = d > 0
    gamma0, logc0 = np.polyfit(np.log(t[pos]), np.log(d[pos]), 1)
    try:
        (c, gamma), _ = curve_fit(
            lambda tt, c, g: c * tt**g, t, d, p0=(math.exp(logc0), gamma0), maxfev=10000
        )
    except RuntimeError:  # no convergence: keep the log-log line
        c, gamma = math.exp(logc0), gamma0
    out["power"] = (float(c), float(gamma), r2(c * t**gamma))
    return out


def distance_fits(histories: pd.DataFrame, phase_end: Mapping[str, int]) -> pd.DataFrame:
    """One row per (arm, seed, quantity, law): its parameters, R², and whether it fits best.
    `histories`: arm, seed, iteration, status, weight_distance, first_layer_distance;
    `phase_end`: the last iteration of each arm's high-learning-rate phase."""
    rows = []
    for (arm, seed), h in histories[histories.status == "ok"].groupby(["arm", "seed"]):
        phase = h[(h.iteration >= 1) & (h.iteration <= phase_end[arm])].sort_values("iteration")
        for quantity, column in DISTANCES.items():
            if len(phase) < MIN_FIT_POINTS:
                continue
            fits = fit_distance(phase.iteration.to_numpy(), phase[column].to_numpy())
            best = max(fits, key=lambda m: fits[m][2])
            for model, (p1, p2, r2) in fits.items():
                rows.append(
                    {
                        "arm": arm,
                        "seed": int(seed),
                        "quantity": quantity,
                        "model": model,
                        "p1": p1,
                        "p2": p2,
                        "r2": r2,
                        "best": model == best,
                        "points": len(phase),
                        "phase_end": int(phase_end[arm]),
                    }
                )
    return pd.DataFrame(
        rows,
        columns=[
            "arm",
            "seed",
            "quantity",
            "model",
            "p1",
            "p2",
            "r2",
            "best",
            "points",
            "phase_end",
        ],
    )
