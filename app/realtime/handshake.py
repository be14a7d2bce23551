"""Who is connecting to ``/ws`` or ``/sse``: the Origin allow-list and ticket or header authentication."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from app.platform.auth import Identity, bearer_token
from app.platform.errors import Unauthorized
from app.realtime.edge import RealtimeEdge

__all__ = ["authenticate", "origin_allowed"]


def _header(scope: Any, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def origin_allowed(scope: Any, allowed: tuple[str, ...] | None) -> bool:
    """SPEC ``ALLOWED_ORIGINS``: unset admits all; clients that send no Origin (not browsers) pass."""
    origin = _header(scope, b"origin")
    return allowed is None or origin is None or origin.rstrip("/") in allowed


async def authenticate(scope: Any, edge: RealtimeEdge) -> Identity:
    """The caller of a real-time request: a single-use ``?ticket=``, else ``Authorization: Bearer``.

    The caller's user row exists when this returns; the rows of sockets opened together are written
    by one upsert (``UserDirectory.ensure_batched``).

    Raises:
        Unauthorized: no credentials, a used or expired ticket, a bad token, or one revoked (for a
            ticket: the token it was issued for).
    """
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    tickets = query.get("ticket")
    if tickets:
        identity = await edge.relay.tickets.redeem(tickets[0])
        if identity is None:
            raise Unauthorized("unknown, used or expired ticket")
    else:
        identity = edge.verifier.verify(bearer_token(_header(scope, b"authorization")))
    if edge.revocations.refused(identity):
        raise Unauthorized("token revoked: get a new one")
    await edge.users.ensure_batched(identity)
    return identity
