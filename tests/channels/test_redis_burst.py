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
    listener: Any = broker._subscriber  # type: ignore[attr-defined]
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
async def test_offset_reads_share_one_call_and_survive_a_script_flush(broker_factory: BrokerFactory) -> None:
    """Concurrent offset reads go out as one script call; after SCRIPT FLUSH (as after a Redis restart) the
    script is loaded again and the reads still answer, with the same offsets the broker reports."""
    import redis.asyncio as aioredis

    from channels.redis_offsets import OffsetReader
    from tests.channels.conftest import REDIS_URL

    broker = await broker_factory()
    assert isinstance(broker, RedisBroker)
    client = aioredis.Redis.from_url(REDIS_URL)
    reader = OffsetReader(client, broker.keys.history, 60)
    batches: list[int] = []
    call = reader._call

    async def counting(channels: list[str]) -> Any:
        batches.append(len(channels))
        return await call(channels)

    reader._call = counting  # type: ignore[method-assign]
    channels = [f"order:batched{i}" for i in range(5)]
    await broker.publish(channels[2], "order.status_changed", b"{}")
    for _ in range(2):  # the second round finds the script cache flushed
        offsets = await asyncio.wait_for(asyncio.gather(*(reader.current_offset(c) for c in channels)), WAIT)
        assert [o.seq for o in offsets] == [0, 0, 1, 0, 0]
        assert offsets == [await broker.current_offset(c) for c in channels]
        await client.script_flush()
    assert batches == [5, 5]
    await reader.stop()
