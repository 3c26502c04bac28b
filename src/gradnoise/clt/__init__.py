"""Is the gradient noise α-stable? The generalized CLT as a test (DESIGN.md §11).

- ``hill``: the tail exponent of the per-example distribution (Hill, KS-chosen threshold);
- ``batches``: α̂ of minibatch noise against the batch size, from one per-example pool;
- ``predict``: each model's α̂(B) curve simulated at the same N, B and P, and the distance to it;
- ``laws``: which law (SαS, Student-t, Gaussian) fits the noise at one batch size;
- ``pool``, ``table``: the α-stable study's stage, one checkpoint's pool reduced to its table.
The per-example pool itself comes from ``gradnoise.per_example``.
"""

from gradnoise.clt.batches import alpha_by_batch_size
from gradnoise.clt.hill import hill_curve, tail_exponent, tail_exponent_interval, tail_exponents
from gradnoise.clt.laws import best_laws, shares_by_layer
from gradnoise.clt.predict import Comparison, compare_with_predictions

__all__ = [
    "Comparison",
    "alpha_by_batch_size",
    "best_laws",
    "compare_with_predictions",
    "hill_curve",
    "shares_by_layer",
    "tail_exponent",
    "tail_exponent_interval",
    "tail_exponents",
]
