"""The resume state of a run: what a rerun of a killed job continues from, if its settings and the
code training imports are unchanged."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from gradnoise.io import load_checkpoint, save_torch
from gradnoise.train.settings import RunSettings

if TYPE_CHECKING:
    from gradnoise.train.loop import _Run

log = logging.getLogger(__name__)


def _checkpoint(model, optimizer, settings: RunSettings, step: int, status: str = "ok") -> dict:
    return {
        "step": step,
        "status": status,
        "settings": json.dumps(settings.as_dict(), sort_keys=True),
        "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
    }


class _Resume:
    """The resume state under ``<run>/.resume/``: checkpoints reached so far and ``state.pt``, which
    records what made it (the settings' digest and the checksums of the code training imports) and
    is discarded when either differs."""

    def __init__(self, folder: Path, digest: str, code: str) -> None:
        self.dir, self.digest, self.code = folder, digest, code
        self.state_file = folder / "state.pt"

    def load(self, run: _Run) -> int:
        """The iteration to continue from (0 without a usable state)."""
        if not self.state_file.exists():
            if self.dir.exists():  # a state removed half-way: what is left is not a resume state
                shutil.rmtree(self.dir)
            return 0
        state = load_checkpoint(self.state_file)
        if state.get("digest") != self.digest:
            log.info("discarding resume state of other settings (%s)", self.state_file)
        elif state.get("code") != self.code:
            log.info("discarding resume state made by other code (%s)", self.state_file)
        else:
            start = run.restore(state)
            log.info("resuming from iteration %d (%s)", start, self.state_file)
            return start
        shutil.rmtree(self.dir)
        return 0

    def save(self, run: _Run, it: int) -> None:
        save_torch(
            _checkpoint(run.model, run.optimizer, run.settings, it), self.dir / f"step{it}.pt"
        )
        save_torch({"digest": self.digest, "code": self.code, **run.state(it)}, self.state_file)

    def remove(self) -> None:
        """Remove the state file first: a folder without it is never resumed from."""
        self.state_file.unlink(missing_ok=True)
        shutil.rmtree(self.dir, ignore_errors=True)
