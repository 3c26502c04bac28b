"""The figures of the studies (DESIGN.md §10), one function each: tidy tables in, a matplotlib Figure
out, arms drawn in the colours of ``gradnoise.figures.ArmStyle``. Intervals are t intervals over seeds
(``gradnoise.stats``); published numbers are drawn beside ours, labelled as the paper's."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from gradnoise.figures import ArmStyle, mean_ci, range_band  # noqa: E402
from gradnoise.io import ALL  # noqa: E402
from gradnoise.tables import Tables  # noqa: E402

LARGE_BATCH_ORDER = ("small", "large", "large_lr", "large_gbn", "large_ra")
PAPER_LABELS = ("SB", "LB", "+LR", "+GBN", "+RA")
ROLE_ARMS = (
    "sb",
    "lb",
    "lb_lr",
    "lb_lr_gbn",
    "lb_lr_gbn_ra",
)  # the arm names of the published table


def published_accuracies() -> pd.DataFrame:
    """Hoffer et al. (2017)'s test accuracies (see data/REFERENCE.md for provenance)."""
    with resources.files("gradnoise").joinpath("data/hoffer2017_accuracy.csv").open() as f:
        return pd.read_csv(f)


def accuracy_per_arm(
    runs: pd.DataFrame, roles: Mapping[str, str], dataset: str, style: ArmStyle
) -> Figure:
    """Test accuracy of each arm (mean and t interval over seeds), and the paper's numbers."""
    fig, (ax, ref_ax) = plt.subplots(
        1, 2, figsize=(10, 3.8), layout="constrained", width_ratios=[3, 2]
    )
    ok = runs[runs.status == "ok"]
    arms = [roles[r] for r in LARGE_BATCH_ORDER if r in roles]
    for i, arm in enumerate(arms):
        mean, half = mean_ci(ok[ok.arm == arm].test_acc)
        ax.bar(i, mean, yerr=half, color=style.color(arm), capsize=4)
        ax.text(i, mean, f"{mean:.1f}", ha="center", va="bottom", fontsize=7)
        seeds = ok[ok.arm == arm].test_acc
        ax.plot(np.full(len(seeds), i), seeds, "k.", ms=3)
    ax.set_xticks(range(len(arms)), [style.label(a) for a in arms], fontsize=8)
    low = ok.test_acc.min() if len(ok) else 0
    ax.set_ylim(max(0, low - 5), min(100, ok.test_acc.max() + 2) if len(ok) else 100)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"measured ({dataset}): mean, 95 % t interval, seeds as dots", fontsize=9)
    pub = published_accuracies()
    for (name, model), g in pub.groupby(["dataset", "model"], sort=False):
        order = [g[g.arm == a].test_accuracy_pct.iloc[0] for a in ROLE_ARMS]
        ref_ax.plot(range(5), order, "o-", label=f"{name} {model}")
    ref_ax.set_xticks(range(5), PAPER_LABELS, fontsize=8)
    ref_ax.set_ylabel("test accuracy (%)")
    ref_ax.set_title("Hoffer et al. 2017 (published; other data and scale)", fontsize=9)
    ref_ax.legend(fontsize=7)
    return fig


