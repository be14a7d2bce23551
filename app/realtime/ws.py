"""``/ws``: the WebSocket endpoint of SPEC "Real-time protocol", adapting ``channels`` to ASGI.

Authentication is a single-use ``?ticket=`` (browsers) or an ``Authorization: Bearer`` header
(other clients); never a token in the URL. After ``welcome`` the user's own channel is joined.
The hot path writes through the raw ASGI ``send``: one encoded frame, no per-call wrappers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from litestar import WebSocket, websocket
from litestar.di import NamedDependency

from app.auth import Identity
from app.errors import Unauthorized
from app.realtime.access import may_join
from app.realtime.handshake import authenticate, origin_allowed
from app.runtime import Runtime
from channels import (
    BrokerError,
    Connection,
    Error,
    InvalidChannel,
    InvalidOffset,
    Outgoing,
    Ping,
    Pong,
    ProtocolError,
    Subscribe,
    Unsubscribe,
    Unsubscribed,
    Welcome,
    decode_client_message,
    encode_server_message,
    parse_offset,
    validate_channel,
)

__all__ = ["websocket_endpoint"]

logger = logging.getLogger(__name__)

CLOSE_BAD_CREDENTIALS = 4001
CLOSE_RATE_LIMITED = 4029
CLOSE_TRY_AGAIN_LATER = 1013


class MessageRate:
    """A token bucket of ``rate`` client messages per second; repeated abuse ends the connection."""

    def __init__(self, rate: int) -> None:
        self.rate = float(rate)
        self.tokens = float(rate)
        self.updated = time.monotonic()
        self.refusals = 0

    def allow(self) -> bool:
        """Take one token; False when the client is over its rate."""
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        self.refusals += 1
        return False

    @property
    def abusive(self) -> bool:
        """A second's worth of refused messages: the client ignores ``rate_limited`` errors."""
        return self.refusals > self.rate


def _control(message: Any) -> Outgoing:
    return Outgoing(encode_server_message(message))


class Session:
    """One authenticated socket: its connection in the hub and the handling of client messages."""

    def __init__(self, runtime: Runtime, identity: Identity, conn: Connection) -> None:
        self.runtime = runtime
        self.identity = identity
        self.conn = conn
        self.rate = MessageRate(runtime.settings.ws_rate)

    async def handle(self, frame: str | bytes) -> None:
        """Answer one client frame (one JSON message)."""
        if not self.rate.allow():
            if self.rate.abusive:
                await self.conn.close(CLOSE_RATE_LIMITED, "rate limited")
                return
            self.conn.enqueue(_control(Error(code="rate_limited", message="over WS_RATE messages per second")))
            return
        try:
            message = decode_client_message(frame)
        except ProtocolError as exc:
            self.conn.enqueue(_control(Error(code="bad_request", message=str(exc))))
            return
        if isinstance(message, Subscribe):
            await self._subscribe(message)
        elif isinstance(message, Unsubscribe):
            await self._unsubscribe(message)
        elif isinstance(message, Ping):
            self.conn.enqueue(_control(Pong(ref=message.ref)))

    async def _subscribe(self, message: Subscribe) -> None:
        try:
            validate_channel(message.channel)
            since = parse_offset(message.since) if message.since is not None else None
        except (InvalidChannel, InvalidOffset) as exc:
            self.conn.enqueue(_control(Error(code="bad_request", message=str(exc), ref=message.ref)))
            return
        if not await may_join(self.identity, message.channel):
            error = Error(code="forbidden", message=f"you may not join {message.channel}", ref=message.ref)
            self.conn.enqueue(_control(error))
            return
        await self.runtime.relay.hub.subscribe(self.conn, message.channel, since, ref=message.ref)

    async def _unsubscribe(self, message: Unsubscribe) -> None:
        if message.channel not in self.conn.channels:
            error = Error(code="not_found", message=f"not subscribed to {message.channel}", ref=message.ref)
            self.conn.enqueue(_control(error))
            return
        await self.runtime.relay.hub.unsubscribe(self.conn, message.channel)
        self.conn.enqueue(_control(Unsubscribed(ref=message.ref)))


@websocket("/ws", opt={"exclude_from_auth": True})
async def websocket_endpoint(socket: WebSocket[Any, Any, Any], runtime: NamedDependency[Runtime]) -> None:
    """The real-time socket: auth, welcome, the user's channel, then client messages until close."""
    # The raw ASGI callables: the hot path skips Litestar's per-call wrappers.
    scope, receive = socket.scope, socket.receive
    send = cast("Callable[[dict[str, Any]], Awaitable[None]]", socket.send)
    if not origin_allowed(scope, runtime.settings.allowed_origins):
        await send({"type": "websocket.close", "code": 1008, "reason": "origin not allowed"})
        return
    try:
        identity = await authenticate(scope, runtime)
    except Unauthorized as exc:
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": CLOSE_BAD_CREDENTIALS, "reason": exc.detail[:120]})
        return
    await send({"type": "websocket.accept"})

    async def send_frame(frame: bytes) -> None:
        await send({"type": "websocket.send", "text": frame.decode()})

    async def close(code: int, reason: str) -> None:
        await send({"type": "websocket.close", "code": code, "reason": reason})

    relay = runtime.relay
    relay.connections += 1
    try:
        async with relay.hub.connect(send_frame, close) as conn:
            session = Session(runtime, identity, conn)
            user_channel = f"user:{identity.user_id}"
            conn.enqueue(_control(Welcome(user_id=identity.user_id, channels=[user_channel])))
            expiry = asyncio.create_task(_close_at_expiry(conn, identity.expires_at))
            try:
                await relay.hub.subscribe(conn, user_channel)
                await _receive_loop(receive, session)
            except BrokerError as exc:
                logger.warning("closing socket: broker unavailable: %s", exc)
                await conn.close(CLOSE_TRY_AGAIN_LATER, "broker unavailable; reconnect and resume")
            finally:
                expiry.cancel()
    finally:
        relay.connections -= 1


async def _close_at_expiry(conn: Connection, expires_at: float) -> None:
    """SPEC: a socket whose token expires is closed with 4001; the client reconnects with a new token and resumes."""
    await asyncio.sleep(max(expires_at - time.time(), 0))
    await conn.close(CLOSE_BAD_CREDENTIALS, "token expired")


async def _receive_loop(receive: Any, session: Session) -> None:
    """Read client frames until the client leaves or the connection is closed by the server."""
    closed = asyncio.ensure_future(session.conn.wait_closed())
    try:
        while True:
            incoming = asyncio.ensure_future(receive())
            done, _ = await asyncio.wait({incoming, closed}, return_when=asyncio.FIRST_COMPLETED)
            if incoming not in done:
                incoming.cancel()
                return
            message = incoming.result()
            if message["type"] == "websocket.disconnect":
                return
            frame = message.get("text") if message.get("text") is not None else message.get("bytes")
            if frame is not None:
                await session.handle(frame)
    finally:
        closed.cancel()
