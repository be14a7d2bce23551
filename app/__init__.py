"""Litestar edges and the domain of the push server: settings, identity, REST, /ws and SSE, services, CLI."""

from __future__ import annotations

__all__: list[str] = []
