"""The producer API: what app services and ``python -m app publish`` call to emit an event."""

from __future__ import annotations

from typing import Any

import msgspec

from channels.broker import Broker
from channels.errors import ChannelsError
from channels.offsets import Offset, validate_channel

__all__ = ["Publisher"]

_encoder = msgspec.json.Encoder()


class Publisher:
    """Publishes events with history, so that clients can resume them.

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
            type: Event type, e.g. ``order.status_changed``.
            data: A msgspec-encodable value (dict, Struct...) or bytes already holding one JSON value.
            idempotency_key: Publish at most once per key (a day); a repeat returns the first offset.
            history: False relays live only (offset ``None``), like a bare producer PUBLISH.

        Returns:
            The event's offset (``None`` without history).

        Raises:
            InvalidChannel: the channel name is malformed.
            ChannelsError: ``data`` bytes are not one JSON value.
            BrokerUnavailable: the broker cannot be reached.
        """
        validate_channel(channel)
        if isinstance(data, bytes | bytearray | memoryview):
            payload = bytes(data)
            try:
                msgspec.json.decode(payload)  # one check here beats a malformed event in every client
            except msgspec.DecodeError as exc:
                raise ChannelsError(f"event data is not JSON: {exc}") from None
        else:
            payload = _encoder.encode(data)
        return await self.broker.publish(channel, type, payload, history=history, idempotency_key=idempotency_key)
