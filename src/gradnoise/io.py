"""Files between stages: atomic writes, provenance metadata, and the Parquet contracts.

Every stage writes to a temporary sibling and renames it into place, so a killed job never leaves a file
that looks complete. Every Parquet file carries key-value metadata:

- ``gradnoise.settings``: JSON of every config value that shaped the file;
- ``gradnoise.provenance``: JSON of package versions and the git revision of the code.

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

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

ALL = "__all__"  # the whole network, in the stats table's `layer` column
SETTINGS_KEY = b"gradnoise.settings"
PROVENANCE_KEY = b"gradnoise.provenance"
# The columns that name a checkpoint and its outcome, first in every per-checkpoint table (tails,
# sharpness): stages join on them.
CHECKPOINT_KEY = [
    ("experiment", pa.string()),
    ("optimizer", pa.string()),
    ("seed", pa.int64()),
    ("step", pa.int64()),
    ("status", pa.string()),
]
# The figures stage's files, {results}/{experiment}/figures/{name}.{format}: one function of
# gradnoise.figures each. Kept here, not there, so that parsing the workflow needs no matplotlib.
FIGURES = (
    "alpha_vs_iteration",
    "noise_histogram",
    "covariance_spectra",
    "escape_vs_eps",
    "escape_sgd_vs_adam",
    "training_curves",
    "weight_distance",
    "sharpness_vs_accuracy",
)


class InputError(RuntimeError):
    """An input file is missing, truncated or not what the stage expects; the message names it."""


def _git_revision() -> str:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def provenance() -> dict[str, str]:
    """Versions and code revision; no timestamps, so equal inputs give byte-identical files."""
    from importlib.metadata import PackageNotFoundError, version

    from gradnoise import __version__

    def installed(name: str) -> str:  # without importing it (torch takes seconds)
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    return {
        "gradnoise": __version__,
        "python": sys.version.split()[0],
        **{name: installed(name) for name in ("torch", "numpy", "scipy", "pyarrow")},
        "git_revision": _git_revision(),
    }


def tmp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def write_parquet(table: pa.Table, path: str | Path, settings: Mapping[str, Any]) -> None:
    """Write `table` with settings and provenance metadata, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(table.schema.metadata or {})
    meta[SETTINGS_KEY] = json.dumps(settings, sort_keys=True, default=str).encode()
    meta[PROVENANCE_KEY] = json.dumps(provenance(), sort_keys=True).encode()
    tmp = tmp_path(path)
    pq.write_table(table.replace_schema_metadata(meta), tmp, compression="zstd")
    os.replace(tmp, path)


def read_parquet(path: str | Path, columns: list[str] | None = None) -> pa.Table:
    """Read a gradnoise Parquet file; a missing, truncated or foreign file raises InputError naming it."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    try:
        table = pq.read_table(path, columns=columns)
    except (pa.ArrowException, OSError) as err:
        raise InputError(f"{path}: not a readable Parquet file ({err})") from err
    if SETTINGS_KEY not in (table.schema.metadata or {}):
        raise InputError(
            f"{path}: Parquet file without gradnoise metadata (written by another tool?)"
        )
    return table


def read_settings(path: str | Path) -> dict[str, Any]:
    table_meta = pq.read_schema(path).metadata or {}
    if SETTINGS_KEY not in table_meta:
        raise InputError(f"{path}: Parquet file without gradnoise metadata")
    return json.loads(table_meta[SETTINGS_KEY])


def save_torch(obj: Any, path: str | Path) -> None:
    """torch.save, atomically."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path(path)
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint with weights_only=True; a missing or corrupt file raises InputError naming it."""
    import torch

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several unrelated types for corrupt files
        raise InputError(f"{path}: not a readable checkpoint ({err})") from err
