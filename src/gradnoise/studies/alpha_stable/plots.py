"""The α-stable study's figures (DESIGN.md §11), one function each: the stage's tables in
(``gradnoise.clt.table``), a matplotlib Figure out. Each arm is drawn at its final checkpoint; the Hill plot
and the CCDF show one run (the Hill plot: the first SGD-family arm's first seed)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from gradnoise.figures import ArmStyle, _grid  # noqa: E402
from gradnoise.io import ALL  # noqa: E402
from gradnoise.tables import Tables  # noqa: E402

MODEL_STYLE = {
    "sas": ("tab:orange", "SαS model (generalized CLT)"),
    "finite_variance": ("tab:blue", "finite-variance model (Student-t)"),
}
LAW_STYLE = {"sas": ("tab:orange", "-"), "student_t": ("tab:blue", "--"), "gaussian": ("0.3", ":")}


def final(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of each arm's final checkpoint, of runs that ended ok there."""
    ok = table[table.status == "ok"]
    return ok[ok.step == ok.groupby("arm").step.transform("max")]


def _empty(ax, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what}", ha="center", va="center", transform=ax.transAxes)


def alpha_vs_batch_size(table: pd.DataFrame, style: ArmStyle) -> Figure:
    """α̂ of minibatch noise against B from each run's per-example pool, with both models' curves
    simulated at the same sizes (bands: the range over simulated pools and seeds; claim S2)."""
    df = final(table)
    df = df[df.quantity == "alpha"]
    arms = style.present(df.arm)
    fig, axes = _grid(max(len(arms), 1))
    for ax, arm in zip(axes, arms, strict=False):
        sub = df[df.arm == arm]
        for model, (color, label) in MODEL_STYLE.items():
            band = (
                sub[sub.law == model]
                .groupby("x")
                .agg(value=("value", "median"), low=("ci_low", "min"), high=("ci_high", "max"))
            )
            ax.fill_between(band.index, band.low, band.high, color=color, alpha=0.25, label=label)
            ax.plot(band.index, band.value, color=color, lw=1)
        for i, (_, g) in enumerate(sub[sub.law == "measured"].groupby("seed")):
            g = g.sort_values("x")
            err = [g.value - g.ci_low, g.ci_high - g.value]
            label = "measured (each seed; interval over coordinates)" if i == 0 else None
            ax.errorbar(
                g.x,
                g.value,
                yerr=err,
                fmt="o-",
                ms=3,
                lw=0.8,
                capsize=2,
                label=label,
                color=style.color(arm),
            )
        ax.axhline(2.0, color="0.5", ls=":", lw=1)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size B (from one pool of per-example gradients)")
        ax.set_ylabel("α̂ (per coordinate, median)")
        ax.set_title(f"{style.label(arm)}, t = {int(sub.step.iloc[0])}", fontsize=9)
        ax.legend(fontsize=6)
    if not arms:
        _empty(axes[0], "per-example pool")
    return fig


def _hill_run(df: pd.DataFrame, style: ArmStyle) -> tuple[str, int] | None:
    """(arm, seed) of the Hill plot: the first SGD-family arm (else the first arm), its first seed."""
    arms = style.present(df.arm)
    if not arms:
        return None
    sgd = [a for a in arms if style.arms[a][1] in ("sgdm", "sgd")]
    arm = (sgd or arms)[0]
    return arm, int(df[df.arm == arm].seed.min())


