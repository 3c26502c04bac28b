"""Files between stages: atomic writes with provenance metadata, and reads that name the file they
refuse (Parquet tables and torch checkpoints)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from gradnoise.errors import InputError
from gradnoise.io.contracts import HISTORY_SCHEMA, check_schema

SETTINGS_KEY = b"gradnoise.settings"
PROVENANCE_KEY = b"gradnoise.provenance"


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


def read_parquet(
    path: str | Path, columns: list[str] | None = None, schema: pa.Schema | None = None
) -> pa.Table:
    """Read a gradnoise Parquet file; a missing, truncated or foreign file, or one without the
    columns of `schema` (the stage's contract) in their types, raises InputError naming it."""
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
    if schema is not None:
        check_schema(table.schema, schema, path)
    return table


def read_histories(paths: list[str]) -> tuple[Any, Any]:
    """Every run's history with its arm and seed as columns, and one row per run with its training
    settings (arm, seed, optimizer, batch_size, iterations, the end of its high-learning-rate phase),
    from the files' metadata."""
    import pandas as pd

    frames, runs = [], []
    for path in paths:
        meta = read_settings(path)
        run, training = meta["run"], meta["training"]
        frames.append(
            read_parquet(path, schema=HISTORY_SCHEMA)
            .to_pandas()
            .assign(arm=run["arm"], seed=run["seed"])
        )
        runs.append(
            {
                "arm": run["arm"],
                "seed": run["seed"],
                "optimizer": run["optimizer"],
                "batch_size": training["batch_size"],
                "iterations": training["iterations"],
                "phase_end": min(training["lr_milestones"] or [training["iterations"]]),
                "target_reached": meta["outcome"]["target_reached"],
            }
        )
    return pd.concat(frames, ignore_index=True), pd.DataFrame(runs)


def read_settings(path: str | Path) -> dict[str, Any]:
    """The settings a gradnoise Parquet file carries; a missing, truncated or foreign file raises
    InputError naming it."""
    if not Path(path).exists():
        raise InputError(f"{path}: file not found")
    try:
        table_meta = pq.read_schema(path).metadata or {}
    except (pa.ArrowException, OSError) as err:
        raise InputError(f"{path}: not a readable Parquet file ({err})") from err
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
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several unrelated types for corrupt files
        raise InputError(f"{path}: not a readable checkpoint ({_first_line(err)})") from None
    if not isinstance(obj, dict):
        raise InputError(
            f"{path}: not a gradnoise checkpoint (holds a {type(obj).__name__}, not a dict)"
        )
    return obj


def _first_line(err: Exception) -> str:
    """The reason torch gives, without its advice to retry with weights_only=False (which would run
    whatever code the file holds)."""
    text = " ".join(str(err).split())
    refused = re.search(r"WeightsUnpickler error: (.*?\.)(\s|$)", text)
    if refused:
        return f"holds objects a weights-only load refuses: {refused.group(1)}"
    first = re.split(r"(?<=\.)\s", text, maxsplit=1)[0]
    return first or type(err).__name__
