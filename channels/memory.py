"""In-process broker: the broker contract for a single process (``REDIS_URL`` unset)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field

import msgspec

from channels.broker import (
    Broker,
    BrokerEvent,
    BrokerStats,
    History,
    Resync,
    history_is_complete,
    utc_timestamp,
)
from channels.envelope import EVENT_MAX_BYTES, validate_event
from channels.offsets import Offset, new_epoch

__all__ = ["MemoryBroker"]


@dataclass
class _ChannelHistory:
    epoch: str
    seq: int
    events: deque[BrokerEvent]
    touched_at: float = field(default_factory=time.monotonic)


class MemoryBroker(Broker):
    """Keeps each channel's last ``history_size`` events in a ring; an idle channel's history is
    forgotten after ``history_ttl`` seconds (a new epoch then starts, as with Redis key expiry).

    Events reach it only through ``publish``, which refuses what a Redis listener would drop, so
    nothing invalid is ever relayed here either.

    Args:
        history_size: Events kept per channel.
        history_ttl: Seconds an idle channel's history lives.
        event_max_bytes: ``EVENT_MAX_BYTES``: ``publish`` refuses a larger event.
        idempotency_ttl: Seconds an idempotency key is remembered, per channel (default: ``history_ttl``).
    """

    def __init__(
        self,
        history_size: int = 1000,
        history_ttl: float = 86400,
        *,
        event_max_bytes: int = EVENT_MAX_BYTES,
        idempotency_ttl: float | None = None,
    ) -> None:
        if history_size < 1:
            raise ValueError("history_size must be at least 1")
        self.history_size = history_size
        self.history_ttl = history_ttl
        self.event_max_bytes = event_max_bytes
        self.idempotency_ttl = history_ttl if idempotency_ttl is None else idempotency_ttl
        self.stats = BrokerStats()
        self._channels: dict[str, _ChannelHistory] = {}
        self._subscribed: set[str] = set()
        self._idempotency: dict[tuple[str, str], tuple[Offset | None, float]] = {}  # (channel, key)
        self._queue: asyncio.Queue[BrokerEvent | Resync | None] = asyncio.Queue()
        self._running = False

    async def start(self) -> None:
        """Mark the broker running."""
        self._running = True

    async def stop(self) -> None:
        """End the ``events()`` stream."""
        self._running = False
        self._queue.put_nowait(None)

    @property
    def healthy(self) -> bool:
        """True between ``start()`` and ``stop()``."""
        return self._running

    @property
    def subscriptions(self) -> frozenset[str]:
        """Channels currently subscribed."""
        return frozenset(self._subscribed)

    def _channel(self, channel: str) -> _ChannelHistory:
        now = time.monotonic()
        state = self._channels.get(channel)
        if state is None or now - state.touched_at > self.history_ttl:
            state = _ChannelHistory(new_epoch(), 0, deque(maxlen=self.history_size), now)
            self._channels[channel] = state
        return state

    def _check_idempotency(self, key: tuple[str, str]) -> tuple[bool, Offset | None]:
        now = time.monotonic()
        if len(self._idempotency) > 10_000:
            # Bound memory: sweep expired keys now and then rather than on every publish.
            self._idempotency = {k: v for k, v in self._idempotency.items() if v[1] > now}
        hit = self._idempotency.get(key)
        if hit is not None and hit[1] > now:
            return True, hit[0]
        return False, None

    async def publish(
        self,
        channel: str,
        type: str,
        data: bytes,
        *,
        ts: str | None = None,
        history: bool = True,
        idempotency_key: str | None = None,
    ) -> Offset | None:
        """Append to the channel's ring and deliver to the subscriber stream (see ``Broker.publish``)."""
        data = validate_event(type, bytes(data), ts, max_bytes=self.event_max_bytes)
        if idempotency_key is not None:
            seen, previous = self._check_idempotency((channel, idempotency_key))
            if seen:
                return previous
        offset: Offset | None = None
        event = BrokerEvent(channel, None, type, msgspec.Raw(data), ts or utc_timestamp())
        if history:
            state = self._channel(channel)
            state.seq += 1
            state.touched_at = time.monotonic()
            offset = Offset(state.epoch, state.seq)
            event = msgspec.structs.replace(event, offset=offset)
            state.events.append(event)
        if idempotency_key is not None:
            self._idempotency[(channel, idempotency_key)] = (offset, time.monotonic() + self.idempotency_ttl)
        self.stats.published += 1
        if channel in self._subscribed:
            self.stats.events_in += 1
            self._queue.put_nowait(event)
        return offset

    async def publish_many(
        self, channels: Sequence[str], type: str, data: bytes, *, ts: str | None = None
    ) -> list[Offset]:
        """Publish one event to each channel, each with its own offset (see ``Broker.publish_many``)."""
        data = validate_event(type, bytes(data), ts, max_bytes=self.event_max_bytes)
        offsets = [await self.publish(channel, type, data, ts=ts) for channel in channels]
        return [offset for offset in offsets if offset is not None]

    async def subscribe(self, channels: Iterable[str]) -> None:
        """Subscribe; effective immediately."""
        self._subscribed.update(channels)

    async def unsubscribe(self, channels: Iterable[str]) -> None:
        """Unsubscribe; effective immediately."""
        self._subscribed.difference_update(channels)

    async def current_offset(self, channel: str) -> Offset:
        """Return the current offset, creating the channel's epoch if needed."""
        state = self._channel(channel)
        return Offset(state.epoch, state.seq)

    async def history(self, channel: str, after: Offset | None) -> History:
        """Return held events after ``after`` (see ``History``)."""
        state = self._channel(channel)
        current = Offset(state.epoch, state.seq)
        held = list(state.events)
        first_seq = held[0].offset.seq if held and held[0].offset else None
        complete = history_is_complete(after, current, first_seq)
        if after is not None and after.epoch == state.epoch:
            held = [e for e in held if e.offset is not None and e.offset.seq > after.seq]
        return History(current, held, complete)

    def forget(self, channel: str) -> None:
        """Drop a channel's history, as if it expired (its next use starts a new epoch)."""
        self._channels.pop(channel, None)

    async def events(self) -> AsyncIterator[BrokerEvent | Resync]:
        """Yield events of subscribed channels until ``stop()``."""
        while True:
            item = await self._queue.get()
            if item is None:
                return
            yield item