def hill_plot(table: pd.DataFrame, style: ArmStyle) -> Figure:
    """Hill's exponent against the number of order statistics k, per layer: the median over the
    layer's coordinates of the per-example noise, and its per-example gradient norms, with the
    thresholds the KS distance chose (claim S1)."""
    df = final(table)
    run = _hill_run(df[df.quantity == "hill"], style)
    sub = df[(df.arm == run[0]) & (df.seed == run[1])] if run else df.iloc[:0]
    layers = list(dict.fromkeys(sub[sub.quantity == "hill"].layer))
    fig, axes = _grid(max(len(layers), 1), width=3.4, height=2.8)
    for ax, layer in zip(axes, layers, strict=False):
        mine = sub[sub.layer == layer]
        for quantity, chosen, color, label in (
            ("hill", "tail_exponent", "tab:orange", "coordinates (median)"),
            ("hill_norm", "norm_tail_exponent", "tab:green", "gradient norm"),
        ):
            curve = mine[mine.quantity == quantity].sort_values("x")
            ax.plot(curve.x, curve.value, color=color, lw=1.2, label=label)
            pick = mine[mine.quantity == chosen]
            if len(pick) and np.isfinite(pick.x.iloc[0]):
                ax.axvline(pick.x.iloc[0], color=color, ls="--", lw=0.8)
                ax.plot(pick.x.iloc[0], pick.value.iloc[0], "o", color=color, ms=4)
        ax.axhline(2.0, color="0.5", ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_ylim(0, 8)
        ax.set_xlabel("k (order statistics)")
        ax.set_ylabel("Hill α̂_k")
        ax.set_title(layer, fontsize=8)
        ax.legend(fontsize=6)
    if not layers:
        _empty(axes[0], "per-example pool")
    else:
        step = int(sub.step.iloc[0])
        fig.suptitle(f"Hill plots, {style.label(run[0])} seed {run[1]}, t = {step}", fontsize=9)
    return fig


def per_example_ccdf(table: pd.DataFrame, style: ArmStyle) -> Figure:
    """P(|u| > x) of one coordinate's per-example noise (the coordinate whose tail exponent is the
    median one), with SαS, Student-t and Gaussian fitted by likelihood; per arm, its first seed."""
    df = final(table)
    df = df[df.quantity.isin(["ccdf", "ccdf_fit"])]
    arms = style.present(df.arm)
    fig, axes = _grid(max(len(arms), 1))
    for ax, arm in zip(axes, arms, strict=False):
        sub = df[(df.arm == arm) & (df.seed == df[df.arm == arm].seed.min())]
        ccdf, fits = sub[sub.quantity == "ccdf"], sub[sub.quantity == "ccdf_fit"]
        emp = ccdf[ccdf.law == "empirical"].sort_values("x")
        ax.plot(emp.x, emp.value, "o", ms=3, color=style.color(arm), label="per-example noise")
        for law, (color, ls) in LAW_STYLE.items():
            curve = ccdf[ccdf.law == law].sort_values("x")
            par = fits[fits.law == law].value
            name = {"sas": "SαS, α", "student_t": "Student-t, ν", "gaussian": "Gaussian, σ"}[law]
            ax.plot(
                curve.x, curve.value, ls, color=color, lw=1.2, label=f"{name} = {par.iloc[0]:.3g}"
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(0.5 * emp.value.min() if len(emp) else 1e-4, 1.5)  # down to 1/N
        ax.set_xlabel("|u| (per-example gradient − mean)")
        ax.set_ylabel("P(|u| > x)")
        layer = str(emp.layer.iloc[0]) if len(emp) else ALL
        index = int(emp.n.iloc[0]) if len(emp) else -1
        ax.set_title(
            f"{style.label(arm)}, t = {int(sub.step.iloc[0])}: {layer} [{index}]", fontsize=8
        )
        ax.legend(fontsize=6)
    if not arms:
        _empty(axes[0], "per-example pool")
    return fig


def draw(tables: Tables, s: dict, style: ArmStyle) -> dict[str, Figure]:
    """The study's figure set (gradnoise.studies.FIGURE_SETS), from its tables."""
    table = tables.alpha_stable
    return {
        "clt_alpha_vs_batch_size": alpha_vs_batch_size(table, style),
        "clt_hill_plot": hill_plot(table, style),
        "clt_per_example_ccdf": per_example_ccdf(table, style),
    }
