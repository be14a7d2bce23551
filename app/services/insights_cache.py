"""Cache of each customer's insights (dashboard, analytics windows, preferences), invalidated by their order changes.

Entries live in Redis when configured (shared by every process) or in memory. A computation that
started before an invalidation must not store its (stale) result after it: each customer has a
version, read before computing and checked atomically when storing, so a result computed from
data older than the customer's latest change is never cached.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from channels.redis_connector import RedisClient

__all__ = ["InsightsCache", "MemoryInsightsCache", "RedisInsightsCache"]

# KEYS: entries hash, version key; ARGV: field, value, version read before computing, ttl
_STORE_IF_CURRENT = """
local current = redis.call('GET', KEYS[2]) or '0'
if current ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""


class InsightsCache(ABC):
    """Per-customer cache of encoded insight responses."""

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0

    async def get(self, customer_id: str, kind: str) -> bytes | None:
        """The cached response of ``kind`` (e.g. ``dashboard``, ``analytics:30``), counted as a hit or miss."""
        value = await self._get(customer_id, kind)
        if value is None:
            self.misses += 1
        else:
            self.hits += 1
        return value

    @abstractmethod
    async def _get(self, customer_id: str, kind: str) -> bytes | None: ...

    @abstractmethod
    async def version(self, customer_id: str) -> str:
        """The customer's current version; read it before computing, pass it to :meth:`put`."""

    @abstractmethod
    async def put(self, customer_id: str, kind: str, value: bytes, version: str) -> None:
        """Store ``value`` unless the customer changed since ``version`` was read."""

    @abstractmethod
    async def invalidate(self, customer_id: str) -> None:
        """Forget everything cached for the customer; call after their orders change (after commit)."""


class MemoryInsightsCache(InsightsCache):
    """One process's cache, bounded: it is cleared when it grows past ``max_customers``."""

    def __init__(self, max_customers: int = 10_000) -> None:
        super().__init__()
        self._entries: dict[str, dict[str, bytes]] = {}
        self._versions: dict[str, int] = {}
        self._max_customers = max_customers

    async def _get(self, customer_id: str, kind: str) -> bytes | None:
        return self._entries.get(customer_id, {}).get(kind)

    async def version(self, customer_id: str) -> str:
        return str(self._versions.get(customer_id, 0))

    async def put(self, customer_id: str, kind: str, value: bytes, version: str) -> None:
        if str(self._versions.get(customer_id, 0)) != version:
            return
        if customer_id not in self._entries and len(self._entries) >= self._max_customers:
            self._entries.clear()
        self._entries.setdefault(customer_id, {})[kind] = value

    async def invalidate(self, customer_id: str) -> None:
        self._entries.pop(customer_id, None)
        self._versions[customer_id] = self._versions.get(customer_id, 0) + 1


class RedisInsightsCache(InsightsCache):
    """The cache in Redis: a hash of entries and a version key per customer; a hit is one HGET."""

    def __init__(self, redis: RedisClient, prefix: str, ttl_seconds: int = 600) -> None:
        super().__init__()
        self._redis = redis
        self._prefix = f"{prefix}:insights:"
        self._ttl = ttl_seconds
        self._store = redis.register_script(_STORE_IF_CURRENT)

    def _keys(self, customer_id: str) -> tuple[str, str]:
        # One hash slot per customer ({...}): the store script and the invalidation touch both keys,
        # which a Redis Cluster only allows within one slot.
        tag = f"{{{self._prefix}{customer_id}}}"
        return tag, f"{tag}:version"

    async def _get(self, customer_id: str, kind: str) -> bytes | None:
        value = await self._redis.hget(self._keys(customer_id)[0], kind)
        return value.encode() if isinstance(value, str) else value

    async def version(self, customer_id: str) -> str:
        value = await self._redis.get(self._keys(customer_id)[1])
        if value is None:
            return "0"
        return value.decode() if isinstance(value, bytes) else str(value)

    async def put(self, customer_id: str, kind: str, value: bytes, version: str) -> None:
        await self._store(keys=list(self._keys(customer_id)), args=[kind, value, version, self._ttl])

    async def invalidate(self, customer_id: str) -> None:
        entries, version = self._keys(customer_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(entries)
            pipe.incr(version)
            pipe.expire(version, 86400)
            await pipe.execute()
