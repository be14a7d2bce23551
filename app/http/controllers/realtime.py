"""``POST /realtime/ticket``: a single-use, 30-second ticket for a browser's WebSocket or SSE connection."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Controller, Request, post
from litestar.di import NamedDependency

from app.platform.auth import Identity
from app.realtime.tickets import TicketStore

__all__ = ["RealtimeController", "Ticket"]


class Ticket(msgspec.Struct, frozen=True, rename="camel"):
    """A ticket for ``/ws?ticket=...`` or ``/sse?ticket=...``."""

    ticket: str
    expires_at: str


class RealtimeController(Controller):
    """Tickets for browsers, which cannot put a bearer token on a WebSocket."""

    path = "/realtime"
    tags = ("real-time",)

    @post("/ticket", status_code=200, summary="A single-use ticket (30 s) for /ws or /sse")
    async def ticket(self, request: Request[Identity, Any, Any], tickets: NamedDependency[TicketStore]) -> Ticket:
        ticket, expires_at = await tickets.issue(request.user)
        at = datetime.fromtimestamp(expires_at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return Ticket(ticket=ticket, expires_at=at)
