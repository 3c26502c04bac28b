"""The Parquet contracts between stages: the columns and types of every table a stage writes and
the next one reads, and the check a reader makes against them.

Noise files (stage ``noise``), ``noise/{optimizer}/seed{seed}/step{step}.parquet``, one row per
(sample, layer, view, split):

=============  ==============================  ==================================================
column         type                            meaning
=============  ==============================  ==================================================
split          dictionary<string>              ``train`` or ``test``
view           dictionary<string>              ``raw``, ``preconditioned`` or ``averaged``
layer          dictionary<string>              parameter tensor name (``features.0.weight``)
sample         int32                           minibatch index k (0..P-1)
norm           float64                         ‖u_k‖ restricted to the layer, in this view
coords         fixed_size_list<float32>[n]     the stored coordinates of u_k in this layer; NaN
                                               where the layer has fewer than n elements
=============  ==============================  ==================================================

and a companion ``step{step}.stats.parquet``, one row per (split, view, layer) where layer ``__all__``
is the whole network:

=================  ======================  ===========================================================
column             type                    meaning
=================  ======================  ===========================================================
split, view, layer dictionary<string>      as above
numel              int64                   D of the layer (or network)
k1                 int64                   reference block size: largest divisor of P·D ≤ √(P·D)
row_log_x          list<float64>[P]        per sample k: Σ log(|x|+eps) over u_k's entries
row_log_y          list<float64>[P]        per sample k: Σ log(|Y|+eps) over blocks completed in row k
row_n_y            list<int64>[P]          per sample k: number of blocks completed in row k
null_row_log_x,    list                    the same for a Gaussian surrogate with the same per-
null_row_log_y                             coordinate scale (IQR/1.349), streamed through the same layout
eigenvalues        list<float64>[P]        spectrum of G = U Uᵀ/(P−1) of the centered noise, descending
gram               list<float64>[P·P]      G itself (row-major), for layer ``__all__`` only
coord_index        list<int64>[n]          flat indices of the stored coordinates (−1 = padding)
var_q01, var_q50,  float64                 per-coordinate variance: mean over the layer, and
var_q99, var_mean  float64                 quantiles over the coordinates with nonzero variance
var_zero_fraction  float64                 fraction of coordinates whose noise is exactly zero
=================  ======================  ===========================================================

The pooled reference estimate is 1/α̂ = (Σ row_log_y / Σ row_n_y − Σ row_log_x / (P·D)) / log k1.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from gradnoise.errors import InputError

ALL = "__all__"  # the whole network, in the stats table's `layer` column
# The columns that name a checkpoint and its outcome, first in every per-checkpoint table (tails,
# sharpness): stages join on them.
CHECKPOINT_KEY = [
    ("experiment", pa.string()),
    ("arm", pa.string()),
    ("optimizer", pa.string()),
    ("seed", pa.int64()),
    ("step", pa.int64()),
    ("status", pa.string()),
]
# train/{arm}/seed{seed}/history.parquet: one row per evaluation and per log-spaced iteration at
# which the distance from the initialization is recorded (`evaluated` false: no losses there).
HISTORY_SCHEMA = pa.schema(
    [
        ("iteration", pa.int64()),
        ("epoch", pa.float64()),
        ("lr", pa.float64()),
        ("batch_loss", pa.float64()),
        ("evaluated", pa.bool_()),
        ("train_loss", pa.float64()),
        ("train_acc", pa.float64()),
        ("test_loss", pa.float64()),
        ("test_acc", pa.float64()),
        ("weight_distance", pa.float64()),
        ("first_layer_distance", pa.float64()),
        ("status", pa.string()),
    ]
)
# sharpness/{arm}/seed{seed}.parquet: one row, the run's final minimum and outcome.
SHARPNESS_SCHEMA = pa.schema(
    [
        *CHECKPOINT_KEY,
        ("top_eigenvalue", pa.float64()),
        ("power_iterations", pa.int64()),
        ("converged", pa.bool_()),
        ("trace", pa.float64()),
        ("trace_se", pa.float64()),
        ("train_acc", pa.float64()),
        ("test_acc", pa.float64()),
        ("train_loss", pa.float64()),
        ("test_loss", pa.float64()),
        ("target_reached", pa.bool_()),
        ("init_target_reached", pa.bool_()),
    ]
)
# simulate/escape.parquet: one row per simulated configuration (gradnoise.simulate).
ESCAPE_SCHEMA = pa.schema(
    [
        ("experiment", pa.string()),
        ("scenario", pa.string()),
        ("arm", pa.string()),
        ("optimizer", pa.string()),
        ("status", pa.string()),
        ("alpha", pa.float64()),
        ("alpha_measured", pa.float64()),
        ("alpha_source", pa.string()),
        ("spectrum_view", pa.string()),
        ("eps", pa.float64()),
        ("eps_rel", pa.float64()),
        ("scheme", pa.string()),
        ("dt", pa.float64()),
        ("basin", pa.string()),
        ("scale", pa.string()),
        ("width", pa.float64()),
        ("noise_model", pa.string()),
        ("dim", pa.int64()),
        ("n_paths", pa.int64()),
        ("n_censored", pa.int64()),
        ("t_max", pa.float64()),
        ("mean_exit", pa.float64()),
        ("ci_low", pa.float64()),
        ("ci_high", pa.float64()),
        ("predicted", pa.float64()),
        ("ratio", pa.float64()),
        ("m_G", pa.float64()),
        ("slope", pa.float64()),
        ("slope_target", pa.float64()),
        ("normalization", pa.string()),
        ("path_steps", pa.int64()),
    ]
)
# The escape-law stage (gradnoise.escape_tables). escape/sweep_{axis}_{noise}.parquet: one row per
# (optimizer, learning-rate scale, landscape) of one sweep — the measured escape time (exponential MLE
# under censoring, iterations) and both theories' predictions (gradnoise.escape).
ESCAPE_SWEEP_SCHEMA = pa.schema(
    [
        ("experiment", pa.string()),
        ("axis", pa.string()),
        ("noise", pa.string()),
        ("optimizer", pa.string()),
        ("lr_scale", pa.float64()),
        ("lr", pa.float64()),
        ("alpha", pa.float64()),
        ("alpha_measured", pa.float64()),
        ("alpha_source", pa.string()),
        ("noise_model", pa.string()),
        ("scale", pa.float64()),
        ("batch_size", pa.float64()),
        ("sharpness", pa.float64()),
        ("height", pa.float64()),
        ("width", pa.float64()),
        ("dim", pa.int64()),
        ("n_paths", pa.int64()),
        ("n_exits", pa.int64()),
        ("max_iters", pa.int64()),
        ("warmup", pa.int64()),
        ("mean_exit", pa.float64()),
        ("ci_low", pa.float64()),
        ("ci_high", pa.float64()),
        ("path_steps", pa.int64()),
        ("gain", pa.float64()),
        ("log_tau_diffusion", pa.float64()),
        ("kramers_exponent", pa.float64()),
        ("log_tau_levy", pa.float64()),
        ("levy_absolute", pa.bool_()),
    ]
)
# escape/slopes.parquet: per (axis, noise, optimizer, lr scale, regressor) the fitted slope of log τ
# with its interval and the theories' slopes at the same design points (gradnoise.escape.fit_sweep).
ESCAPE_SLOPES_SCHEMA = pa.schema(
    [
        ("experiment", pa.string()),
        ("axis", pa.string()),
        ("noise", pa.string()),
        ("optimizer", pa.string()),
        ("lr_scale", pa.float64()),
        ("lr", pa.float64()),
        ("alpha", pa.float64()),
        ("regressor", pa.string()),
        ("n_points", pa.int64()),
        ("n_without_exits", pa.int64()),
        ("slope", pa.float64()),
        ("slope_low", pa.float64()),
        ("slope_high", pa.float64()),
        ("chi2_red", pa.float64()),
        ("slope_diffusion", pa.float64()),
        ("slope_kramers", pa.float64()),
        ("slope_levy", pa.float64()),
    ]
)
# escape/minima/{arm}/seed{seed}.parquet and escape/minima.parquet: per (run, lr scale, radius) the
# first iteration at which ‖w_t − w*‖ exceeded the radius after the run's final checkpoint
# (max_iters and censored where it never did; status other than ok: no escape was run).
ESCAPE_MINIMA_SCHEMA = pa.schema(
    [
        *CHECKPOINT_KEY,
        ("lr_scale", pa.float64()),
        ("lr", pa.float64()),
        ("batch_size", pa.int64()),
        ("radius", pa.float64()),
        ("exit_iteration", pa.int64()),
        ("censored", pa.bool_()),
        ("max_iters", pa.int64()),
        ("max_distance", pa.float64()),
    ]
)
_DICT_STR = pa.dictionary(pa.int32(), pa.string())
_F64S = pa.list_(pa.float64())
# The noise stage's two tables (see the module docstring). `coords` holds n values per row, n fixed per
# file: a fixed-size list of any size matches the 1 written here.
NOISE_SAMPLES_SCHEMA = pa.schema(
    [
        ("split", _DICT_STR),
        ("view", _DICT_STR),
        ("layer", _DICT_STR),
        ("sample", pa.int32()),
        ("norm", pa.float64()),
        ("coords", pa.list_(pa.float32(), 1)),
    ]
)
NOISE_STATS_SCHEMA = pa.schema(
    [
        ("split", _DICT_STR),
        ("view", _DICT_STR),
        ("layer", _DICT_STR),
        ("P", pa.int64()),
        ("numel", pa.int64()),
        ("k1", pa.int64()),
        ("row_log_x", _F64S),
        ("row_log_y", _F64S),
        ("row_n_y", pa.list_(pa.int64())),
        ("null_row_log_x", _F64S),
        ("null_row_log_y", _F64S),
        ("eigenvalues", _F64S),
        ("gram", _F64S),
        ("coord_index", pa.list_(pa.int64())),
        ("var_q01", pa.float64()),
        ("var_q50", pa.float64()),
        ("var_q99", pa.float64()),
        ("var_mean", pa.float64()),
        ("var_zero_fraction", pa.float64()),
    ]
)


def _plain(t: pa.DataType) -> pa.DataType:
    return t.value_type if pa.types.is_dictionary(t) else t


def _compatible(actual: pa.DataType, expected: pa.DataType) -> bool:
    """Same type, up to dictionary encoding and the size of a fixed-size list."""
    actual, expected = _plain(actual), _plain(expected)
    if pa.types.is_fixed_size_list(expected):
        return pa.types.is_fixed_size_list(actual) and actual.value_type == expected.value_type
    return actual == expected


def check_schema(actual: pa.Schema, expected: pa.Schema, path: str | Path) -> None:
    """Every column of `expected` is in `actual` with a compatible type (extra columns are fine)."""
    for f in expected:
        i = actual.get_field_index(f.name)
        if i < 0:
            raise InputError(f"{path}: column {f.name!r} missing (expected type {f.type})")
        if not _compatible(actual.field(i).type, f.type):
            raise InputError(
                f"{path}: column {f.name!r} has type {actual.field(i).type}, expected {f.type}"
            )