def distance_vs_log_t(
    history: pd.DataFrame, fits: pd.DataFrame, settings: pd.DataFrame, style: ArmStyle
) -> Figure:
    """‖w_t − w_0‖ against log t per arm (band: seeds' range), with the fitted a + b log t over the
    high-learning-rate phase (dashed) and the phase's end (dotted)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    ok = history[(history.status == "ok") & (history.iteration > 0)]
    for ax, (quantity, column) in zip(
        axes, (("whole", "weight_distance"), ("first_layer", "first_layer_distance")), strict=True
    ):
        for arm in style.present(ok.arm):
            sub = ok[ok.arm == arm]
            batch = settings[settings.arm == arm].batch_size.iloc[0]
            range_band(
                ax, sub, "iteration", column, style.color(arm), f"{style.label(arm)} (B = {batch})"
            )
            fit = fits[(fits.arm == arm) & (fits.quantity == quantity) & (fits.model == "log")]
            if len(fit):
                end = int(fit.phase_end.iloc[0])
                t = np.geomspace(1, end, 50)
                ax.plot(
                    t, fit.p1.mean() + fit.p2.mean() * np.log(t), "--", color=style.color(arm), lw=1
                )
                ax.axvline(end, color=style.color(arm), ls=":", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("iteration t (log scale)")
        ax.set_ylabel("‖w_t − w_0‖" + (" (first layer)" if quantity == "first_layer" else ""))
        ax.set_title(
            f"{'whole network' if quantity == 'whole' else 'first layer'}: dashed = a + b log t fit",
            fontsize=9,
        )
    axes[0].legend(fontsize=7)
    return fig


def accuracy_vs_updates(history: pd.DataFrame, style: ArmStyle) -> Figure:
    """Test accuracy against the number of updates: curves that coincide across batch sizes mean that
    accuracy follows the updates, not the batch size (claim H5)."""
    fig, ax = plt.subplots(figsize=(6.5, 4), layout="constrained")
    ok = history[(history.status == "ok") & history.evaluated & (history.iteration > 0)]
    for arm in style.present(ok.arm):
        range_band(
            ax, ok[ok.arm == arm], "iteration", "test_acc", style.color(arm), style.label(arm)
        )
    ax.set_xscale("log")
    ax.set_xlabel("number of updates (log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Accuracy against updates (band: seeds' range)", fontsize=9)
    ax.legend(fontsize=7)
    return fig


def alpha_vs_batch_size(tails: pd.DataFrame, runs: pd.DataFrame, style: ArmStyle) -> Figure:
    """α of the raw noise (controlled estimators, training split, whole network) against the arm's
    batch size, at the last checkpoint all arms share and at each arm's final one."""
    df = tails[
        (tails.status == "ok")
        & (tails.quantity == "alpha")
        & (tails.split == "train")
        & (tails.layer == ALL)
        & (tails.view == "raw")
    ].merge(runs[["arm", "seed", "batch_size"]].drop_duplicates(), on=["arm", "seed"])
    shared = (
        set.intersection(*(set(g.step) for _, g in df.groupby("arm"))) - {0} if len(df) else set()
    )
    matched = max(shared) if shared else None
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained", sharey=True)
    for ax, est in zip(axes, ("per_coordinate", "pooled_standardized"), strict=True):
        for arm in style.present(df.arm):
            sub = df[(df.arm == arm) & (df.estimator == est)]
            batch = sub.batch_size.iloc[0]
            for step, marker, what in ((matched, "o", "matched"), (sub.step.max(), "s", "final")):
                vals = sub[sub.step == step]
                if step is None or vals.empty:
                    continue
                mean, half = mean_ci(vals.value)
                jitter = 1.04 if what == "final" else 1.0
                ax.errorbar(
                    batch * jitter,
                    mean,
                    yerr=half,
                    fmt=marker,
                    color=style.color(arm),
                    mfc="none" if what == "final" else style.color(arm),
                    capsize=3,
                    label=f"{style.label(arm)} ({what}, t = {step})",
                )
            null = sub[sub.step == sub.step.max()].null_value.mean()
            ax.plot(batch, null, "_", color="0.4", ms=12)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size B (log scale)")
        ax.set_title(f"{est.replace('_', ' ')} α (grey: Gaussian null)", fontsize=9)
    axes[0].set_ylabel("tail index α")
    axes[1].legend(fontsize=6)
    return fig


def draw(tables: Tables, s: dict, style: ArmStyle) -> dict[str, Figure]:
    """The study's figure set (gradnoise.studies.FIGURE_SETS), from its tables."""
    history, settings = tables.histories
    runs = tables.runs.merge(settings[["arm", "seed", "batch_size"]], on=["arm", "seed"])
    return {
        "accuracy_per_arm": accuracy_per_arm(runs, s["roles"], s["dataset"], style),
        "distance_vs_log_t": distance_vs_log_t(history, tables.fits, settings, style),
        "accuracy_vs_updates": accuracy_vs_updates(history, style),
        "alpha_vs_batch_size": alpha_vs_batch_size(tables.tails, runs, style),
    }
