"""One training run from its settings to its files: start (or resume), iterate, finish."""

from __future__ import annotations

from pathlib import Path

import torch

from gradnoise.allocator import training_step_memory
from gradnoise.errors import InputError
from gradnoise.provenance import code_digest
from gradnoise.train.finish import _finish
from gradnoise.train.loop import _Run
from gradnoise.train.resume import _Resume
from gradnoise.train.settings import RunSettings


@training_step_memory()
def train_run(settings: RunSettings, run_dir: str | Path, threads: int = 1, init: str = "") -> str:
    """Train and write ``history.parquet`` and ``checkpoints/step{k}.pt``; returns the run's status.
    `init`: the checkpoint whose weights start this run (an arm's ``init_from``)."""
    torch.set_num_threads(max(1, threads))
    tr = settings.training
    if bool(init) != bool(tr.init_from):
        raise InputError(f"{run_dir}: arm init_from={tr.init_from!r} but init checkpoint {init!r}")
    run_dir = Path(run_dir)
    run = _Run(settings, init)
    code = code_digest() + "".join(f["sha256"] or "" for f in run.task.provenance.values())
    resume = _Resume(run_dir / ".resume", settings.digest(init), code)
    outcome = run.train(resume.load(run), resume)
    meta = {
        **outcome,
        "target_reached": None if not tr.until_train_acc else outcome["stopped_at"] is not None,
        "random_labels": run.data_meta,
        "init": run.init_meta,
    }
    _finish(settings, run_dir, resume, run.history, meta, run.task.provenance)
    return meta["status"]
