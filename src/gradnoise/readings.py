"""What every study reads from the stage tables: per-seed α estimates and their nulls (tails) and the
per-run outcomes (sharpness tables), keyed by seed so that arms can be paired."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from gradnoise.io import ALL

# α estimators that decide a claim (DESIGN.md §3): Mohammadi's estimator along each coordinate and
# McCulloch's quantile estimator, the independent cross-check; each reads Gaussian noise of any
# covariance as Gaussian and respects dependent rows, and both must agree where a claim compares α.
# pooled_standardized (blocks within a coordinate, pooled) is reported beside them.
CONTROLLED = ("per_coordinate", "mcculloch")


def estimator_label(estimator: str) -> str:
    labels = {"per_coordinate": "per-coord", "pooled_standardized": "std", "mcculloch": "McCulloch"}
    return labels.get(estimator, estimator)


def combine(a: dict[int, float], b: dict[int, float], f: Callable) -> dict[int, float]:
    """Seed → f(a[s], b[s]) over the seeds both have."""
    return {s: f(a[s], b[s]) for s in sorted(set(a) & set(b))}


class Alphas:
    """Per-seed α estimates and nulls of the tails table (training split, whole network)."""

    def __init__(self, tails: pd.DataFrame) -> None:
        self.df = tails[
            (tails.status == "ok")
            & (tails.quantity == "alpha")
            & (tails.split == "train")
            & (tails.layer == ALL)
        ]

    def final_step(self, arm: str) -> int | None:
        steps = self.df[self.df.arm == arm].step
        return int(steps.max()) if len(steps) else None

    def per_seed(
        self, arm: str, view: str, estimator: str, step: int | None, column: str = "value"
    ) -> dict[int, float]:
        sel = self.df[
            (self.df.arm == arm)
            & (self.df.view == view)
            & (self.df.estimator == estimator)
            & (self.df.step == step)
        ]
        return dict(zip(sel.seed.astype(int), sel[column].astype(float), strict=True))

    def heaviness(self, arm: str, view: str, estimator: str, step: int | None) -> dict[int, float]:
        """null − α per seed: how far below its Gaussian null the estimate lies."""
        return combine(
            self.per_seed(arm, view, estimator, step, "null_value"),
            self.per_seed(arm, view, estimator, step),
            lambda null, a: null - a,
        )

    def notes(self, arm: str, view: str, step: int | None) -> str:
        sel = self.df[(self.df.arm == arm) & (self.df.view == view) & (self.df.step == step)]
        return "; ".join(sorted({n for n in sel.note.dropna() if n}))


def run_values(runs: pd.DataFrame, arm: str, column: str) -> dict[int, float]:
    """Seed → `column` of the arm's runs that ended ok (the sharpness tables: one row per run)."""
    ok = runs[(runs.arm == arm) & (runs.status == "ok")]
    return dict(zip(ok.seed.astype(int), ok[column].astype(float), strict=True))


def diverged_note(table: pd.DataFrame, *arms: str) -> str:
    """What a comparison of these arms leaves out: their runs that did not end ok, each named once
    (`table` has arm, seed and status columns, one row per run or several, as the escape stage's
    minima have one per radius); a status other than ``diverged`` is named beside its run."""
    bad = table[(table.status != "ok") & table.arm.isin(arms)].drop_duplicates(["arm", "seed"])
    names = ", ".join(
        f"{r.arm}/seed{r.seed}" + ("" if r.status == "diverged" else f" ({r.status})")
        for r in bad.itertuples()
    )
    return f"; diverged (left out): {names}" if names else ""
