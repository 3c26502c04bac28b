"""Gradient noise at a checkpoint, streamed so that the P × D noise matrix never exists in memory.

Reference mode (Zhou et al.'s code): network in eval mode; the split cut into P consecutive minibatches
of size B (no shuffling, last partial batch dropped); g_k the gradient of the mean loss on batch k;
ḡ = mean of the g_k; u_k = g_k − ḡ. Sampled mode draws M minibatches with a seeded generator instead.

Views (DESIGN.md §3):
- ``raw``: u_k;
- ``preconditioned`` (Adam/AdamW): u_k / (√v̂ + eps) with v̂ from the optimizer state of the checkpoint;
- ``averaged`` (SGD-M, Adam/AdamW, Adai/AdaiW): the β-EMA of the sequence of noise draws, taken
  circularly so that every draw is stationary, a_k = c Σ_{j<P} β^j u_{(k−j) mod P} with
  c = (1 − β)/(1 − β^P), then rescaled by 1/√(c² Σ_{j<P} β^{2j}) so that iid noise keeps its variance.
  As a matrix, a = A u with A circulant (``averaging_matrix``); streamed as a circular convolution
  along the samples (FFT), and its Gram matrix is A G Aᵀ of the raw one.

How it streams: one gradient pass writes each g_k (float32, row-major) to a scratch file in $TMPDIR
and does nothing else. One read of that file, in P × c column blocks within a layer (every block
holds all P values of its coordinates, so ḡ, u, variances and order statistics are exact), then gives
every statistic: the P × P Gram matrices (float32 products, summed in float64) per layer and of the
whole network (their diagonals are the layer norms), per-coordinate variances and robust scales, the
stored coordinates, and the row-major pooled statistics of the reference estimator, whose block
structure is known in advance: each block adds, row by row, the pieces of the K1-blocks that cross
it. The Gaussian null is drawn in seeded column tiles, so it is streamed the same way. Memory: a few
D-vectors, a few P × c blocks per worker and the P × P Grams of two layers per worker; the gradients
are computed once, as in the reference, channels-last where that is faster
(``models.fastest_memory_format``), with the heaps keeping a step's memory
(``allocator.reused_step_memory``). Nothing is accumulated during the gradient pass on purpose: work
there contends with the backward passes for the same cores (benchmarks/README.md), and every
statistic but the sums needs ḡ, hence all P gradients.

One idea per module:

- ``layers``: the flat parameter vector, layer by layer, and the stored coordinates;
- ``gradients``: the gradient pass (minibatches and their gradients g_k);
- ``update_views``: the views that drive an optimizer's update;
- ``streams``: the pooled block sums and the Gaussian null, accumulated over blocks of columns;
- ``block_statistics``: Gram products, spectra, robust scales and the circular EMA of one block;
- ``column_pass``: every statistic from one read of the spill file;
- ``scheduling``: the column pass's worker threads;
- ``scratch``: the spill file's scratch folders and their cleanup;
- ``parquet``: the noise files' tables;
- ``sampler``: the two passes per split and per checkpoint.
"""

from gradnoise.io import ALL
from gradnoise.noise.block_statistics import iqr_scale
from gradnoise.noise.gradients import (
    MICRO_BATCH,
    LossOnIndices,
    batch_gradients,
    classification_loss,
    minibatch_gradients,
    minibatches,
)
from gradnoise.noise.layers import Layer, layers_of, stored_coordinates
from gradnoise.noise.parquet import empty_tables, to_tables
from gradnoise.noise.sampler import (
    NoiseSettings,
    NonFiniteNoise,
    checkpoint_noise,
    sample_checkpoint,
    sample_noise,
    sample_split,
)
from gradnoise.noise.scratch import remove_stale_scratch, scratch_cleanup, scratch_dir
from gradnoise.noise.streams import NULL_TILE, GaussianColumns, PooledStream
from gradnoise.noise.update_views import adam_preconditioner, views_for

__all__ = [
    "ALL",
    "MICRO_BATCH",
    "NULL_TILE",
    "GaussianColumns",
    "Layer",
    "LossOnIndices",
    "NoiseSettings",
    "NonFiniteNoise",
    "PooledStream",
    "adam_preconditioner",
    "batch_gradients",
    "checkpoint_noise",
    "classification_loss",
    "empty_tables",
    "iqr_scale",
    "layers_of",
    "minibatch_gradients",
    "minibatches",
    "remove_stale_scratch",
    "sample_checkpoint",
    "sample_noise",
    "sample_split",
    "scratch_cleanup",
    "scratch_dir",
    "stored_coordinates",
    "to_tables",
    "views_for",
]
