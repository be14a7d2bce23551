"""A connect burst against the Redis broker: commands wait for a pooled connection, SUBSCRIBEs are batched."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from channels import Hub, RedisBroker
from tests.channels.conftest import WAIT, BrokerFactory, Recorder, connect

pytestmark = pytest.mark.redis


@pytest.mark.parametrize("broker_factory", ["redis"], indirect=True)
async def test_burst_of_subscribes_queues_for_the_pool_and_shares_subscribe_commands(
    broker_factory: BrokerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """300 connections subscribing at once through a pool of 4 all succeed, with far fewer than 300 SUBSCRIBEs."""
    broker = await broker_factory(max_connections=4, pool_timeout=WAIT)
    assert isinstance(broker, RedisBroker)
    sent: list[int] = []
    listener: Any = broker._pubsub  # type: ignore[attr-defined]
    send = listener._send

    async def counting_send(command: str, channels: list[str]) -> None:
        if command == "SUBSCRIBE":
            sent.append(len(channels))
        await send(command, channels)

    monkeypatch.setattr(listener, "_send", counting_send)
    hub = Hub(broker)
    await hub.start()
    opened = [await connect(hub, Recorder()) for _ in range(300)]
    results = await asyncio.wait_for(
        asyncio.gather(*(hub.subscribe(conn, f"user:burst{i}") for i, (conn, _) in enumerate(opened))), WAIT * 2
    )
    assert len(results) == 300 and all(r.recovered for r in results)
    assert sum(sent) == 300 and len(sent) < 30
    for _, close in opened:
        await close()
    await hub.stop()


@pytest.mark.parametrize("broker_factory", ["redis"], indirect=True)
async def test_offset_reads_load_the_script_when_redis_does_not_know_it(broker_factory: BrokerFactory) -> None:
    """Concurrent offset reads share a pipeline; a NOSCRIPT answer loads the script and the batch is retried."""
    import uuid

    import redis.asyncio as aioredis

    from channels.redis_offsets import OffsetReader
    from channels.redis_scripts import READ_SCRIPT
    from tests.channels.conftest import REDIS_URL

    broker = await broker_factory()
    assert isinstance(broker, RedisBroker)
    # A variant Redis has never seen (same code, another sha), as after a restart or SCRIPT FLUSH.
    script = aioredis.Redis.from_url(REDIS_URL).register_script(f"{READ_SCRIPT}\n-- {uuid.uuid4().hex}")
    reader = OffsetReader(aioredis.Redis.from_url(REDIS_URL), script, broker._keys, 60)
    channels = [f"order:noscript{i}" for i in range(5)]
    offsets = await asyncio.wait_for(asyncio.gather(*(reader.current_offset(c) for c in channels)), WAIT)
    assert [o.seq for o in offsets] == [0] * 5
    assert offsets == [await broker.current_offset(c) for c in channels]
    await reader.stop()
