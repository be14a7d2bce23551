"""The server API (SPEC "Server API"): publish, broadcast, history, disconnect and presence over HTTP.

For backend services in any language and for operators (roles ``service`` and ``admin``). Publishing
takes the same path as ``channels.Publisher``: the same checks (channel name, event type, ``data`` an
object, ``EVENT_MAX_BYTES``: a larger event is 413), one script per channel with history and
idempotency per channel, so an event published here is resumable like any other.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIType, Schema
from litestar.params import JSONBody, QueryParameter

from app.http.openapi import problems
from app.platform.auth import require_roles
from app.platform.errors import ContentTooLarge, ValidationFailed
from app.platform.settings import Settings
from app.realtime.relay import Relay
from app.services.revocations import Revocations
from channels import InvalidChannel, InvalidEvent, InvalidOffset, Offset, encode_server_message, parse_offset
from channels.protocol import Event
from models.enums import Role

__all__ = ["ServerApiController"]

CHANNEL_PATTERN = "^(user|order|store):[A-Za-z0-9_-]{1,64}$"
TYPE_PATTERN = "^[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*)+$"
OFFSET_PATTERN = "^[A-Za-z0-9_-]{1,32}:[0-9]{1,19}$"
USER_PATTERN = "^[A-Za-z0-9_.@-]{1,64}$"
MAX_BROADCAST = 1000

_Channel = Annotated[
    str, msgspec.Meta(pattern=CHANNEL_PATTERN, extra_json_schema={"examples": ["order:ord_123", "user:u_42"]})
]
_Type = Annotated[
    str, msgspec.Meta(max_length=64, pattern=TYPE_PATTERN, extra_json_schema={"examples": ["order.status_changed"]})
]
_Data = Annotated[dict[str, Any], msgspec.Meta(extra_json_schema={"examples": [{"orderId": "ord_123", "eta": 420}]})]


class PublishBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    """One event for one channel; a repeated ``idempotencyKey`` on that channel publishes nothing."""

    channel: _Channel
    type: _Type
    data: _Data
    idempotency_key: Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern="^[\\x21-\\x7e]+$")] | None = (
        None
    )


class Published(msgspec.Struct, frozen=True):
    """The event's offset on its channel (the first publish's, for a repeated idempotency key)."""

    offset: str


class BroadcastBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One event for up to 1,000 channels, each getting its own offset."""

    channels: Annotated[
        list[_Channel],
        # Litestar drops the items' own constraints from the schema: stated here ("extra" sets Schema fields).
        msgspec.Meta(
            min_length=1,
            max_length=MAX_BROADCAST,
            extra_json_schema={
                "extra": {"unique_items": True, "items": Schema(type=OpenAPIType.STRING, pattern=CHANNEL_PATTERN)}
            },
        ),
    ]
    type: _Type
    data: _Data


class Broadcasted(msgspec.Struct, frozen=True):
    """Each channel's offset for the event."""

    offsets: dict[str, str]


class HistoryEvent(msgspec.Struct, frozen=True):
    """An event as ``/ws`` sends it."""

    op: Literal["event"]
    channel: str
    offset: str | None
    type: str
    data: dict[str, Any]
    ts: str


class HistoryPage(msgspec.Struct, frozen=True):
    """Events after ``since`` (oldest first, at most ``limit``), the channel's current offset, and whether
    history reached back to ``since`` (as ``recovered`` in ``subscribed``: false means refetch over REST)."""

    items: list[HistoryEvent]
    offset: str
    recovered: bool


class _RawPage(msgspec.Struct, frozen=True):
    items: list[msgspec.Raw]
    offset: str
    recovered: bool


class DisconnectBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    """Whose connections to close; with a cut-off, that user's older tokens (or without ``iat``) stop working."""

    user_id: Annotated[str, msgspec.Meta(pattern=USER_PATTERN)]
    revoke_tokens_issued_before: Annotated[datetime, msgspec.Meta(tz=True)] | None = None


class Disconnected(msgspec.Struct, frozen=True):
    """Sockets and SSE streams the user had open on every process."""

    disconnected: int


class PresenceView(msgspec.Struct, frozen=True, rename="camel"):
    """A user's sockets and SSE streams across every process."""

    user_id: str
    online: bool
    connections: int


