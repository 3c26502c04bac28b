"""Xie et al.'s escape laws against Zhou et al.'s (DESIGN.md §10c): claims A1–A5 and their figures."""
