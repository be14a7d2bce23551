"""One client connection as the hub sees it: a byte-bounded send queue and its writer.

Transport-agnostic: the app gives ``send_frame`` and ``close`` coroutines (WebSocket or SSE).
Overflow policy (websockets "per-client queues", centrifuge ``DisconnectSlow``): a connection whose
queue exceeds ``max_queue_bytes`` is closed with 4008 and its queue discarded; nothing is ever
dropped silently. The one sanctioned drop is latest-wins coalescing of live ``tracking.location``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal

import msgspec

from channels.metrics import HubMetrics
from channels.offsets import Offset

__all__ = [
    "CLOSE_TOO_SLOW",
    "CloseTransport",
    "Connection",
    "FrameFormatter",
    "Outgoing",
    "SendFrame",
    "join_lines",
]

logger = logging.getLogger(__name__)

CLOSE_TOO_SLOW = 4008
COALESCED_TYPES = frozenset({"tracking.location"})

SendFrame = Callable[[bytes], Awaitable[None]]
CloseTransport = Callable[[int, str], Awaitable[None]]


class Outgoing(msgspec.Struct, frozen=True):
    """One encoded server message queued for a connection; shared by every recipient.

    Attributes:
        payload: The message's JSON bytes.
        kind: ``event`` or ``control`` (subscribed, pong, error...).
        channel: The channel it concerns, if any.
        offset: The event's offset; for a ``subscribed`` reset, the new resume offset.
        type: Event type (``None`` for control messages).
        published_at: Publish time as a UNIX timestamp, for latency metrics.
        coalesce: True for a live event that a newer one of the same channel may replace.
    """

    payload: bytes
    kind: Literal["event", "control"] = "control"
    channel: str | None = None
    offset: Offset | None = None
    type: str | None = None
    published_at: float | None = None
    coalesce: bool = False


FrameFormatter = Callable[[Sequence[Outgoing]], bytes]


def join_lines(batch: Sequence[Outgoing]) -> bytes:
    """Default frame format: messages separated by ``\\n`` (SPEC allows batching)."""
    if len(batch) == 1:
        return batch[0].payload  # the very bytes object shared by every subscriber
    return b"\n".join(item.payload for item in batch)


class Connection:
    """A subscriber: queues messages without blocking the hub and writes them in batches.

    Args:
        send_frame: Sends one frame to the client.
        close: Closes the transport with a code and reason.
        max_queue_bytes: Bytes that may wait in the queue before the connection is closed with 4008.
        max_frame_bytes: Batching stops adding messages to a frame beyond this size.
        formatter: Turns a batch into one frame (SSE passes its own).
        metrics: Shared counters.
    """

    def __init__(
        self,
        send_frame: SendFrame,
        close: CloseTransport,
        *,
        max_queue_bytes: int = 1 << 20,
        max_frame_bytes: int = 1 << 16,
        formatter: FrameFormatter = join_lines,
        metrics: HubMetrics | None = None,
    ) -> None:
        self.max_queue_bytes = max_queue_bytes
        self.max_frame_bytes = max_frame_bytes
        self.metrics = metrics or HubMetrics()
        self.channels: set[str] = set()  # maintained by the hub
        self.slow = False
        self._send_frame = send_frame
        self._close_transport = close
        self._formatter = formatter
        self._queue: deque[Outgoing] = deque()
        self._queued_bytes = 0
        self._latest: dict[str, Outgoing] = {}  # channel -> its queued coalescible event
        self._superseded: set[int] = set()  # ids of queued items replaced by a newer one
        self._wakeup = asyncio.Event()
        self._closed = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None
        self.subscribe_lock = asyncio.Lock()  # the hub serializes (re)subscriptions per connection

    @property
    def closed(self) -> bool:
        """True once the connection was closed (or found too slow)."""
        return self._closed.is_set()

    @property
    def queued_bytes(self) -> int:
        """Bytes waiting in the send queue."""
        return self._queued_bytes

    def start(self) -> None:
        """Start the writer task."""
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_loop(), name="channels-connection-writer")

    async def wait_closed(self) -> None:
        """Wait until the connection is closed (the app ends its receive loop then)."""
        await self._closed.wait()

    def enqueue(self, item: Outgoing) -> bool:
        """Queue a message without blocking; False when the connection is closed or just overflowed."""
        if self.closed:
            return False
        if item.coalesce and item.channel is not None:
            previous = self._latest.get(item.channel)
            if previous is not None and id(previous) not in self._superseded:
                self._superseded.add(id(previous))
                self._queued_bytes -= len(previous.payload)
                self.metrics.coalesced += 1
            self._latest[item.channel] = item
        if self._queued_bytes + len(item.payload) > self.max_queue_bytes:
            self._overflow()
            return False
        self._queue.append(item)
        self._queued_bytes += len(item.payload)
        self._wakeup.set()
        return True

    def _overflow(self) -> None:
        self.slow = True
        self.metrics.slow_consumer_closes += 1
        logger.info("closing slow consumer: send queue over %d bytes", self.max_queue_bytes)
        self._discard_queue()
        # The writer is probably stuck in send_frame on a slow client: cancel it and close from outside.
        if self._writer is not None:
            self._writer.cancel()
        self._closer = asyncio.create_task(self._close(CLOSE_TOO_SLOW, "too slow: send queue overflowed"))

    def _discard_queue(self) -> None:
        self._closed.set()
        self._queue.clear()
        self._latest.clear()
        self._superseded.clear()
        self._queued_bytes = 0
        self._wakeup.set()

    async def _close(self, code: int, reason: str) -> None:
        try:
            await self._close_transport(code, reason)
        except Exception:
            # The transport may already be gone; closing is best effort.
            logger.debug("transport close failed", exc_info=True)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the transport and stop the writer; queued messages are discarded."""
        if not self.closed:
            self._discard_queue()
            await self._close(code, reason)
        await self.stop()

    async def stop(self) -> None:
        """Stop the writer without closing the transport (the app's endpoint is ending)."""
        self._discard_queue()
        for task in (self._writer, self._closer):
            if task is not None and task is not asyncio.current_task():
                if task is self._writer:
                    task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    def _take_batch(self) -> list[Outgoing]:
        batch: list[Outgoing] = []
        size = 0
        while self._queue and (not batch or size + len(self._queue[0].payload) <= self.max_frame_bytes):
            item = self._queue.popleft()
            if id(item) in self._superseded:
                self._superseded.discard(id(item))
                continue
            if item.coalesce and item.channel is not None and self._latest.get(item.channel) is item:
                del self._latest[item.channel]
            self._queued_bytes -= len(item.payload)
            batch.append(item)
            size += len(item.payload)
        return batch

    async def _write_loop(self) -> None:
        while not self.closed:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = self._take_batch()
            if not batch:
                continue
            try:
                await self._send_frame(self._formatter(batch))
            except Exception:
                logger.debug("send failed; connection closed", exc_info=True)
                self._discard_queue()
                return
            now = time.time()
            for item in batch:
                if item.kind == "event":
                    self.metrics.events_out += 1
                    if item.published_at is not None:
                        self.metrics.observe_latency(now - item.published_at)
