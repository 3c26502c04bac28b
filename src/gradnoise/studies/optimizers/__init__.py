"""Zhou et al. (2020): claims C1–C8 (DESIGN.md §1) and their figures.

One idea per module:

- ``claims``: the registry's entry point, C1–C8 with their rules (``evaluate_claims``, ``claims``);
- ``definitions``: the claims as stated, the optimizer families and the pairs of arms they compare;
- ``heavy_tails``: C1 and C2, the tails of the raw noise;
- ``adam_update``: C3 and C4, Adam's moving average and preconditioner;
- ``escape``: C5 and C6, from the simulate stage's exit times;
- ``flat_minima``: C7, the sharpness of the final minima;
- ``generalization``: C8, test accuracy;
- ``plots``: the figures.
"""
