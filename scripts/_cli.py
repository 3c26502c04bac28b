"""Shared command-line plumbing of the stage scripts: settings from JSON, logging to stderr."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

# The stage scripts run the library next to them (not another installed copy), so that editing
# src/gradnoise/ — which the rules declare as inputs — changes what runs.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--settings",
        required=True,
        help="JSON object with the config slice of this job (or @file.json)",
    )
    p.add_argument("--threads", type=int, default=1, help="CPU threads for torch (default 1)")
    return p


def settings(text: str) -> dict:
    if text.startswith("@"):
        text = Path(text[1:]).read_text()
    return json.loads(text)


def setup_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
