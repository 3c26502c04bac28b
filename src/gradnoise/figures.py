"""The comparison figures. Each function takes tidy tables and returns a matplotlib Figure; the script
saves them. Colours are fixed per optimizer so that every figure reads the same way."""

from __future__ import annotations

import math
from importlib import resources

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from scipy import stats  # noqa: E402

from gradnoise.stats import t_interval  # noqa: E402

COLORS = {"sgd": "C0", "sgdm": "C1", "adam": "C3", "adamw": "C4", "adai": "C2", "adaiw": "C5"}
_SHORT = {"independent": "indep.", "isotropic": "isotr."}
NAMES = {
    "sgd": "SGD",
    "sgdm": "SGD-M",
    "adam": "Adam",
    "adamw": "AdamW",
    "adai": "Adai",
    "adaiw": "AdaiW",
}


class ArmStyle:
    """Label and colour of each arm: the optimizer's colour where arms are the optimizers, else one
    colour per arm in config order."""

    def __init__(self, arms: dict[str, tuple[str, str]]) -> None:
        self.arms = arms  # arm → (label, optimizer)
        own = all(arm == opt for arm, (_, opt) in arms.items())
        self.colors = {
            arm: COLORS.get(opt, "k") if own else f"C{i % 10}"
            for i, (arm, (_, opt)) in enumerate(arms.items())
        }

    def label(self, arm: str) -> str:
        label, opt = self.arms.get(arm, (arm, arm))
        return NAMES.get(opt, opt) if label == arm == opt else label

    def color(self, arm: str) -> str:
        return self.colors.get(arm, "k")

    def present(self, arms) -> list[str]:
        """The arms of `self` that occur in `arms`, in config order."""
        have = set(arms)
        return [a for a in self.arms if a in have]


def _grid(n: int, width: float = 4.0, height: float = 3.2) -> tuple[Figure, np.ndarray]:
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(width * cols, height * rows), squeeze=False, layout="constrained"
    )
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat)


def reference_history() -> pd.DataFrame:
    """Zhou et al.'s released CIFAR-10 history (see data/REFERENCE.md for provenance)."""
    with resources.files("gradnoise").joinpath("data/zhou2020_cifar10_history.csv").open() as f:
        return pd.read_csv(f)


def alpha_vs_iteration(tails: pd.DataFrame, split: str, dataset: str, style: ArmStyle) -> Figure:
    """α̂ against iteration per optimizer: pooled (reference), standardized, per-coordinate, and nulls."""
    df = tails[
        (tails.status == "ok")
        & (tails.quantity == "alpha")
        & (tails.split == split)
        & (tails.layer == "__all__")
        & (tails.view == "raw")
    ]
    opts = style.present(df.arm)
    fig, axes = _grid(max(len(opts), 1))
    ref = reference_history() if dataset == "cifar10" else None
    styles = {
        "pooled": ("C0", "pooled (reference)"),
        "pooled_standardized": ("C1", "pooled, standardized"),
        "per_coordinate": ("C2", "per-coordinate median"),
    }
    for ax, opt in zip(axes[: len(opts)], opts, strict=True):
        sub = df[df.arm == opt]
        for est, (color, label) in styles.items():
            g = sub[sub.estimator == est].groupby("step")
            m = g[["value", "ci_low", "ci_high", "null_value"]].mean().sort_index()
            m = m[np.isfinite(m.value)]
            if m.empty:
                continue
            x = np.maximum(m.index.to_numpy(), 1)
            ax.plot(x, m.value, "o-", color=color, label=label, ms=3)
            ax.fill_between(x, m.ci_low, m.ci_high, color=color, alpha=0.2)
            ax.plot(x, m.null_value, "--", color=color, lw=1, label=f"{label}: Gaussian null")
        if ref is not None:
            r = ref[
                (ref.optimizer == ("adam" if style.arms[opt][1].startswith("adam") else "sgd"))
                & (ref.split == split)
            ]
            ax.plot(
                np.maximum(r.iteration, 1),
                r.alpha_hat,
                color="0.4",
                lw=1,
                label="Zhou et al. 2020 (CIFAR-10)",
            )
        ax.axhline(2.0, color="k", lw=0.5)
        ax.set_xscale("log")
        ax.set_title(f"{style.label(opt)} — raw noise, {split} split")
        ax.set_xlabel("iteration (0 shown at 1)")
        ax.set_ylabel("tail index α̂")
    if opts:
        handles, labels = axes[0].get_legend_handles_labels()
        if len(opts) < len(axes):  # an empty panel is free: put the legend there
            axes[len(opts)].set_visible(True)
            axes[len(opts)].axis("off")
            axes[len(opts)].legend(handles, labels, loc="center", fontsize=8)
        else:
            fig.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=7)
    return fig


