"""The relay over real Redis: fan-out across server processes, bare producers, and surviving a Redis restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from litestar import Litestar
from redis.asyncio import Redis
from websockets.asyncio.client import connect

from app.main import create_app
from app.platform.settings import Settings
from app.runtime import Runtime
from channels import Publisher, RedisBroker
from tests.conftest import TEST_SECRET
from tests.live import receive_json, receive_messages, serving
from tests.processes import server_process
from tests.redis_servers import RedisServer
from tests.services import REDIS_URL, reachable, unavailable, unique_name


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A key prefix of this test's own; its keys are deleted after."""
    if not reachable("127.0.0.1", 6379):
        unavailable("Redis is not reachable at 127.0.0.1:6379")
    prefix = unique_name("push_test")
    yield prefix
    client = Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def publisher(redis_prefix: str) -> AsyncIterator[Publisher]:
    """A producer's publisher on the test prefix (what any backend service would use)."""
    broker = RedisBroker(REDIS_URL, redis_prefix)
    await broker.start()
    yield Publisher(broker)
    await broker.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _join(ws: Any, user_id: str) -> str:
    assert (await receive_json(ws))["op"] == "welcome"
    subscribed = await receive_json(ws)
    assert subscribed["channel"] == f"user:{user_id}"
    return str(subscribed["offset"])


async def test_two_processes_share_every_event(
    postgres_database: str, redis_prefix: str, publisher: Publisher, token_for: Callable[..., str]
) -> None:
    """Clients on two server processes receive the same events with the same offsets, bare publishes too."""
    env = {
        "DATABASE_URL": postgres_database,
        "REDIS_URL": REDIS_URL,
        "REDIS_PREFIX": redis_prefix,
        "JWT_SECRET": TEST_SECRET,
        "WEBHOOK_SECRET": TEST_SECRET,
    }
    with server_process(env) as first, server_process(env) as second:
        headers = bearer(token_for("u_multi"))
        async with (
            connect(first.replace("http", "ws") + "/ws", additional_headers=headers) as one,
            connect(second.replace("http", "ws") + "/ws", additional_headers=headers) as two,
        ):
            assert await _join(one, "u_multi") == await _join(two, "u_multi")
            offsets = [await publisher.publish("user:u_multi", "notification.created", {"n": n}) for n in range(5)]
            redis = Redis.from_url(REDIS_URL)
            await redis.publish(f"{redis_prefix}:user:u_multi", b'{"type": "notification.read", "data": {"all": true}}')
            await redis.aclose()
            for ws in (one, two):
                messages = await receive_messages(ws, 6)
                assert [m["offset"] for m in messages[:5]] == [str(offset) for offset in offsets]
                assert [m["data"] for m in messages[:5]] == [{"n": n} for n in range(5)]
                bare = messages[5]
                assert bare["type"] == "notification.read" and bare["offset"] is None and bare["ts"]
        async with httpx.AsyncClient() as http:
            for base in (first, second):
                assert (await http.get(f"{base}/ready")).json()["checks"]["broker"] == "ok"


@pytest.fixture
async def redis_app(
    make_settings: Callable[..., Settings], sqlite_database: str, redis_prefix: str
) -> AsyncIterator[tuple[Litestar, str]]:
    """A live in-loop server on Redis; yields the app and its address."""
    settings = make_settings(DATABASE_URL=sqlite_database, REDIS_URL=REDIS_URL, REDIS_PREFIX=redis_prefix)
    app = create_app(settings)
    async with serving(app, settings) as address:
        yield app, address


async def _wait_ready(address: str, ready: bool, within: float = 30.0) -> None:
    """Poll /ready until it reports ``ready`` (Redis is another process: no event to wait on)."""

    async def poll() -> None:
        async with httpx.AsyncClient() as http:
            while True:
                if ((await http.get(f"http://{address}/ready")).status_code == 200) == ready:
                    return
                await asyncio.sleep(0.1)

    await asyncio.wait_for(poll(), within)


async def test_redis_restart_mid_stream_loses_nothing_after_recovery(
    make_settings: Callable[..., Settings], sqlite_database: str, own_redis: RedisServer, token_for: Callable[..., str]
) -> None:
    """Kill Redis under a live client and start it again: the server recovers by itself, /ready follows, and the
    client gets a new epoch (recovered: false) then every event published after Redis came back."""
    settings = make_settings(DATABASE_URL=sqlite_database, REDIS_URL=own_redis.url)
    app = create_app(settings)
    runtime: Runtime = app.state.runtime
    async with (
        serving(app, settings) as address,
        connect(f"ws://{address}/ws", additional_headers=bearer(token_for("u_restart"))) as ws,
    ):
        before = await _join(ws, "u_restart")
        await runtime.relay.publisher.publish("user:u_restart", "notification.created", {"n": "before"})
        assert (await receive_json(ws))["data"] == {"n": "before"}

        own_redis.kill()
        await _wait_ready(address, ready=False)
        await asyncio.to_thread(own_redis.start)
        await _wait_ready(address, ready=True)

        after = [
            await runtime.relay.publisher.publish("user:u_restart", "notification.created", {"n": n}) for n in range(10)
        ]
        reset = await receive_json(ws, within=15)
        assert reset["op"] == "subscribed" and reset["recovered"] is False
        assert str(reset["offset"]).split(":")[0] != before.split(":")[0]
        events = await receive_messages(ws, 10, within=15)
        assert [e["data"] for e in events] == [{"n": n} for n in range(10)]
        assert [e["offset"] for e in events] == [str(offset) for offset in after]
        async with httpx.AsyncClient() as http:
            metrics = (await http.get(f"http://{address}/metrics")).text
    assert "push_pubsub_reconnects_total 0.0" not in metrics
