"""Fixed-window request counting, in Redis when configured (shared by every process) or in memory.

Litestar's own rate-limit middleware keeps a JSON list of every request time per key and guards
it with a per-process lock: O(limit) work per request, and racy across processes. One atomic
``INCR`` per request is exact across any number of processes and hosts.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod

from redis.exceptions import RedisError

from app.platform.errors import RateLimited
from app.platform.settings import RateLimit
from channels.redis_connector import RedisClient

__all__ = ["MemoryRateLimiter", "RateLimiter", "RedisRateLimiter"]

logger = logging.getLogger(__name__)


class RateLimiter(ABC):
    """Counts requests per key and window; raises :class:`RateLimited` past the limit."""

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit

    def _window(self) -> tuple[int, int]:
        now = int(time.time())
        start = now - now % self.limit.window_seconds
        return start, start + self.limit.window_seconds - now

    async def hit(self, key: str) -> None:
        """Count one request for ``key``.

        Raises:
            RateLimited: with the seconds until the window resets.
        """
        start, retry_after = self._window()
        if await self._increment(f"{key}:{start}", self.limit.window_seconds) > self.limit.requests:
            raise RateLimited(max(retry_after, 1))

    @abstractmethod
    async def _increment(self, bucket: str, ttl: int) -> int: ...


class MemoryRateLimiter(RateLimiter):
    """One process's counters; old windows are dropped as new ones start."""

    def __init__(self, limit: RateLimit) -> None:
        super().__init__(limit)
        self._counts: dict[str, int] = {}
        self._window_start = 0

    async def _increment(self, bucket: str, ttl: int) -> int:
        start, _ = self._window()
        if start != self._window_start:
            self._counts.clear()
            self._window_start = start
        count = self._counts.get(bucket, 0) + 1
        self._counts[bucket] = count
        return count


class RedisRateLimiter(RateLimiter):
    """Counters shared through Redis: ``INCR`` and ``EXPIRE`` in one round trip."""

    def __init__(self, limit: RateLimit, redis: RedisClient, prefix: str) -> None:
        super().__init__(limit)
        self._redis = redis
        self._prefix = f"{prefix}:ratelimit:"
        self.unavailable = 0

    async def _increment(self, bucket: str, ttl: int) -> int:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.incr(self._prefix + bucket)
                pipe.expire(self._prefix + bucket, ttl + 1)
                count, _ = await pipe.execute()
        except RedisError as exc:
            # Fail open: a Redis outage must not turn every REST request into an error.
            self.unavailable += 1
            if self.unavailable % 1000 == 1:
                logger.warning("rate limiter: Redis unavailable, not counting requests: %s", exc)
            return 0
        return int(count)