def noise_histogram(coords: np.ndarray, alpha: float, layer: str, label: str) -> Figure:
    """Standardized noise of one layer (log density) with a fitted Gaussian and a fitted SαS density;
    a note instead when no run left noise to draw (every run diverged)."""
    x = coords[np.isfinite(coords)]
    if x.size == 0:
        fig, ax = plt.subplots(figsize=(5.5, 3.8), layout="constrained")
        ax.text(0.5, 0.5, "no noise to draw: every run diverged", ha="center", va="center")
        ax.set_axis_off()
        return fig
    x = (x - np.median(x)) / (np.subtract(*np.quantile(x, [0.75, 0.25])) or 1.0)
    fig, ax = plt.subplots(figsize=(5.5, 3.8), layout="constrained")
    lim = np.quantile(np.abs(x), 0.999) * 1.1
    bins = np.linspace(-lim, lim, 81)
    ax.hist(x, bins=bins, density=True, color="0.7", label=f"noise ({x.size} values)")
    grid = np.linspace(-lim, lim, 241)
    ax.plot(grid, stats.norm.pdf(grid, 0, x.std()), "C0", label="Gaussian (same variance)")
    if math.isfinite(alpha) and alpha < 2:
        unit_iqr = 2 * stats.levy_stable.ppf(0.75, alpha, 0)
        ax.plot(
            grid,
            stats.levy_stable.pdf(grid, alpha, 0, scale=1.0 / unit_iqr),
            "C3",
            label=f"SαS, α = {alpha:.2f} (McCulloch)",
        )
    ax.set_yscale("log")
    ax.set_ylim(bottom=max(1.0 / x.size / (bins[1] - bins[0]) / 3, 1e-6))
    ax.set_xlabel("noise / IQR (standardized)")
    ax.set_ylabel("density (log scale)")
    ax.set_title(f"{label}: layer {layer}, final checkpoint")
    ax.legend(fontsize=7)
    return fig


