"""Zhou et al. (2020): claims C1–C8 (DESIGN.md §1)."""
