"""What the escape-law claims share: A1–A5 as stated, the optimizer families they compare, and
their thresholds (config: claims.escape)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from gradnoise.claims import Row, missing

ADAI_FAMILY, SGDM_FAMILY, ADAM_FAMILY = ("adai", "adaiw"), ("sgdm",), ("adam", "adamw")
ORDER = (
    "sgd",
    "sgdm",
    "adam",
    "adamw",
    "adai",
    "adaiw",
)  # gradnoise.optim.OPTIMIZERS, without torch

CLAIMS = {
    "A1": "Adai generalizes at least as well as SGD-M and better than Adam.",
    "A2": "Under Gaussian noise, log τ of SGD, SGD-M and Adai scales with 1/H, Adam's with the weaker 1/√H.",
    "A3": "Under SαS noise, τ is a power law in the basin's width and insensitive to the barrier's height.",
    "A4": "Escape times from trained minima follow the Lévy law: τ ∝ radius^α with α below 2 (Brownian motion: radius²).",
    "A5": "Adai selects flat minima at least as strongly as SGD-M and more strongly than Adam: log τ grows with 1/H with an exponent at least SGD-M's and above Adam's.",
}


@dataclass(frozen=True)
class EscapeLawSettings:
    """Thresholds of A1–A5 (config: claims.escape)."""

    accuracy_margin: float = 0.5
    height_fraction: float = 0.25
    levy_tolerance: float = 0.25
    brownian_margin: float = 0.1
    drift_margin: float = 0.1
    bend_tolerance: float = 0.3
    min_exit_iterations: int = 5
    selection_margin: float = 0.1
    width_tolerance: float = 0.3
    min_points: int = 3


def _missing(claim: str, what: str) -> Row:
    return missing(claim, CLAIMS[claim], what)


def _members(optimizers: pd.Series, names: pd.Series, family: tuple[str, ...]) -> list[str]:
    """The names whose optimizer is in the family, the family's order first."""
    pairs = {n: o for n, o in zip(names, optimizers, strict=True) if o in family}
    return sorted(pairs, key=lambda n: (family.index(pairs[n]), n))