def covariance_spectra(tails: pd.DataFrame, split: str, style: ArmStyle) -> Figure:
    """Normalized covariance spectra (λ_i/Σλ) per optimizer and view, final checkpoint, seed 0."""
    df = tails[
        (tails.status == "ok")
        & (tails.quantity == "effective_rank")
        & (tails.split == split)
        & (tails.layer == "__all__")
    ]
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    for opt in style.present(df.arm):
        sub = df[df.arm == opt]
        sub = sub[(sub.step == sub.step.max()) & (sub.seed == sub.seed.min())]
        for view, ls in (("raw", "-"), ("preconditioned", "--")):
            r = sub[sub.view == view]
            if r.empty:
                continue
            ev = np.asarray(r.spectrum.iloc[0], dtype=float)
            ev = ev[ev > 0] / ev.sum()
            ax.plot(
                np.arange(1, ev.size + 1),
                ev,
                ls,
                color=style.color(opt),
                label=f"{style.label(opt)} {view} (eff. rank {r.value.iloc[0]:.1f})",
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("eigenvalue rank")
    ax.set_ylabel("λ_i / Σλ")
    ax.set_title(f"Noise covariance spectrum, final checkpoint ({split} split)")
    ax.legend(fontsize=6)
    return fig


def escape_vs_eps(escape: pd.DataFrame, style: ArmStyle) -> Figure:
    """Mean exit time against ε (log-log): simulation with 95 % CI and the predicted 1/(ε^α m(G))."""
    ok = escape[(escape.status == "ok") & np.isfinite(escape.mean_exit)]
    panels = [("calibration", None)] + [
        ("matched", b) for b in sorted(set(ok[ok.scenario == "matched"].basin))
    ]
    fig, axes = _grid(len(panels))
    for ax, (scenario, basin) in zip(axes[: len(panels)], panels, strict=True):
        sub = ok[ok.scenario == scenario]
        if basin is not None:
            sub = sub[
                (sub.basin == basin)
                & (sub.scale == "flat")
                & (sub.noise_model == sub.noise_model.min())
            ]
            groups = [(style.label(o), style.color(o), g) for o, g in sub.groupby("arm")]
            ax.set_title(
                f"matched SDEs, {basin} basin (flat), {sub.noise_model.min()} noise", fontsize=9
            )
        else:
            groups = [(f"α = {a:.2f}", f"C{i}", g) for i, (a, g) in enumerate(sub.groupby("alpha"))]
            ax.set_title("calibration: 1-D, U = x²/2 on (−1, 1)", fontsize=9)
        for label, color, g in groups:
            g = g.sort_values("eps")
            err = [g.mean_exit - g.ci_low, g.ci_high - g.mean_exit]
            ax.errorbar(
                g.eps,
                g.mean_exit,
                yerr=err,
                fmt="o",
                color=color,
                ms=4,
                label=f"{label} (slope {g.slope.iloc[0]:.2f}, −α = {g.slope_target.iloc[0]:.2f})",
            )
            ax.plot(g.eps, g.predicted, "-", color=color, lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("ε")
        ax.set_ylabel("mean first exit time (SDE time)")
        ax.legend(fontsize=6)
    return fig


def escape_sgd_vs_adam(escape: pd.DataFrame, style: ArmStyle) -> Figure:
    """Mean exit times of every optimizer's matched SDE in the same basins, at the smallest ε."""
    ok = escape[
        (escape.status == "ok") & (escape.scenario == "matched") & np.isfinite(escape.mean_exit)
    ]
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    if ok.empty:
        ax.text(0.5, 0.5, "no matched simulations", ha="center")
        return fig
    ok = ok[ok.eps == ok.eps.min()]
    configs = (
        ok[["basin", "scale", "noise_model"]]
        .drop_duplicates()
        .sort_values(["basin", "scale", "noise_model"])
    )
    opts = style.present(ok.arm)
    width = 0.8 / max(len(opts), 1)
    for i, opt in enumerate(opts):
        g = (
            ok[ok.arm == opt]
            .set_index(["basin", "scale", "noise_model"])
            .reindex(pd.MultiIndex.from_frame(configs))
        )
        x = np.arange(len(configs)) + i * width
        ax.bar(
            x,
            g.mean_exit,
            width,
            color=style.color(opt),
            label=f"{style.label(opt)} (α = {g.alpha.dropna().iloc[0]:.2f})"
            if g.alpha.notna().any()
            else style.label(opt),
            yerr=[g.mean_exit - g.ci_low, g.ci_high - g.mean_exit],
            capsize=2,
        )
    ax.set_xticks(
        np.arange(len(configs)) + 0.4 - width / 2,
        ["\n".join(_SHORT.get(w, w) for w in c) for c in configs.itertuples(index=False)],
        fontsize=7,
    )
    ax.set_yscale("log")
    ax.set_ylabel(f"mean first exit time at ε = {ok.eps.min():g}")
    ax.set_title("Escape from the same basins (normalization: trace(MMᵀ) = d, D = I)", fontsize=9)
    ax.legend(fontsize=7)
    return fig


def _seed_band(
    ax, df: pd.DataFrame, x: str, y: str, color: str, ls: str = "-", label: str | None = None
) -> None:
    g = df.groupby(x)[y]
    m, lo, hi = g.mean(), g.min(), g.max()
    ax.plot(m.index, m, ls, color=color, label=label)
    ax.fill_between(m.index, lo, hi, color=color, alpha=0.15)


def training_curves(history: pd.DataFrame, style: ArmStyle) -> Figure:
    """Train/test accuracy and loss per arm (mean over seeds, band = range), and the gap."""
    ok = history[(history.status == "ok") & history.evaluated]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), layout="constrained")
    for opt in style.present(ok.arm):
        sub = ok[ok.arm == opt].assign(gap=lambda d: d.train_acc - d.test_acc)
        c, name = style.color(opt), style.label(opt)
        _seed_band(axes[0], sub, "iteration", "train_acc", c, "-", f"{name} train")
        _seed_band(axes[0], sub, "iteration", "test_acc", c, "--", f"{name} test")
        _seed_band(axes[1], sub, "iteration", "train_loss", c, "-")
        _seed_band(axes[1], sub, "iteration", "test_loss", c, "--")
        _seed_band(axes[2], sub, "iteration", "gap", c, "-", name)
    for ax, label in zip(
        axes, ("accuracy (%)", "cross-entropy loss", "train − test accuracy (points)"), strict=True
    ):
        ax.set_xlabel("iteration")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=6, ncol=2)
    axes[2].legend(fontsize=7)
    axes[0].set_title("accuracy (solid: train, dashed: test)")
    axes[1].set_title("loss (solid: train, dashed: test)")
    axes[2].set_title("generalization gap (band: seeds' range)")
    diverged = history[history.status == "diverged"]
    for r in diverged.itertuples():
        axes[1].axvline(r.iteration, color=style.color(r.arm), lw=0.8, ls=":")
    return fig


