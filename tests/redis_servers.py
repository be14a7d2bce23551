"""Redis servers of a test's own (``bench/redis_topology.py``), started on free ports and stopped by PID.

The shared Redis on 6379 is never stopped or reconfigured: a test that kills, pauses or restarts
Redis does it to a server it started, in a temporary directory of its own.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator, Sequence

from bench.redis_topology import RedisCluster, RedisSentinelSet, RedisServer
from tests.services import unavailable

__all__ = ["RedisCluster", "RedisSentinelSet", "RedisServer", "redis_server", "require_redis_server"]


def require_redis_server() -> None:
    """Skip, or fail under REQUIRE_SERVICES=1, when ``redis-server`` or ``redis-cli`` is missing."""
    for binary in ("redis-server", "redis-cli"):
        if shutil.which(binary) is None:
            unavailable(f"{binary} is not installed")


@contextlib.contextmanager
def redis_server(args: Sequence[str] = ()) -> Iterator[RedisServer]:
    """A started server of the test's own, stopped when the block ends."""
    require_redis_server()
    server = RedisServer(args=args)
    server.start()
    try:
        yield server
    finally:
        server.stop()
