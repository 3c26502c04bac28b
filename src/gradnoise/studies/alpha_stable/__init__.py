"""Is the gradient noise α-stable at all? (DESIGN.md §11; issue 25): an add-on to Zhou et al.'s study
that decides its premise on the same checkpoints: claims S1–S3 (``claims``) and figures (``plots``).
Its stage (scripts/alpha_stable.py) reduces the per-example gradients of every run's checkpoints
(``gradnoise.per_example``) with ``gradnoise.clt.pool`` to the table ``gradnoise.clt.table``; it lives
outside this package, so that editing a study's claims does not rerun it."""
