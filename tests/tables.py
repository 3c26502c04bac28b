"""Rows of the pipeline's tables, for the tests that build claims inputs by hand."""

from __future__ import annotations

from typing import Any


def tails_row(**fields: Any) -> dict[str, Any]:
    """One row of the tails table: by default the whole network's α of the raw training noise of a
    run that ended ok; `fields` give the rest (arm, optimizer, seed, step, estimator, value, …)."""
    return {
        "experiment": "e",
        "status": "ok",
        "split": "train",
        "view": "raw",
        "layer": "__all__",
        "quantity": "alpha",
        "note": None,
    } | fields
