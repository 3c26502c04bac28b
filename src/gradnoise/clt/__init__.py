"""Is the gradient noise α-stable? The generalized CLT as a test (DESIGN.md §11).

- ``hill``: the tail exponent of the per-example distribution (Hill, KS-chosen threshold);
- ``batches``: α̂ of minibatch noise against the batch size, from one per-example pool;
- ``predict``: each model's α̂(B) curve simulated at the same N, B and P, and the distance to it;
- ``laws``: which law (SαS, Student-t, Gaussian) fits the noise at one batch size;
- ``pool``, ``table``: the α-stable study's stage, one checkpoint's pool reduced to its table.
The per-example pool itself comes from ``gradnoise.per_example``.

Nothing is imported here: the claims and figures jobs read ``table``'s schema, and importing the
statistics would cost them torch and scipy (≈ 3.5 s of CPU a job). Import from the modules.
"""
