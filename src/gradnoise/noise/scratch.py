"""Scratch folders for the gradients' spill file (up to gigabytes): where they go, named so that a
later run can tell a killed job's, and removed on the way out."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def scratch_dir() -> str | None:
    """Where the gradient spill file goes: $GRADNOISE_SCRATCH, else $TMPDIR (SLURM sets a local one)."""
    return os.environ.get("GRADNOISE_SCRATCH") or None


def _scratch_prefix() -> str:
    """Scratch folders are named by host and process, so that a later run can tell a dead job's."""
    return f"gradnoise-{socket.gethostname()}-{os.getpid()}-"


_SCRATCH_NAME = re.compile(r"gradnoise-(?P<host>.+)-(?P<pid>\d+)-[a-z0-9_]+")


def remove_stale_scratch(folder: str | Path | None = None) -> list[Path]:
    """Remove the scratch folders that jobs on this host left behind when they were killed (their
    process no longer exists); returns them."""
    folder = Path(folder or scratch_dir() or tempfile.gettempdir())
    host, removed = socket.gethostname(), []
    for entry in folder.glob("gradnoise-*"):
        m = _SCRATCH_NAME.fullmatch(entry.name)
        if not entry.is_dir() or not m or m["host"] != host or _alive(int(m["pid"])):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        log.info("removed the scratch folder of a killed job: %s", entry)
        removed.append(entry)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


@contextlib.contextmanager
def scratch_cleanup() -> Iterator[None]:
    """Remove killed jobs' scratch folders, and turn SIGTERM into SystemExit while the body runs, so
    that the scratch folder (up to gigabytes) is removed on the way out as on SIGINT (Ctrl-C)."""
    remove_stale_scratch()

    def terminate(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
