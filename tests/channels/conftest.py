"""Fixtures of the channels tests: one broker fixture over memory and real Redis."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as aioredis

from channels import Broker, Connection, Hub, MemoryBroker, RedisBroker

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
    keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=500)]
    if keys:
        await client.delete(*keys)


@pytest.fixture
async def redis_client() -> AsyncIterator[aioredis.Redis]:
    """A plain client for inspecting and damaging state from the side."""
    await _require_redis()
    client = aioredis.Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def broker_factory(request: pytest.FixtureRequest) -> AsyncIterator[BrokerFactory]:
    """Make started brokers of the parametrized kind; every broker made shares one Redis prefix."""
    kind: str = request.param
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    made: list[Broker] = []
    if kind == "redis":
        await _require_redis()

    async def make(**options: object) -> Broker:
        history_size = int(options.pop("history_size", 100))  # type: ignore[call-overload]
        broker: Broker
        if kind == "memory":
            broker = MemoryBroker(history_size=history_size, history_ttl=60)
        else:
            broker = RedisBroker(REDIS_URL, prefix=prefix, history_size=history_size, history_ttl=60, **options)  # type: ignore[arg-type]
        await broker.start()
        made.append(broker)
        return broker

    make.kind = kind  # type: ignore[attr-defined]
    make.prefix = prefix  # type: ignore[attr-defined]
    yield make
    for broker in made:
        await broker.stop()
    if kind == "redis":
        client = aioredis.Redis.from_url(REDIS_URL)
        await delete_prefix(client, prefix)
        await client.aclose()


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
