"""The Redis listener survives a dropped pub/sub connection and refills what it missed."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis

from channels import Hub, Publisher, RedisBroker, parse_offset
from tests.channels.conftest import REDIS_URL, WAIT, Recorder, connect, delete_prefix

pytestmark = pytest.mark.redis


async def kill_listener(client: aioredis.Redis, name: str) -> None:
    """Close the broker's pub/sub connection from the server side (CLIENT KILL has no NAME filter)."""
    clients = await client.client_list()
    ids = [c["id"] for c in clients if c.get("name") == name]
    assert len(ids) == 1, clients
    await client.client_kill_filter(_id=ids[0])


async def test_listener_reconnects_and_refills_missed_events(redis_client: aioredis.Redis) -> None:
    """Events published while the pub/sub connection is down reach the subscriber after reconnection."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    # A fixed 0.5 s backoff leaves time to publish while the listener is down.
    broker = RedisBroker(REDIS_URL, prefix=prefix, history_size=100, reconnect_delay=(0.5, 0.5))
    await broker.start()
    hub = Hub(broker)
    await hub.start()
    publisher = Publisher(broker)
    recorder = Recorder()
    conn, close = await connect(hub, recorder)
    try:
        await hub.subscribe(conn, "order:r1")
        for i in range(3):
            await publisher.publish("order:r1", "tracking.eta", {"i": i})
        await recorder.wait_events(3)

        await kill_listener(redis_client, broker.listener_name)
        await asyncio.wait_for(broker.wait_healthy(False), WAIT)
        for i in range(3, 8):
            await publisher.publish("order:r1", "tracking.eta", {"i": i})
        await asyncio.wait_for(broker.wait_healthy(True), WAIT)

        for i in range(8, 10):
            await publisher.publish("order:r1", "tracking.eta", {"i": i})
        events = await recorder.wait_events(10)
        assert [parse_offset(str(e["offset"])).seq for e in events] == list(range(1, 11))
        assert [e["data"] for e in events] == [{"i": i} for i in range(10)]
        assert broker.stats.reconnects == 1
        assert hub.metrics.resyncs == 1
        assert broker.healthy
    finally:
        await close()
        await hub.stop()
        await broker.stop()
        await delete_prefix(redis_client, prefix)


async def test_malformed_producer_payloads_are_counted_not_fatal(redis_client: aioredis.Redis) -> None:
    """Garbage and bare envelopes on the pub/sub channel: garbage is counted, bare events relayed with ts stamped."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    broker = RedisBroker(REDIS_URL, prefix=prefix)
    await broker.start()
    hub = Hub(broker)
    await hub.start()
    recorder = Recorder()
    conn, close = await connect(hub, recorder)
    try:
        await hub.subscribe(conn, "store:s9")
        await redis_client.publish(f"{prefix}:store:s9", b"not json")
        await redis_client.publish(f"{prefix}:store:s9", b'{"data":{}}')
        await redis_client.publish(f"{prefix}:store:s9", b'{"type":"order.created","data":{"orderId":"o1"}}')
        (event,) = await recorder.wait_events(1)
        assert event["offset"] is None and event["data"] == {"orderId": "o1"}
        assert isinstance(event["ts"], str) and event["ts"].endswith("Z")
        assert broker.stats.dropped == {"not_json": 1, "bad_type": 1}
        assert broker.healthy
    finally:
        await close()
        await hub.stop()
        await broker.stop()
        await delete_prefix(redis_client, prefix)


async def test_start_fails_loudly_when_redis_is_unreachable() -> None:
    """start() raises BrokerUnavailable for a Redis that cannot be reached."""
    from channels import BrokerUnavailable

    broker = RedisBroker("redis://127.0.0.1:1/0")
    with pytest.raises(BrokerUnavailable):
        await broker.start()


async def test_pubsub_killed_mid_stream_loses_no_offset(redis_client: aioredis.Redis) -> None:
    """Only the listener's connection is killed while a producer publishes with history: every offset arrives once."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    broker = RedisBroker(REDIS_URL, prefix=prefix, history_size=500, reconnect_delay=(0.05, 0.2))
    await broker.start()
    hub = Hub(broker)
    await hub.start()
    publisher = Publisher(broker)
    recorder = Recorder()
    conn, close = await connect(hub, recorder)
    total = 300

    async def produce() -> None:
        for i in range(total):
            await publisher.publish("order:k1", "tracking.eta", {"i": i})

    try:
        await hub.subscribe(conn, "order:k1")
        producer = asyncio.create_task(produce())
        await recorder.wait_events(50)
        await kill_listener(redis_client, broker.listener_name)  # CLIENT KILL ID: nobody else's connection
        assert not producer.done(), "the kill must land mid-stream"
        await asyncio.wait_for(producer, WAIT)
        events = await recorder.wait_events(total)
        assert [parse_offset(str(e["offset"])).seq for e in events] == list(range(1, total + 1))
        assert [e["data"] for e in events] == [{"i": i} for i in range(total)]
        assert not [m for m in recorder.messages if m["op"] == "subscribed" and m.get("recovered") is False]
        assert broker.stats.reconnects == 1 and hub.metrics.resyncs == 1
        assert hub.metrics.gaps_filled > 0  # some were published while the listener was away
    finally:
        await close()
        await hub.stop()
        await broker.stop()
        await delete_prefix(redis_client, prefix)
