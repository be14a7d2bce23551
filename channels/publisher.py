"""The producer API: what app services and ``python -m app publish`` call to emit an event."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from channels.broker import Broker
from channels.envelope import check_json, validate_type
from channels.offsets import Offset, validate_channel

__all__ = ["Publisher"]

_encoder = msgspec.json.Encoder()


class Publisher:
    """Publishes events with history, so that clients can resume them.

    Every event is checked as a listener checks a producer's message (SPEC "Producers:"), so ours
    are never the ones dropped: the type here, before ``data`` is encoded; the rest (``data`` an
    object, depth, ``EVENT_MAX_BYTES`` = ``broker.event_max_bytes``) by ``broker.publish``.

    Args:
        broker: The started broker.
    """

    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    async def publish(
        self,
        channel: str,
        type: str,
        data: Any,
        *,
        idempotency_key: str | None = None,
        history: bool = True,
    ) -> Offset | None:
        """Publish one event.

        Args:
            channel: ``user:<id>``, ``order:<id>`` or ``store:<id>``.
            type: Event type: lower-case words joined by dots, e.g. ``order.status_changed``.
            data: A msgspec-encodable value that encodes to a JSON object (dict, Struct...), or bytes
                already holding one.
            idempotency_key: Publish at most once per key (a day); a repeat returns the first offset.
            history: False relays live only (offset ``None``), like a bare producer PUBLISH.

        Returns:
            The event's offset (``None`` without history).

        Raises:
            InvalidChannel: the channel name is malformed.
            InvalidEvent: the type, ``data`` (not JSON, not an object, nested too deep) or the size
                (over ``EVENT_MAX_BYTES``) is not what SPEC allows; the message names which.
            BrokerUnavailable: the broker cannot be reached.
        """
        validate_channel(channel)
        payload = _payload(type, data)
        return await self.broker.publish(channel, type, payload, history=history, idempotency_key=idempotency_key)

    async def broadcast(self, channels: Sequence[str], type: str, data: Any) -> list[Offset]:
        """Publish one event, with history, to each of ``channels``; each gets its own offset (in order).

        Raises:
            InvalidChannel: a channel name is malformed (nothing is published).
            InvalidEvent: as ``publish``.
            BrokerUnavailable: the broker cannot be reached (some channels may have been published).
        """
        for channel in channels:
            validate_channel(channel)
        return await self.broker.publish_many(channels, type, _payload(type, data))


def _payload(type: str, data: Any) -> bytes:
    """The event's ``data`` as JSON bytes, its type checked first (before anything is encoded)."""
    validate_type(type)
    if isinstance(data, bytes | bytearray | memoryview):
        payload = bytes(data)
        check_json(payload)  # one check here beats a malformed event in every client
        return payload
    return _encoder.encode(data)
