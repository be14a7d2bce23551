"""The pub/sub side of ``RedisBroker``: one dedicated connection read by one supervised task.

Modelled on channels_redis ``pubsub.py``. redis-py's ``PubSub`` helper is not used: its
``subscribe`` returns before Redis confirms and it reconnects silently. Here ``subscribe`` awaits
futures that the listener resolves on Redis's confirmations; on any error the listener logs, backs
off with jitter, reconnects, re-subscribes every channel, waits for the confirmations, then calls
``on_resync`` so the hub refills from history what it may have missed.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Callable, Iterable
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from channels.broker import BrokerStats
from channels.errors import BrokerError, BrokerUnavailable

__all__ = ["PubSubListener"]

logger = logging.getLogger(__name__)

_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError)


class PubSubListener:
    """Keeps one confirmed Redis subscription set alive across connection failures.

    Args:
        url: ``redis://`` URL.
        prefix: Pub/sub channel ``<prefix>:<channel>`` carries ``<channel>``.
        on_message: Called with (channel, payload) for every message of a subscribed channel; what it
            raises is counted in ``stats.listener_errors`` and logged, never a reason to reconnect.
        on_resync: Called with the re-subscribed channels after a reconnection.
        stats: Counters (``reconnects``, ``listener_errors``).
        subscribe_timeout: Seconds ``subscribe`` waits for confirmation.
        reconnect_delay: (base, cap) seconds of the jittered exponential backoff.
        ping_interval: Seconds between keepalive PINGs; three silent intervals drop the connection.
    """

    def __init__(
        self,
        url: str,
        prefix: str,
        *,
        on_message: Callable[[str, bytes], None],
        on_resync: Callable[[tuple[str, ...]], None],
        stats: BrokerStats,
        subscribe_timeout: float = 5.0,
        reconnect_delay: tuple[float, float] = (0.1, 5.0),
        ping_interval: float = 15.0,
    ) -> None:
        self.url = url
        self.name = f"{prefix}-listener"
        self.stats = stats
        self.subscribe_timeout = subscribe_timeout
        self.reconnect_delay = reconnect_delay
        self.ping_interval = ping_interval
        self._on_message = on_message
        self._on_resync = on_resync
        self._channel_prefix = f"{prefix}:"
        self._pool: aioredis.ConnectionPool | None = None
        self._conn: AbstractConnection | None = None
        self._channels: set[str] = set()  # what we must be subscribed to
        self._confirmed: set[str] = set()  # confirmed on the current connection
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._awaiting: set[str] = set()  # re-subscriptions not yet confirmed after a reconnect
        self._reconnecting = False
        self._healthy = False
        self._health = asyncio.Condition()
        self._write_lock = asyncio.Lock()
        # (UN)SUBSCRIBE requests waiting for the sender, in order; requests made together share one command.
        self._outbox: list[tuple[str, list[str]]] = []
        self._sender: asyncio.Task[None] | None = None
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._last_read = 0.0
        self._error_logged_at = -math.inf
        self._unlogged_errors = 0

    async def start(self) -> None:
        """Connect once (raising ``BrokerUnavailable`` if Redis is down), then start the listener."""
        self._pool = aioredis.ConnectionPool.from_url(
            # RESP2: pub/sub messages come back from read_response (RESP3 would route them to a push handler)
            self.url,
            client_name=self.name,
            socket_connect_timeout=2,
            socket_keepalive=True,
            protocol=2,
        )
        try:
            await self._connect()
        except _UNAVAILABLE as exc:
            await self._pool.disconnect()
            raise BrokerUnavailable(f"cannot connect to Redis at {self.url}: {exc}") from exc
        self._tasks = [
            asyncio.create_task(self._listen(), name="redis-pubsub-listener"),
            asyncio.create_task(self._keepalive(), name="redis-pubsub-keepalive"),
        ]

    async def stop(self) -> None:
        """Stop the tasks, fail pending subscribes and close the connection."""
        self._stopping = True  # connections closing at shutdown still unsubscribe: nothing to send now
        tasks = [*self._tasks, *([self._sender] if self._sender is not None else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._outbox.clear()
        self._tasks = []
        for waiters in self._waiters.values():
            for future in waiters:
                if not future.done():
                    future.set_exception(BrokerUnavailable("broker stopped"))
                    future.exception()  # retrieved here: nobody may be awaiting it any more
        self._waiters.clear()
        if self._conn is not None:
            await self._conn.disconnect()
            self._conn = None
        if self._pool is not None:
            await self._pool.disconnect()
        await self._set_healthy(False)

    @property
    def healthy(self) -> bool:
        """True while connected with every channel (re)subscribed."""
        return self._healthy

    @property
    def subscriptions(self) -> frozenset[str]:
        """Channels currently subscribed (re-subscribed after every reconnect)."""
        return frozenset(self._channels)

    async def wait_healthy(self, healthy: bool = True) -> None:
        """Wait until ``healthy`` has the given value (callers add their own timeout)."""
        async with self._health:
            await self._health.wait_for(lambda: self._healthy is healthy)

    async def _set_healthy(self, healthy: bool) -> None:
        async with self._health:
            self._healthy = healthy
            self._health.notify_all()

    async def subscribe(self, channels: Iterable[str]) -> None:
        """Subscribe and wait for Redis's confirmation of every channel.

        Raises:
            BrokerUnavailable: not confirmed within ``subscribe_timeout`` (Redis down).
        """
        wanted = [c for c in dict.fromkeys(channels) if c not in self._confirmed]
        if not wanted:
            return
        added = [c for c in wanted if c not in self._channels]
        self._channels.update(wanted)
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[None]] = []
        for channel in wanted:
            future: asyncio.Future[None] = loop.create_future()
            self._waiters.setdefault(channel, []).append(future)
            futures.append(future)
        # When disconnected, the listener subscribes to everything in _channels once it reconnects.
        self._post("SUBSCRIBE", wanted)
        try:
            # asyncio.timeout, and no gather for one channel (a connect's own channel): wait_for and
            # gather cost a task-like wrapper each, per connecting socket.
            async with asyncio.timeout(self.subscribe_timeout):
                if len(futures) == 1:
                    await futures[0]
                else:
                    await asyncio.gather(*futures)
        except TimeoutError:
            self._channels.difference_update(c for c in added if c not in self._confirmed)
            raise BrokerUnavailable(f"Redis did not confirm SUBSCRIBE within {self.subscribe_timeout}s") from None
        finally:
            for channel, future in zip(wanted, futures, strict=True):
                pending = self._waiters.get(channel)
                if pending and future in pending:
                    pending.remove(future)
                    if not pending:
                        del self._waiters[channel]

    async def unsubscribe(self, channels: Iterable[str]) -> None:
        """Unsubscribe (without waiting for confirmation: late messages are ignored)."""
        names = [c for c in dict.fromkeys(channels) if c in self._channels]
        awaiting = bool(self._awaiting)
        self._channels.difference_update(names)
        self._confirmed.difference_update(names)
        self._awaiting.difference_update(names)
        self._post("UNSUBSCRIBE", names)
        if awaiting and not self._awaiting and self._conn is not None:
            # The last re-subscription still unconfirmed after a reconnect is gone: no confirmation
            # will end the wait, so the reconnect completes here (Resync, healthy) instead of never.
            await self._became_ready()

    def _post(self, command: str, channels: list[str]) -> None:
        """Queue (UN)SUBSCRIBE for the sender task, in order.

        What is requested in one loop iteration, or while a command is being written, goes out as one
        command: a burst of connects costs a few commands, not one each.
        """
        if not channels or self._stopping:
            return
        if self._outbox and self._outbox[-1][0] == command:
            self._outbox[-1][1].extend(channels)
        else:
            self._outbox.append((command, list(channels)))
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_outbox(), name="redis-pubsub-sender")

    async def _send_outbox(self) -> None:
        try:
            while self._outbox:
                command, channels = self._outbox.pop(0)
                try:
                    await self._send(command, channels)
                except Exception:
                    if self._stopping:
                        return  # stop() disconnects under us; nothing needs sending any more
                    # Subscribers time out with BrokerUnavailable; a reconnect resubscribes everything.
                    logger.exception("pub/sub %s of %d channels failed", command, len(channels))
        finally:
            self._sender = None

    async def _send(self, command: str, channels: list[str]) -> None:
        """Send (UN)SUBSCRIBE in batches on the live connection; no-op while disconnected."""
        for start in range(0, len(channels), 200):
            batch = [f"{self._channel_prefix}{c}" for c in channels[start : start + 200]]
            async with self._write_lock:
                conn = self._conn
                # is_connected guard: send_command on a dropped connection would silently reconnect it
                if conn is None or not conn.is_connected:
                    return
                try:
                    await conn.send_command(command, *batch)
                except _UNAVAILABLE as exc:
                    logger.info("pub/sub %s not sent, listener will resubscribe: %s", command, exc)
                    return

    async def _connect(self) -> None:
        if self._pool is None:
            raise BrokerError("PubSubListener used before start()")
        conn: AbstractConnection = self._pool.make_connection()  # type: ignore[no-untyped-call]
        await conn.connect()  # type: ignore[no-untyped-call]
        self._last_read = asyncio.get_running_loop().time()
        self._conn = conn
        # Snapshot after _conn is set (no await in between): later subscribe() calls send themselves.
        self._awaiting = set(self._channels)
        await self._send("SUBSCRIBE", sorted(self._awaiting))
        if not self._awaiting:
            await self._became_ready()

    async def _became_ready(self) -> None:
        if self._reconnecting:
            self._reconnecting = False
            self.stats.reconnects += 1
            self._on_resync(tuple(sorted(self._confirmed)))
            logger.info("Redis pub/sub reconnected; %d channels resubscribed", len(self._confirmed))
        await self._set_healthy(True)

    async def _listen(self) -> None:
        attempt = 0
        while True:
            try:
                if self._conn is None:
                    await self._connect()
                    attempt = 0
                conn = self._conn
                while conn is not None:
                    response = await conn.read_response(timeout=math.inf)
                    self._last_read = asyncio.get_running_loop().time()
                    await self._handle(response)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Anything, Redis or our bug, must not kill the only listener: log, back off, reconnect.
                attempt += 1
                await self._disconnected(exc, attempt)
                base, cap = self.reconnect_delay
                await asyncio.sleep(random.uniform(base, min(cap, base * 2**attempt)))

    async def _disconnected(self, exc: BaseException, attempt: int) -> None:
        conn, self._conn = self._conn, None
        self._confirmed.clear()
        self._reconnecting = True
        await self._set_healthy(False)
        if conn is not None:
            await conn.disconnect(nowait=True)
        log = logger.warning if attempt == 1 else logger.info
        log("Redis pub/sub connection lost (attempt %d): %r", attempt, exc, exc_info=attempt == 1)

    async def _handle(self, response: Any) -> None:
        if not isinstance(response, list) or len(response) < 2:
            return
        kind = response[0]
        if kind == b"message":
            channel = response[1].decode()[len(self._channel_prefix) :]
            if channel in self._channels:
                try:
                    self._on_message(channel, response[2])
                except Exception:
                    # One message must never cost the connection: a reconnect loses every bare publish
                    # of its window for good. Count it, log at most once a second, read on.
                    self._message_failed(channel)
        elif kind == b"subscribe":
            channel = response[1].decode()[len(self._channel_prefix) :]
            if channel not in self._channels:
                return
            self._confirmed.add(channel)
            for future in self._waiters.get(channel, ()):
                if not future.done():
                    future.set_result(None)
            if channel in self._awaiting:
                self._awaiting.discard(channel)
                if not self._awaiting:
                    await self._became_ready()

    def _message_failed(self, channel: str) -> None:
        self.stats.listener_errors += 1
        self._unlogged_errors += 1
        now = asyncio.get_running_loop().time()
        if now - self._error_logged_at >= 1.0:
            self._error_logged_at = now
            logger.exception(
                "pub/sub message on %s could not be handled (%d since the last line); skipped",
                channel,
                self._unlogged_errors,
            )
            self._unlogged_errors = 0

    async def _keepalive(self) -> None:
        """PING the pub/sub connection; drop it after three silent intervals (half-open TCP)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.ping_interval)
            conn = self._conn
            if conn is None:
                continue
            if loop.time() - self._last_read > 3 * self.ping_interval:
                logger.warning("Redis pub/sub silent for %.0fs; reconnecting", loop.time() - self._last_read)
                await conn.disconnect(nowait=True)
                continue
            async with self._write_lock:
                if conn is self._conn and conn.is_connected:
                    try:
                        await conn.send_command("PING")
                    except _UNAVAILABLE:
                        continue  # the listener sees the same failure and reconnects
