"""The alpha_stable stage's table, ``alpha_stable/{arm}/seed{seed}.parquet``: one tidy row per
(checkpoint, layer, quantity, law, x), written by ``pool.analyze`` and read by the claims and figures.
Import-light (pyarrow only), so that reading the table does not pull in the statistics.

==========================  ================  ===============================================================
quantity                    law               value (x, n)
==========================  ================  ===============================================================
tail_exponent               —                 S1: median over the layer's coordinates (``__all__``: every
                                              stored one) of Hill's exponent of the per-example noise at the
                                              KS threshold; interval: bootstrap over coordinates; null_value:
                                              the same on a Gaussian pool of the same shape (x: median k;
                                              n: coordinates)
infinite_variance_share     —                 share of those coordinates with exponent < 2 (as above)
norm_tail_exponent          —                 tail exponent of the layer's per-example gradient norms,
                                              bootstrap over examples (x: k; n: examples)
hill, hill_norm             —                 the Hill plot: α̂_k at k = x, median over the layer's
                                              coordinates; of its norms
alpha                       measured, sas,    S2: α̂ of minibatch noise at batch size x, median over the
                            finite_variance   study's coordinates (measured: interval over coordinates;
                                              models: band over simulated pools)
model_parameter             sas,              SαS's α, the Student-t's ν of the simulated models
                            finite_variance
rms_distance                sas,              S2: root mean square over B of measured − predicted α̂
                            finite_variance   (interval: the measured curve's coordinate bootstrap)
t_tail_index                measured, sas,    S3: median over coordinates of 1/ν̂ of the Student-t fit to the
                            finite_variance   noise at the training batch size x (intervals as for alpha)
law_share                   sas, student_t,   S3: share of the layer's coordinates whose noise at the
                            gaussian          training batch size x the law fits best by AIC (n: coordinates)
ccdf                        empirical, sas,   P(|u| > x) of one coordinate's per-example noise and of the
                            student_t,        three laws fitted to it by likelihood (layer: its layer;
                            gaussian          n: its flat parameter index)
ccdf_fit                    sas, student_t,   the fitted α, ν or σ (x: the scale)
                            gaussian
status                      —                 a checkpoint that did not end ok (no other rows)
==========================  ================  ===============================================================
"""

from __future__ import annotations

import pyarrow as pa

from gradnoise.io import CHECKPOINT_KEY

SCHEMA = pa.schema(
    [
        *CHECKPOINT_KEY,
        ("layer", pa.string()),
        ("quantity", pa.string()),
        ("law", pa.string()),
        ("x", pa.float64()),
        ("value", pa.float64()),
        ("ci_low", pa.float64()),
        ("ci_high", pa.float64()),
        ("null_value", pa.float64()),
        ("n", pa.int64()),
    ]
)
MODELS = ("sas", "finite_variance")  # the two models of the α̂(B) curve (gradnoise.clt.predict)
