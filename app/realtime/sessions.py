"""The sockets and SSE streams of this process, by user: what ``/realtime/disconnect`` closes and presence counts.

Every ``/ws`` socket and ``/sse`` stream registers its hub connection here for its lifetime
(``async with sessions.open(user_id, conn)``). The registry is what a server-side disconnect walks
(close code 4003), what ``push_connections`` reads, and what tells the presence store which users'
counts changed (``Presence.changed``), so nothing on the connect path waits for Redis.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from channels import Connection

__all__ = ["CLOSE_DISCONNECTED", "Sessions"]

CLOSE_DISCONNECTED = 4003
"""SPEC: closed by the server (credentials revoked): get new ones before reconnecting."""


class Sessions:
    """Open connections of this process, by user id.

    Args:
        on_change: Called with a user id whenever that user's count here changes (presence).
    """

    def __init__(self, on_change: Callable[[str], None] | None = None) -> None:
        self._by_user: dict[str, set[Connection]] = {}
        self._on_change = on_change
        self.count = 0

    @asynccontextmanager
    async def open(self, user_id: str, conn: Connection) -> AsyncIterator[None]:
        """Count ``conn`` as one of ``user_id``'s until the block ends."""
        self._by_user.setdefault(user_id, set()).add(conn)
        self.count += 1
        if self._on_change is not None:
            self._on_change(user_id)
        try:
            yield
        finally:
            self.forget(user_id, conn)

    def forget(self, user_id: str, conn: Connection) -> None:
        """Stop counting ``conn`` (at once when the server closes it; again at the block's end is a no-op)."""
        connections = self._by_user.get(user_id)
        if connections is None or conn not in connections:
            return
        connections.discard(conn)
        if not connections:
            del self._by_user[user_id]
        self.count -= 1
        if self._on_change is not None:
            self._on_change(user_id)

    def connections_of(self, user_id: str) -> int:
        """How many sockets and streams ``user_id`` has open here."""
        return len(self._by_user.get(user_id, ()))

    def users(self) -> dict[str, int]:
        """Every user with connections here, and how many."""
        return {user: len(connections) for user, connections in self._by_user.items()}

    def disconnect(self, user_id: str) -> int:
        """Close every connection of ``user_id`` here with 4003; answers how many."""
        connections = list(self._by_user.get(user_id, ()))
        for conn in connections:
            conn.close_soon(CLOSE_DISCONNECTED, "disconnected by the server")
            self.forget(user_id, conn)
        return len(connections)
