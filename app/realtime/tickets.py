"""Single-use WebSocket tickets: how a browser, which cannot set headers on a WebSocket, authenticates.

``POST /realtime/ticket`` (bearer) issues one; ``/ws?ticket=...`` or ``/sse?ticket=...`` consumes it.
A ticket lives 30 s and works once. With Redis the ticket is kept there, so any process accepts it.
"""

from __future__ import annotations

import secrets
import time
from abc import ABC, abstractmethod

import msgspec

from app.platform.auth import Identity
from channels.redis_connector import RedisClient

__all__ = ["TICKET_TTL_SECONDS", "MemoryTicketStore", "RedisTicketStore", "TicketStore"]

TICKET_TTL_SECONDS = 30
_decoder = msgspec.json.Decoder(Identity)
_encoder = msgspec.json.Encoder()


class TicketStore(ABC):
    """Issues tickets for an identity and redeems each one at most once."""

    async def issue(self, identity: Identity) -> tuple[str, float]:
        """A new ticket and its expiry (UNIX time)."""
        ticket = secrets.token_urlsafe(24)
        expires_at = time.time() + TICKET_TTL_SECONDS
        await self._put(ticket, _encoder.encode(identity), expires_at)
        return ticket, expires_at

    async def redeem(self, ticket: str) -> Identity | None:
        """The ticket's identity, once; None when unknown, used or expired."""
        if not ticket or len(ticket) > 64:
            return None
        raw = await self._take(ticket)
        return _decoder.decode(raw) if raw is not None else None

    @abstractmethod
    async def _put(self, ticket: str, identity: bytes, expires_at: float) -> None: ...

    @abstractmethod
    async def _take(self, ticket: str) -> bytes | None: ...


class MemoryTicketStore(TicketStore):
    """Tickets of one process (the in-process broker serves one process anyway)."""

    def __init__(self) -> None:
        self._tickets: dict[str, tuple[bytes, float]] = {}

    async def _put(self, ticket: str, identity: bytes, expires_at: float) -> None:
        now = time.time()
        if len(self._tickets) > 1000:  # expired tickets are dropped as new ones come
            self._tickets = {key: value for key, value in self._tickets.items() if value[1] > now}
        self._tickets[ticket] = (identity, expires_at)

    async def _take(self, ticket: str) -> bytes | None:
        entry = self._tickets.pop(ticket, None)
        if entry is None or entry[1] <= time.time():
            return None
        return entry[0]


class RedisTicketStore(TicketStore):
    """Tickets in Redis, so a ticket from one process opens a socket on any other; GETDEL makes them single-use."""

    def __init__(self, redis: RedisClient, prefix: str) -> None:
        self._redis = redis
        self._prefix = f"{prefix}:ticket:"

    async def _put(self, ticket: str, identity: bytes, expires_at: float) -> None:
        await self._redis.set(self._prefix + ticket, identity, ex=TICKET_TTL_SECONDS)

    async def _take(self, ticket: str) -> bytes | None:
        raw = await self._redis.getdel(self._prefix + ticket)
        return raw.encode() if isinstance(raw, str) else raw
