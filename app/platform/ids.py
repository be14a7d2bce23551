"""Resource ids: a type prefix, then time-ordered random hex, so ids sort roughly by creation."""

from __future__ import annotations

import os
import time

__all__ = ["new_id"]


def new_id(prefix: str) -> str:
    """A new id like ``ntf_0193a1b2c3d4e5f60718293a4b5c6d7e`` (prefix, 48-bit ms time, 64 random bits)."""
    return f"{prefix}_{int(time.time() * 1000):012x}{os.urandom(8).hex()}"
