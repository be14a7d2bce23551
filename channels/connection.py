"""One client connection as the hub sees it: a byte-bounded send queue, written in batches.

Transport-agnostic. A WebSocket transport that offers a ``FrameSink`` is written to directly: no
task per connection; the hub's ``Flusher`` writes every connection with queued messages once per
event-loop iteration, so a message costs one write when a client keeps up and several messages share
one frame (``\\n``-separated) when it falls behind. Other transports (SSE, ASGI servers without the
extension) give ``send_frame`` and ``close`` coroutines and get a writer task while they are backlogged;
the two are writers behind one interface, chosen when the connection is made, not asked for each message.

Overflow policy (websockets "per-client queues", centrifuge ``DisconnectSlow``): a connection whose
queued plus transport-buffered bytes would exceed ``max_queue_bytes`` is closed with 4008 and its
queue discarded; nothing is ever dropped silently. The one sanctioned drop is latest-wins
coalescing of queued live ``tracking.location``. A replay larger than the room left is queued in parts
(``fits`` / ``wait_for_room``, used by the hub) instead of overflowing the queue at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from channels.flusher import Flusher, FlushPass
from channels.frames import FrameSink
from channels.metrics import HubMetrics
from channels.outgoing import FrameFormatter, Outgoing, join_lines

__all__ = ["CLOSE_TOO_SLOW", "CloseTransport", "Connection", "SendFrame"]

logger = logging.getLogger(__name__)

CLOSE_TOO_SLOW = 4008
# How long a deliberate close on a send_frame transport waits for what was queued before it (errors, mostly).
CLOSE_DRAIN_SECONDS = 1.0

SendFrame = Callable[[bytes], Awaitable[None]]
CloseTransport = Callable[[int, str], Awaitable[None]]


class Connection:
    """A subscriber: queues messages without blocking the hub and writes them in batches.

    Args:
        send_frame: Sends one frame to the client (used when there is no ``sink``).
        close: Closes the transport with a code and reason.
        sink: Direct frame writer of a WebSocket transport; batches are ``\\n``-joined text frames.
        flusher: The hub's ``Flusher`` (required with a ``sink``; one of its own otherwise).
        max_queue_bytes: Queued plus transport-buffered bytes allowed before the connection is closed with 4008.
        max_frame_bytes: Batching stops adding messages to a frame beyond this size.
        formatter: Turns a batch into one frame for ``send_frame`` (SSE passes its own).
        metrics: Shared counters.
    """

    __slots__ = (
        "_buffered",
        "_close_transport",
        "_closed",
        "_closer",
        "_drained",
        "_flush_pending",
        "_held",
        "_latest",
        "_queue",
        "_queued_bytes",
        "_subscribe_lock",
        "_superseded",
        "_task",
        "_writer",
        "channels",
        "max_frame_bytes",
        "max_queue_bytes",
        "metrics",
        "slow",
    )

    def __init__(
        self,
        send_frame: SendFrame,
        close: CloseTransport,
        *,
        sink: FrameSink | None = None,
        flusher: Flusher | None = None,
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
        self._close_transport = close
        self._writer: _Writer = (
            _TaskWriter(send_frame, formatter) if sink is None else _SinkWriter(sink, flusher or Flusher())
        )
        self._queue: list[Outgoing] = []
        self._queued_bytes = 0
        self._buffered = 0  # the transport's buffer after our last write: an upper bound, it only drains since
        # Allocated on first use: most connections never coalesce, wait or subscribe twice at once.
        self._latest: dict[str, Outgoing] | None = None  # channel -> its queued coalescible event
        self._superseded: set[int] | None = None  # ids of queued items replaced by a newer one
        self._flush_pending = False  # a flush is scheduled, or a task is writing or awaiting writability
        self._held = False  # see hold()
        self._closed = False
        self._drained: asyncio.Future[None] | None = None  # see wait_for_room
        self._task: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None
        self._subscribe_lock: asyncio.Lock | None = None

    @property
    def closed(self) -> bool:
        """True once the connection was closed (or found too slow)."""
        return self._closed

    @property
    def subscribe_lock(self) -> asyncio.Lock:
        """Serializes this connection's (re)subscriptions in the hub."""
        if self._subscribe_lock is None:
            self._subscribe_lock = asyncio.Lock()
        return self._subscribe_lock

    def fits(self, size: int) -> bool:
        """Whether ``size`` more bytes may be queued now without passing ``max_queue_bytes``."""
        return self._queued_bytes + size + self._buffered <= self.max_queue_bytes

    async def wait_for_room(self, size: int) -> bool:
        """Wait until ``size`` more bytes fit, or until there is nothing left to wait for; False once closed.

        The hub queues a replay in parts this way: one larger than the send queue would otherwise be
        closed with 4008 each time the client resumed. Waits for the queue to be handed to the transport,
        then for a paused transport to resume; when only the transport's buffer is over, it returns and
        ``enqueue`` decides, as for any message. Releases a ``hold`` (held messages would never drain).
        """
        self.release()
        while not self._closed:
            self._buffered = self._writer.buffered()
            if self.fits(size):
                break
            if self._queue or self._flush_pending:
                if self._drained is None:
                    self._drained = asyncio.get_running_loop().create_future()
                await asyncio.shield(self._drained)
            elif not await self._writer.wait_writable():
                break
        return not self._closed

    def _notify_drained(self) -> None:
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def enqueue(self, item: Outgoing) -> bool:
        """Queue a message without blocking; False when the connection is closed or just overflowed."""
        if self._closed:
            return False
        if item.coalesce and item.channel is not None:
            self._coalesce(item.channel, item)
        size = len(item.payload)
        backlog = self._queued_bytes + size
        if backlog + self._buffered > self.max_queue_bytes:
            self._buffered = self._writer.buffered()  # the bound was stale: ask the transport
            if backlog + self._buffered > self.max_queue_bytes:
                self.overflow()
                return False
        self._queue.append(item)
        self._queued_bytes += size
        if not self._flush_pending and not self._held:
            self._schedule_flush()
        return True

    def hold(self) -> None:
        """Queue without writing until ``release``, so that messages which belong together leave in one write.

        The endpoint holds ``welcome`` until the user channel's ``subscribed`` is queued: one frame and one
        system call per new socket instead of two. Limits and overflow apply as usual meanwhile.
        """
        self._held = True

    def release(self) -> None:
        """Write what was queued while held (at the end of this event-loop iteration)."""
        self._held = False
        if self._queue and not self._flush_pending and not self._closed:
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        self._flush_pending = True
        self._writer.schedule(self)

    def _coalesce(self, channel: str, item: Outgoing) -> None:
        latest = self._latest
        if latest is None:
            latest = self._latest = {}
        previous = latest.get(channel)
        if previous is not None:  # still queued: _take_batch forgets the ones it takes
            if self._superseded is None:
                self._superseded = set()
            self._superseded.add(id(previous))
            self._queued_bytes -= len(previous.payload)
            self.metrics.coalesced += 1
        latest[channel] = item

    def overflow(self) -> None:
        """Close as too slow (4008): the client fell further behind than ``max_queue_bytes``."""
        self.slow = True
        self.metrics.slow_consumer_closes += 1
        logger.info("closing slow consumer: send queue over %d bytes", self.max_queue_bytes)
        self.close_soon(CLOSE_TOO_SLOW, "too slow: send queue overflowed")

    def close_soon(self, code: int, reason: str) -> None:
        """Discard the queue and close the transport from a task (for callbacks that cannot await)."""
        if self._closed:
            return
        self._discard_queue()
        # The writer may be stuck in send_frame on a slow client: cancel it and close from outside.
        if self._task is not None:
            self._task.cancel()
        self._closer = asyncio.create_task(self._close(code, reason), name="channels-connection-close")

    def _discard_queue(self) -> None:
        self._closed = True
        self._queue.clear()
        self._latest = None
        self._superseded = None
        self._queued_bytes = 0
        self._notify_drained()

    async def _close(self, code: int, reason: str) -> None:
        try:
            await self._close_transport(code, reason)
        except Exception:
            # The transport may already be gone; closing is best effort.
            logger.debug("transport close failed", exc_info=True)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the transport and stop writing; what the transport does not take at once is discarded."""
        if not self._closed:
            if self._queue:
                # Errors queued just before a deliberate close (4029, 4001) should reach the client.
                await self._writer.send_before_close(self)
            self._discard_queue()
            await self._close(code, reason)
        await self.stop()

    async def stop(self) -> None:
        """Stop writing without closing the transport (the app's endpoint is ending)."""
        self._discard_queue()
        for task in (self._task, self._closer):
            if task is not None and task is not asyncio.current_task():
                if task is self._task:
                    task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    def _take_batch(self) -> list[Outgoing]:
        queue, superseded, latest = self._queue, self._superseded, self._latest
        batch: list[Outgoing] = []
        size = taken = 0
        for item in queue:
            if batch and size + len(item.payload) > self.max_frame_bytes:
                break
            taken += 1
            if superseded and id(item) in superseded:
                superseded.discard(id(item))
                continue
            if item.coalesce and latest is not None and item.channel is not None and latest.get(item.channel) is item:
                del latest[item.channel]
            batch.append(item)
            size += len(item.payload)
        del queue[:taken]
        self._queued_bytes -= size
        return batch

    def flush(self, flush: FlushPass) -> None:
        """Write what is queued while the transport accepts it (called by the hub's ``Flusher``)."""
        self._writer.flush(self, flush)


class _Writer(Protocol):
    """How a connection's queue reaches its transport; one per connection, chosen when it is made.

    ``schedule``: write soon; ``flush``: write what the transport takes now (the ``Flusher``);
    ``send_before_close``: the queue first (4029's error should reach the client); ``buffered``: what
    the transport holds unread (the overflow bound counts it); ``wait_writable``: False at once when not
    paused. Writers take the connection as an argument: no reference cycle to outlive the socket.
    """

    def schedule(self, conn: Connection) -> None: ...
    def flush(self, conn: Connection, flush: FlushPass) -> None: ...
    def buffered(self) -> int: ...
    async def wait_writable(self) -> bool: ...
    async def send_before_close(self, conn: Connection) -> None: ...


class _SinkWriter:
    """Pre-framed bytes straight to a ``FrameSink``, by the hub's ``Flusher``: no task per connection."""

    __slots__ = ("_flusher", "_sink")

    def __init__(self, sink: FrameSink, flusher: Flusher) -> None:
        self._sink = sink
        self._flusher = flusher

    def schedule(self, conn: Connection) -> None:
        self._flusher.add(conn)

    def buffered(self) -> int:
        return self._sink.buffered()

    async def send_before_close(self, conn: Connection) -> None:
        self.flush(conn, FlushPass())  # what the transport takes at once; the rest is discarded

    async def wait_writable(self) -> bool:
        paused = not self._sink.writable()
        if paused:
            await self._sink.wait_writable()
        return paused

    def flush(self, conn: Connection, flush: FlushPass) -> None:
        sink = self._sink
        conn._flush_pending = False
        while conn._queue and not conn._closed:
            if not sink.writable():
                conn._buffered = sink.buffered()
                conn._flush_pending = True
                conn._task = asyncio.create_task(self._await_writable(conn), name="channels-connection-paused")
                return
            if not (batch := conn._take_batch()):
                continue  # all superseded
            try:
                written = sink.write(flush.batch_frame(batch))
            except Exception:
                logger.debug("write failed; connection closed", exc_info=True)
                written = False
            if not written:
                conn._discard_queue()  # the socket is closing: the endpoint sees the disconnect
                return
            conn.metrics.written(batch, flush.now, flush.observed)
        conn._buffered = sink.buffered()
        if not conn._queue:
            conn._notify_drained()

    async def _await_writable(self, conn: Connection) -> None:
        await self._sink.wait_writable()
        conn._task = None
        if not conn._closed:
            self._flusher.add(conn)  # _flush_pending stays True until that flush runs


class _TaskWriter:
    """``send_frame`` from a task that runs while messages are queued (SSE, ASGI servers without a sink)."""

    __slots__ = ("_formatter", "_send_frame")

    def __init__(self, send_frame: SendFrame, formatter: FrameFormatter) -> None:
        self._send_frame = send_frame
        self._formatter = formatter

    def schedule(self, conn: Connection) -> None:
        conn._task = asyncio.create_task(self._write_loop(conn), name="channels-connection-writer")

    def flush(self, conn: Connection, flush: FlushPass) -> None:
        pass  # never added to a Flusher: its task writes

    def buffered(self) -> int:
        return 0  # send_frame returns once the transport took the frame

    async def wait_writable(self) -> bool:
        return False

    async def send_before_close(self, conn: Connection) -> None:
        try:
            async with asyncio.timeout(CLOSE_DRAIN_SECONDS):  # the queue first, but not for ever
                writer = conn._task
                if writer is not None and writer is not asyncio.current_task():
                    await asyncio.wait({writer})  # it may be mid-send: let it finish, in order
                conn._flush_pending = True  # no new writer task from here: this is the only sender
                await self._send_queue(conn)
        except Exception:  # TimeoutError (a client that does not read), or a transport already gone
            logger.debug("queued messages not sent before close", exc_info=True)

    async def _send_queue(self, conn: Connection) -> None:
        while conn._queue and not conn._closed:
            batch = conn._take_batch()
            if batch:  # else all superseded
                await self._send_frame(self._formatter(batch))
                conn.metrics.written(batch, time.time())

    async def _write_loop(self, conn: Connection) -> None:
        try:
            await self._send_queue(conn)
        except Exception:
            logger.debug("send failed; connection closed", exc_info=True)
            conn._discard_queue()
        finally:
            conn._flush_pending = False
            conn._task = None
            if not conn._queue:
                conn._notify_drained()