def weight_distance(history: pd.DataFrame, style: ArmStyle) -> Figure:
    """‖w_t − w_0‖ against log t (Hoffer et al. 2017 report ∝ log t)."""
    ok = history[(history.status == "ok") & (history.iteration > 0)]
    fig, ax = plt.subplots(figsize=(5.5, 3.8), layout="constrained")
    for opt in style.present(ok.arm):
        sub = ok[ok.arm == opt]
        _seed_band(ax, sub, "iteration", "weight_distance", style.color(opt), "-", style.label(opt))
    ax.set_xscale("log")
    ax.set_xlabel("iteration t (log scale)")
    ax.set_ylabel("‖w_t − w_0‖")
    ax.set_title("Distance travelled from initialization")
    ax.legend(fontsize=7)
    return fig


def sharpness_vs_accuracy(runs: pd.DataFrame, style: ArmStyle) -> Figure:
    """Top Hessian eigenvalue of each run's final minimum against its test accuracy."""
    ok = runs[runs.status == "ok"]
    fig, ax = plt.subplots(figsize=(5.5, 3.8), layout="constrained")
    for opt in style.present(ok.arm):
        r = ok[ok.arm == opt]
        ax.scatter(
            r.top_eigenvalue, r.test_acc, color=style.color(opt), label=style.label(opt), s=30
        )
    ax.set_xscale("log")
    ax.set_xlabel("top Hessian eigenvalue λ_max (log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Sharpness of the final minimum vs generalization")
    ax.legend(fontsize=7)
    return fig


def mean_ci(values) -> tuple[float, float]:
    """Mean over seeds and the half-width of its t interval (0 without one)."""
    iv = t_interval(values)
    return iv.value, (iv.high - iv.value) if np.isfinite(iv.high) else 0.0


def range_band(ax, df: pd.DataFrame, x: str, y: str, color: str, label: str, ls: str = "-") -> None:
    """The mean over seeds of `y` against `x` with the range of the seeds shaded."""
    g = df.groupby(x)[y]
    m, lo, hi = g.mean(), g.min(), g.max()
    ax.plot(m.index, m, ls, color=color, label=label)
    ax.fill_between(m.index, lo, hi, color=color, alpha=0.15)
