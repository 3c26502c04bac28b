"""Stable seeds derived from names, so that every configuration gets its own random stream."""

from __future__ import annotations

import hashlib
from typing import Any


def hash_seed(*parts: Any) -> int:
    """A 63-bit seed from `parts` (Python's hash() is salted per process, so it cannot serve)."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little") >> 1
