"""When a run counts as diverged (config/README.md, "Divergence")."""

from __future__ import annotations

import math

# A run diverged when its batch (or evaluated training) loss exceeds this many times the larger of its
# initial training loss and ln C (config/README.md, "Divergence").
DIVERGENCE_FACTOR = 100.0


def divergence_limit(initial_loss: float, n_classes: int | None) -> float:
    """The batch loss above which a run counts as diverged: DIVERGENCE_FACTOR times the larger of
    the initial training loss and the chance-level loss ln C (a run that starts from trained
    weights, with a tiny initial loss, may still rise to chance without diverging); a task with
    no classes (a factory's) has the initial loss alone."""
    chance = math.log(n_classes) if n_classes else -math.inf
    return DIVERGENCE_FACTOR * max(initial_loss, chance)


def diverged(loss: float, limit: float) -> bool:
    """Divergence as users mean it: a non-finite loss, or one far above where the run started."""
    return not math.isfinite(loss) or loss > limit
