"""The hub: fans broker events out to connections, with gap-free resume.

One listener task consumes ``broker.events()``; each event is encoded once and the same bytes are
queued on every subscribed connection. Per channel the hub tracks the last offset it relayed, so a
skipped seq is fetched from history, an epoch change is announced with ``subscribed`` /
``recovered: false``, and a broker ``Resync`` refills every channel. Models: litestar
``channels/plugin.py``, centrifuge ``hub.go``. The resume algorithm is described in docs/channels.md.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import NamedTuple

from channels.broker import Broker, BrokerEvent, Resync
from channels.connection import CloseTransport, Connection, SendFrame
from channels.delivery import deliver, event_message, replay, subscribed_message
from channels.errors import ChannelsError
from channels.flusher import Flusher
from channels.frames import FrameSink
from channels.metrics import HubMetrics
from channels.offsets import Offset
from channels.outgoing import FrameFormatter, Outgoing, join_lines
from channels.protocol import Ref

__all__ = ["Hub", "Subscription"]

logger = logging.getLogger(__name__)


class Subscription(NamedTuple):
    """Result of a subscribe: the channel's current offset and what was replayed."""

    offset: Offset
    recovered: bool
    replayed: int


@dataclass(eq=False, slots=True)
class _Held:
    """Live events held back for a connection while it subscribes (its replay goes first)."""

    items: list[Outgoing] = field(default_factory=list)
    size: int = 0  # bytes: more than the connection's send queue is too slow, as if they were queued


@dataclass(eq=False, slots=True)
class _Channel:
    ready: asyncio.Future[None]
    members: dict[Connection, Offset | None] = field(default_factory=dict)  # live, with per-member cursor
    buffers: dict[Connection, _Held] = field(default_factory=dict)  # subscribing: live events held back
    last: Offset | None = None  # last offset relayed on this channel, for gap detection


