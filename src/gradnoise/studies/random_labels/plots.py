"""The figures of the studies (DESIGN.md §10), one function each: tidy tables in, a matplotlib Figure
out, arms drawn in the colours of ``gradnoise.figures.ArmStyle``. Intervals are t intervals over seeds
(``gradnoise.stats``); published numbers are drawn beside ours, labelled as the paper's."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from gradnoise.figures import ArmStyle, mean_ci, range_band  # noqa: E402
from gradnoise.io import ALL  # noqa: E402
from gradnoise.tables import Tables  # noqa: E402


def _regimes(roles: Mapping[str, str]) -> list[str]:
    from gradnoise.studies import REGIMES

    return [r for r in REGIMES if f"{r}_adversarial" in roles and f"{r}_random" in roles]


INIT_COLORS = {"adversarial": "C3", "random": "C0"}


def accuracy_per_regime(runs: pd.DataFrame, roles: Mapping[str, str], style: ArmStyle) -> Figure:
    """Test (and training) accuracy per regime and initialization: mean and t interval over seeds."""
    fig, ax = plt.subplots(figsize=(8, 4), layout="constrained")
    ok = runs[runs.status == "ok"]
    regimes = _regimes(roles)
    for j, init in enumerate(("adversarial", "random")):
        for i, regime in enumerate(regimes):
            sel = ok[ok.arm == roles[f"{regime}_{init}"]]
            mean, half = mean_ci(sel.test_acc)
            x = i + (j - 0.5) * 0.38
            ax.bar(
                x,
                mean,
                0.36,
                yerr=half,
                capsize=3,
                color=INIT_COLORS[init],
                label=f"{init} initialization" if i == 0 else None,
            )
            ax.plot(np.full(len(sel), x), sel.test_acc, "k.", ms=3)
            train = sel.train_acc.mean()
            ax.plot(
                [x - 0.17, x + 0.17],
                [train, train],
                "k-",
                lw=1,
                label="training accuracy" if i == 0 and j == 0 else None,
            )
    ax.set_xticks(range(len(regimes)), [r.replace("_", " ") for r in regimes])
    shown = ok[ok.arm.isin([roles[f"{r}_{i}"] for r in regimes for i in INIT_COLORS])]
    lo = shown.test_acc.min() if len(shown) else 0
    ax.set_ylim(max(0, lo - 5), 100.5)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(
        "Clean training from the random-label (adversarial) vs a random initialization", fontsize=9
    )
    ax.legend(fontsize=7, loc="lower right")
    return fig


def training_curves_both_phases(
    history: pd.DataFrame, roles: Mapping[str, str], style: ArmStyle
) -> Figure:
    """Left: pretraining on random labels (training accuracy on its own labels, test accuracy on the
    clean test split). Right: the vanilla regime's clean training from both initializations."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
    ok = history[(history.status == "ok") & history.evaluated]
    pre = ok[ok.arm == roles["pretrain"]]
    range_band(axes[0], pre, "iteration", "train_acc", "C3", "training accuracy (random labels)")
    range_band(axes[0], pre, "iteration", "test_acc", "C0", "test accuracy (clean)", "--")
    axes[0].set_title("phase 1: pretraining on random labels", fontsize=9)
    for init in ("adversarial", "random"):
        arm = roles[f"vanilla_{init}"]
        sub = ok[ok.arm == arm]
        range_band(axes[1], sub, "iteration", "train_acc", INIT_COLORS[init], f"{init}: train")
        range_band(axes[1], sub, "iteration", "test_acc", INIT_COLORS[init], f"{init}: test", "--")
    axes[1].set_title("phase 2: vanilla SGD on the clean labels", fontsize=9)
    for ax in axes:
        ax.set_xlabel("iteration")
        ax.set_ylabel("accuracy (%)")
        ax.legend(fontsize=7)
    return fig


def bad_vs_good_minima(
    runs: pd.DataFrame, tails: pd.DataFrame, roles: Mapping[str, str], style: ArmStyle
) -> Figure:
    """Sharpness (λ_max) and gradient-noise α (per-coordinate, raw, final checkpoint) of the minima
    reached from each initialization, per regime: mean and t interval over seeds."""
    alpha = tails[
        (tails.status == "ok")
        & (tails.quantity == "alpha")
        & (tails.estimator == "per_coordinate")
        & (tails.view == "raw")
        & (tails.split == "train")
        & (tails.layer == ALL)
    ]
    alpha = alpha[alpha.step == alpha.groupby("arm").step.transform("max")]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
    regimes = _regimes(roles)
    for ax, (table, column, what) in zip(
        axes,
        (
            (runs[runs.status == "ok"], "top_eigenvalue", "λ_max of the training loss"),
            (alpha, "value", "tail index α (per-coordinate)"),
        ),
        strict=True,
    ):
        for j, init in enumerate(("adversarial", "random")):
            for i, regime in enumerate(regimes):
                vals = table[table.arm == roles[f"{regime}_{init}"]][column]
                mean, half = mean_ci(vals)
                ax.errorbar(
                    i + (j - 0.5) * 0.2,
                    mean,
                    yerr=half,
                    fmt="o",
                    capsize=3,
                    color=INIT_COLORS[init],
                    label=f"{init}" if i == 0 else None,
                )
        ax.set_xticks(range(len(regimes)), [r.replace("_", " ") for r in regimes])
        ax.set_ylabel(what)
        ax.legend(fontsize=7)
    axes[0].set_yscale("log")
    axes[0].set_title("sharpness of the final minimum", fontsize=9)
    axes[1].set_title("gradient-noise tail index at the final minimum", fontsize=9)
    return fig


def draw(tables: Tables, s: dict, style: ArmStyle) -> dict[str, Figure]:
    """The study's figure set (gradnoise.studies.FIGURE_SETS), from its tables."""
    history, _ = tables.histories
    runs, roles = tables.runs, s["roles"]
    return {
        "accuracy_per_regime": accuracy_per_regime(runs, roles, style),
        "training_curves_both_phases": training_curves_both_phases(history, roles, style),
        "bad_vs_good_minima": bad_vs_good_minima(runs, tables.tails, roles, style),
    }
