"""The escape-time figures of Zhou et al.'s study (DESIGN.md §9): simulated escape times against ε,
and SGD's against Adam's."""

from __future__ import annotations

from matplotlib.figure import Figure

from gradnoise import figures
from gradnoise.tables import Tables


def draw(tables: Tables, s: dict, style: figures.ArmStyle) -> dict[str, Figure]:
    return {
        "escape_vs_eps": figures.escape_vs_eps(tables.escape, style),
        "escape_sgd_vs_adam": figures.escape_sgd_vs_adam(tables.escape, style),
    }
