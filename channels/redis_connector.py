"""The one factory of Redis clients of a process, for whichever topology ``REDIS_URL`` names.

Every Redis user (the broker's commands, offsets and pub/sub; tickets, rate limits, caches,
presence) asks a :class:`RedisConnector` for its client, so none of them knows whether it talks to
one server, to the master that Sentinel names (redis-py's ``Sentinel`` / ``SentinelConnectionPool``
follow failovers), or to a Redis Cluster (redis-py's ``RedisCluster`` routes by slot and follows
``MOVED``). Discovery is redis-py's; nothing here second-guesses it.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import BlockingConnectionPool, ConnectionPool
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialBackoff

from channels.redis_target import RedisTarget

__all__ = ["RedisClient", "RedisConnector"]

RedisClient = aioredis.Redis | RedisCluster
"""A command client: both types offer the commands the app uses (on a cluster, routed by key)."""

CONNECT_TIMEOUT = 2.0


class _SentinelBlockingPool(SentinelConnectionPool, BlockingConnectionPool):
    """Sentinel's master discovery with a blocking pool: a burst waits for a free connection instead
    of failing with "Too many connections", as the one-server pool does."""


class RedisConnector:
    """Builds clients for ``target``; each is closed by its owner (``aclose``), the sentinels by ``aclose`` here.

    Args:
        target: The parsed ``REDIS_URL``.
    """

    def __init__(self, target: RedisTarget) -> None:
        self.target = target
        self._sentinel: Sentinel | None = None
        if target.topology == "sentinel":
            # Sentinels are asked without the data servers' password (see channels/redis_target.py).
            self._sentinel = Sentinel(  # type: ignore[no-untyped-call, unused-ignore]  # untyped before redis-py 8
                list(target.nodes),
                sentinel_kwargs={"socket_connect_timeout": CONNECT_TIMEOUT, "socket_timeout": CONNECT_TIMEOUT},
                socket_connect_timeout=CONNECT_TIMEOUT,
            )

    @property
    def is_cluster(self) -> bool:
        """Whether the target is a Redis Cluster (keys of one channel share a slot; pub/sub is sharded)."""
        return self.target.topology == "cluster"

    @property
    def sentinel(self) -> Sentinel | None:
        """The sentinels of a Sentinel target (for ``+switch-master`` notifications)."""
        return self._sentinel

    def _service(self) -> str:
        if not self.target.service:
            raise ValueError("a Sentinel target needs its service name")
        return self.target.service

    def _credentials(self) -> dict[str, Any]:
        target = self.target
        options: dict[str, Any] = {}
        if target.username:
            options["username"] = target.username
        if target.password:
            options["password"] = target.password
        return options

    def client(
        self,
        *,
        max_connections: int = 50,
        pool_timeout: float = 5.0,
        socket_timeout: float | None = 5.0,
        retries: int = 2,
        client_name: str | None = None,
    ) -> RedisClient:
        """A command client with short connect timeouts and a few quick retries.

        Args:
            max_connections: Connections per server; beyond it callers wait up to ``pool_timeout``.
            pool_timeout: Seconds to wait for a free connection.
            socket_timeout: Seconds a reply may take (``None``: no limit, the caller bounds it).
            retries: Retries of a command after a connection error (with a 50-500 ms backoff).
            client_name: ``CLIENT SETNAME`` of its connections.
        """
        retry = Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=retries)
        options: dict[str, Any] = {
            "socket_connect_timeout": CONNECT_TIMEOUT,
            "socket_timeout": socket_timeout,
            "retry": retry,
            **({"client_name": client_name} if client_name else {}),
        }
        target = self.target
        if target.topology == "cluster":
            return RedisCluster(
                startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
                max_connections=max_connections,
                **options,
                **self._credentials(),
            )
        if self._sentinel is not None:
            pool = _SentinelBlockingPool(  # type: ignore[no-untyped-call]
                self._service(),
                self._sentinel,
                is_master=True,
                max_connections=max_connections,
                timeout=pool_timeout,
                db=target.db,
                **options,
                **self._credentials(),
            )
            return aioredis.Redis.from_pool(pool)
        return aioredis.Redis.from_pool(
            BlockingConnectionPool.from_url(
                target.url, max_connections=max_connections, timeout=pool_timeout, **options
            )
        )

    def pubsub_pool(self, client_name: str) -> ConnectionPool:
        """The pool whose ``make_connection()`` opens a pub/sub connection to the (current) master.

        RESP2, so pub/sub messages come back from ``read_response``. Not for a cluster, whose
        pub/sub is sharded: one connection per shard master (``shard_pool``).
        """
        options: dict[str, Any] = {
            "client_name": client_name,
            "socket_connect_timeout": CONNECT_TIMEOUT,
            "socket_keepalive": True,
            "protocol": 2,
        }
        if self._sentinel is not None:
            return SentinelConnectionPool(  # type: ignore[no-untyped-call]
                self._service(), self._sentinel, is_master=True, db=self.target.db, **options, **self._credentials()
            )
        if self.is_cluster:
            raise ValueError("a cluster's pub/sub is per shard: use shard_pool()")
        return ConnectionPool.from_url(self.target.url, **options)

    def shard_pool(self, host: str, port: int, client_name: str) -> ConnectionPool:
        """A pool of pub/sub connections to one cluster node (RESP2)."""
        return ConnectionPool(
            host=host,
            port=port,
            client_name=client_name,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_keepalive=True,
            protocol=2,
            **self._credentials(),
        )

    async def aclose(self) -> None:
        """Close the sentinel connections (clients are closed by their owners)."""
        if self._sentinel is not None:
            await self._sentinel.aclose()
