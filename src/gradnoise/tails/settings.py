"""The settings of every estimate of the tails stage: bootstrap, Hill's fraction, the verdict's
margin and the limits on dependent rows."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TailSettings:
    bootstrap: int = 200
    seed: int = 0
    hill_fraction: float = 0.05
    ci_level: float = 0.95
    null_margin: float = 0.05
    max_row_correlation: float = 0.05
    min_effective_draws: float = 20.0
