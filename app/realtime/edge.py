"""What the real-time edge (``/ws``, ``/sse``) needs of the process, handed down instead of the whole runtime."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.platform.auth import TokenVerifier
from app.platform.settings import Settings
from app.realtime.relay import Relay
from app.services.revocations import Revocations
from app.services.users import UserDirectory

__all__ = ["RealtimeEdge", "edge_of"]


@dataclass(frozen=True, slots=True)
class RealtimeEdge:
    """Built once at start-up (``app/runtime.py``) and kept in the app's state as ``realtime``."""

    settings: Settings
    relay: Relay
    verifier: TokenVerifier
    users: UserDirectory
    revocations: Revocations


def edge_of(scope: Any) -> RealtimeEdge:
    """The edge of the app serving ``scope`` (raw ASGI handlers resolve no dependencies)."""
    edge: RealtimeEdge = scope["litestar_app"].state.realtime
    return edge
