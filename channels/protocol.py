"""Wire messages of the real-time protocol (SPEC "Real-time protocol").

Every message is a frozen msgspec Struct tagged by ``op``. Optional fields default to ``None`` and
are omitted from the JSON when unset; new fields must always get a default so that old browser
clients keep decoding. ``Event.offset`` is the one exception: it is always present, ``null`` for an
event published without history.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from channels.errors import ProtocolError
from channels.jsonlimits import MAX_DEPTH, too_deep, top_level

__all__ = [
    "ClientMessage",
    "Error",
    "ErrorCode",
    "Event",
    "Ping",
    "Pong",
    "ProtocolError",
    "Ref",
    "ServerMessage",
    "Subscribe",
    "Subscribed",
    "Unsubscribe",
    "Unsubscribed",
    "Welcome",
    "decode_client_message",
    "encode_server_message",
]

Ref = int | str | None
ErrorCode = Literal["forbidden", "bad_request", "rate_limited", "not_found"]


class _Message(msgspec.Struct, frozen=True, tag_field="op", omit_defaults=True, rename="camel"):
    """Common options of every protocol message."""


# Client -> server


class Subscribe(_Message, frozen=True, tag="subscribe"):
    """Join a channel, optionally resuming after offset ``since``."""

    channel: str
    since: str | None = None
    ref: Ref = None


class Unsubscribe(_Message, frozen=True, tag="unsubscribe"):
    """Leave a channel."""

    channel: str
    ref: Ref = None


class Ping(_Message, frozen=True, tag="ping"):
    """Application-level ping; answered by ``Pong``."""

    ref: Ref = None


ClientMessage = Subscribe | Unsubscribe | Ping


# Server -> client


class Welcome(_Message, frozen=True, tag="welcome"):
    """First message of a connection: who you are and the channels joined for you."""

    user_id: str
    channels: list[str]


class Subscribed(_Message, frozen=True, tag="subscribed"):
    """A subscription is live; ``offset`` is the channel's current offset."""

    channel: str
    offset: str
    recovered: bool
    replayed: int
    ref: Ref = None


class Event(msgspec.Struct, frozen=True, tag_field="op", tag="event"):
    """One event on a channel; ``data`` is relayed as the producer's raw JSON."""

    channel: str
    # No default and no omit_defaults: a bare-published event must say "offset": null.
    offset: str | None
    type: str
    data: msgspec.Raw
    ts: str


class Unsubscribed(_Message, frozen=True, tag="unsubscribed"):
    """Answer to ``Unsubscribe``."""

    ref: Ref = None


class Pong(_Message, frozen=True, tag="pong"):
    """Answer to ``Ping``."""

    ref: Ref = None


class Error(_Message, frozen=True, tag="error"):
    """A request failed; the connection stays open."""

    code: ErrorCode
    message: str
    ref: Ref = None


ServerMessage = Welcome | Subscribed | Event | Unsubscribed | Pong | Error

_encoder = msgspec.json.Encoder()
_client_decoder = msgspec.json.Decoder(ClientMessage)


def decode_client_message(frame: bytes | str) -> ClientMessage:
    """Decode one client message.

    Raises:
        ProtocolError: the frame is not JSON, nests deeper than ``MAX_DEPTH`` (checked before
            decoding, which would recurse) or is not a valid client message.
    """
    if too_deep(frame):
        raise ProtocolError(f"message nested deeper than {MAX_DEPTH} levels", ref=_ref_of(frame))
    try:
        message: ClientMessage = _client_decoder.decode(frame)
    except msgspec.DecodeError as exc:  # ValidationError is a subclass
        raise ProtocolError(str(exc), ref=_ref_of(frame)) from None
    return message


class _Envelope(msgspec.Struct):
    """Only the ``ref`` of a client frame, whatever its ``op`` and other fields."""

    ref: Ref = None


_envelope_decoder = msgspec.json.Decoder(_Envelope)


def _ref_of(frame: bytes | str) -> Ref:
    """The frame's ``ref`` when the frame is a JSON object with a valid one, so its error can carry it.

    Decoded only after the message itself failed: valid frames (nearly all) are decoded once. The
    nested values are cut first (``top_level``), so a frame too deep to decode still yields its ``ref``.
    """
    data = frame.encode("utf-8", "surrogatepass") if isinstance(frame, str) else frame
    try:
        return _envelope_decoder.decode(top_level(data)).ref
    except msgspec.DecodeError:
        return None


def encode_server_message(message: ServerMessage) -> bytes:
    """Encode one server message to the JSON bytes sent on the wire."""
    return _encoder.encode(message)
