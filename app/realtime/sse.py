"""``GET /sse``: the same events as ``/ws`` as Server-Sent Events, for networks that block WebSockets.

``?channels=order:ord_1,store:st_2`` (the user's own channel is always included), authenticated by
bearer header or single-use ``?ticket=``. Each ``id:`` is a cursor holding the latest offset of
every channel in the stream, so ``Last-Event-ID`` (or ``?lastEventId=``, since a new EventSource
cannot set headers and a ticket works once) resumes them all. The stream opens with that cursor
(an ``id:`` with no data: the browser keeps it as its last event id and dispatches nothing), so a
stream that drops before its first event still resumes; each channel is then subscribed from the
offset the cursor names. Events without an offset carry no ``id:``. A ``subscribed`` event with
``recovered: false`` tells the client to refetch over REST. Comment lines every 15 s keep idle
streams open through proxies; a stream that falls behind by more than the send queue is closed,
and the client resumes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs

import msgspec
from litestar.handlers import asgi

from app.platform.errors import AppError, BadRequest, Forbidden, ServiceUnavailable
from app.platform.problems import problem_body
from app.platform.request_context import request_id_for
from app.realtime.access import may_join
from app.realtime.edge import RealtimeEdge, edge_of
from app.realtime.handshake import authenticate, origin_allowed
from app.realtime.sessions import CLOSE_DISCONNECTED
from channels import (
    BrokerError,
    ChannelsError,
    Connection,
    Offset,
    Outgoing,
    parse_offset,
    subscribed_message,
    validate_channel,
)

__all__ = ["decode_cursor", "encode_cursor", "sse_endpoint"]

HEARTBEAT_SECONDS = 15.0
MAX_CHANNELS = 50
_offset_struct = msgspec.json.Decoder(dict[str, str])


def encode_cursor(offsets: dict[str, Offset]) -> str:
    """The opaque ``id:`` of an event: every channel's latest offset."""
    body = msgspec.json.encode({channel: str(offset) for channel, offset in offsets.items()})
    return base64.urlsafe_b64encode(body).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> dict[str, Offset]:
    """The offsets inside a ``Last-Event-ID``.

    Raises:
        BadRequest: when it is not a cursor this server wrote.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return {
            validate_channel(c).kind + ":" + c.partition(":")[2]: parse_offset(o)
            for c, o in _offset_struct.decode(raw).items()
        }
    except (ValueError, msgspec.DecodeError, ChannelsError):
        raise BadRequest("Last-Event-ID is not a cursor this server issued") from None


class _SseFormatter:
    """Turns queued messages into SSE frames, advancing the stream's cursor as events pass."""

    def __init__(self, offsets: dict[str, Offset]) -> None:
        self.offsets = offsets

    def __call__(self, batch: Sequence[Outgoing]) -> bytes:
        parts: list[bytes] = []
        for item in batch:
            if item.channel is not None and item.offset is not None:
                self.offsets[item.channel] = item.offset
                parts.append(b"id: " + encode_cursor(self.offsets).encode() + b"\n")
            event_type = item.type if item.kind == "event" and item.type else _control_type(item.payload)
            parts.append(b"event: " + event_type.encode() + b"\ndata: " + item.payload + b"\n\n")
        return b"".join(parts)


def _control_type(payload: bytes) -> str:
    # Control messages are small; their "op" names the SSE event (subscribed, error...).
    op = msgspec.json.decode(payload, type=dict[str, Any]).get("op", "message")
    return str(op)


def _requested_channels(query: dict[str, list[str]], user_id: str) -> list[str]:
    names = [name.strip() for value in query.get("channels", []) for name in value.split(",") if name.strip()]
    channels = list(dict.fromkeys([f"user:{user_id}", *names]))
    if len(channels) > MAX_CHANNELS:
        raise BadRequest(f"at most {MAX_CHANNELS} channels per stream")
    for channel in channels:
        try:
            validate_channel(channel)
        except ChannelsError as exc:
            raise BadRequest(str(exc)) from None
    return channels


