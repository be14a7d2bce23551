"""``/ws``: the WebSocket endpoint of SPEC "Real-time protocol", adapting ``channels`` to ASGI.

Authentication is a single-use ``?ticket=`` (browsers) or an ``Authorization: Bearer`` header
(other clients); never a token in the URL. After ``welcome`` the user's own channel is joined, from
``?since=<offset>`` when the client resumes it: its missed events come before any live one.
Under uvicorn's fast path (``app/realtime/fast_path``) messages are written as pre-framed bytes straight
to the transport (the scope's ``push.frames``); without it (``WS_FAST_PATH=0``, an untested uvicorn, another
ASGI server) through the ASGI ``send``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from functools import partial
from typing import Any
from urllib.parse import parse_qs

from litestar.handlers import asgi
from litestar.types import ASGIApp

from app.platform.auth import Identity
from app.platform.errors import Unauthorized
from app.platform.problems import problem_body
from app.platform.request_context import request_id_for
from app.realtime.access import may_join
from app.realtime.edge import RealtimeEdge, edge_of
from app.realtime.fast_path import FRAMES_EXTENSION
from app.realtime.handshake import authenticate, origin_allowed
from channels import (
    BrokerError,
    Connection,
    Error,
    FrameSink,
    InvalidChannel,
    InvalidOffset,
    Offset,
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

__all__ = ["serve_websocket", "websocket_endpoint", "websockets_first"]

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

    def __init__(self, edge: RealtimeEdge, identity: Identity, conn: Connection) -> None:
        self.edge = edge
        self.identity = identity
        self.conn = conn
        self.rate = MessageRate(edge.settings.ws_rate)

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
            self.conn.enqueue(_control(Error(code="bad_request", message=str(exc), ref=exc.ref)))
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
        await self.edge.relay.hub.subscribe(self.conn, message.channel, since, ref=message.ref)

    async def _unsubscribe(self, message: Unsubscribe) -> None:
        if message.channel not in self.conn.channels:
            error = Error(code="not_found", message=f"not subscribed to {message.channel}", ref=message.ref)
            self.conn.enqueue(_control(error))
            return
        await self.edge.relay.hub.unsubscribe(self.conn, message.channel)
        self.conn.enqueue(_control(Unsubscribed(ref=message.ref)))


async def serve_websocket(scope: Any, receive: Any, send: Any) -> None:
    """The real-time socket: auth, welcome, the user's channel, then client messages until close.

    A raw ASGI handler: Litestar builds no ``WebSocket`` and resolves no dependencies per connection.
    """
    if scope["type"] != "websocket":
        await _refuse_http(send)
        return
    edge = edge_of(scope)
    if (await receive())["type"] != "websocket.connect":
        return
    if not origin_allowed(scope, edge.settings.allowed_origins):
        await _refuse_handshake(scope, send, 403, "origin not allowed")
        return
    try:
        identity = await authenticate(scope, edge)
    except Unauthorized as exc:
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": CLOSE_BAD_CREDENTIALS, "reason": exc.detail[:120]})
        return
    await send({"type": "websocket.accept"})
    sink: FrameSink | None = scope.get("extensions", {}).get(FRAMES_EXTENSION)

    since, bad_since = _resume_offset(scope)
    relay = edge.relay
    async with (
        relay.hub.connect(partial(_send_text, send), partial(_close, send), sink=sink) as conn,
        relay.sessions.open(identity.user_id, conn),
    ):
        session = Session(edge, identity, conn)
        user_channel = f"user:{identity.user_id}"
        conn.hold()  # welcome and the user channel's subscribed leave together: one frame, one write
        conn.enqueue(_control(Welcome(user_id=identity.user_id, channels=[user_channel])))
        if bad_since is not None:
            # As for a subscribe: bad_request, and the socket stays open. The channel is joined anyway, its
            # subscribed saying recovered: false, since what the client missed is unknown (refetch over REST).
            conn.enqueue(_control(Error(code="bad_request", message=f"since: {bad_since}")))
        # SPEC: a socket whose token expires is closed with 4001; the client reconnects and resumes.
        loop = asyncio.get_running_loop()
        expiry = loop.call_at(
            loop.time() + max(identity.expires_at - time.time(), 0),
            conn.close_soon,
            CLOSE_BAD_CREDENTIALS,
            "token expired",
        )
        try:
            try:
                await relay.hub.subscribe(conn, user_channel, since, recovered=bad_since is None)
            finally:
                conn.release()
            await _receive_loop(receive, session)
        except BrokerError as exc:
            logger.warning("closing socket: broker unavailable: %s", exc)
            await conn.close(CLOSE_TRY_AGAIN_LATER, "broker unavailable; reconnect and resume")
        finally:
            expiry.cancel()


def _resume_offset(scope: Any) -> tuple[Offset | None, str | None]:
    """``?since=`` of the URL, the user channel's offset to resume from; or, when malformed, why.

    Absent or empty: no resume. Most sockets carry none, so the query is parsed only when it names one.
    """
    query: bytes = scope.get("query_string", b"")
    if b"since=" not in query:
        return None, None
    values = parse_qs(query.decode("latin-1")).get("since")
    if not values:
        return None, None
    try:
        return parse_offset(values[0]), None
    except InvalidOffset as exc:
        return None, str(exc)


# Registered with Litestar for plain HTTP requests to /ws (426) and the schema; WebSocket scopes
# normally arrive through ``websockets_first`` and never reach Litestar's router.
websocket_endpoint = asgi("/ws", is_mount=False, copy_scope=False)(serve_websocket)

WS_PATHS = frozenset(("/ws", "/ws/"))


def websockets_first(app: ASGIApp) -> ASGIApp:
    """Wrap Litestar's ASGI handler so that ``/ws`` sockets skip its middleware stack and router.

    Those middlewares do nothing for a WebSocket scope (auth excludes ``/ws``, metrics and the rate
    limit are HTTP-only), yet each kept a suspended coroutine frame, a scope copy and a
    send wrapper for the socket's whole life (~4 KiB per idle socket) and cost CPU per connect.
    The request id and Litestar's close on an unexpected error (4500) are kept here.
    """

    async def dispatch(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket" or scope["path"] not in WS_PATHS:
            await app(scope, receive, send)
            return
        request_id_for(scope)
        try:
            await serve_websocket(scope, receive, send)
        except Exception:
            logger.exception("unexpected error on /ws")
            await send({"type": "websocket.close", "code": 4500, "reason": "Internal Server Error"})

    return dispatch


async def _send_text(send: Any, frame: bytes) -> None:
    """Only without the uvicorn extension (another ASGI server): the ASGI way, as text."""
    await send({"type": "websocket.send", "text": frame.decode()})


async def _close(send: Any, code: int, reason: str) -> None:
    await send({"type": "websocket.close", "code": code, "reason": reason})


async def _refuse_handshake(scope: Any, send: Any, status: int, detail: str) -> None:
    """Refuse the upgrade with an HTTP problem+json response carrying the request id (ASGI's
    ``websocket.http.response`` extension); servers without it can only close (their own 403)."""
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": 1008, "reason": detail})
        return
    body = problem_body(status, detail)
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id_for(scope).encode()),
    ]
    await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body})


async def _refuse_http(send: Any) -> None:
    """A plain HTTP request to /ws: it is a WebSocket endpoint (426, problem+json like every error)."""
    body = problem_body(426, "this is a WebSocket endpoint: send an Upgrade request", slug="upgrade-required")
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
        (b"upgrade", b"websocket"),
    ]
    await send({"type": "http.response.start", "status": 426, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _receive_loop(receive: Any, session: Session) -> None:
    """Read client frames until ``websocket.disconnect``.

    A close by the server (4008, 4001, 4029, shutdown) also ends it: uvicorn queues the disconnect
    as soon as the app sends ``websocket.close``.
    """
    conn = session.conn
    while True:
        message = await receive()
        if message["type"] != "websocket.receive" or conn.closed:
            return
        frame: str | bytes | None = message.get("text")
        if frame is None:
            frame = message.get("bytes")
        if frame is not None:
            await session.handle(frame)
