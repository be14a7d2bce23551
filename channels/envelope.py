"""The producer envelope (SPEC "Producers:"): what a valid event is, checked the same way on every path.

A producer publishes ``{"type", "data", "ts"?}`` (our publish script puts ``"offset"`` first). It is
relayed only when it is

- at most ``EVENT_MAX_BYTES`` in all (the ``offset`` our script adds is not counted);
- valid UTF-8: a browser fails the whole socket (1007) on one bad byte;
- nested at most ``MAX_DEPTH`` (32) deep, checked on the bytes before decoding, since a decoder
  recurses and raises ``RecursionError`` a thousand levels down;
- an object whose ``type`` is lower-case words joined by dots (``TYPE_PATTERN``, at most 64
  characters), whose ``data`` is an object and whose ``ts``, when present, is RFC 3339 with an offset
  (``Z`` or ``+hh:mm``).

Anything else raises ``InvalidEvent`` with a ``reason`` from ``DROP_REASONS``: producers get it
from ``validate_event`` (``Publisher``, ``Broker.publish``, the CLI, the server API), a listener
from ``parse_event`` and drops the message, counted (``channels.drops``).

Raw newlines between JSON tokens (pretty-printed JSON) are valid JSON, but one frame carries
several messages separated by ``\\n`` (and SSE ends a field at one), so such ``data`` is compacted
by a decode and encode. That path is rare: the common message is decoded once, its ``data`` kept
undecoded, and the checks cost a length test, an ASCII test, two byte counts, a set lookup and one
small ``ts`` parse.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Annotated, Final

import msgspec

from channels.broker import BrokerEvent, utc_timestamp
from channels.errors import InvalidEvent, InvalidOffset
from channels.jsonlimits import MAX_DEPTH, too_deep
from channels.offsets import parse_offset

__all__ = [
    "DROP_REASONS",
    "EVENT_MAX_BYTES",
    "TYPE_MAX_LENGTH",
    "TYPE_PATTERN",
    "Envelope",
    "check_json",
    "encode_envelope",
    "parse_event",
    "validate_event",
    "validate_type",
]

EVENT_MAX_BYTES: Final = 65536
"""SPEC default of ``EVENT_MAX_BYTES``: the largest envelope a producer may publish."""

TYPE_MAX_LENGTH: Final = 64
TYPE_PATTERN: Final = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+")
"""An event type: lower-case words joined by dots (``order.status_changed``), matched in full."""

DROP_REASONS: Final = (
    "too_large",  # over EVENT_MAX_BYTES
    "not_utf8",  # a byte sequence that is not UTF-8
    "too_deep",  # nested deeper than MAX_DEPTH
    "not_json",  # not JSON at all
    "not_envelope",  # JSON, but not an object with type and data
    "bad_type",  # type missing, not a string, over 64 characters or not words joined by dots
    "bad_data",  # data missing or not an object
    "bad_ts",  # ts not an RFC 3339 date-time with an offset
    "bad_offset",  # offset present but not <epoch>:<seq>
)
"""Every ``InvalidEvent.reason``: the label values of the dropped-messages metric."""


class Envelope(msgspec.Struct, frozen=True, omit_defaults=True):
    """The JSON a producer publishes; ``offset`` is added by our publish script."""

    type: Annotated[str, msgspec.Meta(max_length=TYPE_MAX_LENGTH)]
    data: msgspec.Raw
    ts: str | None = None
    offset: str | None = None


_decoder = msgspec.json.Decoder(Envelope)
_any_decoder = msgspec.json.Decoder()
_ts_decoder = msgspec.json.Decoder(datetime)
_encoder = msgspec.json.Encoder()

# What our publish script prepends: '{"offset":"<epoch>:<seq>",' for '{' (epoch <= 32, seq <= 19 chars).
_OFFSET_OPENING = b'{"offset":"'
_OFFSET_FIELD_BYTES = len(b'"offset":"",')
_OFFSET_ROOM = _OFFSET_FIELD_BYTES + 32 + 1 + 19
# {"type":"<type>","data":<data>,"ts":"<ts>"}: type and ts are ASCII without escapes once valid.
_ENVELOPE_BYTES = len(b'{"type":"","data":,"ts":""}')
_STAMP_LENGTH = len("2024-01-02T03:04:05.678Z")
_OBJECT = ord("{")
# An int: `10 in payload` is one memchr; `b"\n" in payload` first tries the bytes as an int and fails.
_NEWLINE = ord("\n")
# Types already seen valid skip the regex (a few dozen in practice; bounded against a flood of new ones).
_valid_types: set[str] = set()
_VALID_TYPES_KEPT = 1024


def parse_event(channel: str, payload: bytes, max_bytes: int = EVENT_MAX_BYTES) -> BrokerEvent:
    """Check one received producer message and return it as a ``BrokerEvent`` (``data`` undecoded).

    Args:
        channel: The channel it arrived on (without the Redis prefix).
        payload: The message as received: a producer's envelope, or ours with ``offset``.
        max_bytes: ``EVENT_MAX_BYTES``.

    Returns:
        The event; ``ts`` stamped now when the producer sent none, ``data`` compacted when it held
        newlines.

    Raises:
        InvalidEvent: the message must be dropped; ``reason`` names the rule it breaks.
    """
    size = len(payload)
    if size > max_bytes and (size > max_bytes + _OFFSET_ROOM or not payload.startswith(_OFFSET_OPENING)):
        raise _too_large(size, max_bytes)
    if not payload.isascii():
        _check_utf8(payload)
    if too_deep(payload):
        raise InvalidEvent("too_deep", f"nested deeper than {MAX_DEPTH} levels")
    try:
        envelope = _decoder.decode(payload)
    except msgspec.ValidationError as exc:
        raise InvalidEvent(_reason_of(str(exc)), f"not a producer envelope: {exc}") from None
    except msgspec.DecodeError as exc:
        raise InvalidEvent("not_json", f"not JSON: {exc}") from None
    type_ = envelope.type
    if type_ not in _valid_types:
        validate_type(type_)
    data = envelope.data
    if memoryview(data)[0] != _OBJECT:
        raise InvalidEvent("bad_data", "data must be a JSON object")
    ts = envelope.ts
    if ts is None:
        published_at = time.time()
        ts = utc_timestamp(published_at)
    else:
        published_at = _timestamp_of(ts)  # parsed once: the hub's latency metric reuses it
    offset = None
    if envelope.offset is not None:
        try:
            offset = parse_offset(envelope.offset)
        except InvalidOffset as exc:
            raise InvalidEvent("bad_offset", str(exc)) from None
        if size - _OFFSET_FIELD_BYTES - len(envelope.offset) > max_bytes:
            raise _too_large(size - _OFFSET_FIELD_BYTES - len(envelope.offset), max_bytes)
    if _NEWLINE in payload:  # the rare path: pretty-printed JSON
        data = msgspec.Raw(_compact(bytes(data)))
    return BrokerEvent(channel, offset, type_, data, ts, published_at)


def validate_event(type: str, data: bytes, ts: str | None = None, *, max_bytes: int = EVENT_MAX_BYTES) -> bytes:
    """Refuse an event that a listener would drop; the producer side of ``parse_event``.

    ``data`` is trusted to be one JSON value (``check_json`` checks bytes from outside).

    Args:
        type: Event type, e.g. ``order.status_changed``.
        data: The event's data as JSON bytes.
        ts: Publish time (RFC 3339) or ``None`` to stamp it at publish.
        max_bytes: ``EVENT_MAX_BYTES``: the limit on the whole envelope.

    Returns:
        ``data``, compacted to one line if it held newlines.

    Raises:
        InvalidEvent: naming what is wrong (``reason`` as in ``DROP_REASONS``).
    """
    validate_type(type)
    if ts is not None:
        _timestamp_of(ts)
    size = _ENVELOPE_BYTES + len(type) + len(data) + (len(ts) if ts is not None else _STAMP_LENGTH)
    if size > max_bytes:
        raise _too_large(size, max_bytes, what="event")
    if not data.isascii():
        _check_utf8(data)
    if too_deep(data, MAX_DEPTH - 1):  # the envelope is one level itself
        raise InvalidEvent("too_deep", f"data nested deeper than {MAX_DEPTH - 1} levels")
    if data.lstrip()[:1] != b"{":
        raise InvalidEvent("bad_data", "data must be a JSON object")
    return _compact(data) if _NEWLINE in data else data


def validate_type(type: str) -> None:
    """Check an event type against ``TYPE_PATTERN`` and ``TYPE_MAX_LENGTH``.

    Raises:
        InvalidEvent: ``reason`` ``bad_type``.
    """
    if len(type) > TYPE_MAX_LENGTH or TYPE_PATTERN.fullmatch(type) is None:
        raise InvalidEvent(
            "bad_type",
            f"event type {type[:80]!r} must be lower-case words joined by dots (e.g. order.status_changed), "
            f"at most {TYPE_MAX_LENGTH} characters",
        )
    if len(_valid_types) < _VALID_TYPES_KEPT:
        _valid_types.add(type)


def check_json(data: bytes) -> None:
    """Check that bytes from outside hold one JSON value (depth first, so decoding cannot recurse away).

    Raises:
        InvalidEvent: ``not_utf8``, ``too_deep`` or ``not_json``.
    """
    if not data.isascii():
        _check_utf8(data)
    if too_deep(data, MAX_DEPTH - 1):
        raise InvalidEvent("too_deep", f"data nested deeper than {MAX_DEPTH - 1} levels")
    try:
        _any_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise InvalidEvent("not_json", f"event data is not JSON: {exc}") from None


def encode_envelope(type: str, data: bytes, ts: str | None) -> bytes:
    """Build the producer envelope ``{"type","data","ts"}``; ``data`` must already be JSON bytes (unchecked)."""
    return _encoder.encode(Envelope(type=type, data=msgspec.Raw(data), ts=ts or utc_timestamp()))


def _too_large(size: int, max_bytes: int, what: str = "message") -> InvalidEvent:
    return InvalidEvent("too_large", f"{what} of {size} bytes is over EVENT_MAX_BYTES ({max_bytes})")


def _check_utf8(raw: bytes) -> None:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEvent("not_utf8", f"not UTF-8: {exc.reason} at byte {exc.start}") from None


def _timestamp_of(ts: str) -> float:
    """``ts`` as a UNIX time, or ``bad_ts`` when it is not RFC 3339 with an offset."""
    # JSON-encoding the string first hands msgspec's strict RFC 3339 parser exactly its characters.
    try:
        parsed = _ts_decoder.decode(_encoder.encode(ts))
    except msgspec.DecodeError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise InvalidEvent("bad_ts", f"ts {ts[:40]!r} is not an RFC 3339 date-time with an offset")
    return parsed.timestamp()


def _compact(data: bytes) -> bytes:
    """``data`` without raw newlines: decoded and encoded again (the same value on one line)."""
    try:
        return _encoder.encode(_any_decoder.decode(data))
    except msgspec.DecodeError as exc:  # e.g. a number beyond float range: valid JSON, not representable
        raise InvalidEvent("bad_data", f"data cannot be compacted to one line: {exc}") from None


def _reason_of(error: str) -> str:
    """The drop reason of a msgspec validation error (its message names the field's path)."""
    for field, reason in (("type", "bad_type"), ("data", "bad_data"), ("ts", "bad_ts"), ("offset", "bad_offset")):
        if error.endswith(f"`$.{field}`") or f"field `{field}`" in error:
            return reason
    return "not_envelope"
