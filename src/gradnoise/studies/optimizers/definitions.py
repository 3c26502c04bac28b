"""What Zhou et al.'s claims share: C1–C8 as stated, the optimizer families and the pairs of arms they
compare, and the agreement of the controlled estimators."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from gradnoise.readings import (
    estimator_label,
)
from gradnoise.stats import (
    Agreement,
    Rule,
    SeedTest,
)

SGD_FAMILY, ADAM_FAMILY = ("sgdm", "sgd"), ("adam", "adamw")  # paper's first
PAIRED = ("C2", "C6", "C7", "C8")  # claims compared pair by pair

CLAIMS = {
    "C1": "The raw gradient noise of SGD and Adam reads heavier-tailed than Gaussian noise of the same per-coordinate scale (α̂ below its Gaussian surrogate's; whether the noise is α-stable with α < 2 is decided by S1–S3, study alpha_stable).",
    "C2": "SGD's noise is heavier-tailed than Adam's (α_SGD < α_Adam).",
    "C3": "Adam's moving average lightens the tails of its noise.",
    "C4": "Adam's coordinate-wise scaling removes much of the noise anisotropy.",
    "C5": "The simulator reproduces the Lévy escape law Γ ≈ ε^(−α)/m(W) of Imkeller & Pavlyukevich (a check of the simulator, not of the optimizers).",
    "C6": "For the same basin, SGD escapes sharp minima faster than Adam.",
    "C7": "SGD lands in flatter minima than Adam.",
    "C8": "SGD generalizes better than Adam.",
}


def arm_pairs(runs: pd.DataFrame) -> list[tuple[str, str]]:
    """(SGD-family arm, Adam-family arm) pairs, the paper's (sgdm, adam) first."""
    opt = runs.drop_duplicates("arm").set_index("arm").optimizer.to_dict()

    def rank(family: tuple[str, ...]) -> list[str]:
        members = [a for a in opt if opt[a] in family]
        return sorted(members, key=lambda a: (family.index(opt[a]), a))

    return [(s, a) for s in rank(SGD_FAMILY) for a in rank(ADAM_FAMILY)]


def _pair(sgd: str, adam: str) -> str:
    return f"{sgd} vs {adam}"


def _papers(runs: pd.DataFrame, sgd: str, adam: str) -> bool:
    """Whether this is the paper's own pair, SGD with momentum against Adam (DESIGN.md §3)."""
    opt = runs.drop_duplicates("arm").set_index("arm").optimizer
    return (opt.get(sgd), opt.get(adam)) == ("sgdm", "adam")


def _agreement(per_estimator: Mapping[str, Mapping[int, float]], rule: Rule) -> Agreement:
    return Agreement({estimator_label(e): SeedTest(v, rule) for e, v in per_estimator.items()})
