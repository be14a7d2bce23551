"""The real-time relay benchmark: ``python -m bench --help`` (``make bench``); results in docs/performance.md."""

from __future__ import annotations
