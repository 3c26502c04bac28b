"""The tails stage: from one noise file, α̂ in every variant with bootstrap CIs and a Gaussian null,
and the anisotropy of the covariance — as one tidy long-format table.

Variants (DESIGN.md §3): ``pooled`` (the reference estimator; from the streamed statistics, so it covers
every coordinate), ``pooled_standardized`` (Mohammadi with every block within one stored coordinate and
the log-means pooled over coordinates: 1/(mean over coordinates of 1/α̂); blocks across coordinates of
one minibatch read cross-coordinate dependence as heavy tails), ``per_coordinate`` (along the sample
axis of each stored coordinate, each capped at 2: median and IQR), ``mcculloch`` and ``hill`` (on the
stored coordinates each divided by its robust scale, pooled: quantiles and order statistics of the
marginals, which cross-coordinate dependence does not bias). Each is computed on a Gaussian surrogate
with the same shapes and per-coordinate scale (``null_*`` columns): for ``pooled`` the surrogate was
streamed through the exact reference layout by the noise stage. The scale is the robust one (IQR/1.349,
equal to the std for Gaussian noise): a std-matched surrogate of heavy-tailed noise inherits the
extremes through each coordinate's sample std and is itself scale-mixed.

Which estimators may decide a claim ("controlled": calibrated on SαS and Gaussian inputs through every
view at the configs' P, and reading Gaussian noise of any covariance, rank 1 to full, as its null; see
tests/test_tails.py): ``per_coordinate`` and ``pooled_standardized`` (the block estimators), and
``mcculloch`` as the independent cross-check (quantiles, no blocks). ``hill`` is a diagnostic: valid
against its null, but no α near 2 (DESIGN.md §5b). ``pooled`` is the reference number and never decides
(it reads scale mixing as heavy tails, and so does its null). Calibrated on SαS only: a finite-variance
law can read below 2 (Student-t(3)), and an EMA of sparse spikes can read above 2.

Dependent rows (DESIGN.md §3): the ``averaged`` view is an EMA of the draws, so its blocks hold rows
2·lag apart and its bootstrap resamples the draws recovered from the EMA
(``gradnoise.views.RowDependence``, ``innovations``); its Gaussian null is the same EMA of Gaussian
draws. Where it has too few effective independent draws (``min_effective_draws``) or too few rows for
a block of two (P < 4·lag), or lost rows to non-finite values, the estimates are NaN, the verdict
``inconclusive`` and the ``note`` says why. Rows with non-finite values (a NaN gradient) are skipped
and counted in ``rows_skipped``; a file where fewer than half remain is an error.

Verdict of each α estimate against its null (rule fixed in ``null_verdicts``, not tuned on results):
``heavy-tailed`` if ci_high < null_ci_low and null − estimate > null_margin; ``not heavy-tailed`` if
ci_low > null − null_margin; otherwise ``inconclusive``. The pooled estimate alone never decides.

One idea per module:

- ``settings``: the settings of every estimate (``TailSettings``);
- ``block_estimators``: Mohammadi's block estimator along each stored coordinate;
- ``coordinate_estimators``: every estimator on one matrix of stored coordinates;
- ``bootstrap``: their bootstrap replicates;
- ``null_verdicts``: each estimate beside its Gaussian null, and the verdict rule;
- ``pooled``: the reference estimator from the streamed row sums;
- ``table``: the tails table of one noise file (``analyze``).
"""

from gradnoise.tails.block_estimators import per_coordinate_alphas, robust_scale, standardize
from gradnoise.tails.bootstrap import bootstrap_estimates
from gradnoise.tails.coordinate_estimators import (
    COORDINATE_ESTIMATORS,
    MCCULLOCH_QUANTILES,
    alpha_of_view,
    coordinate_estimates,
    hill_k,
)
from gradnoise.tails.null_verdicts import verdict
from gradnoise.tails.pooled import pooled_from_rows
from gradnoise.tails.settings import TailSettings
from gradnoise.tails.table import TAILS_SCHEMA, analyze, finite_rows, unavailable_reason

__all__ = [
    "COORDINATE_ESTIMATORS",
    "MCCULLOCH_QUANTILES",
    "TAILS_SCHEMA",
    "TailSettings",
    "alpha_of_view",
    "analyze",
    "bootstrap_estimates",
    "coordinate_estimates",
    "finite_rows",
    "hill_k",
    "per_coordinate_alphas",
    "pooled_from_rows",
    "robust_scale",
    "standardize",
    "unavailable_reason",
    "verdict",
]
