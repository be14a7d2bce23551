"""Fixtures of the channels tests: one broker fixture over memory and real Redis."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio as aioredis

from channels import EVENT_MAX_BYTES, Broker, Connection, Hub, MemoryBroker, Publisher, RedisBroker

REDIS_URL = "redis://127.0.0.1:6379/0"
WAIT = 5.0  # seconds any single wait in these tests may take

BrokerFactory = Callable[..., Awaitable[Broker]]


async def _require_redis() -> None:
    client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        await client.ping()
    except Exception as exc:
        message = f"Redis not reachable at 127.0.0.1:6379: {exc}"
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    finally:
        await client.aclose()


async def delete_prefix(client: aioredis.Redis, prefix: str) -> None:
    """Delete every key under ``prefix`` (and only those: the Redis is shared)."""
    for pattern in (f"{prefix}:*", f"{{{prefix}:*"):  # channel keys are tagged {<prefix>:<channel>}
        keys = [key async for key in client.scan_iter(match=pattern, count=500)]
        if keys:
            await client.delete(*keys)


@pytest.fixture
async def redis_client() -> AsyncIterator[aioredis.Redis]:
    """A plain client for inspecting and damaging state from the side."""
    await _require_redis()
    client = aioredis.Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


async def make_broker_factory(kind: str, request: pytest.FixtureRequest) -> AsyncIterator[BrokerFactory]:
    """Started brokers of ``kind`` (memory, redis, sentinel, cluster); every broker made shares one prefix."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    made: list[Broker] = []
    url = REDIS_URL
    if kind == "redis":
        await _require_redis()
    elif kind in ("sentinel", "cluster"):
        url = request.getfixturevalue(f"shared_{kind}").url

    async def make(**options: object) -> Broker:
        history_size = int(options.pop("history_size", 100))  # type: ignore[call-overload]
        broker: Broker
        if kind == "memory":
            max_bytes = int(options.pop("event_max_bytes", EVENT_MAX_BYTES))  # type: ignore[call-overload]
            broker = MemoryBroker(history_size=history_size, history_ttl=60, event_max_bytes=max_bytes)
        else:
            broker = RedisBroker(url, prefix=prefix, history_size=history_size, history_ttl=60, **options)  # type: ignore[arg-type]
        await broker.start()
        made.append(broker)
        return broker

    make.kind = kind  # type: ignore[attr-defined]
    make.prefix = prefix  # type: ignore[attr-defined]
    yield make
    for broker in made:
        await broker.stop()
    if kind == "redis":  # the shared Redis: remove this test's keys (the other set-ups are the run's own)
        client = aioredis.Redis.from_url(REDIS_URL)
        await delete_prefix(client, prefix)
        await client.aclose()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def broker_factory(request: pytest.FixtureRequest) -> AsyncIterator[BrokerFactory]:
    """Make started brokers of the parametrized kind (memory, or the shared Redis)."""
    async for factory in make_broker_factory(request.param, request):
        yield factory


@pytest.fixture
async def broker(broker_factory: BrokerFactory) -> Broker:
    """A started broker keeping 100 events per channel."""
    return await broker_factory()


@pytest.fixture
async def hub(broker: Broker) -> AsyncIterator[Hub]:
    """A started hub over the broker, with 64 KiB send queues."""
    hub = Hub(broker, send_queue_bytes=1 << 16)
    await hub.start()
    yield hub
    await hub.stop()


class Recorder:
    """A fake transport: records frames and close codes, lets tests await messages."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.messages: list[dict[str, object]] = []
        self.closed_with: tuple[int, str] | None = None
        self.gate: asyncio.Event | None = None  # when set to an unset Event, send_frame blocks on it
        self.sending = asyncio.Event()
        self._changed = asyncio.Condition()

    async def send_frame(self, frame: bytes) -> None:
        self.sending.set()
        if self.gate is not None:
            await self.gate.wait()
        async with self._changed:
            self.frames.append(frame)
            self.messages.extend(json.loads(line) for line in frame.split(b"\n"))
            self._changed.notify_all()

    async def close(self, code: int, reason: str) -> None:
        async with self._changed:
            self.closed_with = (code, reason)
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[Recorder], bool], seconds: float = WAIT) -> None:
        async def wait() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: predicate(self))

        await asyncio.wait_for(wait(), seconds)

    def events(self, channel: str | None = None) -> list[dict[str, object]]:
        return [m for m in self.messages if m["op"] == "event" and (channel is None or m["channel"] == channel)]

    async def wait_events(self, count: int, channel: str | None = None) -> list[dict[str, object]]:
        await self.wait_for(lambda r: len(r.events(channel)) >= count)
        return self.events(channel)


@pytest.fixture
def recorder_factory() -> Callable[[], Recorder]:
    """Make fake transports."""
    return Recorder


async def connect(hub: Hub, recorder: Recorder) -> tuple[Connection, Callable[[], Awaitable[None]]]:
    """Open a hub connection outside an ``async with`` (tests close it with the returned coroutine)."""
    manager = hub.connect(recorder.send_frame, recorder.close)
    conn = await manager.__aenter__()

    async def close() -> None:
        await manager.__aexit__(None, None, None)

    return conn, close


CHANNEL = "user:u1"  # the channel a Relay's client is subscribed to


@dataclass
class Relay:
    """A hub over a broker, one client subscribed to CHANNEL, and the ways to publish to it."""

    broker: Broker
    hub: Hub
    publisher: Publisher
    client: Recorder
    redis: aioredis.Redis | None = None
    prefix: str = ""

    async def raw(self, payload: bytes) -> None:
        """PUBLISH ``payload`` as a producer in any language would (redis-cli PUBLISH)."""
        assert self.redis is not None
        await self.redis.publish(f"{self.prefix}:{CHANNEL}", payload)

    async def valid(self, n: int) -> None:
        """Publish a valid event with history; its data is {"n": n}."""
        await self.publisher.publish(CHANNEL, "notification.created", {"n": n})

    async def received(self, count: int) -> list[object]:
        """The data of the first ``count`` events the client got (waiting for them)."""
        return [event["data"] for event in await self.client.wait_events(count)]


@asynccontextmanager
async def open_relay(broker: Broker, **extra: Any) -> AsyncIterator[Relay]:
    """A started hub over ``broker`` with one client on CHANNEL, for the block's duration.

    The send queue (256 KiB) holds a few events of EVENT_MAX_BYTES, as the default WS_SEND_QUEUE does.
    """
    hub = Hub(broker, send_queue_bytes=1 << 18)
    await hub.start()
    client = Recorder()
    conn, close = await connect(hub, client)
    await hub.subscribe(conn, CHANNEL)
    try:
        yield Relay(broker, hub, Publisher(broker), client, **extra)
    finally:
        await close()
        await hub.stop()


@pytest.fixture
async def redis_relay(redis_client: aioredis.Redis) -> AsyncIterator[Relay]:
    """A Redis relay on a prefix of its own (deleted after)."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    broker = RedisBroker(REDIS_URL, prefix=prefix, history_size=100)
    await broker.start()
    try:
        async with open_relay(broker, redis=redis_client, prefix=prefix) as relay:
            yield relay
    finally:
        await broker.stop()
        await delete_prefix(redis_client, prefix)


@pytest.fixture
async def relay(broker_factory: BrokerFactory) -> AsyncIterator[Relay]:
    """A relay over the parametrized broker (memory and Redis)."""
    async with open_relay(await broker_factory()) as relay:
        yield relay
