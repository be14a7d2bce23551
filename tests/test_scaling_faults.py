"""The pub/sub canary and slot migration: a silently stalled or killed subscription turns /ready 503 within 3 s
and recovers; a channel's slot moving to another shard under live traffic leaves no silent gap."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from app.main import create_app
from app.platform.settings import Settings
from channels import BrokerError, Offset, RedisBroker
from tests.live import serving
from tests.redis_servers import RedisCluster, RedisServer, require_redis_server
from tests.scaling import check_offsets, recording
from tests.services import unique_name

Token = Callable[..., str]
CHANNEL = "user:u_canary"


@pytest.fixture
def slow_failover_cluster() -> Iterator[RedisCluster]:
    """A cluster whose nodes wait 10 s before failing a silent master over: a 3 s freeze tests the canary alone."""
    require_redis_server()
    cluster = RedisCluster(node_timeout_ms=10_000)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=["single", "cluster"])
def topology(request: pytest.FixtureRequest) -> tuple[str, Callable[[str], RedisServer]]:
    """A REDIS_URL of this test's own, and the server that owns a given pub/sub name."""
    if request.param == "single":
        server: RedisServer = request.getfixturevalue("own_redis")
        return server.url, lambda _name: server
    cluster: RedisCluster = request.getfixturevalue("slow_failover_cluster")
    return cluster.url, cluster.master_of


@contextlib.asynccontextmanager
async def _server_on(settings: Settings) -> AsyncIterator[str]:
    async with serving(create_app(settings), settings) as address:
        yield address


async def _ready_within(http: httpx.AsyncClient, ready: bool, within: float) -> float:
    """Poll /ready every 20 ms until its status says ``ready``; answers the seconds it took."""
    started = time.monotonic()

    async def poll() -> None:
        while True:
            if ((await http.get("/ready")).status_code == 200) is ready:
                return
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), within)
    return time.monotonic() - started


async def _publish_every(broker: RedisBroker, channel: str, acked: list[Offset], stop: asyncio.Event) -> None:
    """Publish with history every 20 ms (a producer); record the offsets Redis acknowledged."""
    n = 0
    while not stop.is_set():
        n += 1
        with contextlib.suppress(BrokerError, TimeoutError):
            async with asyncio.timeout(1):
                offset = await broker.publish(channel, "test.event", b'{"n":%d}' % n)
                if offset is not None:
                    acked.append(offset)
        await asyncio.sleep(0.02)  # the producer's pace (a publish every 20 ms), not a wait for the code


def _joined(messages: list[dict[str, Any]]) -> bool:
    return any(m.get("op") == "subscribed" and m.get("channel") == CHANNEL for m in messages)


def _missing(messages: list[dict[str, Any]], acked: list[Offset]) -> list[str]:
    """Acknowledged offsets the client neither received nor was told to refetch (recovered: false after it)."""
    received = {m["offset"] for m in messages if m.get("op") == "event" and m.get("channel") == CHANNEL}
    reset_epochs = {
        str(m["offset"]).partition(":")[0]
        for m in messages
        if m.get("op") == "subscribed" and m.get("channel") == CHANNEL and m["recovered"] is False
    }
    epochs = [str(m["offset"]).partition(":")[0] for m in messages if m.get("op") == "event" and m["offset"]]
    last_epoch = epochs[-1] if epochs else None
    return [
        str(o)
        for o in acked
        if str(o) not in received and not (reset_epochs and o.epoch != last_epoch)  # an older epoch, announced lost
    ]


