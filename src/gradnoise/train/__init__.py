"""Training one (experiment, arm, seed) run, with checkpoints, history, resume and divergence.

Checkpoints are first written under ``<run>/.resume/`` together with the full training state; a rerun of
a killed job continues from the last one (if its settings and the code training imports are unchanged).
Only at the end are the checkpoints linked into ``<run>/checkpoints/`` and the history (written last)
put in place, and only then is the resume state removed: a kill at any point of finishing reruns to the
same outputs. A run whose loss becomes non-finite or far above its initial loss (``DIVERGENCE_FACTOR``),
or whose weights become non-finite, stops, records ``diverged`` in its history, and writes marker
checkpoints for the iterations it did not reach. A run with a training-accuracy
target stops when it reaches it; later checkpoints then hold the weights it stopped with.

What an arm adds (``gradnoise.arms.Training``): a learning-rate schedule (drops at fixed iterations),
gradient-norm clipping, Ghost Batch Normalization (the loss is the mean over ghost batches of their
mean losses, as in Hoffer et al.'s code), an initialization from another arm's final weights,
random-label training copies, and per-batch augmentation. The history records ‖w_t − w_0‖ for the
whole network and its first layer at log-spaced iterations as well as at every evaluation.

One idea per module:

- ``settings``: the config slice of one run (``RunSettings``) and its digest;
- ``batches``: the examples a run trains on and the seeded minibatch stream;
- ``distances``: ‖w_t − w_0‖, the flat weights and the iterations it is recorded at;
- ``divergence``: when a run counts as diverged;
- ``init_from``: the checkpoint an arm starts from;
- ``loop``: a run in progress, its iterations and its history;
- ``resume``: the resume state under ``<run>/.resume/``;
- ``finish``: checkpoints and history put in place, atomically as a whole;
- ``run``: ``train_run``, the steps in order.
"""

from gradnoise.train.batches import BatchStream, training_data
from gradnoise.train.distances import DISTANCE_POINTS, distance_iterations, flat_params
from gradnoise.train.divergence import DIVERGENCE_FACTOR, diverged, divergence_limit
from gradnoise.train.init_from import load_init
from gradnoise.train.run import train_run
from gradnoise.train.settings import RunSettings

__all__ = [
    "DISTANCE_POINTS",
    "DIVERGENCE_FACTOR",
    "BatchStream",
    "RunSettings",
    "distance_iterations",
    "diverged",
    "divergence_limit",
    "flat_params",
    "load_init",
    "train_run",
    "training_data",
]
