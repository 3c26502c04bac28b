"""Xie et al.'s escape laws against Zhou et al.'s (DESIGN.md §10c): claims A1–A5 and their figures.

One idea per module:

- ``claims``: the registry's entry point, A1–A5 with their rules (``evaluate``, ``claims``);
- ``definitions``: the claims as stated, the optimizer families, the thresholds;
- ``generalization``: A1, final test accuracy;
- ``landscape_laws``: A2 and A3, the escape-time laws on the controlled landscapes;
- ``trained_minima``: A4, escape from trained networks' minima;
- ``flat_minima``: A5, flat-minima selection;
- ``plots``: the figures.
"""