def _invalid_event(exc: InvalidEvent) -> Exception:
    if exc.reason == "too_large":
        return ContentTooLarge(str(exc))
    field = "type" if exc.reason == "bad_type" else "data"
    return ValidationFailed([(field, str(exc))], status=400)


_SERVICES = require_roles(Role.SERVICE, Role.ADMIN)


class ServerApiController(Controller):
    """Publishing and operating the relay from any language (roles service and admin)."""

    path = "/realtime"
    tags = ("server api",)
    guards = [_SERVICES]  # noqa: RUF012 (Litestar reads a list)

    @post("/publish", status_code=200, summary="Publish one event with history (resumable), like channels.Publisher")
    async def publish(self, data: JSONBody[PublishBody], relay: NamedDependency[Relay]) -> Published:
        try:
            offset = await relay.publisher.publish(
                data.channel, data.type, data.data, idempotency_key=data.idempotency_key
            )
        except InvalidChannel as exc:
            raise ValidationFailed([("channel", str(exc))], status=400) from None
        except InvalidEvent as exc:
            raise _invalid_event(exc) from None
        if offset is None:  # with history a publish always has one
            raise RuntimeError("a publish with history returned no offset")
        return Published(offset=str(offset))

    @post("/broadcast", status_code=200, summary="Publish one event to 1..1000 channels, each with its own offset")
    async def broadcast(self, data: JSONBody[BroadcastBody], relay: NamedDependency[Relay]) -> Broadcasted:
        if len(set(data.channels)) != len(data.channels):
            raise ValidationFailed([("channels", "each channel at most once")], status=400)
        try:
            offsets = await relay.publisher.broadcast(data.channels, data.type, data.data)
        except InvalidChannel as exc:
            raise ValidationFailed([("channels", str(exc))], status=400) from None
        except InvalidEvent as exc:
            raise _invalid_event(exc) from None
        return Broadcasted(
            offsets={channel: str(offset) for channel, offset in zip(data.channels, offsets, strict=True)}
        )

    @get(
        "/history",
        summary="A channel's events after an offset, as /ws replays them",
        responses={200: ResponseSpec(HistoryPage, description="The window after since")},
    )
    async def history(
        self,
        relay: NamedDependency[Relay],
        settings: NamedDependency[Settings],
        channel: Annotated[str, QueryParameter(pattern=CHANNEL_PATTERN)],
        since: Annotated[
            str | None, QueryParameter(pattern=OFFSET_PATTERN, description="an offset <epoch>:<seq>")
        ] = None,
        limit: Annotated[
            int, QueryParameter(ge=1, le=100_000, description="1..; values above HISTORY_SIZE read HISTORY_SIZE")
        ] = 100,
    ) -> Response[bytes]:
        try:
            after: Offset | None = parse_offset(since) if since else None
        except InvalidOffset as exc:
            raise ValidationFailed([("since", str(exc))], status=400) from None
        window = await relay.broker.history(channel, after)
        events = window.events[: min(limit, settings.history_size)]
        items = [
            msgspec.Raw(
                encode_server_message(
                    Event(event.channel, str(event.offset) if event.offset else None, event.type, event.data, event.ts)
                )
            )
            for event in events
        ]
        page = _RawPage(items=items, offset=str(window.offset), recovered=window.complete)
        return Response(msgspec.json.encode(page), media_type="application/json")

    @post(
        "/disconnect",
        status_code=200,
        summary="Close a user's sockets and SSE streams everywhere (4003); optionally revoke older tokens",
    )
    async def disconnect(
        self, data: JSONBody[DisconnectBody], relay: NamedDependency[Relay], revocations: NamedDependency[Revocations]
    ) -> Disconnected:
        cutoff = data.revoke_tokens_issued_before
        if cutoff is not None:
            await revocations.revoke(data.user_id, cutoff)
        connections = await relay.presence.connections(data.user_id)
        await relay.control.disconnect(data.user_id, cutoff.timestamp() if cutoff else None)
        return Disconnected(disconnected=connections)

    @get("/presence", summary="A user's sockets and SSE streams across every process", opt=problems(404))
    async def presence(
        self,
        relay: NamedDependency[Relay],
        user_id: Annotated[str, QueryParameter(name="userId", pattern=USER_PATTERN)],
    ) -> PresenceView:
        count = await relay.presence.connections(user_id)
        return PresenceView(user_id=user_id, online=count > 0, connections=count)
