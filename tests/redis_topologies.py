"""Redis Cluster and Sentinel set-ups of this test run (``bench/redis_topology.py``), as pytest fixtures.

Each is started once per module that asks for it (a few seconds) and stopped by PID afterwards;
tests that kill or pause a node restore the set-up's health before they end, or ask for a fresh
one (``fresh_cluster`` / ``fresh_sentinel``). Under REQUIRE_SERVICES=1 a missing ``redis-server``
fails these tests instead of skipping them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.redis_servers import RedisCluster, RedisSentinelSet, require_redis_server

__all__ = ["cluster", "fresh_cluster", "fresh_sentinel", "sentinel_set"]


def _cluster() -> Iterator[RedisCluster]:
    require_redis_server()
    topology = RedisCluster(masters=3, replicas=1)
    try:
        topology.start()
        yield topology
    finally:
        topology.stop()


def _sentinel() -> Iterator[RedisSentinelSet]:
    require_redis_server()
    topology = RedisSentinelSet(replicas=1, sentinels=3)
    try:
        topology.start()
        yield topology
    finally:
        topology.stop()


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisCluster]:
    """A 3-master, 3-replica cluster shared by the module's tests (which must leave it healthy)."""
    yield from _cluster()


@pytest.fixture
def fresh_cluster() -> Iterator[RedisCluster]:
    """A cluster of this test's own, for tests that break it."""
    yield from _cluster()


@pytest.fixture(scope="module")
def sentinel_set() -> Iterator[RedisSentinelSet]:
    """A master, a replica and three sentinels shared by the module's tests."""
    yield from _sentinel()


@pytest.fixture
def fresh_sentinel() -> Iterator[RedisSentinelSet]:
    """A Sentinel set of this test's own, for tests that fail its master over."""
    yield from _sentinel()
