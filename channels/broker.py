"""The broker interface: publish, subscribe, history and one stream of events.

A broker moves bytes between producers and the hub; it knows channel names and offsets, nothing
about connections or users. ``MemoryBroker`` serves one process, ``RedisBroker`` any number.
Modelled on litestar ``channels/backends/base.py`` and broadcaster ``_base.py``.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field

import msgspec

from channels.offsets import Offset

__all__ = [
    "Broker",
    "BrokerEvent",
    "BrokerStats",
    "History",
    "Resync",
    "history_is_complete",
    "utc_timestamp",
]


class BrokerEvent(msgspec.Struct, frozen=True):
    """One event as received from the broker, decoded once per process.

    Attributes:
        channel: Channel name (without the Redis prefix).
        offset: Position in the channel's history; ``None`` for a bare publish (no history).
        type: Event type, e.g. ``tracking.location``.
        data: The producer's JSON value, relayed undecoded.
        ts: Publish time, RFC 3339 UTC.
        published_at: ``ts`` as a UNIX timestamp when the broker already parsed it (the hub's
            latency metric needs it; ``None``: the hub parses ``ts`` itself).
    """

    channel: str
    offset: Offset | None
    type: str
    data: msgspec.Raw
    ts: str
    published_at: float | None = None


class Resync(msgspec.Struct, frozen=True):
    """Marker in the event stream: the broker reconnected; events of these channels may be missing."""

    channels: tuple[str, ...]


class History(msgspec.Struct, frozen=True):
    """A read of a channel's history.

    Attributes:
        offset: The channel's current offset at the time of the read.
        events: Events after the requested offset that history still holds, oldest first. When the
            requested offset is from another epoch, every event of the current epoch still held.
        complete: True when ``events`` is exactly everything after the requested offset; False when
            history no longer reaches back that far or the epoch changed (clients refetch over REST).
    """

    offset: Offset
    events: list[BrokerEvent]
    complete: bool


@dataclass
class BrokerStats:
    """Counters a broker keeps for metrics; plain ints read by the app's collectors.

    Attributes:
        events_in: Valid events received for subscribed channels.
        published: Events this process published (idempotent repeats not counted).
        dropped: Producer messages received and dropped as invalid, by ``InvalidEvent.reason``.
        listener_errors: Messages whose handling raised (counted and skipped: the listener stays up).
        reconnects: Reconnections of the pub/sub connection.
    """

    events_in: int = 0
    published: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    listener_errors: int = 0
    reconnects: int = 0


_second_text: tuple[int, str] = (-1, "")  # the last whole second formatted, and its text


def utc_timestamp(at: float | None = None) -> str:
    """Return ``at`` (a UNIX time, default now) as RFC 3339 UTC with milliseconds and ``Z``.

    Every bare producer message is stamped with it: the date and time of day are formatted once per
    second (a third of the cost of ``datetime.isoformat``), the milliseconds each time.
    """
    global _second_text
    now = time.time() if at is None else at
    second = math.floor(now)
    cached, text = _second_text
    if cached != second:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second_text = (second, text)
    return f"{text}.{int((now - second) * 1000):03d}Z"


def history_is_complete(after: Offset | None, current: Offset, first_seq: int | None) -> bool:
    """Tell whether history held from ``first_seq`` covers everything after ``after``.

    Args:
        after: The offset the reader has; ``None`` means from the start of the epoch.
        current: The channel's current offset.
        first_seq: Seq of the oldest event held, ``None`` when history holds none.
    """
    start = 0 if after is None else after.seq
    if after is not None and after.epoch != current.epoch:
        return False
    if start > current.seq:
        # An offset from the future of this epoch was never issued by us: treat as lost.
        return False
    if start == current.seq:
        return True
    return first_seq is not None and first_seq <= start + 1


class Broker(ABC):
    """Moves events between producers and this process's hub.

    Implementations must make ``subscribe`` return only once the subscription is live, so that no
    event published after it returns is missed, and must emit ``Resync`` after any interruption.
    """

    stats: BrokerStats
    event_max_bytes: int
    """``EVENT_MAX_BYTES``: ``publish`` refuses a larger event, the listener drops one."""

    @abstractmethod
    async def start(self) -> None:
        """Connect; called once before the server accepts clients."""

    @abstractmethod
    async def stop(self) -> None:
        """Disconnect and end the ``events()`` stream."""

    @property
    @abstractmethod
    def healthy(self) -> bool:
        """True while the broker can deliver live events (for ``/ready``)."""

    @property
    @abstractmethod
    def subscriptions(self) -> frozenset[str]:
        """Channels this broker is currently asked to deliver."""

    @abstractmethod
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
        """Append an event to the channel's history and publish it, atomically.

        Args:
            channel: Channel name.
            type: Event type.
            data: The event's data, already encoded as a JSON value.
            ts: Publish time (RFC 3339); defaults to now.
            history: False for a bare publish: relayed live only, offset ``None``.
            idempotency_key: When given and already used on this channel (within the broker's
                idempotency TTL, ``HISTORY_TTL`` by default), nothing is published and the offset of the
                first publish is returned.

        Returns:
            The event's offset, or ``None`` for a bare publish.

        Raises:
            InvalidEvent: the event is one a listener would drop (``envelope.validate_event``).
            BrokerUnavailable: the broker's server cannot be reached.
        """

    @abstractmethod
    async def publish_many(
        self, channels: Sequence[str], type: str, data: bytes, *, ts: str | None = None
    ) -> list[Offset]:
        """Publish one event to several channels with history, each getting its own offset (in order).

        Checked once; on Redis the channels' scripts go out pipelined. Not atomic across channels: an
        error may leave some published (a retry publishes those again, with new offsets).

        Raises:
            InvalidEvent: the event is one a listener would drop.
            BrokerUnavailable: the broker's server cannot be reached.
        """

    @abstractmethod
    async def subscribe(self, channels: Iterable[str]) -> None:
        """Start receiving live events of ``channels``; returns once the subscription is confirmed."""

    @abstractmethod
    async def unsubscribe(self, channels: Iterable[str]) -> None:
        """Stop receiving live events of ``channels``."""

    @abstractmethod
    async def current_offset(self, channel: str) -> Offset:
        """Return the channel's current offset, starting an epoch for a channel that has none."""

    @abstractmethod
    async def history(self, channel: str, after: Offset | None) -> History:
        """Return the events held after ``after`` (``None``: all held), oldest first."""

    @abstractmethod
    def events(self) -> AsyncIterator[BrokerEvent | Resync]:
        """Stream every event of every subscribed channel, with ``Resync`` markers; ends at ``stop()``."""
