"""The escape-law figures (DESIGN.md §10c), one function each: the stage's tables in, a matplotlib Figure
out. Landscape figures colour the optimizers as ``gradnoise.figures`` does; measured points carry the
95 % interval of the exponential MLE; theories are lines (diffusion: the exact SDE's mean first-passage
time; Lévy: the single-jump law, SαS only)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from gradnoise.figures import COLORS, NAMES, ArmStyle, _grid  # noqa: E402
from gradnoise.studies.escape_law.claims import ORDER, radius_exponents  # noqa: E402
from gradnoise.tables import Tables  # noqa: E402

NOISE_COLORS = {"gaussian": "tab:blue", "sas": "tab:orange"}
MARKERS = ("o", "s", "^", "D", "v", "P")
LINESTYLES = ("-", "--", ":", "-.")


def _measured(ax, g: pd.DataFrame, x: np.ndarray, color: str, marker: str, label: str) -> None:
    """Points with exits, with their 95 % intervals."""
    ok = np.isfinite(g.mean_exit.to_numpy())
    err = [(g.mean_exit - g.ci_low)[ok], (g.ci_high - g.mean_exit)[ok]]
    ax.errorbar(x[ok], g.mean_exit[ok], yerr=err, fmt=marker, color=color, ms=4, label=label)


def _present(opts) -> list[str]:
    return [o for o in ORDER if o in set(opts)]


def escape_vs_sharpness(sweeps: pd.DataFrame) -> Figure:
    """τ (log scale) against 1/H per optimizer, Gaussian and SαS noise, with both theories."""
    sel = sweeps[sweeps.axis == "sharpness"]
    opts = _present(sel.optimizer)
    fig, axes = _grid(max(len(opts), 1))
    scales = sorted(set(sel.lr_scale))
    for ax, opt in zip(axes, opts, strict=False):
        for i, scale in enumerate(scales):
            for noise, g in sel[(sel.optimizer == opt) & (sel.lr_scale == scale)].groupby("noise"):
                g = g.sort_values("sharpness")
                x = 1 / g.sharpness.to_numpy()
                label = f"{noise}, lr {g.lr.iloc[0]:g}" + (
                    f" (α = {g.alpha.iloc[0]:.2f})" if noise == "sas" else ""
                )
                _measured(ax, g, x, NOISE_COLORS[noise], MARKERS[i % len(MARKERS)], label)
                if noise == "gaussian":
                    ax.plot(
                        x,
                        np.exp(g.log_tau_diffusion),
                        "--",
                        color="k",
                        lw=1,
                        label="diffusion (exact SDE)" if i == 0 else None,
                    )
                elif np.isfinite(g.log_tau_levy).any():
                    ax.plot(
                        x,
                        np.exp(g.log_tau_levy),
                        ":",
                        color=NOISE_COLORS["sas"],
                        lw=1.2,
                        label=None
                        if i
                        else "Lévy (one jump)"
                        + ("" if g.levy_absolute.all() else ", up to a constant factor"),
                    )
        ax.set_yscale("log")
        ax.set_xlabel("1 / sharpness H")
        ax.set_ylabel("mean escape time (iterations)")
        ax.set_title(NAMES.get(opt, opt), fontsize=9)
        ax.legend(fontsize=6)
    if not opts:
        axes[0].text(0.5, 0.5, "no sharpness sweep", ha="center")
    return fig


def escape_vs_width_height(sweeps: pd.DataFrame) -> Figure:
    """τ against the width (log-log) and the height (semi-log), per noise kind, every optimizer."""
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), layout="constrained", squeeze=False)
    for row, axis in enumerate(("width", "height")):
        for col, noise in enumerate(("gaussian", "sas")):
            ax = axes[row][col]
            sel = sweeps[(sweeps.axis == axis) & (sweeps.noise == noise)]
            for opt in _present(sel.optimizer):
                for i, (scale, g) in enumerate(sel[sel.optimizer == opt].groupby("lr_scale")):
                    g = g.sort_values(axis)
                    x = g[axis].to_numpy()
                    color = COLORS.get(opt, "k")
                    _measured(
                        ax,
                        g,
                        x,
                        color,
                        MARKERS[i % len(MARKERS)],
                        f"{NAMES.get(opt, opt)} lr×{scale:g}",
                    )
                    theory = g.log_tau_levy if noise == "sas" else g.log_tau_diffusion
                    ax.plot(x, np.exp(theory), ":" if noise == "sas" else "--", color=color, lw=1)
            if axis == "width":
                ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(
                "width w (distance to the barrier)" if axis == "width" else "barrier height ΔL"
            )
            ax.set_ylabel("mean escape time (iterations)")
            theory = "Lévy (dotted)" if noise == "sas" else "diffusion, exact SDE (dashed)"
            ax.set_title(f"{noise} noise: τ against {axis}; {theory}", fontsize=9)
            if sel.empty:
                ax.text(0.5, 0.5, "no sweep", ha="center", transform=ax.transAxes)
            else:
                ax.legend(fontsize=6, ncol=2)
    return fig


def escape_from_minima(minima: pd.DataFrame, style: ArmStyle) -> Figure:
    """Real networks: first exit iteration against the radius (mean over seeds, exits only), and the
    fitted exponent of τ in the radius against the learning-rate scale (Brownian 2, ballistic 1)."""
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    ok = minima[(minima.status == "ok") & ~minima.censored & (minima.exit_iteration > 0)]
    scales = sorted(set(minima.lr_scale))
    for arm in style.present(minima.arm):
        for i, scale in enumerate(scales):
            g = ok[(ok.arm == arm) & (ok.lr_scale == scale)]
            if g.empty:
                continue
            m = g.groupby("radius").exit_iteration.agg(["mean", "min", "max"])
            ax.errorbar(
                m.index,
                m["mean"],
                yerr=[m["mean"] - m["min"], m["max"] - m["mean"]],
                fmt="o" + LINESTYLES[i % len(LINESTYLES)],
                color=style.color(arm),
                ms=3,
                lw=1,
                label=f"{style.label(arm)} lr×{scale:g}",
            )
    if len(ok):
        r = np.array([ok.radius.min(), ok.radius.max()])
        t0 = ok.exit_iteration.min()
        for power, ls in ((1, ":"), (2, "--")):
            ax.plot(r, t0 * (r / r[0]) ** power, ls, color="grey", lw=1, label=f"∝ radius^{power}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("radius ‖w_t − w*‖")
    ax.set_ylabel("first exit iteration (seeds: mean, range)")
    ax.set_title("escape from the trained minima", fontsize=9)
    ax.legend(fontsize=6, ncol=2)
    exps = radius_exponents(minima)
    for arm in style.present(exps.arm):
        g = exps[exps.arm == arm]
        ax_x = g.lr_scale.to_numpy()
        bx.plot(ax_x, g.exponent, "o", color=style.color(arm), ms=3)
        m = g.groupby("lr_scale").exponent.mean()
        bx.plot(m.index, m, "-", color=style.color(arm), label=style.label(arm))
    for level, name in ((2, "Brownian"), (1, "ballistic")):
        bx.axhline(level, color="grey", ls="--" if level == 2 else ":", lw=1, label=name)
    bx.set_xscale("log")
    bx.set_xticks(scales, [f"{v:g}" for v in scales])
    bx.minorticks_off()
    bx.set_xlabel("learning-rate scale")
    bx.set_ylabel("exponent of τ in the radius")
    bx.set_title("seeds as dots, mean as line; Lévy predicts α", fontsize=9)
    bx.legend(fontsize=6)
    return fig


def draw(tables: Tables, s: dict, style: ArmStyle) -> dict[str, Figure]:
    """The stage's figure set (gradnoise.studies.FIGURE_SETS), from its tables."""
    sweeps = tables.escape_sweeps
    return {
        "escape_vs_sharpness": escape_vs_sharpness(sweeps),
        "escape_vs_width_height": escape_vs_width_height(sweeps),
        "escape_from_minima": escape_from_minima(tables.escape_minima, style),
    }
