"""The checkpoint an arm's ``init_from`` starts it from, checked before any weight is loaded."""

from __future__ import annotations

import json
from typing import Any

from gradnoise.errors import InputError
from gradnoise.io import load_checkpoint
from gradnoise.train.settings import RunSettings


def load_init(path: str, settings: RunSettings) -> dict[str, Any]:
    """The checkpoint an arm starts from; it must exist, be complete and come from the same
    experiment, seed and model (never a silent start from scratch)."""
    ckpt = load_checkpoint(path)
    source = json.loads(ckpt.get("settings", "{}"))
    want = {"experiment": settings.run["experiment"], "seed": settings.seed}
    got = {k: source.get("run", {}).get(k) for k in want}
    if got != want or source.get("model") != settings.model:
        raise InputError(
            f"{path}: checkpoint of another run (run {got}, model {source.get('model')}); "
            f"this arm starts from run {want}, model {settings.model}"
        )
    if ckpt.get("status") != "ok" or "model" not in ckpt:
        raise InputError(f"{path}: the run it comes from ended {ckpt.get('status')!r}")
    return ckpt