async def _send_problem(send: Any, scope: Any, error: AppError) -> None:
    """Refuse the stream before it starts, as problem+json like every other error."""
    body = problem_body(error.status, error.detail, slug=error.slug)
    headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
    headers.append((b"x-request-id", request_id_for(scope).encode()))
    headers.extend((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in error.headers.items())
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@asgi("/sse", is_mount=False, copy_scope=False)
async def sse_endpoint(scope: Any, receive: Any, send: Any) -> None:
    """Stream the caller's channels as ``text/event-stream`` until the client leaves or falls behind."""
    edge = edge_of(scope)
    if not origin_allowed(scope, edge.settings.allowed_origins):
        await _send_problem(send, scope, Forbidden("origin not allowed"))
        return
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    try:
        identity = await authenticate(scope, edge)
        channels = _requested_channels(query, identity.user_id)
        last_event_id = next((v.decode() for k, v in scope["headers"] if k == b"last-event-id"), None)
        last_event_id = last_event_id or (query.get("lastEventId") or [None])[0]
        resume = decode_cursor(last_event_id) if last_event_id else {}
        for channel in channels:
            if not await may_join(identity, channel):
                raise Forbidden(f"you may not join {channel}")
        positions = await _open_positions(edge, channels, resume)
    except AppError as error:
        await _send_problem(send, scope, error)
        return

    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/event-stream; charset=utf-8"),
                (b"cache-control", b"no-cache"),
                (b"x-accel-buffering", b"no"),
            ],
        }
    )
    finished = asyncio.Event()

    async def send_frame(frame: bytes) -> None:
        await send({"type": "http.response.body", "body": frame, "more_body": True})

    async def close(code: int, reason: str) -> None:
        if code == CLOSE_DISCONNECTED:
            # SSE has no close codes: the stream's last event says why it ends, so a client stops
            # reconnecting instead of coming back with revoked credentials.
            with contextlib.suppress(OSError, RuntimeError):
                await send_frame(
                    b"event: close\ndata: " + msgspec.json.encode({"code": code, "reason": reason}) + b"\n\n"
                )
        finished.set()

    relay = edge.relay
    formatter = _SseFormatter(dict(positions))
    async with (
        relay.hub.connect(send_frame, close, formatter=formatter) as conn,
        relay.sessions.open(identity.user_id, conn),
    ):
        # Nothing is queued on a new connection yet, so the open cursor is the stream's first line.
        await send_frame(b": stream open\nid: " + encode_cursor(positions).encode() + b"\n\n")
        for channel in channels:
            subscription = await relay.hub.subscribe(conn, channel, positions[channel], announce=False)
            if not subscription.recovered:
                conn.enqueue(
                    subscribed_message(channel, subscription.offset, recovered=False, replayed=subscription.replayed)
                )
        await _stream_until_done(receive, conn, finished, send_frame)
    with contextlib.suppress(OSError, RuntimeError):
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _open_positions(edge: RealtimeEdge, channels: list[str], resume: dict[str, Offset]) -> dict[str, Offset]:
    """Where the stream starts on each channel: the resumed offset, else the channel's current one.

    Raises:
        ServiceUnavailable: the broker cannot be reached (503, before the stream starts).
    """
    fresh = [channel for channel in channels if channel not in resume]
    try:
        # Read together: concurrent current-offset reads share one broker call (channels/redis_offsets.py).
        current = await asyncio.gather(*(edge.relay.broker.current_offset(channel) for channel in fresh))
    except BrokerError:
        raise ServiceUnavailable("the broker is unavailable; retry shortly", headers={"Retry-After": "1"}) from None
    opened = dict(zip(fresh, current, strict=True))
    return {channel: resume[channel] if channel in resume else opened[channel] for channel in channels}


async def _stream_until_done(receive: Any, conn: Connection, finished: asyncio.Event, send_frame: Any) -> None:
    """Heartbeat until the client disconnects or the connection is closed (too slow, shutdown)."""

    async def client_left() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    leaving = asyncio.create_task(client_left())
    closed = asyncio.create_task(finished.wait())
    try:
        while True:
            done, _ = await asyncio.wait(
                {leaving, closed}, timeout=HEARTBEAT_SECONDS, return_when=asyncio.FIRST_COMPLETED
            )
            if done or conn.closed:
                return
            await send_frame(b": keep-alive\n\n")
    finally:
        leaving.cancel()
        closed.cancel()
