"""Finishing a run: its checkpoints and history put in place, then its resume state removed, so that
a kill at any point reruns to the same outputs."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pyarrow as pa

from gradnoise.errors import InputError
from gradnoise.io import HISTORY_SCHEMA, load_checkpoint, save_torch, tmp_path, write_parquet
from gradnoise.train.resume import _Resume
from gradnoise.train.settings import RunSettings


def _finish(
    settings: RunSettings, run_dir: Path, resume: _Resume, history, meta, factories
) -> None:
    """Put the checkpoints in place, then write the history, then remove the resume state.

    Atomic as a whole: the resume state stays complete until the history (the run's manifest,
    written last) is in place, so a job killed at any point of finishing reruns to the same outputs.
    Checkpoints are linked (or copied), never moved out of the resume state. Checkpoints a run did
    not reach are markers (diverged) or, for a run stopped at its accuracy target, copies of the
    last weights; one it reached but whose file is missing is an error, never a marker."""
    ckpt_dir = run_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    stopped, diverged_at = meta["stopped_at"], meta["diverged_at"]
    for step in settings.training.checkpoints:
        src, dst = resume.dir / f"step{step}.pt", ckpt_dir / f"step{step}.pt"
        if src.exists() and meta["target_reached"] is None:
            _place(src, dst)
        elif src.exists():
            ckpt = load_checkpoint(src)
            ckpt["target_reached"] = meta["target_reached"]
            save_torch(ckpt, dst)
        elif stopped is not None:
            ckpt = load_checkpoint(resume.dir / f"step{stopped}.pt")
            ckpt.update(step=step, stopped_at=stopped, target_reached=meta["target_reached"])
            save_torch(ckpt, dst)
        elif diverged_at is not None and step >= diverged_at:
            save_torch(
                {
                    "step": step,
                    "status": "diverged",
                    "diverged_at": diverged_at,
                    "settings": json.dumps(settings.as_dict(), sort_keys=True),
                },
                dst,
            )
        else:
            raise InputError(f"{src}: checkpoint of a reached iteration is missing; rerun from 0")
    table = pa.Table.from_pylist(history, schema=HISTORY_SCHEMA)
    written = settings.as_dict()
    written["outcome"] = meta
    if factories:  # what made the user's data, model and loss (gradnoise.factories.provenance)
        written["factories"] = factories
    write_parquet(table, run_dir / "history.parquet", written)
    resume.remove()


def _place(src: Path, dst: Path) -> None:
    """Put a copy of `src` at `dst` atomically, leaving `src` in place: a hard link where the file
    system allows it (no bytes copied), else a copy."""
    tmp = tmp_path(dst)
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