class Hub:
    """Owns ``channel -> connections`` and the broker subscriptions they need.

    Args:
        broker: The started broker.
        send_queue_bytes: Send queue limit of each connection (``WS_SEND_QUEUE``).
        metrics: Counters to update; a fresh ``HubMetrics`` when omitted.
    """

    def __init__(self, broker: Broker, send_queue_bytes: int = 1 << 20, metrics: HubMetrics | None = None) -> None:
        self.broker = broker
        self.send_queue_bytes = send_queue_bytes
        self.metrics = metrics or HubMetrics()
        self._channels: dict[str, _Channel] = {}
        self._connections: set[Connection] = set()
        self._listener: asyncio.Task[None] | None = None
        self._flusher = Flusher()

    @property
    def channels(self) -> dict[str, set[Connection]]:
        """Snapshot of channel -> subscribed connections (for metrics and tests)."""
        return {name: set(ch.members) | set(ch.buffers) for name, ch in self._channels.items()}

    async def start(self) -> None:
        """Start the listener task; the broker must be started."""
        self._listener = asyncio.create_task(self._listen(), name="channels-hub-listener")

    async def stop(self, close_code: int = 1001) -> None:
        """Stop the listener and close every connection with ``close_code``."""
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
            self._listener = None
        await asyncio.gather(*(c.close(close_code, "server shutting down") for c in list(self._connections)))

    @asynccontextmanager
    async def connect(
        self,
        send_frame: SendFrame,
        close: CloseTransport,
        *,
        formatter: FrameFormatter = join_lines,
        sink: FrameSink | None = None,
    ) -> AsyncIterator[Connection]:
        """Register a connection for the block's duration; on exit it leaves every channel.

        With a ``sink`` (a WebSocket transport taking pre-framed bytes) messages are written directly
        and ``send_frame``/``formatter`` are unused; without one a writer task calls ``send_frame``.
        """
        conn = Connection(
            send_frame,
            close,
            sink=sink,
            flusher=self._flusher,
            max_queue_bytes=self.send_queue_bytes,
            formatter=formatter,
            metrics=self.metrics,
        )
        self._connections.add(conn)
        try:
            yield conn
        finally:
            self._connections.discard(conn)
            await self.disconnect(conn)

    async def disconnect(self, conn: Connection) -> None:
        """Remove ``conn`` from every channel and stop writing to it."""
        for channel in list(conn.channels):
            await self.unsubscribe(conn, channel)
        await conn.stop()

    async def subscribe(
        self,
        conn: Connection,
        channel: str,
        since: Offset | None = None,
        *,
        ref: Ref = None,
        announce: bool = True,
        recovered: bool = True,
    ) -> Subscription:
        """Subscribe ``conn`` to ``channel``, replaying history after ``since`` without gap or duplicate.

        Queues ``subscribed`` (when ``announce``), then the replayed events, then live events: on this
        connection the channel's events are in offset order. Live events that arrive meanwhile are held
        and follow the replay; a replay larger than the room in the send queue is queued in parts as the
        client reads it. Without ``since`` nothing is replayed. On a channel ``conn`` is already on,
        ``since`` replays from there (live events already sent stay sent: the client orders by offset).

        Args:
            recovered: False announces ``recovered: false`` whatever history holds (the client asked to
                resume from an offset that could not be read: it should refetch).

        Raises:
            BrokerError: the broker could not subscribe or read history.
        """
        async with conn.subscribe_lock:
            channel_state = await self._acquire(channel)
            cursor = channel_state.members.get(conn)
            if conn in channel_state.members and since is None:
                offset = cursor or await self.broker.current_offset(channel)
                if announce:
                    conn.enqueue(subscribed_message(channel, offset, recovered=True, replayed=0, ref=ref))
                return Subscription(offset, True, 0)
            # Hold back live events while history is read and replayed; they are merged after the replay.
            channel_state.members.pop(conn, None)
            channel_state.buffers[conn] = _Held()
            conn.channels.add(channel)
            try:
                if since is None:
                    current, events, complete = await self.broker.current_offset(channel), [], True
                else:
                    history = await self.broker.history(channel, since)
                    current, events, complete = history.offset, history.events, history.complete
                if channel_state.last is None:
                    channel_state.last = current
                if announce:
                    announced = subscribed_message(
                        channel, current, recovered=complete and recovered, replayed=len(events), ref=ref
                    )
                    conn.enqueue(announced)
                await replay(conn, events)
            except BaseException:
                await self._leave(conn, channel)
                raise
            # No await from here on: the switch to live cannot interleave with the listener.
            cursor = current
            held = channel_state.buffers.pop(conn, None)
            for item in held.items if held is not None else ():
                cursor = deliver(conn, item, cursor)
            if not channel_state.buffers:
                channel_state.buffers = {}  # a dict keeps its table when emptied: ~200 B per channel
            channel_state.members[conn] = cursor
            return Subscription(current, complete and recovered, len(events))

    async def unsubscribe(self, conn: Connection, channel: str) -> None:
        """Remove ``conn`` from ``channel``; the broker is released after the last local subscriber."""
        async with conn.subscribe_lock:
            await self._leave(conn, channel)

    async def _acquire(self, channel: str) -> _Channel:
        while True:
            state = self._channels.get(channel)
            if state is None:
                state = _Channel(asyncio.get_running_loop().create_future())
                self._channels[channel] = state
                try:
                    await self.broker.subscribe([channel])
                except BaseException as exc:
                    if self._channels.get(channel) is state:
                        del self._channels[channel]
                    state.ready.set_exception(exc if isinstance(exc, Exception) else ChannelsError("cancelled"))
                    state.ready.exception()  # mark retrieved: waiters re-raise it themselves
                    raise
                state.ready.set_result(None)
            else:
                await asyncio.shield(state.ready)
            # The channel may have been released while we waited; then start over.
            if self._channels.get(channel) is state:
                return state

    async def _leave(self, conn: Connection, channel: str) -> None:
        conn.channels.discard(channel)
        state = self._channels.get(channel)
        if state is None:
            return
        state.members.pop(conn, None)
        state.buffers.pop(conn, None)
        if not state.members and not state.buffers and state.ready.done():
            del self._channels[channel]
            await self.broker.unsubscribe([channel])

    # listener

    async def _listen(self) -> None:
        async for item in self.broker.events():
            try:
                if isinstance(item, Resync):
                    await self._resync(item)
                elif not self._relay_in_order(item):
                    await self._fill(item.channel, self._channels[item.channel], item)
            except Exception:
                # One bad event or a failed history read must not stop delivery for everyone.
                logger.exception("hub failed to relay %r", item)

    def _relay_in_order(self, event: BrokerEvent) -> bool:
        """Relay ``event`` if it follows the channel's last offset, without a coroutine (the common case).

        An event without offset is relayed; one at or before the last offset was already relayed by a gap
        fill or resync. False when history must fill a gap first, or a new epoch began: ``_fill`` then.
        """
        state = self._channels.get(event.channel)
        if state is None:
            return True
        self.metrics.events_in += 1
        offset, last = event.offset, state.last
        if offset is not None and last is not None:
            if offset.epoch != last.epoch or offset.seq > last.seq + 1:
                return False
            if offset.seq <= last.seq:
                return True
        if offset is not None:
            state.last = offset
        self._fan_out(state, [event_message(event, live=True)])
        return True

    async def _resync(self, resync: Resync) -> None:
        self.metrics.resyncs += 1
        for channel in resync.channels:
            state = self._channels.get(channel)
            if state is not None and state.last is not None:
                try:
                    await self._fill(channel, state, None)
                except Exception:
                    # The other channels still refill; this one's next live event shows the gap and fills it.
                    logger.exception("hub could not refill %s after a broker resync", channel)

    async def _fill(self, channel: str, state: _Channel, upto: BrokerEvent | None) -> None:
        """Relay what history holds after ``state.last`` (and ``upto``, the live event that showed the gap)."""
        after = state.last
        if after is None:
            return
        history = await self.broker.history(channel, after)
        events = history.events
        items: list[Outgoing] = []
        if not history.complete:
            # History lost (epoch change, trimmed or expired): tell clients where the new sequence starts.
            self.metrics.history_lost += 1
            first = events[0].offset if events else None
            resume_at = Offset(first.epoch, first.seq - 1) if first is not None else history.offset
            items.append(subscribed_message(channel, resume_at, recovered=False, replayed=len(events)))
        upto_offset = upto.offset if upto is not None else None
        self.metrics.gaps_filled += sum(1 for e in events if e.offset != upto_offset)
        items.extend(event_message(e, live=True) for e in events)
        last = events[-1].offset if events else (after if history.complete else history.offset)
        # The live event itself, unless history already had it; one from an older epoch is dropped.
        if (
            upto is not None
            and upto_offset is not None
            and last is not None
            and upto_offset.epoch == last.epoch
            and upto_offset.seq > last.seq
        ):
            items.append(event_message(upto, live=True))
            last = upto_offset
        state.last = last
        self._fan_out(state, items)

    def _fan_out(self, state: _Channel, items: list[Outgoing]) -> None:
        """Queue ``items`` on every member (``deliver`` decides per member) and hold them for subscribers."""
        if not items:
            return
        members = state.members
        if len(items) == 1:  # the common case, a live event: no inner loop per recipient
            item = items[0]
            for conn, cursor in list(members.items()):
                members[conn] = deliver(conn, item, cursor)
                if conn.closed:
                    # Too slow: stop queueing for it; the app's connect() block removes it everywhere.
                    del members[conn]
        else:
            for conn, cursor in list(members.items()):
                for item in items:
                    cursor = deliver(conn, item, cursor)
                members[conn] = cursor
                if conn.closed:
                    del members[conn]
        if state.buffers:
            size = sum(len(item.payload) for item in items)
            for conn, held in state.buffers.items():
                held.items.extend(items)
                held.size += size
                if held.size > conn.max_queue_bytes and not conn.closed:
                    conn.overflow()  # its replay is not read fast enough to keep up with the channel