@pytest.mark.parametrize("fault", ["freeze", "kill_pubsub"])
async def test_a_stalled_or_killed_subscription_is_not_ready_then_recovers(
    fault: str,
    topology: tuple[str, Callable[[str], RedisServer]],
    make_settings: Callable[..., Settings],
    sqlite_database: str,
    token_for: Token,
) -> None:
    """SIGSTOP of the shard's server for 3 s, or CLIENT KILL TYPE pubsub there: /ready is 503 within 3 s and
    200 again after, and every event acknowledged with an offset reaches the client (or it is told to refetch)."""
    url, owner_of = topology
    prefix = unique_name("canary")
    settings = make_settings(DATABASE_URL=sqlite_database, REDIS_URL=url, REDIS_PREFIX=prefix)
    producer = RedisBroker(url, prefix=prefix)
    await producer.start()
    acked: list[Offset] = []
    stop = asyncio.Event()
    try:
        async with (
            _server_on(settings) as address,
            httpx.AsyncClient(base_url=f"http://{address}", timeout=10) as http,
            recording(f"ws://{address}/ws", token_for("u_canary")) as client,
        ):
            await _ready_within(http, True, 10)
            await client.wait(lambda r: _joined(r.messages))  # what is published from now on is the client's
            publishing = asyncio.create_task(_publish_every(producer, CHANNEL, acked, stop))
            await client.wait(lambda r: len(r.events(CHANNEL)) >= 5)
            server = owner_of(f"{prefix}:{CHANNEL}")
            if fault == "freeze":
                server.pause()
                try:
                    assert await _ready_within(http, False, 3) < 3
                    await asyncio.sleep(3)  # the fault lasts 3 s: a timed fault, not a wait for the code
                finally:
                    server.resume()
            else:
                assert server.call("CLIENT", "KILL", "TYPE", "pubsub") != ""
                assert await _ready_within(http, False, 3) < 3
            await _ready_within(http, True, 15)
            count = len(acked)
            await client.wait(lambda r: len(r.events(CHANNEL)) >= count, within=15)
            stop.set()
            await publishing
            await client.wait(lambda r: not _missing(r.messages, acked), within=15)
            check_offsets(client.messages, CHANNEL)
            metrics = (await http.get("/metrics")).text
            assert "push_redis_shard_reconnects_total" in metrics
    finally:
        stop.set()
        await producer.stop()


async def test_slot_migration_under_live_traffic_leaves_no_silent_gap(
    fresh_cluster: RedisCluster, make_settings: Callable[..., Settings], sqlite_database: str, token_for: Token
) -> None:
    """The slot of a subscribed channel moves to another master while a producer publishes: the client gets
    every acknowledged event, or a subscribed recovered: false for the epoch the move began, never a silent gap."""
    prefix = unique_name("migrate")
    settings = make_settings(DATABASE_URL=sqlite_database, REDIS_URL=fresh_cluster.url, REDIS_PREFIX=prefix)
    producer = RedisBroker(fresh_cluster.url, prefix=prefix)
    await producer.start()
    acked: list[Offset] = []
    stop = asyncio.Event()
    try:
        async with (
            _server_on(settings) as address,
            httpx.AsyncClient(base_url=f"http://{address}", timeout=10) as http,
            recording(f"ws://{address}/ws", token_for("u_canary")) as client,
        ):
            await _ready_within(http, True, 10)
            await client.wait(lambda r: _joined(r.messages))  # what is published from now on is the client's
            publishing = asyncio.create_task(_publish_every(producer, CHANNEL, acked, stop))
            await client.wait(lambda r: len(r.events(CHANNEL)) >= 10)
            name = f"{prefix}:{CHANNEL}"
            source = fresh_cluster.master_of(name)
            target = next(n for n in fresh_cluster.nodes if n is not source and n.call("ROLE").startswith("master"))
            slot = int(source.call("CLUSTER", "KEYSLOT", name))
            await asyncio.to_thread(fresh_cluster.move_slot, slot, target)
            assert fresh_cluster.master_of(name) is target
            count = len(acked)
            await client.wait(lambda r: len(r.events(CHANNEL)) >= count + 10, within=20)
            stop.set()
            await publishing
            await client.wait(lambda r: not _missing(r.messages, acked), within=15)
            check_offsets(client.messages, CHANNEL)
            await _ready_within(http, True, 15)
    finally:
        stop.set()
        await producer.stop()
