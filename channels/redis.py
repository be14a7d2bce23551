"""Redis broker: pub/sub for live events, a stream per channel for history, across processes and hosts.

One server, the master Sentinel names, or a Redis Cluster: ``RedisConnector`` makes the clients,
``channels/redis_layout.py`` names the keys (every key of a channel in the slot of the channel's
pub/sub name), ``channels/redis_scripts.py`` holds the atomic steps (with epochs fenced by the
master's replication id). Commands go through a bounded, blocking pool; live events through one
``PubSubListener`` (``SUBSCRIBE``), or on a cluster one per shard master (``ShardedSubscriber``,
``SSUBSCRIBE``), each proven by a canary. See ``docs/channels.md`` and ``docs/operations.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from channels.broker import Broker, BrokerEvent, BrokerStats, History, Resync, history_is_complete
from channels.drops import DropLog
from channels.envelope import EVENT_MAX_BYTES, encode_envelope, parse_event, validate_event
from channels.errors import BrokerError, BrokerUnavailable, InvalidEvent
from channels.offsets import Offset, new_epoch, parse_offset
from channels.redis_canary import Canary, CanaryLoop
from channels.redis_connector import RedisClient, RedisConnector
from channels.redis_errors import REDIS_UNAVAILABLE
from channels.redis_layout import ChannelKeys
from channels.redis_offsets import OffsetReader
from channels.redis_pubsub import PubSubListener
from channels.redis_scripts import PUBLISH_SCRIPT, READ_SCRIPT
from channels.redis_sentinel import SwitchMasterWatcher
from channels.redis_shards import ShardedSubscriber
from channels.redis_target import parse_redis_url

__all__ = ["RedisBroker"]

logger = logging.getLogger(__name__)


class RedisBroker(Broker):
    """The broker contract over Redis (see the module docstring; docs/channels.md for recovery).

    ``subscribe`` waits for Redis's confirmation; while Redis is unreachable it waits up to
    ``subscribe_timeout`` for the listener to reconnect, then raises ``BrokerUnavailable``.
    ``publish`` while Redis is unreachable raises ``BrokerUnavailable`` at once (after the client's
    short retries): producers decide whether to retry.

    Args:
        redis: A ``REDIS_URL`` (any of its three forms) or a ``RedisConnector``.
        prefix: Prefix of every key and pub/sub channel.
        history_size: Events kept per channel.
        history_ttl: Seconds an idle channel's history lives.
        event_max_bytes: ``EVENT_MAX_BYTES``: larger events are refused by ``publish``, dropped on receipt.
        idempotency_ttl: Seconds an idempotency key is remembered (default: ``history_ttl``).
        subscribe_timeout: Seconds ``subscribe`` waits for confirmation.
        reconnect_delay: (base, cap) seconds of the listener's jittered exponential backoff.
        ping_interval: Seconds between keepalive PINGs on the pub/sub connection.
        max_connections: Command connections (scripts); callers beyond it wait for one.
        pool_timeout: Seconds a command waits for a free connection before ``BrokerUnavailable``.
    """

    def __init__(
        self,
        redis: str | RedisConnector,
        prefix: str = "push",
        history_size: int = 1000,
        history_ttl: int = 86400,
        *,
        event_max_bytes: int = EVENT_MAX_BYTES,
        idempotency_ttl: int | None = None,
        subscribe_timeout: float = 5.0,
        reconnect_delay: tuple[float, float] = (0.1, 5.0),
        ping_interval: float = 15.0,
        max_connections: int = 50,
        pool_timeout: float = 5.0,
    ) -> None:
        if history_size < 1 or history_ttl < 1:
            raise ValueError("history_size and history_ttl must be positive")
        self._owns_connector = isinstance(redis, str)
        self.connector = RedisConnector(parse_redis_url(redis)) if isinstance(redis, str) else redis
        self.prefix = prefix
        self.keys = ChannelKeys(prefix)
        self.history_size = history_size
        self.history_ttl = history_ttl
        self.event_max_bytes = event_max_bytes
        self.idempotency_ttl = history_ttl if idempotency_ttl is None else idempotency_ttl
        self.max_connections = max_connections
        self.pool_timeout = pool_timeout
        self.stats = BrokerStats()
        self.listener_name = f"{prefix}-listener"
        self._listener_options: dict[str, Any] = {
            "subscribe_timeout": subscribe_timeout,
            "reconnect_delay": reconnect_delay,
            "ping_interval": ping_interval,
        }
        self._publish_command = "SPUBLISH" if self.connector.is_cluster else "PUBLISH"
        # At most max_connections scripts in flight, the rest queued in order (asyncio's semaphore is FIFO).
        # redis-py's blocking pool is not fair: under a burst one caller waited 7.5 s while others kept
        # taking the connections it freed; and its cluster pools raise "No connection available" instead.
        self._command_slots = asyncio.Semaphore(max_connections)
        self._drops = DropLog(self.stats.dropped, logger)
        self._client: RedisClient | None = None
        self._canary_client: RedisClient | None = None
        self._publish_script: Any = None
        self._read_script: Any = None
        self._offsets: OffsetReader | None = None
        self._subscriber: PubSubListener | ShardedSubscriber | None = None
        self._canaries = CanaryLoop(self._listeners, self._send_canary)
        self._switches: SwitchMasterWatcher | None = None
        self._queue: asyncio.Queue[BrokerEvent | Resync | None] = asyncio.Queue()

    async def start(self) -> None:
        """Open the command pool and the pub/sub connection(s); raises ``BrokerUnavailable`` if Redis is down."""
        connector = self.connector
        self._client = client = connector.client(
            max_connections=self.max_connections, pool_timeout=self.pool_timeout, client_name=f"{self.prefix}-commands"
        )
        self._publish_script = client.register_script(PUBLISH_SCRIPT)
        self._read_script = client.register_script(READ_SCRIPT)
        # Canaries have connections of their own: a command pool busy with a burst of publishes must not
        # make them late (and the listener restart) when the subscription itself is fine.
        self._canary_client = connector.client(max_connections=4, client_name=f"{self.prefix}-canary")
        # Its own client, without socket_timeout: one timeout bounds each batched call.
        self._offsets = OffsetReader(
            connector.client(socket_timeout=None, client_name=f"{self.prefix}-offsets"),
            self.keys.history,
            self.history_ttl,
        )
        resync = self._resync
        if isinstance(client, RedisCluster):
            self._subscriber = ShardedSubscriber(
                client,
                connector,
                self.keys,
                on_message=self._on_message,
                on_resync=resync,
                stats=self.stats,
                name=self.listener_name,
                **self._listener_options,
            )
        else:
            self._subscriber = PubSubListener(
                connector.pubsub_pool(self.listener_name),
                self.keys,
                name=self.listener_name,
                on_message=self._on_message,
                on_resync=resync,
                stats=self.stats,
                canary=Canary(Canary.new_channel()),
                **self._listener_options,
            )
        try:
            await self._subscriber.start()
        except BaseException:
            await self._offsets.stop()
            await client.aclose()
            await self._canary_client.aclose()
            raise
        if connector.sentinel is not None and connector.target.service:
            self._switches = SwitchMasterWatcher(connector.sentinel, connector.target.service, self._master_switched)
            self._switches.start()
        # Ready at once when the subscriptions are confirmed and the canaries came back; /ready says when not.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._listener_options["subscribe_timeout"]):
                await self._subscriber.wait_healthy(True)
            await self._canaries.proven()
        self._canaries.start()

    async def stop(self) -> None:
        """Stop the listener(s), close the connections and end ``events()``."""
        await self._canaries.stop()
        if self._switches is not None:
            await self._switches.stop()
        if self._subscriber is not None:
            await self._subscriber.stop()
        if self._offsets is not None:
            await self._offsets.stop()
        for client in (self._client, self._canary_client):
            if client is not None:
                await client.aclose()
        if self._owns_connector:
            await self.connector.aclose()
        self._queue.put_nowait(None)

    def _resync(self, channels: tuple[str, ...]) -> None:
        """A listener reconnected or channels moved: refill them, and prove the new connection at once."""
        self._queue.put_nowait(Resync(channels))
        self._canaries.kick()

    def _listeners(self) -> list[PubSubListener]:
        subscriber = self._subscriber
        if subscriber is None:
            return []
        return subscriber.listeners if isinstance(subscriber, ShardedSubscriber) else [subscriber]

    async def _send_canary(self, channel: str, payload: bytes) -> None:
        if self._canary_client is not None:
            await self._canary_client.execute_command(self._publish_command, self.keys.pubsub(channel), payload)

    def _master_switched(self, address: str) -> None:
        for listener in self._listeners():
            listener.reconnect(f"sentinel named a new master {address}")
        if self._client is not None and not isinstance(self._client, RedisCluster):
            # Idle connections to the old master go; in-use ones fail with READONLY and are retried.
            asyncio.get_running_loop().create_task(self._client.connection_pool.disconnect(inuse_connections=False))

    @property
    def healthy(self) -> bool:
        """True while every pub/sub connection is up, every channel (re)subscribed and every canary on time."""
        return self._subscriber is not None and self._subscriber.healthy

    @property
    def subscriptions(self) -> frozenset[str]:
        """Channels currently subscribed."""
        return self._subscriber.subscriptions if self._subscriber is not None else frozenset()

    @property
    def canary_restarts(self) -> int:
        """Listeners restarted because their canary was late."""
        return self._canaries.restarts

    def shards(self) -> list[tuple[str, bool, int, int]]:
        """Per pub/sub connection (a cluster: per shard master): name, healthy, reconnects, channels."""
        return [
            (listener.name, listener.healthy, listener.reconnects, len(listener.subscriptions))
            for listener in self._listeners()
        ]

    async def wait_healthy(self, healthy: bool = True) -> None:
        """Wait until ``healthy`` has the given value; callers add their own timeout."""
        if self._subscriber is None:
            raise BrokerError("RedisBroker used before start()")
        await self._subscriber.wait_healthy(healthy)
        while True:  # then the canary: a round trip, or its deadline (no event marks either)
            if self.healthy is healthy:
                return
            await asyncio.sleep(0.01)

    async def subscribe(self, channels: Iterable[str]) -> None:
        """Subscribe and wait for Redis's confirmation (see ``PubSubListener.subscribe``)."""
        if self._subscriber is None:
            raise BrokerError("RedisBroker used before start()")
        await self._subscriber.subscribe(channels)

    async def unsubscribe(self, channels: Iterable[str]) -> None:
        """Unsubscribe; late messages of these channels are ignored."""
        if self._subscriber is not None:
            await self._subscriber.unsubscribe(channels)

    def _on_message(self, channel: str, payload: bytes) -> None:
        event = self._decode(channel, payload)
        if event is not None:
            self.stats.events_in += 1
            self._queue.put_nowait(event)

    # commands

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
        """Append and publish in one Lua script (see ``Broker.publish``)."""
        data = validate_event(type, data, ts, max_bytes=self.event_max_bytes)
        keys, args = self._publish_call(channel, encode_envelope(type, data, ts), history, idempotency_key)
        raw_offset, fresh = await self._run_script(self._publish_script, keys, args)
        if fresh:
            self.stats.published += 1
        return parse_offset(raw_offset.decode()) if raw_offset else None

    async def publish_many(
        self, channels: Sequence[str], type: str, data: bytes, *, ts: str | None = None
    ) -> list[Offset]:
        """One event to every channel, each its own offset: one pipeline on one server, concurrent scripts
        (at most ``max_connections``) on a cluster, whose channels live on different shards."""
        data = validate_event(type, data, ts, max_bytes=self.event_max_bytes)
        envelope = encode_envelope(type, data, ts)
        calls = [self._publish_call(channel, envelope, True, None) for channel in channels]
        client, script = self._client, self._publish_script
        if client is None or script is None:
            raise BrokerError("RedisBroker used before start()")
        try:
            if isinstance(client, RedisCluster):
                replies = await asyncio.gather(*(self._run_script(script, keys, args) for keys, args in calls))
            else:
                async with self._command_slots, client.pipeline(transaction=False) as pipe:
                    for keys, args in calls:
                        await script(keys=keys, args=args, client=pipe)
                    replies = await pipe.execute()
        except REDIS_UNAVAILABLE as exc:
            raise BrokerUnavailable(f"Redis unavailable: {exc}") from exc
        except RedisError as exc:
            raise BrokerError(f"Redis error: {exc}") from exc
        self.stats.published += len(replies)
        return [parse_offset(raw_offset.decode()) for raw_offset, _ in replies]

    def _publish_call(
        self, channel: str, envelope: bytes, history: bool, idempotency_key: str | None
    ) -> tuple[list[str], list[Any]]:
        """KEYS and ARGV of ``PUBLISH_SCRIPT`` for one channel."""
        keys = self.keys.history(channel)
        if idempotency_key is not None:
            keys.append(self.keys.idempotency(channel, idempotency_key))
        args = [
            self.keys.pubsub(channel),
            new_epoch(),
            envelope,
            self.history_size,
            self.history_ttl,
            "1" if history else "0",
            self.idempotency_ttl,
            self._publish_command,
        ]
        return keys, args

    async def _run_script(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        if script is None:
            raise BrokerError("RedisBroker used before start()")
        try:
            async with self._command_slots:
                return await script(keys=keys, args=args)
        except REDIS_UNAVAILABLE as exc:
            raise BrokerUnavailable(f"Redis unavailable: {exc}") from exc
        except RedisError as exc:
            raise BrokerError(f"Redis error: {exc}") from exc

    async def current_offset(self, channel: str) -> Offset:
        """Return the current offset, starting an epoch if the channel has none (concurrent reads share a pipeline)."""
        if self._offsets is None:
            raise BrokerError("RedisBroker used before start()")
        return await self._offsets.current_offset(channel)

    async def history(self, channel: str, after: Offset | None) -> History:
        """Read epoch, seq and the stream after ``after`` atomically (see ``History``)."""
        args = [new_epoch(), self.history_ttl, after.epoch if after else "", after.seq if after else 0]
        epoch, seq, entries = await self._run_script(self._read_script, self.keys.history(channel), args)
        current = Offset(epoch.decode(), int(seq))
        events = [e for e in (self._decode(channel, fields[1]) for _, fields in entries) if e is not None]
        first_seq = events[0].offset.seq if events and events[0].offset else None
        return History(current, events, history_is_complete(after, current, first_seq))

    def _decode(self, channel: str, payload: bytes) -> BrokerEvent | None:
        """Check and decode one message (``envelope.parse_event``); an invalid one is dropped and counted."""
        try:
            return parse_event(channel, payload, self.event_max_bytes)
        except InvalidEvent as exc:
            self._drops.drop(channel, exc, payload)
            return None

    async def events(self) -> AsyncIterator[BrokerEvent | Resync]:
        """Yield live events and ``Resync`` markers until ``stop()``."""
        queue = self._queue
        while True:
            # Under load the queue holds many events: take them without a coroutine per get.
            item = queue.get_nowait() if not queue.empty() else await queue.get()
            if item is None:
                return
            yield item
