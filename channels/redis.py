"""Redis broker: pub/sub for live events, a stream per channel for history, across processes.

Key layout (``prefix`` defaults to ``push``): producers PUBLISH to ``<prefix>:<channel>``; history
lives in ``<prefix>:epoch:<channel>`` (string), ``<prefix>:seq:<channel>`` (counter) and
``<prefix>:stream:<channel>`` (stream, entry id ``0-<seq>``); idempotency keys in
``<prefix>:idem:<key>``. Commands go through a bounded, blocking pool; live events through the
``PubSubListener`` (one dedicated connection). See ``docs/channels.md``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from channels.broker import Broker, BrokerEvent, BrokerStats, History, Resync, history_is_complete
from channels.drops import DropLog
from channels.envelope import EVENT_MAX_BYTES, encode_envelope, parse_event, validate_event
from channels.errors import BrokerError, BrokerUnavailable, InvalidEvent
from channels.offsets import Offset, new_epoch, parse_offset
from channels.redis_offsets import OffsetReader
from channels.redis_pubsub import PubSubListener
from channels.redis_scripts import PUBLISH_SCRIPT, READ_SCRIPT

__all__ = ["RedisBroker"]

logger = logging.getLogger(__name__)

_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError)


class RedisBroker(Broker):
    """The broker contract over Redis (see module docstring for keys, docs/channels.md for recovery).

    ``subscribe`` waits for Redis's confirmation; while Redis is unreachable it waits up to
    ``subscribe_timeout`` for the listener to reconnect, then raises ``BrokerUnavailable``.
    ``publish`` while Redis is unreachable raises ``BrokerUnavailable`` at once (after the client's
    short retries): producers decide whether to retry.

    Args:
        url: ``redis://`` URL.
        prefix: Prefix of every key and pub/sub channel.
        history_size: Events kept per channel.
        history_ttl: Seconds an idle channel's history lives.
        event_max_bytes: ``EVENT_MAX_BYTES``: larger events are refused by ``publish``, dropped on receipt.
        idempotency_ttl: Seconds an idempotency key is remembered.
        subscribe_timeout: Seconds ``subscribe`` waits for confirmation.
        reconnect_delay: (base, cap) seconds of the listener's jittered exponential backoff.
        ping_interval: Seconds between keepalive PINGs on the pub/sub connection.
        max_connections: Command connections (scripts); callers beyond it wait for one.
        pool_timeout: Seconds a command waits for a free connection before ``BrokerUnavailable``.
    """

    def __init__(
        self,
        url: str,
        prefix: str = "push",
        history_size: int = 1000,
        history_ttl: int = 86400,
        *,
        event_max_bytes: int = EVENT_MAX_BYTES,
        idempotency_ttl: int = 86400,
        subscribe_timeout: float = 5.0,
        reconnect_delay: tuple[float, float] = (0.1, 5.0),
        ping_interval: float = 15.0,
        max_connections: int = 50,
        pool_timeout: float = 5.0,
    ) -> None:
        if history_size < 1 or history_ttl < 1:
            raise ValueError("history_size and history_ttl must be positive")
        self.url = url
        self.prefix = prefix
        self.history_size = history_size
        self.history_ttl = history_ttl
        self.event_max_bytes = event_max_bytes
        self.idempotency_ttl = idempotency_ttl
        self.max_connections = max_connections
        self.pool_timeout = pool_timeout
        self.stats = BrokerStats()
        self._drops = DropLog(self.stats.dropped, logger)
        self._client: aioredis.Redis | None = None
        self._publish_script: Any = None
        self._read_script: Any = None
        self._offsets: OffsetReader | None = None
        self._queue: asyncio.Queue[BrokerEvent | Resync | None] = asyncio.Queue()
        self._pubsub = PubSubListener(
            url,
            prefix,
            on_message=self._on_message,
            on_resync=lambda channels: self._queue.put_nowait(Resync(channels)),
            stats=self.stats,
            subscribe_timeout=subscribe_timeout,
            reconnect_delay=reconnect_delay,
            ping_interval=ping_interval,
        )
        self.listener_name = self._pubsub.name

    async def start(self) -> None:
        """Open the command pool and the pub/sub connection; raises ``BrokerUnavailable`` if Redis is down."""
        retry = Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2)
        # Blocking: a burst of subscribes waits for a free connection instead of failing with
        # "Too many connections" (redis-py's plain pool raises at max_connections).
        pool = aioredis.BlockingConnectionPool.from_url(
            self.url,
            max_connections=self.max_connections,
            timeout=self.pool_timeout,
            socket_connect_timeout=2,
            socket_timeout=5,
            retry=retry,
        )
        self._client = aioredis.Redis.from_pool(pool)
        self._publish_script = self._client.register_script(PUBLISH_SCRIPT)
        self._read_script = self._client.register_script(READ_SCRIPT)
        offsets_client = aioredis.Redis.from_url(self.url, socket_connect_timeout=2, retry=retry)
        self._offsets = OffsetReader(offsets_client, self._keys, self.history_ttl)
        try:
            await self._pubsub.start()
        except BaseException:
            await self._offsets.stop()
            await self._client.aclose()
            raise

    async def stop(self) -> None:
        """Stop the listener, close both connections and end ``events()``."""
        await self._pubsub.stop()
        if self._offsets is not None:
            await self._offsets.stop()
        if self._client is not None:
            await self._client.aclose()
        self._queue.put_nowait(None)

    @property
    def healthy(self) -> bool:
        """True while the pub/sub connection is up and every channel is (re)subscribed."""
        return self._pubsub.healthy

    @property
    def subscriptions(self) -> frozenset[str]:
        """Channels currently subscribed."""
        return self._pubsub.subscriptions

    async def wait_healthy(self, healthy: bool = True) -> None:
        """Wait until ``healthy`` has the given value (callers add their own timeout)."""
        await self._pubsub.wait_healthy(healthy)

    async def subscribe(self, channels: Iterable[str]) -> None:
        """Subscribe and wait for Redis's confirmation (see ``PubSubListener.subscribe``)."""
        await self._pubsub.subscribe(channels)

    async def unsubscribe(self, channels: Iterable[str]) -> None:
        """Unsubscribe; late messages of these channels are ignored."""
        await self._pubsub.unsubscribe(channels)

    def _on_message(self, channel: str, payload: bytes) -> None:
        event = self._decode(channel, payload)
        if event is not None:
            self.stats.events_in += 1
            self._queue.put_nowait(event)

    def _keys(self, channel: str) -> list[str]:
        p = self.prefix
        return [f"{p}:epoch:{channel}", f"{p}:seq:{channel}", f"{p}:stream:{channel}"]

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
        keys = self._keys(channel)
        if idempotency_key is not None:
            keys.append(f"{self.prefix}:idem:{idempotency_key}")
        envelope = encode_envelope(type, data, ts)
        args = [
            f"{self.prefix}:{channel}",
            new_epoch(),
            envelope,
            self.history_size,
            self.history_ttl,
            "1" if history else "0",
            self.idempotency_ttl,
        ]
        raw_offset, fresh = await self._run_script(self._publish_script, keys, args)
        if fresh:
            self.stats.published += 1
        return parse_offset(raw_offset.decode()) if raw_offset else None

    async def _run_script(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        if script is None:
            raise BrokerError("RedisBroker used before start()")
        try:
            return await script(keys=keys, args=args)
        except _UNAVAILABLE as exc:
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
        epoch, seq, entries = await self._run_script(self._read_script, self._keys(channel), args)
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
