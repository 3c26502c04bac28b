"""Hoffer, Hubara & Soudry (2017), large batches (DESIGN.md §10a): claims H1–H6, distance fits, figures."""
