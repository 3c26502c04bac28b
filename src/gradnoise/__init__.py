"""gradnoise: measure the gradient noise of SGD and Adam and test the heavy-tail explanation of their
generalization gap (Zhou et al., NeurIPS 2020), with the controls the original work lacked."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["measure"]


def __getattr__(name: str) -> Any:
    """``gradnoise.measure`` on first use, so that ``import gradnoise`` does not import torch."""
    if name == "measure":
        from gradnoise.measurement import measure

        return measure
    raise AttributeError(f"module 'gradnoise' has no attribute {name!r}")
