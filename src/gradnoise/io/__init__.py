"""Files between stages: atomic writes, provenance metadata, and the Parquet contracts.

Every stage writes to a temporary sibling and renames it into place, so a killed job never leaves a file
that looks complete. Every Parquet file carries key-value metadata:

- ``gradnoise.settings``: JSON of every config value that shaped the file;
- ``gradnoise.provenance``: JSON of package versions and the git revision of the code.

One idea per module:

- ``contracts``: the Parquet contracts (the noise files' tables, the other stages' schemas) and the
  check a reader makes against them;
- ``files``: atomic writes with provenance metadata, and reads that name the file they refuse.
"""

from gradnoise.errors import InputError
from gradnoise.io.contracts import (
    ALL,
    CHECKPOINT_KEY,
    ESCAPE_MINIMA_SCHEMA,
    ESCAPE_SCHEMA,
    ESCAPE_SLOPES_SCHEMA,
    ESCAPE_SWEEP_SCHEMA,
    HISTORY_SCHEMA,
    NOISE_SAMPLES_SCHEMA,
    NOISE_STATS_SCHEMA,
    SHARPNESS_SCHEMA,
    check_schema,
)
from gradnoise.io.files import (
    PROVENANCE_KEY,
    SETTINGS_KEY,
    load_checkpoint,
    provenance,
    read_histories,
    read_parquet,
    read_settings,
    save_torch,
    tmp_path,
    write_parquet,
)

__all__ = [
    "ALL",
    "CHECKPOINT_KEY",
    "ESCAPE_MINIMA_SCHEMA",
    "ESCAPE_SCHEMA",
    "ESCAPE_SLOPES_SCHEMA",
    "ESCAPE_SWEEP_SCHEMA",
    "HISTORY_SCHEMA",
    "NOISE_SAMPLES_SCHEMA",
    "NOISE_STATS_SCHEMA",
    "PROVENANCE_KEY",
    "SETTINGS_KEY",
    "SHARPNESS_SCHEMA",
    "InputError",
    "check_schema",
    "load_checkpoint",
    "provenance",
    "read_histories",
    "read_parquet",
    "read_settings",
    "save_torch",
    "tmp_path",
    "write_parquet",
]
