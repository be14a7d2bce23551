"""Redis Cluster and Sentinel set-ups of this test run (``bench/redis_topology.py``), as pytest fixtures.

The shared ones are started once per run (about 2.5 s each) and stopped by PID afterwards; tests
that kill, pause or migrate ask for a fresh one (``fresh_cluster`` / ``fresh_sentinel``). Under
REQUIRE_SERVICES=1 a missing ``redis-server`` fails these tests instead of skipping them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.redis_servers import RedisCluster, RedisSentinelSet, require_redis_server

__all__ = ["fresh_cluster", "fresh_sentinel", "shared_cluster", "shared_sentinel"]


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


@pytest.fixture(scope="session")
def shared_cluster() -> Iterator[RedisCluster]:
    """A 3-master, 3-replica cluster shared by the run's tests, which must leave it healthy."""
    yield from _cluster()


@pytest.fixture
def fresh_cluster() -> Iterator[RedisCluster]:
    """A cluster of this test's own, for tests that break it."""
    yield from _cluster()


@pytest.fixture(scope="session")
def shared_sentinel() -> Iterator[RedisSentinelSet]:
    """A master, a replica and three sentinels shared by the run's tests, which must leave them healthy."""
    yield from _sentinel()


@pytest.fixture
def fresh_sentinel() -> Iterator[RedisSentinelSet]:
    """A Sentinel set of this test's own, for tests that fail its master over."""
    yield from _sentinel()
