"""The REST rate limit counts exactly across processes when Redis holds the counters."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from app.platform.errors import RateLimited
from app.platform.ratelimit import MemoryRateLimiter, RedisRateLimiter
from app.platform.settings import RateLimit
from tests.services import REDIS_URL, reachable, unavailable, unique_name


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    """A client of the test Redis; keys under this test's prefix are deleted after."""
    if not reachable("127.0.0.1", 6379):
        unavailable("Redis is not reachable at 127.0.0.1:6379")
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


async def test_counters_are_shared_between_processes(redis: Redis) -> None:
    """Two limiters on one Redis (two processes) share one budget; the one past it gets Retry-After."""
    prefix = unique_name("rl")
    first = RedisRateLimiter(RateLimit(3, 60), redis, prefix)
    second = RedisRateLimiter(RateLimit(3, 60), redis, prefix)
    await first.hit("user:a")
    await second.hit("user:a")
    await first.hit("user:a")
    with pytest.raises(RateLimited) as refused:
        await second.hit("user:a")
    assert 1 <= int(refused.value.headers["Retry-After"]) <= 60
    await second.hit("user:b")  # another user has their own budget
    keys = [key async for key in redis.scan_iter(f"{prefix}:*")]
    assert keys
    for key in keys:
        assert 0 < await redis.ttl(key) <= 61
    await redis.delete(*keys)


async def test_memory_limiter_counts_per_key() -> None:
    """The in-process limiter refuses the request past the limit, per key."""
    limiter = MemoryRateLimiter(RateLimit(2, 60))
    await limiter.hit("ip:1")
    await limiter.hit("ip:1")
    with pytest.raises(RateLimited):
        await limiter.hit("ip:1")
    await limiter.hit("ip:2")
