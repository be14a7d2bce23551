"""The pub/sub side of ``RedisBroker``: one dedicated connection read by one supervised task.

Modelled on channels_redis ``pubsub.py``. redis-py's ``PubSub`` helper is not used: its
``subscribe`` returns before Redis confirms and it reconnects silently. Here ``subscribe`` awaits
futures that the listener resolves on Redis's confirmations; on any error the listener logs, backs
off with jitter, reconnects, re-subscribes every channel, waits for the confirmations, then calls
``on_resync`` so the hub refills from history what it may have missed.

One listener serves one server (or the master Sentinel names: the pool's connections find it) with
``SUBSCRIBE``; on Redis Cluster ``ShardedSubscriber`` runs one per shard master with ``SSUBSCRIBE``
(``sharded``), which a node answers ``MOVED``, or ends with an unsolicited ``sunsubscribe``, for a
slot it does not or no longer serve: ``on_moved`` then lets the owner re-route. A ``Canary`` proves
the subscription still delivers (``channels/redis_canary.py``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Callable, Iterable
from typing import Any

from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from channels.broker import BrokerStats
from channels.errors import BrokerUnavailable
from channels.redis_canary import Canary
from channels.redis_errors import REDIS_UNAVAILABLE
from channels.redis_layout import ChannelKeys

__all__ = ["PubSubListener"]

logger = logging.getLogger(__name__)

_BATCH = 200  # channels per (UN)SUBSCRIBE command


class PubSubListener:
    """Keeps one confirmed Redis subscription set alive across connection failures.

    Args:
        pool: Makes the connection (``RedisConnector.pubsub_pool`` or ``shard_pool``; RESP2).
        keys: The deployment's channel names (``<prefix>:<channel>``).
        name: For logs and ``CLIENT LIST`` (the pool sets the client name).
        on_message: Called with (channel, payload) for every message of a subscribed channel; what it
            raises is counted in ``stats.listener_errors`` and logged, never a reason to reconnect.
        on_resync: Called with the re-subscribed channels after a reconnection.
        stats: Counters (``reconnects``, ``listener_errors``).
        sharded: ``SSUBSCRIBE`` (Redis Cluster's sharded pub/sub) instead of ``SUBSCRIBE``.
        on_moved: Called with the channels a node says it does not (or no longer) serve (sharded only).
        canary: This connection's canary; its messages are taken here, never passed on.
        subscribe_timeout: Seconds ``subscribe`` waits for confirmation (and a connect may take).
        reconnect_delay: (base, cap) seconds of the jittered exponential backoff.
        ping_interval: Seconds between keepalive PINGs; three silent intervals drop the connection.
    """

    def __init__(
        self,
        pool: ConnectionPool,
        keys: ChannelKeys,
        *,
        name: str,
        on_message: Callable[[str, bytes], None],
        on_resync: Callable[[tuple[str, ...]], None],
        stats: BrokerStats,
        sharded: bool = False,
        on_moved: Callable[[tuple[str, ...]], None] | None = None,
        canary: Canary | None = None,
        subscribe_timeout: float = 5.0,
        reconnect_delay: tuple[float, float] = (0.1, 5.0),
        ping_interval: float = 15.0,
    ) -> None:
        self.name = name
        self.stats = stats
        self.canary = canary
        self.subscribe_timeout = subscribe_timeout
        self.reconnect_delay = reconnect_delay
        self.ping_interval = ping_interval
        self.reconnects = 0  # this connection's own, for per-shard metrics
        self._pool = pool
        self._keys = keys
        self._on_message = on_message
        self._on_resync = on_resync
        self._on_moved = on_moved
        self._sharded = sharded
        self._verbs = (b"smessage", b"ssubscribe", b"sunsubscribe") if sharded else (b"message", b"subscribe", b"")
        self._conn: AbstractConnection | None = None
        self._channels: set[str] = set()  # what we must be subscribed to (the canary's included)
        self._confirmed: set[str] = set()  # confirmed on the current connection
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._awaiting: set[str] = set()  # re-subscriptions not yet confirmed after a reconnect
        self._reconnecting = False
        self._connected = False
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
        if canary is not None:
            self._channels.add(canary.channel)

    async def start(self) -> None:
        """Connect once (raising ``BrokerUnavailable`` if Redis is down), then start the listener."""
        try:
            await self._connect()
        except REDIS_UNAVAILABLE as exc:
            await self._pool.disconnect()
            raise BrokerUnavailable(f"cannot connect pub/sub {self.name}: {exc}") from exc
        self._tasks = [
            asyncio.create_task(self._listen(), name=f"redis-pubsub-{self.name}"),
            asyncio.create_task(self._keepalive(), name=f"redis-pubsub-keepalive-{self.name}"),
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
        await self._pool.disconnect()
        await self._set_connected(False)

    @property
    def connected(self) -> bool:
        """True while connected with every channel (re)subscribed."""
        return self._connected

    @property
    def healthy(self) -> bool:
        """Connected, every channel confirmed, and (with a canary) proven to deliver and not stalled."""
        if not self._connected:
            return False
        canary = self.canary
        return canary is None or (canary.proven and not canary.late())

    @property
    def subscriptions(self) -> frozenset[str]:
        """Channels currently subscribed for the hub (re-subscribed after every reconnect)."""
        canary = self.canary
        return frozenset(c for c in self._channels if canary is None or c != canary.channel)

    async def wait_healthy(self, healthy: bool = True) -> None:
        """Wait until ``connected`` has the given value (callers add their own timeout)."""
        async with self._health:
            await self._health.wait_for(lambda: self._connected is healthy)

    async def _set_connected(self, connected: bool) -> None:
        async with self._health:
            self._connected = connected
            self._health.notify_all()

    def reconnect(self, reason: str) -> None:
        """Drop the connection now (a stalled canary, a failover): the listener reconnects and resyncs.

        The reader is cancelled rather than waited for: on a frozen server its read never returns.
        """
        if self._stopping or not self._tasks:
            return
        logger.warning("pub/sub %s: reconnecting: %s", self.name, reason)
        reader = self._tasks[0]
        reader.cancel()
        self._tasks[0] = asyncio.create_task(self._restart(reader), name=f"redis-pubsub-{self.name}")

    async def _restart(self, reader: asyncio.Task[None]) -> None:
        await asyncio.gather(reader, return_exceptions=True)
        await self._disconnected(RedisConnectionError("reconnect requested"), 1, quiet=True)
        await self._listen()

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
            raise BrokerUnavailable(
                f"Redis did not confirm the subscription within {self.subscribe_timeout}s"
            ) from None
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

    def _commands(self, command: str, channels: list[str]) -> list[tuple[str, ...]]:
        """The commands for ``channels``: batches of 200, or on a cluster one per slot (Redis refuses mixed slots)."""
        names = [self._keys.pubsub(c) for c in channels]
        if not self._sharded:
            return [(command, *names[i : i + _BATCH]) for i in range(0, len(names), _BATCH)]
        by_slot: dict[int, list[str]] = {}
        for name in names:
            by_slot.setdefault(key_slot(name.encode()), []).append(name)
        return [(f"S{command}", *group) for group in by_slot.values()]

    async def _send(self, command: str, channels: list[str]) -> None:
        """Send (UN)SUBSCRIBE on the live connection, every command in one write; no-op while disconnected."""
        commands = self._commands(command, channels)
        async with self._write_lock:
            conn = self._conn
            # is_connected guard: send_command on a dropped connection would silently reconnect it
            if conn is None or not conn.is_connected:
                return
            try:
                await conn.send_packed_command(conn.pack_commands(commands), check_health=False)
            except REDIS_UNAVAILABLE as exc:
                logger.info("pub/sub %s not sent, listener will resubscribe: %s", command, exc)

    async def _connect(self) -> None:
        conn: AbstractConnection = self._pool.make_connection()  # type: ignore[no-untyped-call]
        # A server frozen mid-handshake (SIGSTOP) must not hold the reconnect for ever.
        async with asyncio.timeout(self.subscribe_timeout):
            await conn.connect()  # type: ignore[no-untyped-call]
        self._last_read = asyncio.get_running_loop().time()
        self._conn = conn
        if self.canary is not None:
            self.canary.reset()
        # Snapshot after _conn is set (no await in between): later subscribe() calls send themselves.
        self._awaiting = set(self._channels)
        await self._send("SUBSCRIBE", sorted(self._awaiting))
        if not self._awaiting:
            await self._became_ready()

    async def _became_ready(self) -> None:
        if self._reconnecting:
            self._reconnecting = False
            self.stats.reconnects += 1
            self.reconnects += 1
            resubscribed = tuple(sorted(self.subscriptions & self._confirmed))
            self._on_resync(resubscribed)
            logger.info("Redis pub/sub %s reconnected; %d channels resubscribed", self.name, len(resubscribed))
        await self._set_connected(True)

    async def _listen(self) -> None:
        attempt = 0
        while True:
            try:
                if self._conn is None:
                    await self._connect()
                    attempt = 0
                conn = self._conn
                while conn is not None:
                    try:
                        response = await conn.read_response(timeout=math.inf)
                    except ResponseError as exc:
                        # A reply to our (S)SUBSCRIBE, not a broken connection: MOVED for a slot elsewhere.
                        self._refused(exc)
                        continue
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

    def _refused(self, exc: ResponseError) -> None:
        if self._on_moved is not None:
            logger.info("pub/sub %s: %s; re-routing", self.name, exc)
            self._on_moved(())
        else:
            logger.warning("pub/sub %s: Redis refused a subscription: %s", self.name, exc)

    async def _disconnected(self, exc: BaseException, attempt: int, *, quiet: bool = False) -> None:
        conn, self._conn = self._conn, None
        self._confirmed.clear()
        self._reconnecting = True
        await self._set_connected(False)
        if conn is not None:
            await conn.disconnect(nowait=True)
        if quiet:
            return
        log = logger.warning if attempt == 1 else logger.info
        log("Redis pub/sub %s lost (attempt %d): %r", self.name, attempt, exc, exc_info=attempt == 1)

    async def _handle(self, response: Any) -> None:
        if not isinstance(response, list) or len(response) < 2:
            return
        kind = response[0]
        message, subscribed, unsubscribed = self._verbs
        if kind == message:
            channel = self._keys.channel_of(response[1].decode())
            if channel is None or channel not in self._channels:
                return
            if self.canary is not None and channel == self.canary.channel:
                self.canary.arrived(response[2])
                return
            try:
                self._on_message(channel, response[2])
            except Exception:
                # One message must never cost the connection: a reconnect loses every bare publish
                # of its window for good. Count it, log at most once a second, read on.
                self._message_failed(channel)
        elif kind == subscribed:
            channel = self._keys.channel_of(response[1].decode())
            if channel is None or channel not in self._channels:
                return
            self._confirmed.add(channel)
            for future in self._waiters.get(channel, ()):
                if not future.done():
                    future.set_result(None)
            if channel in self._awaiting:
                self._awaiting.discard(channel)
                if not self._awaiting:
                    await self._became_ready()
        elif kind == unsubscribed:
            channel = self._keys.channel_of(response[1].decode())
            if channel is not None and channel in self._channels and self._on_moved is not None:
                # Not asked for: the node no longer serves this slot (migrated, or it failed over).
                self._confirmed.discard(channel)
                self._on_moved((channel,))

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

    def forget(self, channels: Iterable[str]) -> None:
        """Stop tracking ``channels`` without telling Redis (they moved to another node)."""
        for channel in channels:
            self._channels.discard(channel)
            self._confirmed.discard(channel)
            self._awaiting.discard(channel)

    async def _keepalive(self) -> None:
        """PING the pub/sub connection; drop it after three silent intervals (half-open TCP)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.ping_interval)
            conn = self._conn
            if conn is None:
                continue
            if loop.time() - self._last_read > 3 * self.ping_interval:
                logger.warning(
                    "Redis pub/sub %s silent for %.0fs; reconnecting", self.name, loop.time() - self._last_read
                )
                await conn.disconnect(nowait=True)
                continue
            async with self._write_lock:
                if conn is self._conn and conn.is_connected:
                    try:
                        await conn.send_command("PING")
                    except REDIS_UNAVAILABLE:
                        continue  # the listener sees the same failure and reconnects
