"""Scaling out (SPEC "Scaling out"): server processes on two loopback "hosts", one PostgreSQL, and Redis
behind Sentinel or as a Cluster; events, resume, tickets and rate limits shared, no sticky sessions;
failovers and slot migrations without a silent gap."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster

from channels import BrokerError, RedisBroker
from tests.redis_servers import RedisCluster as ClusterSetUp
from tests.redis_servers import RedisSentinelSet
from tests.scaling import (
    all_notification_ids,
    check_offsets,
    recording,
    server_env,
    two_servers,
    unannounced_losses,
    wait_ready,
)
from tests.services import unique_name

Token = Callable[..., str]
KINDS = ["sentinel", "cluster"]


def _ws(base: str, query: str = "") -> str:
    return base.replace("http://", "ws://") + "/ws" + query


def _joined(recorder: Any, channel: str) -> bool:
    return any(m.get("op") == "subscribed" and m.get("channel") == channel for m in recorder.messages)


def _offset_of(recorder: Any, channel: str) -> str:
    return next(str(m["offset"]) for m in recorder.messages if m.get("op") == "subscribed" and m["channel"] == channel)


async def _bare_publish(topology: ClusterSetUp | RedisSentinelSet, name: str, payload: bytes) -> None:
    """Publish as a producer without history would: PUBLISH on the master, SPUBLISH on a cluster."""
    if isinstance(topology, ClusterSetUp):
        client = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", node.port) for node in topology.nodes])
        try:
            await client.execute_command("SPUBLISH", name, payload)
        finally:
            await client.aclose()
    else:
        master = aioredis.Redis(port=topology.current_master().port)
        try:
            await master.publish(name, payload)
        finally:
            await master.aclose()


@pytest.mark.parametrize("kind", KINDS)
async def test_two_hosts_share_events_resume_tickets_and_limits(
    kind: str, request: pytest.FixtureRequest, postgres_database: str, token_for: Token
) -> None:
    """Two processes on two addresses: same events with the same offsets (bare publishes with offset null),
    a resume on the other process, a ticket of one redeemed on the other, and one rate limit for both."""
    topology = request.getfixturevalue(f"shared_{kind}")
    prefix = unique_name("scale")
    with two_servers(server_env(topology.url, postgres_database, prefix, RATE_LIMIT="6/minute")) as (a, b):
        user, channel = f"u_share_{kind}", f"user:u_share_{kind}"
        token = token_for(user)
        async with recording(_ws(a), token) as one, recording(_ws(b), token) as two:
            await one.wait(lambda r: _joined(r, channel))
            await two.wait(lambda r: _joined(r, channel))
            before = _offset_of(one, channel)
            body = {"userId": user, "type": "ACCOUNT_UPDATED", "title": "t", "message": "m"}
            async with httpx.AsyncClient(base_url=b) as http:
                service = {"Authorization": f"Bearer {token_for('svc_share', 'service')}"}
                for _ in range(3):
                    assert (await http.post("/notifications", json=body, headers=service)).status_code == 201
            await _bare_publish(topology, f"{prefix}:{channel}", b'{"type":"promo.flash","data":{"n":1}}')

            def created(r: Any) -> list[dict[str, Any]]:
                return [e for e in r.events(channel) if e["type"] == "notification.created"]

            for recorder in (one, two):
                await recorder.wait(
                    lambda r: len(created(r)) == 3 and any(e["offset"] is None for e in r.events(channel))
                )
            assert [e["offset"] for e in created(one)] == [e["offset"] for e in created(two)]
            bare = [e for e in one.events(channel) if e["offset"] is None]
            assert bare[0]["type"] == "promo.flash" and bare[0]["data"] == {"n": 1}

        # No sticky sessions: a client that was on A resumes on B from the offset it had.
        async with recording(_ws(b, f"?since={before}"), token) as resumed:
            await resumed.wait(lambda r: len(created(r)) == 3)
            assert [e["offset"] for e in created(resumed)] == [e["offset"] for e in created(one)]
            assert check_offsets(resumed.messages, channel) == 1

        async with httpx.AsyncClient() as http:
            customer = {"Authorization": f"Bearer {token_for(f'u_limit_{kind}')}"}
            ticket = (await http.post(f"{a}/realtime/ticket", headers=customer)).json()["ticket"]
            async with recording(_ws(b, f"?ticket={ticket}"), "unused") as via_ticket:
                await via_ticket.wait(lambda r: _joined(r, f"user:u_limit_{kind}"))
            statuses = [(await http.get(f"{base}/notifications", headers=customer)).status_code for base in (a, b) * 3]
            # 6 per minute for this user across both processes: the ticket and five lists, then 429.
            assert statuses[:5] == [200] * 5 and statuses[5] == 429


async def _produce(
    base: str, headers: dict[str, str], user: str, created: dict[str, float], stop: asyncio.Event
) -> None:
    """Create notifications for ``user`` every 50 ms until ``stop``; record the ids answered 201 and when."""
    body = {"userId": user, "type": "ACCOUNT_UPDATED", "title": "failover", "message": "m"}
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        while not stop.is_set():
            with contextlib.suppress(httpx.HTTPError):
                response = await http.post("/notifications", json=body, headers=headers)
                if response.status_code == 201:
                    created[response.json()["id"]] = time.monotonic()
            await asyncio.sleep(0.05)  # the producer's pace (a notification every 50 ms), not a wait


def _master_of(topology: ClusterSetUp | RedisSentinelSet, name: str) -> Any:
    return topology.master_of(name) if isinstance(topology, ClusterSetUp) else topology.current_master()


def _healed(topology: ClusterSetUp | RedisSentinelSet) -> bool:
    if isinstance(topology, ClusterSetUp):
        return topology.healthy()
    info = topology.sentinels[0].call("SENTINEL", "MASTER", "push-master")
    return f"num-slaves\n{len(topology.replicas)}" in info and "flags\nmaster" in info


@pytest.mark.parametrize("kind", KINDS)
async def test_killing_the_master_three_times_loses_nothing_silently(
    kind: str, request: pytest.FixtureRequest, postgres_database: str, token_for: Token
) -> None:
    """SIGKILL the master of a subscribed channel three times under load, the last time with its replica frozen
    first so that the promoted replica lacks the latest events: the subscriber sees seq only increase within
    an epoch and each new epoch announced by recovered: false; every notification created with 2xx is
    listed over REST afterwards; /ready is 200 again within 30 s of each kill."""
    topology = request.getfixturevalue(f"fresh_{kind}")
    prefix = unique_name("failover")
    user, channel = f"u_failover_{kind}", f"user:u_failover_{kind}"
    with two_servers(server_env(topology.url, postgres_database, prefix)) as (a, b):
        async with recording(_ws(a), token_for(user)) as subscriber:
            await subscriber.wait(lambda r: _joined(r, channel))
            created: dict[str, float] = {}
            stop = asyncio.Event()
            service = {"Authorization": f"Bearer {token_for('svc_failover', 'service')}"}
            producer = asyncio.create_task(_produce(b, service, user, created, stop))
            try:
                for round_ in range(3):
                    await subscriber.wait(lambda r: len(r.events(channel)) >= len(created) // 2 + 2)
                    victim = _master_of(topology, f"{prefix}:{channel}")
                    lagging = topology.replicas_of(victim) if round_ == 2 else []
                    for replica in lagging:  # it stops replicating: the events of the next second are master-only
                        replica.pause()
                    if lagging:
                        assert victim.call("CLIENT", "KILL", "TYPE", "replica") != ""
                        seen = len(subscriber.events(channel))
                        await subscriber.wait(lambda r, seen=seen: len(r.events(channel)) >= seen + 12)
                    victim.kill()
                    for replica in lagging:
                        replica.resume()
                    await wait_ready([a, b], within=30)
                    await asyncio.to_thread(victim.start)  # it rejoins as a replica of the new master
                    await asyncio.wait_for(_until(lambda: _healed(topology)), 30)
                    await wait_ready([a, b], within=30)
            finally:
                stop.set()
                await producer
            # Whatever was created reached the subscriber live, or it was told to refetch (recovered: false).
            with contextlib.suppress(TimeoutError):  # the outbox relays what is committed within its sweeps
                await subscriber.wait(lambda r: not unannounced_losses(r, channel, created), within=15)
            assert unannounced_losses(subscriber, channel, created) == []
            assert check_offsets(subscriber.messages, channel) >= 2  # the frozen replica's promotion began an epoch
        async with httpx.AsyncClient(base_url=a) as http:
            listed = await all_notification_ids(http, {"Authorization": f"Bearer {token_for(user)}"})
        assert created and set(created) <= listed


async def _until(condition: Callable[[], bool]) -> None:
    """Poll another process's state (no event crosses processes)."""
    while True:
        if await asyncio.to_thread(condition):
            return
        await asyncio.sleep(0.2)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_promoted_replica_that_missed_events_starts_a_new_epoch(
    kind: str, request: pytest.FixtureRequest
) -> None:
    """Events the replica never received (it was frozen) are gone after its promotion: the channel's next
    offset is in a new epoch, never a reused seq of the old one, and a reader of the old offset is told
    recovered: false."""
    topology = request.getfixturevalue(f"fresh_{kind}")
    broker = RedisBroker(topology.url, prefix=unique_name("fence"))
    await broker.start()
    try:
        channel = "order:fenced"
        for i in range(3):
            await broker.publish(channel, "test.event", b'{"i":%d}' % i)
        victim = _master_of(topology, broker.keys.pubsub(channel))
        replicas = topology.replicas_of(victim)
        await asyncio.wait_for(_until(lambda: all(_replicated(victim, r) for r in replicas)), 10)
        for replica in replicas:
            replica.pause()
        # Cut the replication link too: a frozen replica still gets what the kernel buffered for it.
        assert victim.call("CLIENT", "KILL", "TYPE", "replica") != ""
        last = None
        for i in range(3, 8):  # acknowledged by the master alone
            last = await broker.publish(channel, "test.event", b'{"i":%d}' % i)
        assert last is not None and last.seq == 8
        victim.kill()
        for replica in replicas:
            replica.resume()

        async def republish() -> Any:
            while True:  # until a new master takes writes (redis-py and Sentinel find it)
                with contextlib.suppress(BrokerError):
                    return await broker.publish(channel, "test.event", b'{"i":"after"}')
                await asyncio.sleep(0.2)

        after = await asyncio.wait_for(republish(), 30)
        assert after.epoch != last.epoch or after.seq > last.seq, f"{after} reuses a seq of the epoch of {last}"
        assert after.epoch != last.epoch and after.seq == 1  # the fence: a new master, a new epoch
        history = await broker.history(channel, last)
        assert not history.complete and [e.offset for e in history.events] == [after]
    finally:
        await broker.stop()


def _replicated(master: Any, replica: Any) -> bool:
    """The replica has applied everything the master wrote (same replication offset)."""

    def offset(server: Any, field: str) -> int:
        for line in server.call("INFO", "replication").splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split(":")[1])
        return -1

    return offset(master, "master_repl_offset") == offset(replica, "slave_repl_offset")
